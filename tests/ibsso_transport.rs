//! IBSSO over a hand-written transport: malformed login answers, transport
//! failures and cancelled logins never stamp anything or leave state stuck.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use infobip_auth::{AuthLayer, BaseUrl, CredentialSource, ErrorKind, Ibsso};
use tower::{service_fn, ServiceExt};
use tower_test::mock;

fn base() -> BaseUrl {
    BaseUrl::new("https://api.infobip.com").unwrap()
}

/// A login transport that answers every login with `status` and `body`.
fn answering(status: u16, body: &'static [u8], calls: Arc<AtomicUsize>) -> Ibsso {
    let transport = service_fn(move |request: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(request.uri(), "https://api.infobip.com/auth/1/session");
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        async move { Ok::<_, Infallible>(response) }
    });
    Ibsso::builder(base(), "user", "pass")
        .backoff(Duration::ZERO, Duration::ZERO)
        .max_response_bytes(1024)
        .build(transport)
        .unwrap()
}

#[tokio::test]
async fn malformed_login_answers_fail_without_sending_the_request() {
    let oversized: &'static [u8] = Box::leak(
        format!(r#"{{"token":"{}"}}"#, "a".repeat(4096))
            .into_bytes()
            .into_boxed_slice(),
    );
    let cases: [(&[u8], &str); 5] = [
        (b"{}", "no token"),
        (b"<html>", "not JSON"),
        (br#"{"token":"abc\r\nX-Evil: 1"}"#, "CR/LF in token"),
        (br#"{"token":""}"#, "empty token"),
        (oversized, "oversized"),
    ];
    for (body, what) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = answering(200, body, calls.clone());
        let layer = AuthLayer::new(base(), source.clone());
        let (service, mut handle) =
            mock::spawn_layer::<Request<Empty<Bytes>>, Response<String>, _>(layer);
        handle.allow(10);
        let request = Request::get("/sms/1/reports").body(Empty::new()).unwrap();
        let error = service.into_inner().oneshot(request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{what}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{what}");
        // The service is gone and no request was ever queued to it.
        assert!(
            matches!(handle.poll_request(), std::task::Poll::Ready(None)),
            "{what}: nothing may reach the inner service"
        );
        assert!(!source.has_session());
    }
}

#[tokio::test]
async fn connection_error_is_a_transport_error_and_later_requests_retry() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let base = BaseUrl::insecure_loopback(&format!("http://{addr}")).unwrap();
    let source = Ibsso::builder(base, "user", "pass")
        .backoff(Duration::ZERO, Duration::ZERO)
        .build(client)
        .unwrap();
    for _ in 0..2 {
        let error = source.credential().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transport);
        assert!(std::error::Error::source(&error).is_some());
    }
    assert_eq!(
        source.stats().logins,
        2,
        "no backoff configured: each request tries"
    );
}

#[tokio::test]
async fn a_login_outlives_the_requests_that_gave_up_on_it() {
    let calls = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let transport = {
        let calls = calls.clone();
        let release = release.clone();
        service_fn(move |_request: Request<Full<Bytes>>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let release = release.clone();
            async move {
                if n == 0 {
                    // The first login never finishes on its own.
                    let _permit = release.acquire().await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    br#"{"token":"fresh-token"}"#,
                ))))
            }
        })
    };
    let source = Ibsso::builder(base(), "user", "pass")
        .build(transport)
        .unwrap();

    // A caller gives up on the login.
    let first = tokio::time::timeout(Duration::from_millis(20), source.credential()).await;
    assert!(first.is_err(), "the login hangs");

    // The login runs on as its own task: once it answers, its session is
    // there for the next request, with no second login.
    release.add_permits(1);
    let credential = source.credential().await.unwrap();
    assert_eq!(credential.header_value(), "IBSSO fresh-token");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(source.stats().logins, 1);
}

/// In a renewal storm thousands of requests wait on one login. The login
/// runs as a task of its own: waiting requests never drive it, so its
/// transport is polled once to start and once per wake of its own, however
/// many requests wait and however often they are polled.
#[tokio::test]
async fn requests_waiting_on_one_login_do_not_drive_it() {
    let polls = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let counted = polls.clone();
    let transport = service_fn(move |_request: Request<Full<Bytes>>| {
        let polls = counted.clone();
        let mut released = released.clone();
        let mut answer = Box::pin(async move {
            released.wait_for(|released| *released).await.unwrap();
            let body = Full::new(Bytes::from_static(br#"{"token":"one-login"}"#));
            Ok::<_, Infallible>(Response::new(body))
        });
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            answer.as_mut().poll(cx)
        })
    });
    // A base URL of its own: no other test's login takes its turn first.
    let base = BaseUrl::new("https://one-login.api.infobip.com").unwrap();
    let source = Ibsso::builder(base, "user", "pass")
        .build(transport)
        .unwrap();

    let mut waiting: Vec<_> = (0..100)
        .map(|_| tokio_test::task::spawn(source.credential()))
        .collect();
    for _ in 0..3 {
        for request in &mut waiting {
            assert!(request.poll().is_pending());
        }
        // The login task runs here.
        tokio::task::yield_now().await;
    }
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "300 polls of 100 waiting requests: the login's transport was polled once"
    );

    release.send(true).unwrap();
    // One more request waits for the same login, to its end.
    let last = source.credential().await.unwrap();
    assert_eq!(last.header_value(), "IBSSO one-login");
    for request in &mut waiting {
        assert!(request.is_woken(), "every waiting request is woken");
        let std::task::Poll::Ready(credential) = request.poll() else {
            panic!("the login has its answer");
        };
        assert_eq!(credential.unwrap().header_value(), "IBSSO one-login");
    }
    assert_eq!(
        polls.load(Ordering::SeqCst),
        2,
        "one wake of the login: polled once more, not once per request"
    );
    assert_eq!(source.stats().logins, 1);
}

#[tokio::test]
async fn unbound_session_flag_and_credentials_travel_in_the_json_body() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let transport = {
        let seen = seen.clone();
        service_fn(move |request: Request<Full<Bytes>>| {
            let seen = seen.clone();
            async move {
                use http_body_util::BodyExt;
                assert!(request.headers().get("authorization").is_none());
                assert_eq!(request.headers()["content-type"], "application/json");
                let body = request.into_body().collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push(body);
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    br#"{"token":"t"}"#,
                ))))
            }
        })
    };
    let source = Ibsso::builder(base(), "user", "p\"w")
        .bind_to_client_ip(false)
        .build(transport)
        .unwrap();
    source.credential().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"username": "user", "password": "p\"w", "unsafe": true})
    );
}

#[test]
fn builder_rejects_bad_credentials() {
    let transport = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    for (user, pass) in [("", "p"), ("u", ""), ("u\n", "p"), ("u", "p\0")] {
        let error = Ibsso::builder(base(), user, pass)
            .build(transport)
            .unwrap_err();
        assert!(
            error.kind() == ErrorKind::InvalidCredential,
            "{user:?}/{pass:?}"
        );
    }
}

/// Outside any tokio runtime a session source cannot log in: the request
/// gets a typed error saying so, where it used to panic.
#[test]
fn outside_a_tokio_runtime_a_login_is_a_typed_error_not_a_panic() {
    use futures_util::FutureExt;

    let transport = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            br#"{"token":"t"}"#,
        ))))
    });
    let source = Ibsso::builder(base(), "user", "pass")
        .build(transport)
        .unwrap();
    let error = source
        .credential()
        .now_or_never()
        .expect("answered at once")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Source);
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}
