//! Readiness and header handling, with tower-test's mock inner service.

use std::future::ready;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Empty;
use infobip_auth::ErrorKind;
use infobip_auth::{
    source_fn, ApiKey, AuthError, AuthLayer, BaseUrl, Credential, CredentialSource, KeepsBody,
    Renewing, Static,
};
use tokio_test::{assert_pending, assert_ready, assert_ready_err, assert_ready_ok, task};
use tower_test::mock;

type Req = Request<Empty<Bytes>>;

fn base() -> BaseUrl {
    BaseUrl::new("https://api.infobip.com").unwrap()
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("https://api.infobip.com/sms/1/reports")
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn poll_ready_is_pending_while_inner_is_not_ready() {
    let layer = AuthLayer::new(base(), ApiKey::new("key").unwrap());
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);

    handle.allow(0);
    assert_pending!(service.poll_ready());
    assert_pending!(service.poll_ready());

    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(request());
    let (seen, send) = handle.next_request().await.unwrap();
    assert_eq!(seen.headers()[AUTHORIZATION], "App key");
    assert!(seen.headers()[AUTHORIZATION].is_sensitive());
    send.send_response(Response::new(String::new()));
    response.await.unwrap();

    // The permit was used: not ready again until the inner service is.
    assert_pending!(service.poll_ready());
}

/// Sends `req` through `layer` over tower-test's mock and returns what the
/// inner service received.
async fn received<C>(layer: AuthLayer<C>, req: Request<Empty<Bytes>>) -> Req
where
    C: CredentialSource + Clone,
    C::Kind: KeepsBody<Empty<Bytes>>,
{
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let response = service.call(req);
    let (seen, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(String::new()));
    response.await.unwrap();
    seen
}

fn with_callers_authorization() -> Request<Empty<Bytes>> {
    let mut req = request();
    req.headers_mut()
        .insert(AUTHORIZATION, "App callers-own".parse().unwrap());
    req
}

fn failing_source() -> impl CredentialSource<Kind = Static> + Clone {
    source_fn(|| {
        ready(Err::<Credential, _>(AuthError::source_failed(
            "vault unreachable",
            None,
        )))
    })
}

#[tokio::test]
async fn caller_set_authorization_is_preserved_by_default() {
    let mut req = with_callers_authorization();
    // Even a (malformed) second value is passed on untouched, in order.
    req.headers_mut()
        .append(AUTHORIZATION, "App second".parse().unwrap());
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let seen = received(AuthLayer::new(base(), ApiKey::new("key").unwrap()), req).await;
    let values: Vec<_> = seen.headers().get_all(AUTHORIZATION).iter().collect();
    assert_eq!(values, ["App callers-own", "App second"]);
    assert_eq!(seen.headers()["content-type"], "application/json");
    assert_eq!(seen.headers().len(), 3);
}

#[tokio::test]
async fn override_existing_replaces_caller_header() {
    let layer = AuthLayer::new(base(), ApiKey::new("key").unwrap()).override_existing(true);
    let seen = received(layer, with_callers_authorization()).await;
    assert_eq!(seen.headers()[AUTHORIZATION], "App key");
    assert_eq!(seen.headers().get_all(AUTHORIZATION).iter().count(), 1);
}

#[tokio::test]
async fn path_only_request_is_resolved_against_base_url() {
    let req = Request::get("/sms/1/reports?limit=5")
        .body(Empty::new())
        .unwrap();
    let seen = received(AuthLayer::new(base(), ApiKey::new("key").unwrap()), req).await;
    assert_eq!(seen.uri(), "https://api.infobip.com/sms/1/reports?limit=5");
    assert_eq!(seen.headers()[AUTHORIZATION], "App key");
}

/// `poll_ready` stays ready when the source fails (so a Buffer or balancer
/// in front does not drop the service), and a request the layer would stamp
/// fails unsent, the inner readiness given up: behind a concurrency limit of
/// one, another clone can take the permit at once.
#[tokio::test]
async fn failing_source_fails_a_request_it_would_stamp_unsent() {
    use tower::limit::ConcurrencyLimit;
    use tower::{Layer, Service};

    let (inner, mut handle) = mock::pair::<Req, Response<String>>();
    handle.allow(1);
    let limited = ConcurrencyLimit::new(inner, 1);
    let mut service = AuthLayer::new(base(), failing_source()).layer(limited.clone());
    let mut other = limited;
    let mut cx = task::spawn(());
    assert_ready_ok!(cx.enter(|cx, _| service.poll_ready(cx)));
    let mut response = task::spawn(service.call(request()));
    let error = assert_ready_err!(response.poll());
    assert_eq!(error.kind(), infobip_auth::ErrorKind::Source);
    assert!(error.to_string().contains("vault unreachable"), "{error}");
    assert_pending!(handle.poll_request());
    assert_ready_ok!(
        cx.enter(|cx, _| other.poll_ready(cx)),
        "the permit was given back"
    );
}

/// A request the layer would not stamp does not depend on the source: it is
/// sent as it is, whether it carries its own `Authorization` or goes to
/// another origin.
#[tokio::test]
async fn failing_source_still_sends_requests_it_would_not_stamp() {
    let layer = AuthLayer::new(base(), failing_source());
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);
    handle.allow(2);
    let elsewhere = Request::get("https://example.com/status")
        .body(Empty::new())
        .unwrap();
    for (req, expected) in [
        (with_callers_authorization(), Some("App callers-own")),
        (elsewhere, None),
    ] {
        assert_ready_ok!(service.poll_ready());
        let response = service.call(req);
        let (seen, send) = handle.next_request().await.unwrap();
        let sent = seen
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap());
        assert_eq!(sent, expected);
        send.send_response(Response::new(String::new()));
        response.await.unwrap();
    }
}

