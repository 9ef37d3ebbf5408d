//! Runs App, Basic and IBSSO against the built-in fake Infobip server on
//! 127.0.0.1, revokes the session midway, and prints what happened.
//!
//! ```text
//! cargo run --example demo
//! ```

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, Basic, BoxError, Ibsso};
use tower::{Service, ServiceBuilder, ServiceExt};

const REQUESTS: usize = 50;

fn sms(n: usize) -> Request<Full<Bytes>> {
    let body = format!(
        r#"{{"messages":[{{"destinations":[{{"to":"41793026727"}}],"text":"demo {n}"}}]}}"#
    );
    Request::post("/sms/2/text/advanced")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

/// Sends `REQUESTS` requests, half of them before `midway` runs and half
/// concurrently after it; returns how many succeeded.
async fn run<S>(service: S, midway: impl FnOnce()) -> Result<usize, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    let mut ok = 0;
    for n in 0..REQUESTS / 2 {
        let response = service.clone().oneshot(sms(n)).await.map_err(Into::into)?;
        ok += usize::from(response.status() == StatusCode::OK);
    }
    midway();
    let batch = (REQUESTS / 2..REQUESTS).map(|n| service.clone().oneshot(sms(n)));
    for response in futures_util::future::join_all(batch).await {
        let response = response.map_err(Into::into)?;
        ok += usize::from(response.status() == StatusCode::OK);
    }
    Ok(ok)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let base = fake.base_url();
    println!("fake Infobip listening on {base}");

    // One client for every method: adding `AuthLayer` leaves its type as it
    // is, `Client<_, Full<Bytes>>`, whichever source stamps the requests.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

    // App: the recommended method.
    let app = ServiceBuilder::new()
        .layer(AuthLayer::new(
            base.clone(),
            ApiKey::new(FakeInfobip::API_KEY)?,
        ))
        .service(client.clone());
    let ok = run(app, || {}).await?;
    println!("App    {ok}/{REQUESTS} requests succeeded");

    // Basic: username and password on every request.
    let basic = Basic::new(FakeInfobip::USERNAME, FakeInfobip::PASSWORD)?;
    let basic = ServiceBuilder::new()
        .layer(AuthLayer::new(base.clone(), basic))
        .service(client.clone());
    let ok = run(basic, || {}).await?;
    println!("Basic  {ok}/{REQUESTS} requests succeeded");

    // IBSSO: logs in through the same client, renews on 401, replays.
    let session = Ibsso::builder(base.clone(), FakeInfobip::USERNAME, FakeInfobip::PASSWORD)
        .build(client.clone())?;
    let ibsso = ServiceBuilder::new()
        .layer(AuthLayer::new(base, session.clone()))
        .service(client);
    let logins_before = fake.logins();
    let ok = run(ibsso, || {
        println!("IBSSO  server revokes every session now");
        fake.revoke_sessions();
    })
    .await?;
    let stats = session.stats();
    println!(
        "IBSSO  {ok}/{REQUESTS} requests succeeded; logins {}, 401s renewed {}, requests replayed {}",
        fake.logins() - logins_before,
        stats.renewals,
        stats.replays
    );
    session.logout().await?;
    println!("IBSSO  logged out ({} session(s) ended)", fake.logouts());

    let total = fake.accepted();
    println!(
        "server accepted {total} requests, rejected {}",
        fake.rejected()
    );
    if total != 3 * REQUESTS || stats.replays == 0 {
        return Err("not every request succeeded".into());
    }
    println!("all {} requests succeeded", 3 * REQUESTS);
    Ok(())
}
