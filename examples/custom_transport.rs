//! `AuthLayer` over a transport written by hand, without hyper: the minimum
//! a transport must provide is a `tower::Service` that takes
//! `http::Request<B>` (the caller's own body type), sends the head and every body frame, and
//! answers with an `http::Response`. This one speaks just enough HTTP/1.1
//! over a TCP socket (one request per connection) to reach the built-in fake
//! Infobip server.
//!
//! ```text
//! cargo run --example custom_transport
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, BoxError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::{Layer, Service, ServiceExt};

/// Sends each request on a fresh TCP connection.
#[derive(Clone, Debug)]
struct RawHttp;

impl Service<Request<Full<Bytes>>> for RawHttp {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let authority = parts
                .uri
                .authority()
                .ok_or("absolute URI expected")?
                .clone();
            let mut head = format!(
                "{} {} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
                parts.method,
                parts.uri.path_and_query().map_or("/", |p| p.as_str()),
                body.len()
            );
            for (name, value) in &parts.headers {
                head.push_str(&format!("{name}: {}\r\n", value.to_str()?));
            }
            head.push_str("\r\n");
            let mut socket = TcpStream::connect(authority.as_str()).await?;
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
            let mut raw = Vec::new();
            socket.read_to_end(&mut raw).await?;

            let text = String::from_utf8_lossy(&raw);
            let (head, body) = text.split_once("\r\n\r\n").ok_or("malformed response")?;
            let code: u16 = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
            let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
            *response.status_mut() = StatusCode::from_u16(code)?;
            Ok(response)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let fake = FakeInfobip::start().await?;
    let service =
        AuthLayer::new(fake.base_url(), ApiKey::new(FakeInfobip::API_KEY)?).layer(RawHttp);
    let request = Request::post("/sms/2/text/advanced")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"messages\":[]}")))?;
    let response = service.oneshot(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "{status} {} (the server saw an Authorization header: {})",
        String::from_utf8_lossy(&body),
        fake.authorizations()[0].is_some()
    );
    if status != StatusCode::OK {
        return Err("the fake server did not accept the request".into());
    }
    Ok(())
}
