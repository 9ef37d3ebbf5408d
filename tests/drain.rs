//! A 401's body is read before its request is replayed, within a byte bound
//! and a time bound: a server that stalls or sends empty frames for ever
//! cannot hold the request.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use infobip_auth::{AuthLayer, BaseUrl, BoxError, Ibsso};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_test::mock;

type Req = Request<Empty<Bytes>>;
type Body = BoxBody<Bytes, BoxError>;

/// A session whose every login succeeds at once, with a new token.
fn session() -> Ibsso {
    let logins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let transport = service_fn(move |_: Request<Full<Bytes>>| {
        let n = logins.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        async move {
            let body = format!(r#"{{"token":"token-{n}"}}"#);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    });
    Ibsso::builder(
        BaseUrl::new("https://api.infobip.com").unwrap(),
        "user",
        "pw",
    )
    .build(transport)
    .unwrap()
}

fn unauthorized(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}

/// The first attempt is answered 401 with `body`; the replay must still
/// arrive, with the renewed session, and be answered.
async fn replayed_despite(body: Body) {
    let (inner, mut handle) = mock::pair::<Req, Response<Body>>();
    let mut auth =
        AuthLayer::new(BaseUrl::new("https://api.infobip.com").unwrap(), session()).layer(inner);
    handle.allow(2);
    auth.ready().await.unwrap();
    let request = Request::get("/sms/1/reports").body(Empty::new()).unwrap();
    let response = tokio::spawn(auth.call(request));
    let (first, send) = handle.next_request().await.unwrap();
    assert_eq!(first.headers()["authorization"], "IBSSO token-1");
    send.send_response(unauthorized(body));

    let replay = tokio::time::timeout(Duration::from_secs(60), handle.next_request())
        .await
        .expect("the replay is sent although the 401's body never ends");
    let (replay, send) = replay.unwrap();
    assert_eq!(replay.headers()["authorization"], "IBSSO token-2");
    send.send_response(Response::new(Empty::new().map_err(|e| match e {}).boxed()));
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_401_body_that_stalls_is_given_up_after_the_time_bound() {
    let stalled = StreamBody::new(stream::pending::<Result<Frame<Bytes>, BoxError>>());
    replayed_despite(stalled.boxed()).await;
}

#[tokio::test(start_paused = true)]
async fn a_401_body_of_endless_empty_frames_is_given_up() {
    let empty = stream::repeat_with(|| Ok::<_, BoxError>(Frame::data(Bytes::new())));
    replayed_despite(StreamBody::new(empty).boxed()).await;
}
