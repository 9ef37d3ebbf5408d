//! reqwest users: `AuthLayer` over `ReqwestClient`, and `AuthMiddleware` in a
//! reqwest-middleware chain, against FakeInfobip over HTTP and HTTPS.

use std::error::Error as _;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, StatusCode};
use infobip_auth::reqwest::{AuthMiddleware, ReqwestClient};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::ErrorKind;
use infobip_auth::{
    ApiKey, AuthError, AuthLayer, Basic, BoxCredentialSource, CredentialSource, Ibsso, OAuth2,
    ReplaySkipped,
};
use reqwest_middleware::ClientWithMiddleware;
use tower::{Layer, ServiceExt};

/// A reqwest client for `fake`: over HTTPS it trusts only the fake's
/// certificate (rustls with ring, the provider the tests install).
fn reqwest_for(fake: &FakeInfobip) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder();
    let Some(der) = fake.tls_certificate_der() else {
        return builder.build().unwrap();
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    builder.tls_backend_preconfigured(tls).build().unwrap()
}

/// The four methods, as one source type, for the fake's account; the
/// session sources log in through `client`.
fn sources(
    fake: &FakeInfobip,
    client: &reqwest::Client,
) -> Vec<(&'static str, BoxCredentialSource)> {
    let transport = ReqwestClient::<Bytes>::new(client.clone());
    let (user, password) = (FakeInfobip::USERNAME, FakeInfobip::PASSWORD);
    vec![
        (
            "App",
            BoxCredentialSource::mixed(ApiKey::new(FakeInfobip::API_KEY).unwrap()),
        ),
        (
            "Basic",
            BoxCredentialSource::mixed(Basic::new(user, password).unwrap()),
        ),
        (
            "IBSSO",
            BoxCredentialSource::new(
                Ibsso::builder(fake.base_url(), user, password)
                    .build(transport.clone())
                    .unwrap(),
            ),
        ),
        (
            "Bearer",
            BoxCredentialSource::new(
                OAuth2::builder(fake.base_url(), user, password)
                    .build(transport)
                    .unwrap(),
            ),
        ),
    ]
}

/// An IBSSO session for the fake's account, logging in through `client`.
fn session_via(fake: &FakeInfobip, client: &reqwest::Client) -> Ibsso {
    Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .build(ReqwestClient::<Bytes>::new(client.clone()))
    .unwrap()
}

fn sms_url(fake: &FakeInfobip) -> String {
    fake.uri("/sms/2/text/advanced").to_string()
}

fn with_middleware<C>(
    fake: &FakeInfobip,
    client: &reqwest::Client,
    source: C,
) -> ClientWithMiddleware
where
    C: CredentialSource + Send + Sync + 'static,
    C::Future: Send,
{
    reqwest_middleware::ClientBuilder::new(client.clone())
        .with(AuthMiddleware::new(fake.base_url(), source))
        .build()
}

/// The scheme of the last `Authorization` the fake received.
fn last_scheme(fake: &FakeInfobip) -> String {
    let last = fake.authorizations().last().cloned().flatten().unwrap();
    let value = last.to_str().unwrap().to_owned();
    value.split(' ').next().unwrap().to_owned()
}

async fn every_method_through_both(fake: FakeInfobip) {
    let client = reqwest_for(&fake);
    for (scheme, source) in sources(&fake, &client) {
        // Under `AuthLayer`, with a path-only URI.
        let service = AuthLayer::new(fake.base_url(), source.clone())
            .layer(ReqwestClient::new(client.clone()));
        let request = Request::post("/sms/2/text/advanced")
            .body(Bytes::from("{}"))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{scheme} under AuthLayer"
        );
        assert_eq!(last_scheme(&fake), scheme);

        // In a reqwest-middleware chain.
        let chain = with_middleware(&fake, &client, source);
        let response = chain.post(sms_url(&fake)).body("{}").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme} as middleware");
        assert_eq!(last_scheme(&fake), scheme);
    }
    assert!(fake.authorizations().iter().all(|a| a.is_some()));
}

#[tokio::test]
async fn every_method_over_http() {
    every_method_through_both(FakeInfobip::start().await.unwrap()).await;
}

