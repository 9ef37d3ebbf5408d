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

/// A streaming body no source could replay (not a `ReplayBody`).
type Stream = http_body_util::combinators::BoxBody<Bytes, infobip_auth::BoxError>;

fn stream(chunks: &[&'static [u8]]) -> Stream {
    use http_body_util::BodyExt;
    let frames = chunks
        .iter()
        .map(|c| Ok::<_, infobip_auth::BoxError>(http_body::Frame::data(Bytes::from_static(c))))
        .collect::<Vec<_>>();
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// Static sources in a box keep their kind: a box of them takes any body,
/// streaming ones included, with no wrapper.
#[tokio::test]
async fn a_boxed_static_source_accepts_any_body() {
    use infobip_auth::{AuthLayer, BoxCredentialSource, Static};
    use tower::{Layer, ServiceExt};
    let fake = FakeInfobip::start().await.unwrap();
    let source: BoxCredentialSource<Static> =
        BoxCredentialSource::new(ApiKey::new(FakeInfobip::API_KEY).unwrap());
    let client = common::hyper_client_for::<Stream>();
    let service = AuthLayer::new(fake.base_url(), source).layer(client);
    let request = Request::post("/sms/2/text/advanced")
        .body(stream(&[b"{", b"}"]))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.accepted_requests()[0].body, Bytes::from_static(b"{}"));
}

/// Accounts of static sources take any body too.
#[cfg(feature = "accounts")]
#[tokio::test]
async fn accounts_of_static_sources_accept_any_body() {
    use infobip_auth::accounts::{Account, AccountsLayer};
    use infobip_auth::{AuthError, Static};
    use tower::{Layer, ServiceExt};
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    struct Customer;
    let fake = FakeInfobip::start().await.unwrap();
    let base = fake.base_url();
    let resolver = move |_: Customer| {
        let base = base.clone();
        async move {
            let key = ApiKey::new(FakeInfobip::API_KEY)?;
            Ok::<Account<Static>, AuthError>(Account::new(base, key))
        }
    };
    let service = AccountsLayer::new(resolver).layer(common::hyper_client_for::<Stream>());
    let mut request = Request::post("/sms/2/text/advanced")
        .body(stream(&[b"[", b"]"]))
        .unwrap();
    request.extensions_mut().insert(Customer);
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.accepted_requests()[0].body, Bytes::from_static(b"[]"));
}
