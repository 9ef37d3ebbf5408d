//! What holds an inner slot while a login runs: with a `ConcurrencyLimit` of
//! one inside the layer and a slow login, the permit stays free until the
//! credential is in hand, both before the first send and before a replay,
//! as the `AuthService` docs claim.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use infobip_auth::{AuthLayer, BaseUrl, Ibsso};
use tokio::sync::Semaphore;
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::limit::ConcurrencyLimit;
use tower::{service_fn, Layer, Service};
use tower_test::mock;

type Req = Request<Empty<Bytes>>;

/// A base URL of the test's own: the login rate is shared per base URL by
/// the whole process, and these tests count logins as they happen.
fn base(test: &str) -> BaseUrl {
    BaseUrl::new(&format!("https://{test}.api.infobip.com")).unwrap()
}

/// A session source whose logins each wait for one permit of `gate`.
fn gated_session(base: BaseUrl, gate: Arc<Semaphore>, logins: Arc<AtomicUsize>) -> Ibsso {
    let transport = service_fn(move |_: Request<Full<Bytes>>| {
        let gate = gate.clone();
        let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            gate.acquire().await.unwrap().forget();
            let body = format!(r#"{{"token":"token-{n}"}}"#);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    });
    // Logins as fast as they come: these tests count them as they happen.
    Ibsso::builder(base, "user", "password")
        .login_rate(1_000_000)
        .build(transport)
        .unwrap()
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("/sms/1/reports").body(Empty::new()).unwrap()
}

#[tokio::test]
async fn slow_login_does_not_hold_the_inner_permit() {
    const T: &str = "slow-login";
    let gate = Arc::new(Semaphore::new(0));
    let logins = Arc::new(AtomicUsize::new(0));
    let (inner, mut handle) = mock::pair::<Req, Response<String>>();
    let limited = ConcurrencyLimit::new(inner, 1);
    let mut auth = AuthLayer::new(
        base(T),
        gated_session(base(T), gate.clone(), logins.clone()),
    )
    .layer(limited.clone());
    let mut other = limited;
    let mut cx = task::spawn(());

    // The login is pending: our service is not ready...
    assert_pending!(cx.enter(|cx, _| auth.poll_ready(cx)));
    // The login runs as its own task.
    tokio::task::yield_now().await;
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    // ...and the only permit is still free for anyone else.
    assert_ready_ok!(cx.enter(|cx, _| other.poll_ready(cx)));

    // The login finishes; now the permit is taken by `other`, so we wait for it.
    gate.add_permits(1);
    tokio::task::yield_now().await;
    assert_pending!(cx.enter(|cx, _| auth.poll_ready(cx)));

    // `other` sends and completes: the permit comes back, and we are ready.
    let done = other.call(Request::new(Empty::new()));
    let (_, send) = handle.next_request().await.unwrap();
    send.send_response(Response::new(String::new()));
    done.await.unwrap();
    assert_ready_ok!(cx.enter(|cx, _| auth.poll_ready(cx)));

    let response = auth.call(request());
    let (seen, send) = handle.next_request().await.unwrap();
    assert_eq!(seen.headers()["authorization"], "IBSSO token-1");
    send.send_response(Response::new(String::new()));
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn renewal_after_401_does_not_hold_the_inner_permit() {
    const T: &str = "renewal";
    let gate = Arc::new(Semaphore::new(1));
    let logins = Arc::new(AtomicUsize::new(0));
    let (inner, mut handle) = mock::pair::<Req, Response<String>>();
    let limited = ConcurrencyLimit::new(inner, 1);
    let mut auth = AuthLayer::new(
        base(T),
        gated_session(base(T), gate.clone(), logins.clone()),
    )
    .layer(limited.clone());
    let mut other = limited;
    let mut cx = task::spawn(());

    // First login is let through at once.
    tokio_test::assert_ok!(futures_util::future::poll_fn(|cx| auth.poll_ready(cx)).await);
    let mut response = task::spawn(auth.call(request()));
    assert_pending!(response.poll());
    let (seen, send) = handle.next_request().await.unwrap();
    assert_eq!(seen.headers()["authorization"], "IBSSO token-1");
    let mut rejected = Response::new(String::from("{}"));
    *rejected.status_mut() = StatusCode::UNAUTHORIZED;
    send.send_response(rejected);

    // The renewal login waits on the gate; the first attempt's permit has
    // been returned, and the replay has not taken one yet.
    assert_pending!(response.poll());
    tokio::task::yield_now().await;
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    assert_ready_ok!(cx.enter(|cx, _| other.poll_ready(cx)));
    drop(other);

    gate.add_permits(1);
    tokio::task::yield_now().await;
    assert_pending!(response.poll());
    let (replayed, send) = handle.next_request().await.unwrap();
    assert_eq!(replayed.headers()["authorization"], "IBSSO token-2");
    send.send_response(Response::new(String::new()));
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
}

fn unauthorized() -> Response<String> {
    let mut response = Response::new(String::from("{}"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

/// The replay, sent with the renewed session, is answered 401 too. The
/// request ends there (one replay), but the source drops that session, so
/// the next request logs in again instead of being sent with it.
#[tokio::test]
async fn a_replay_answered_401_drops_its_session_for_the_next_request() {
    let gate = Arc::new(Semaphore::new(10));
    let logins = Arc::new(AtomicUsize::new(0));
    let (inner, mut handle) = mock::pair::<Req, Response<String>>();
    let source = gated_session(base("replay-401"), gate, logins.clone());
    let mut auth = AuthLayer::new(base("replay-401"), source.clone()).layer(inner);
    handle.allow(10);

    tokio_test::assert_ok!(futures_util::future::poll_fn(|cx| auth.poll_ready(cx)).await);
    let response = tokio::spawn(auth.call(request()));
    let (first, send) = handle.next_request().await.unwrap();
    assert_eq!(first.headers()["authorization"], "IBSSO token-1");
    send.send_response(unauthorized());
    let (replay, send) = handle.next_request().await.unwrap();
    assert_eq!(replay.headers()["authorization"], "IBSSO token-2");
    send.send_response(unauthorized());
    let response = response.await.unwrap().unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "replayed once only"
    );
    assert!(!source.has_session(), "the replay's session was dropped");

    tokio_test::assert_ok!(futures_util::future::poll_fn(|cx| auth.poll_ready(cx)).await);
    let next = tokio::spawn(auth.call(request()));
    let (seen, send) = handle.next_request().await.unwrap();
    assert_eq!(seen.headers()["authorization"], "IBSSO token-3");
    send.send_response(Response::new(String::new()));
    assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(logins.load(Ordering::SeqCst), 3);
}
