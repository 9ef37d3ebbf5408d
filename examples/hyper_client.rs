//! A production-shaped client stack: hyper-util's pooled client, tower-http
//! tracing, a timeout, and `AuthLayer`, sending one SMS request to the
//! built-in fake Infobip server.
//!
//! ```text
//! cargo run --example hyper_client
//! ```
//!
//! The timeout is tower's `TimeoutLayer`: tower-http's answers a timed-out
//! request with a synthesised 408 response, which suits servers; a client
//! wants the error.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, BoxError};
use tower::timeout::TimeoutLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();
    let fake = FakeInfobip::start().await?;

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let infobip = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::new(Duration::from_secs(10)))
        .layer(AuthLayer::new(
            fake.base_url(),
            ApiKey::new(FakeInfobip::API_KEY)?,
        ))
        .service(client);

    let sms =
        r#"{"messages":[{"destinations":[{"to":"41793026727"}],"from":"InfoSMS","text":"Hello"}]}"#;
    let request = Request::post("/sms/2/text/advanced")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(sms.as_bytes())))?;
    let response = infobip.oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("{status} {}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Err(format!("unexpected status {status}").into());
    }
    Ok(())
}