#[tokio::test]
async fn every_method_over_https() {
    let fake = FakeInfobip::start_tls().await.unwrap();
    assert!(fake.base_url().is_https());
    every_method_through_both(fake).await;
}

/// 1,000 concurrent requests on a revoked session: exactly one login, and
/// no request reaches the server more than twice.
async fn storm<F, Fut>(fake: &FakeInfobip, source: &Ibsso, send: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    assert_eq!(send(String::from("warm")).await, StatusCode::OK);
    assert_eq!(fake.logins(), 1);
    fake.revoke_sessions();
    let statuses = join_all((0..1000).map(|n| send(format!("storm-{n}")))).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(fake.logins(), 2, "one login for the whole storm");
    let attempts = fake.attempts_by_request_id();
    assert_eq!(attempts.len(), 1001);
    assert!(attempts.values().all(|n| *n <= 2), "sent at most twice");
    assert_eq!(source.stats().renewals, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_under_auth_layer_costs_one_login() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = ReqwestClient::<Bytes>::new(reqwest_for(&fake));
    let source = Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .build(client.clone())
    .unwrap();
    let service = AuthLayer::new(fake.base_url(), source.clone()).layer(client);
    storm(&fake, &source, |id| {
        let request = Request::post("/sms/2/text/advanced")
            .header("x-request-id", id)
            .body(Bytes::from("{}"))
            .unwrap();
        let service = service.clone();
        async move { service.oneshot(request).await.unwrap().status() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_through_the_middleware_costs_one_login() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&fake);
    let source = session_via(&fake, &client);
    let chain = with_middleware(&fake, &client, source.clone());
    let url = sms_url(&fake);
    storm(&fake, &source, |id| {
        let request = chain.post(&url).header("x-request-id", id).body("{}");
        async move { request.send().await.unwrap().status() }
    })
    .await;
}

/// reqwest follows redirects inside the client, below both integrations:
/// its policy drops `Authorization` on the way to another origin.
#[tokio::test]
async fn a_redirect_to_another_origin_never_carries_the_credential() {
    let infobip = FakeInfobip::start().await.unwrap();
    let elsewhere = FakeInfobip::start().await.unwrap();
    infobip.redirect("/sms/1/reports", &elsewhere.uri("/landing").to_string());
    let client = reqwest_for(&infobip);
    let key = || ApiKey::new(FakeInfobip::API_KEY).unwrap();

    let service =
        AuthLayer::new(infobip.base_url(), key()).layer(ReqwestClient::new(client.clone()));
    let request = Request::get("/sms/1/reports").body(Bytes::new()).unwrap();
    service.oneshot(request).await.unwrap();
    let chain = with_middleware(&infobip, &client, key());
    chain
        .get(infobip.uri("/sms/1/reports").to_string())
        .send()
        .await
        .unwrap();

    assert_eq!(infobip.authorizations().len(), 2);
    assert!(
        infobip.authorizations().iter().all(|a| a.is_some()),
        "stamped at home"
    );
    assert_eq!(
        elsewhere.authorizations(),
        vec![None, None],
        "never elsewhere"
    );
}

/// A request to another origin passes through the middleware unstamped.
#[tokio::test]
async fn the_middleware_stamps_only_its_origin() {
    let infobip = FakeInfobip::start().await.unwrap();
    let elsewhere = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&infobip);
    let chain = with_middleware(
        &infobip,
        &client,
        ApiKey::new(FakeInfobip::API_KEY).unwrap(),
    );
    chain
        .get(elsewhere.uri("/sms/1/reports").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.authorizations(), vec![None]);
}

#[tokio::test]
async fn a_callers_header_is_kept_by_both() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&fake);
    let own = format!("App {}", FakeInfobip::API_KEY);
    let key = || ApiKey::new("not-the-callers").unwrap();

    let service = AuthLayer::new(fake.base_url(), key()).layer(ReqwestClient::new(client.clone()));
    let request = Request::get("/sms/1/reports")
        .header("authorization", &own)
        .body(Bytes::new())
        .unwrap();
    assert_eq!(
        service.oneshot(request).await.unwrap().status(),
        StatusCode::OK
    );
    let chain = with_middleware(&fake, &client, key());
    let response = chain
        .get(fake.uri("/sms/1/reports").to_string())
        .header("authorization", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.authorizations().len(), 2);
    assert!(fake
        .authorizations()
        .iter()
        .all(|a| a.as_ref().unwrap() == own.as_str()));
}