/// With `override_existing`, the caller's header would be replaced: the
/// request needs the source, and fails unsent.
#[tokio::test]
async fn failing_source_fails_a_request_whose_header_it_would_replace() {
    let layer = AuthLayer::new(base(), failing_source()).override_existing(true);
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);
    handle.allow(1);
    assert_ready_ok!(service.poll_ready());
    let error = service
        .call(with_callers_authorization())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), infobip_auth::ErrorKind::Source);
    assert_pending!(handle.poll_request());
}

#[tokio::test]
async fn composes_with_service_builder_and_box_clone_service() {
    use tower::util::BoxCloneService;
    use tower::{service_fn, ServiceBuilder, ServiceExt};

    let inner = service_fn(|req: Req| async move {
        let stamped = req.headers()[AUTHORIZATION].to_str().unwrap().to_owned();
        Ok::<_, std::convert::Infallible>(Response::new(stamped))
    });
    let service = ServiceBuilder::new()
        .concurrency_limit(4)
        .layer(AuthLayer::new(base(), ApiKey::new("key").unwrap()))
        .service(inner);
    let boxed: BoxCloneService<Request<Empty<Bytes>>, Response<_>, AuthError> =
        BoxCloneService::new(service);
    let response = boxed.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.into_body(), "App key");
}

/// A renewing source whose current generation and newest rejected one are
/// set by the test.
#[derive(Clone, Default)]
struct Generations(std::sync::Arc<(AtomicU64, AtomicU64)>);

impl Generations {
    fn new(current: u64) -> Self {
        let source = Self::default();
        source.0 .0.store(current, Ordering::SeqCst);
        source
    }

    /// What a 401 to a request stamped with `generation` does to a session
    /// source: that generation is dead, the next one is current.
    fn reject(&self, generation: u64) {
        self.0 .1.store(generation, Ordering::SeqCst);
        self.0 .0.store(generation + 1, Ordering::SeqCst);
    }
}

impl CredentialSource for Generations {
    type Future = std::future::Ready<Result<Credential, AuthError>>;
    type Kind = Renewing;

    fn credential(&self) -> Self::Future {
        let generation = self.0 .0.load(Ordering::SeqCst);
        let credential = Credential::new("IBSSO", &format!("token-{generation}"));
        ready(credential.map(|c| c.with_generation(generation)))
    }

    fn is_rejected(&self, credential: &Credential) -> bool {
        credential.generation() <= self.0 .1.load(Ordering::SeqCst)
    }
}

/// A request readied with a credential that is rejected before it is
/// called is never sent with it: it is sent once, with the next one. The
/// readied inner service is given up while it waits: behind a concurrency
/// limit of 1, its own send needs the permit that `poll_ready` took.
#[test]
fn request_readied_with_a_credential_rejected_before_call_is_sent_once_with_the_next() {
    let source = Generations::new(1);
    let (inner, mut handle) = mock::pair::<Req, Response<String>>();
    let service = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(base(), source.clone()))
        .concurrency_limit(1)
        .service(inner);
    let mut service = tower_test::mock::Spawn::new(service);
    handle.allow(2);

    assert_ready_ok!(service.poll_ready());
    // Another request stamped with generation 1 was answered 401.
    source.reject(1);
    let mut response = task::spawn(service.call(request()));
    assert_pending!(response.poll());

    let (seen, send) = assert_ready!(handle.poll_request()).unwrap();
    assert_eq!(seen.headers()[AUTHORIZATION], "IBSSO token-2");
    assert!(seen.headers()[AUTHORIZATION].is_sensitive());
    assert_eq!(seen.headers().get_all(AUTHORIZATION).iter().count(), 1);
    assert_eq!(seen.uri(), "https://api.infobip.com/sms/1/reports");
    send.send_response(Response::new(String::new()));
    assert_ready_ok!(response.poll());
    assert_pending!(handle.poll_request(), "sent once, never with token-1");

    // With the response gone, its permit is free: the service is usable
    // again, with the new credential.
    drop(response);
    assert_ready_ok!(service.poll_ready());
    let mut response = task::spawn(service.call(request()));
    let (seen, send) = assert_ready!(handle.poll_request()).unwrap();
    assert_eq!(seen.headers()[AUTHORIZATION], "IBSSO token-2");
    send.send_response(Response::new(String::new()));
    assert_ready_ok!(response.poll());
}

/// tower's contract is broken by the caller: the error says so, by kind,
/// and nothing is sent.
#[tokio::test]
async fn call_before_poll_ready_is_a_not_ready_error() {
    let layer = AuthLayer::new(base(), ApiKey::new("key").unwrap());
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);
    handle.allow(1);
    let error = service.call(request()).await.unwrap_err();
    assert!(error.kind() == ErrorKind::NotReady, "{error:?}");
    assert_pending!(handle.poll_request());
}

#[tokio::test]
async fn polling_a_response_after_it_completed_says_so() {
    let layer = AuthLayer::new(base(), ApiKey::new("key").unwrap());
    let (mut service, mut handle) = mock::spawn_layer::<Req, Response<String>, _>(layer);
    handle.allow(1);
    // A future that completed with an error once: polled again, it says so.
    let mut response = task::spawn(service.call(request()));
    assert_ready_err!(response.poll());
    let error = assert_ready_err!(response.poll());
    assert!(
        error.kind() == ErrorKind::PolledAfterCompletion,
        "{error:?}"
    );
}
