//! `AuthLayer` over a `reqwest::Client`: an API key, then an IBSSO session
//! that logs in through the same client, against the built-in fake Infobip
//! server. The session is revoked midway; the request is replayed.
//!
//! ```text
//! cargo run --example reqwest_client --features reqwest,test-util
//! ```

use bytes::Bytes;
use http::Request;
use infobip_auth::reqwest::ReqwestClient;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, BoxError, Ibsso};
use tower::{Layer, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // This build of reqwest has rustls without a provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeInfobip::start().await?;
    let base = fake.base_url();

    // The client the application already has; requests carry `Bytes`.
    let client: ReqwestClient<Bytes> = ReqwestClient::new(reqwest::Client::new());
    let sms = || {
        Request::post("/sms/2/text/advanced")
            .header("content-type", "application/json")
            .body(Bytes::from_static(br#"{"messages":[]}"#))
    };

    let with_key =
        AuthLayer::new(base.clone(), ApiKey::new(FakeInfobip::API_KEY)?).layer(client.clone());
    let response = with_key.oneshot(sms()?).await?;
    println!("App    {}", response.status());

    let session = Ibsso::builder(base.clone(), FakeInfobip::USERNAME, FakeInfobip::PASSWORD)
        .build(client.clone())?;
    let with_session = AuthLayer::new(base, session.clone()).layer(client);
    let first = with_session.clone().oneshot(sms()?).await?;
    fake.revoke_sessions();
    let second = with_session.oneshot(sms()?).await?;
    let stats = session.stats();
    println!(
        "IBSSO  {} then, after a revocation, {} (logins {}, replays {})",
        first.status(),
        second.status(),
        stats.logins,
        stats.replays
    );
    if !(response.status().is_success() && second.status().is_success() && stats.replays == 1) {
        return Err("a request did not succeed".into());
    }
    Ok(())
}