/// Records whether the `Authorization` it sees is marked sensitive.
struct Spy(Arc<std::sync::Mutex<Option<bool>>>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Spy {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let sensitive = request
            .headers()
            .get("authorization")
            .map(|v| v.is_sensitive());
        *self.0.lock().unwrap() = sensitive;
        next.run(request, extensions).await
    }
}

/// The stamped value is marked sensitive (hyper and reqwest redact it).
#[tokio::test]
async fn the_middleware_marks_the_value_sensitive() {
    let fake = FakeInfobip::start().await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let spy = Spy(seen.clone());
    let chain = reqwest_middleware::ClientBuilder::new(reqwest_for(&fake))
        .with(AuthMiddleware::new(
            fake.base_url(),
            ApiKey::new(FakeInfobip::API_KEY).unwrap(),
        ))
        .with(spy)
        .build();
    chain.get(sms_url(&fake)).send().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(true));
}

/// A reqwest streaming body of `total` bytes in chunks of `size`, one
/// chunk per poll, and the bytes it yields.
fn streaming_body(total: usize, size: usize) -> (reqwest::Body, Bytes) {
    let all: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
    let chunks: Vec<Bytes> = all.chunks(size).map(Bytes::copy_from_slice).collect();
    let frames = futures_util::StreamExt::then(futures_util::stream::iter(chunks), |chunk| async {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(http_body::Frame::data(chunk))
    });
    let body = reqwest::Body::wrap(http_body_util::StreamBody::new(frames));
    (body, Bytes::from(all))
}

/// A chain on a session, warmed up: one login done.
async fn warm_chain(fake: &FakeInfobip, limit: usize) -> (ClientWithMiddleware, Ibsso) {
    let client = reqwest_for(fake);
    let source = session_via(fake, &client);
    let chain = reqwest_middleware::ClientBuilder::new(client)
        .with(AuthMiddleware::new(fake.base_url(), source.clone()).replay_limit(limit))
        .build();
    let warm = chain.get(sms_url(fake)).send().await.unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    (chain, source)
}

/// The server answers 401 after reading 5 bytes of a streamed upload: the
/// middleware kept what was sent, and the replay sends every byte, once,
/// in order.
#[tokio::test]
async fn the_middleware_replays_a_streaming_body_byte_exactly_after_an_early_401() {
    let fake = FakeInfobip::start().await.unwrap();
    let (chain, source) = warm_chain(&fake, 64 * 1024).await;
    let (body, whole) = streaming_body(48 * 1024, 4096);
    fake.revoke_sessions();
    fake.reject_early(1, 5);
    let response = chain.post(sms_url(&fake)).body(body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.extensions().get::<ReplaySkipped>().is_none());
    let accepted = fake.accepted_requests();
    assert_eq!(
        accepted.last().unwrap().body,
        whole,
        "every byte, once, in order"
    );
    assert_eq!(fake.rejected(), 1);
    assert_eq!(source.stats().renewals, 1);
}

/// Past the replay limit nothing is kept: the 401 comes back marked, in
/// memory or streamed, and the session is renewed for the next request.
#[tokio::test]
async fn the_middleware_hands_back_a_401_past_the_replay_limit_marked() {
    let fake = FakeInfobip::start().await.unwrap();
    let (chain, _) = warm_chain(&fake, 1024).await;
    let (streamed, whole) = streaming_body(4096, 512);
    for body in [reqwest::Body::from(whole), streamed] {
        fake.revoke_sessions();
        let response = chain.post(sms_url(&fake)).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.extensions().get::<ReplaySkipped>(),
            Some(&ReplaySkipped::BodyOverLimit)
        );
        let next = chain.get(sms_url(&fake)).send().await.unwrap();
        assert_eq!(next.status(), StatusCode::OK, "renewed");
    }
    assert_eq!(fake.logins(), 3);
}

