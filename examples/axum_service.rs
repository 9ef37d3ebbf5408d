//! An axum server whose handler calls Infobip through an authenticated
//! client kept in the application state. The server and the fake Infobip
//! both run on 127.0.0.1; the example sends one request to the server and
//! exits.
//!
//! ```text
//! cargo run --example axum_service
//! ```

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{AuthLayer, AuthService, BoxError, Ibsso};
use tower::{Layer, ServiceExt};

/// The authenticated Infobip client every handler shares. Cloning it is
/// cheap, and all clones share the connection pool and the session.
type Infobip = AuthService<Client<HttpConnector, Full<Bytes>>, Ibsso>;

async fn notify(State(infobip): State<Infobip>, text: String) -> (StatusCode, String) {
    let sms = serde_json::json!({
        "messages": [{"destinations": [{"to": "41793026727"}], "text": text}]
    });
    let request = Request::post("/sms/2/text/advanced")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(sms.to_string())))
        .expect("a valid request");
    match infobip.oneshot(request).await {
        Ok(response) if response.status().is_success() => {
            (StatusCode::ACCEPTED, "sent\n".to_owned())
        }
        Ok(response) => (
            StatusCode::BAD_GATEWAY,
            format!("Infobip answered {}\n", response.status()),
        ),
        // The error says what failed without any credential in it.
        Err(error) => (StatusCode::BAD_GATEWAY, format!("{error}\n")),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let session = Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .build(client.clone())?;
    let infobip: Infobip = AuthLayer::new(fake.base_url(), session).layer(client);

    let app = Router::new()
        .route("/notify", post(notify))
        .with_state(infobip);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A caller of our own service.
    let caller: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = caller
        .request(
            Request::post(format!("http://{addr}/notify"))
                .body(Full::new(Bytes::from_static(b"Your order has shipped")))?,
        )
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    print!(
        "POST /notify -> {status} {}",
        String::from_utf8_lossy(&body)
    );
    println!(
        "Infobip accepted {} request(s), logins {}",
        fake.accepted(),
        fake.logins()
    );
    if status != StatusCode::ACCEPTED || fake.accepted() != 1 {
        return Err("the handler did not reach Infobip".into());
    }
    Ok(())
}
