//! `AuthMiddleware` in a reqwest-middleware chain: an IBSSO session against
//! the built-in fake Infobip server, revoked midway; the request is
//! replayed once, transparently.
//!
//! ```text
//! cargo run --example reqwest_middleware --features reqwest-middleware,test-util
//! ```

use bytes::Bytes;
use infobip_auth::reqwest::{AuthMiddleware, ReqwestClient};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{BoxError, Ibsso};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // This build of reqwest has rustls without a provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeInfobip::start().await?;
    let base = fake.base_url();

    let http = reqwest::Client::new();
    // The session logs in through the plain client, below the middleware.
    let session = Ibsso::builder(base.clone(), FakeInfobip::USERNAME, FakeInfobip::PASSWORD)
        .build(ReqwestClient::<Bytes>::new(http.clone()))?;
    let client = reqwest_middleware::ClientBuilder::new(http)
        .with(AuthMiddleware::new(base.clone(), session.clone()))
        .build();

    let url = base.join("/sms/2/text/advanced")?.to_string();
    let send = || client.post(&url).body(r#"{"messages":[]}"#).send();
    let first = send().await?;
    fake.revoke_sessions();
    let second = send().await?;
    let stats = session.stats();
    println!(
        "IBSSO  {} then, after a revocation, {} (logins {}, replays {})",
        first.status(),
        second.status(),
        stats.logins,
        stats.replays
    );
    if !(first.status().is_success() && second.status().is_success() && stats.replays == 1) {
        return Err("a request did not succeed".into());
    }
    Ok(())
}
