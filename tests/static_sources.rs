//! App and Basic against a real HTTP server on 127.0.0.1.

mod common;

use bytes::Bytes;
use common::{authed, send, sms};
use http::{Request, StatusCode};
use http_body_util::Full;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, Basic};

#[tokio::test]
async fn app_key_reaches_server_byte_exact() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = authed(&fake, ApiKey::new(FakeInfobip::API_KEY).unwrap());
    let (status, _) = send(&client, sms("{}")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let seen = fake.authorizations();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].as_ref().unwrap().as_bytes(), b"App test-api-key");
    assert_eq!(fake.accepted_requests()[0].body, Bytes::from_static(b"{}"));
}

#[tokio::test]
async fn basic_reaches_server_byte_exact() {
    let fake = FakeInfobip::start().await.unwrap();
    let basic = Basic::new(FakeInfobip::USERNAME, FakeInfobip::PASSWORD).unwrap();
    let client = authed(&fake, basic);
    let (status, _) = send(&client, sms("{}")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    // base64("test-user:test-password")
    assert_eq!(
        fake.authorizations()[0].as_ref().unwrap().as_bytes(),
        b"Basic dGVzdC11c2VyOnRlc3QtcGFzc3dvcmQ="
    );
}

#[tokio::test]
async fn other_origin_receives_no_credentials() {
    let fake = FakeInfobip::start().await.unwrap();
    let other = FakeInfobip::start().await.unwrap();
    assert_ne!(fake.addr().port(), other.addr().port());
    let client = authed(&fake, ApiKey::new(FakeInfobip::API_KEY).unwrap());

    let request = Request::post(other.uri("/sms/2/text/advanced"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, _) = send(&client, request).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(other.authorizations(), vec![None]);

    // Same host, same port, but the configured origin: stamped.
    let request = Request::post(fake.uri("/sms/2/text/advanced"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(send(&client, request).await.unwrap().0, StatusCode::OK);
    assert!(fake.authorizations()[0].is_some());
}

#[tokio::test]
async fn wrong_api_key_gets_the_servers_401_untouched() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = authed(&fake, ApiKey::new("revoked-key").unwrap());
    let (status, body) = send(&client, sms("{}")).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(std::str::from_utf8(&body).unwrap().contains("UNAUTHORIZED"));
    assert_eq!(fake.logins(), 0);
}

#[tokio::test]
async fn request_without_room_for_authorization_fails_typed_and_is_not_sent() {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http::header::{HeaderName, HeaderValue};
    use http::Response;
    use infobip_auth::{AuthLayer, BaseUrl, ErrorKind};
    use tower::{service_fn, Layer, Service, ServiceExt};

    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let inner = service_fn(move |_: Request<Full<Bytes>>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(String::new())) }
    });
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service = AuthLayer::new(base, ApiKey::new("key").unwrap()).layer(inner);

    // Fill the header map to the most fields it can hold.
    let mut request = Request::post("https://api.infobip.com/sms/2/text/advanced")
        .body(Full::default())
        .unwrap();
    let mut n = 0;
    while request
        .headers_mut()
        .try_append(
            HeaderName::try_from(format!("x-h{n}")).unwrap(),
            HeaderValue::from_static("v"),
        )
        .is_ok()
    {
        n += 1;
    }
    let error = service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Request, "{error}");
    assert_eq!(sent.load(Ordering::SeqCst), 0, "nothing was sent");
}
