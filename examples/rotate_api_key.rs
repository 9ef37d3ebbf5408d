//! Rotating the API key a service sends with, without a restart: an admin
//! stack (Basic) manages keys, the service's stack sends with a `Rotating`
//! source, and a `KeyRotator` creates the next key, switches every clone of
//! the stack to it, and disables the old key after a grace period. Runs
//! offline, against the built-in fake Infobip server.
//!
//! ```text
//! cargo run --example rotate_api_key --features api-keys,test-util
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::keys::{ApiKeys, KeyRotator, NewApiKey};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, Basic, BoxError, Rotating};
use tower::{Layer, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let base = fake.base_url();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

    // Keys are managed with Basic (or a session or OAuth2 token), never
    // with a key.
    let admin_credential = Basic::new(FakeInfobip::USERNAME, FakeInfobip::PASSWORD)?;
    let admin = AuthLayer::new(base.clone(), admin_credential).layer(client.clone());
    let keys = ApiKeys::new(base.clone(), admin);

    let template = NewApiKey::new("sms-service").permissions(["PUBLIC_API"]);
    let first = keys.create(&template).await?;
    println!(
        "created key {} (its secret stays out of logs: {:?})",
        first.info.id, first.secret
    );

    // The service's stack sends with whatever key the source holds now.
    let source = Rotating::new(first.secret.api_key()?);
    let service = AuthLayer::new(base.clone(), source.clone()).layer(client);
    let send = |service: infobip_auth::AuthService<_, Rotating>| async move {
        let request = Request::post("/sms/2/text/advanced")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))?;
        Ok::<StatusCode, BoxError>(service.oneshot(request).await?.status())
    };
    println!(
        "request with the first key: {}",
        send(service.clone()).await?
    );

    let rotator = KeyRotator::new(
        keys.clone(),
        source.clone(),
        first.info.id.clone(),
        template,
    )
    .key_lifetime(Duration::from_secs(90 * 86_400))
    .grace_period(Duration::from_millis(200));
    let rotation = rotator.rotate().await?;
    println!(
        "rotated: {} -> {}, old key disabled after {} attempt(s)",
        rotation.old_key_id, rotation.new_key_id, rotation.disable_attempts
    );
    let status = send(service.clone()).await?;
    println!("request with the new key: {status}");

    // Anyone still holding the old secret is refused now.
    let old = AuthLayer::new(base, ApiKey::new(first.secret.expose())?)
        .layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let request =
        Request::post("/sms/2/text/advanced").body(Full::new(Bytes::from_static(b"{}")))?;
    let refused = old.oneshot(request).await?.status();
    println!("request with the old key: {refused}");

    for key in keys.list().await? {
        println!("key {} {:?} enabled={}", key.id, key.name, key.enabled);
    }
    if status != StatusCode::OK || refused != StatusCode::UNAUTHORIZED {
        return Err("expected the new key to work and the old one to be refused".into());
    }
    Ok(())
}