/// An `Ibsso` whose next credential is rejected right after it is handed
/// out, as when another request's 401 lands between the middleware's
/// lookup and its send.
#[derive(Clone, Debug)]
struct RejectedOnTheWay {
    inner: Ibsso,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl CredentialSource for RejectedOnTheWay {
    type Future =
        futures_util::future::BoxFuture<'static, Result<infobip_auth::Credential, AuthError>>;
    type Kind = <Ibsso as CredentialSource>::Kind;

    fn credential(&self) -> Self::Future {
        let (inner, armed) = (self.inner.clone(), self.armed.clone());
        Box::pin(async move {
            let credential = inner.credential().await?;
            if armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                inner.on_unauthorized(&credential);
            }
            Ok(credential)
        })
    }

    fn on_unauthorized(&self, rejected: &infobip_auth::Credential) {
        self.inner.on_unauthorized(rejected);
    }

    fn is_rejected(&self, credential: &infobip_auth::Credential) -> bool {
        self.inner.is_rejected(credential)
    }

    fn on_replay(&self, replayed: bool) {
        self.inner.on_replay(replayed);
    }
}

#[tokio::test]
async fn the_middleware_sends_a_held_request_once_with_the_renewed_credential() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&fake);
    let inner = session_via(&fake, &client);
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let source = RejectedOnTheWay {
        inner: inner.clone(),
        armed: armed.clone(),
    };
    let chain = with_middleware(&fake, &client, source);
    chain.get(sms_url(&fake)).send().await.unwrap();
    let first = fake.authorizations().last().cloned().flatten().unwrap();

    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = chain
        .post(sms_url(&fake))
        .header("x-request-id", "held")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.attempts_by_request_id()["held"], 1, "sent once");
    let sent = fake.authorizations().last().cloned().flatten().unwrap();
    assert_ne!(
        sent, first,
        "with the renewed session, not the rejected one"
    );
    assert_eq!(fake.logins(), 2);
}

/// A failed source is a middleware error whose cause is the `AuthError`;
/// under `AuthLayer` a transport failure keeps its `reqwest::Error`.
#[tokio::test]
async fn errors_keep_their_cause() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&fake);
    let wrong = Ibsso::builder(fake.base_url(), FakeInfobip::USERNAME, "wrong")
        .build(ReqwestClient::<Bytes>::new(client.clone()))
        .unwrap();
    let chain = with_middleware(&fake, &client, wrong);
    let error = chain.get(sms_url(&fake)).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(cause) = error else {
        panic!("a middleware error");
    };
    assert!(cause.downcast_ref::<AuthError>().unwrap().kind() == ErrorKind::BadCredentials);

    // Nothing listens on the fake's port once it is dropped.
    let base = fake.base_url();
    drop(fake);
    let service =
        AuthLayer::new(base, ApiKey::new("key").unwrap()).layer(ReqwestClient::new(client));
    let request = Request::get("/sms/1/reports").body(Bytes::new()).unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    assert!(error.kind() == ErrorKind::Inner);
    assert!(error
        .source()
        .unwrap()
        .downcast_ref::<reqwest::Error>()
        .is_some());
}

/// Which account a request is for, set with `with_extension`.
#[derive(Clone, Debug, PartialEq)]
struct Account(&'static str);

/// Records the `Account` extension of every request it sees.
struct SeesExtensions(Arc<std::sync::Mutex<Vec<Option<Account>>>>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for SeesExtensions {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0
            .lock()
            .unwrap()
            .push(extensions.get::<Account>().cloned());
        next.run(request, extensions).await
    }
}

/// Per-request data from `with_extension` reaches what follows the
/// middleware, on the first attempt and on the replay alike.
#[tokio::test]
async fn with_extension_data_reaches_the_replay_too() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = reqwest_for(&fake);
    let source = session_via(&fake, &client);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let chain = reqwest_middleware::ClientBuilder::new(client)
        .with(AuthMiddleware::new(fake.base_url(), source))
        .with(SeesExtensions(seen.clone()))
        .build();
    chain.get(sms_url(&fake)).send().await.unwrap();
    fake.revoke_sessions();
    let response = chain
        .get(sms_url(&fake))
        .with_extension(Account("acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![None, Some(Account("acme")), Some(Account("acme"))]
    );
}
