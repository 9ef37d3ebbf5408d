//! A credential source of your own: the API key lives in a file (or the
//! `INFOBIP_API_KEY` environment variable), and a background task rotates
//! it into every clone of the stack when the file changes, through
//! [`Rotating`].
//!
//! ```text
//! cargo run --example custom_source
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthError, AuthLayer, BoxError, Rotating};
use tower::{Layer, ServiceExt};

/// Reads the key from the environment, or else from `path`.
fn read_key(path: &PathBuf) -> Result<ApiKey, AuthError> {
    let text = match std::env::var("INFOBIP_API_KEY") {
        Ok(key) => key,
        Err(_) => std::fs::read_to_string(path).map_err(|e| {
            AuthError::source_failed("cannot read the API key file", Some(e.into()))
        })?,
    };
    ApiKey::new(text.trim())
}

/// Re-reads the key file every `every`, rotating when it changed. A file
/// that is briefly unreadable or holds a malformed key keeps the last good
/// key in use.
fn watch(path: PathBuf, key: &Rotating, every: Duration) {
    let handle = key.clone();
    tokio::spawn(async move {
        let mut last = std::fs::read_to_string(&path).ok();
        loop {
            tokio::time::sleep(every).await;
            let now = std::fs::read_to_string(&path).ok();
            if now.is_some() && now != last {
                match read_key(&path) {
                    Ok(next) => {
                        handle.rotate(next);
                        println!("key file changed: rotated");
                    }
                    Err(error) => println!("key file changed but unusable: {error}"),
                }
                last = now;
            }
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    fake.add_api_key("second-key");
    let path = std::env::temp_dir().join(format!("infobip-key-{}", std::process::id()));
    std::fs::write(&path, FakeInfobip::API_KEY)?;

    let key = Rotating::new(read_key(&path)?);
    watch(path.clone(), &key, Duration::from_millis(20));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let infobip = AuthLayer::new(fake.base_url(), key).layer(client);
    let send = || {
        let request = Request::post("/sms/2/text/advanced")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("a valid request");
        infobip.clone().oneshot(request)
    };

    println!("first request: {}", send().await?.status());
    std::fs::write(&path, "second-key\n")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("after rotation: {}", send().await?.status());
    let _ = std::fs::remove_file(&path);

    let seen: Vec<_> = fake
        .authorizations()
        .iter()
        .map(|v| {
            v.as_ref()
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        })
        .collect();
    let expected = [
        Some(format!("App {}", FakeInfobip::API_KEY)),
        Some("App second-key".to_owned()),
    ];
    if seen != expected || fake.accepted() != 2 {
        return Err("the rotated key was not used".into());
    }
    println!("the server saw the first key, then the rotated one");
    Ok(())
}
