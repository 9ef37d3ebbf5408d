#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{
    AuthError, AuthLayer, AuthService, CredentialSource, Ibsso, IbssoBuilder, ReplayBody,
};
use tower::{Service, ServiceExt};

pub type HyperClient<B = Full<Bytes>> = Client<HttpConnector, B>;

pub fn hyper_client() -> HyperClient {
    hyper_client_for()
}

pub fn hyper_client_for<B>() -> HyperClient<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<infobip_auth::BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

/// A streaming body, made replayable by the opt-in wrapper.
pub type StreamingBody =
    ReplayBody<http_body_util::combinators::BoxBody<Bytes, infobip_auth::BoxError>>;

/// A body that yields `chunks` one at a time, with no size hint, wrapped
/// so that a renewing source can replay it.
pub fn streaming(chunks: Vec<Bytes>) -> StreamingBody {
    use futures_util::StreamExt;
    let frames = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::task::yield_now().await;
        Ok(http_body::Frame::data(chunk))
    });
    ReplayBody::new(BodyExt::boxed(http_body_util::StreamBody::new(frames)))
}

/// A session builder for the fake server's account.
pub fn ibsso_builder(fake: &FakeInfobip) -> IbssoBuilder {
    Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
}

pub fn ibsso(fake: &FakeInfobip, client: &HyperClient) -> Ibsso {
    ibsso_builder(fake).build(client.clone()).unwrap()
}

/// Moves tokio's clock (shared with the fake server) forward by `by`.
pub async fn advance_clock(by: std::time::Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

pub fn authed<C: CredentialSource + Clone>(
    fake: &FakeInfobip,
    source: C,
) -> AuthService<HyperClient, C> {
    tower::Layer::layer(&AuthLayer::new(fake.base_url(), source), hyper_client())
}

pub fn sms(body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post("/sms/2/text/advanced")
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

pub async fn send<S, B>(service: &S, request: Request<B>) -> Result<(StatusCode, Bytes), AuthError>
where
    S: Service<Request<B>, Response = Response<Incoming>, Error = AuthError> + Clone,
{
    let response = service.clone().oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body))
}
