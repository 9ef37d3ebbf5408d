//! HTTPS end to end: FakeInfobip serves a certificate made at test time, and
//! a hyper-rustls client that trusts only that certificate runs the IBSSO
//! flow, renewal included.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::ErrorKind;
use infobip_auth::{AuthLayer, BaseUrl};
use rustls::pki_types::CertificateDer;
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn ibsso_over_https_renews_and_replays() {
    let fake = FakeInfobip::start_tls().await.unwrap();
    assert!(fake.base_url().is_https());

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            fake.tls_certificate_der().unwrap().to_vec(),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);

    let session = common::ibsso_builder(&fake).build(client.clone()).unwrap();
    let service = AuthLayer::new(fake.base_url(), session.clone()).layer(client);
    let send = |n: u8| {
        let request = Request::post("/sms/2/text/advanced")
            .body(Full::new(Bytes::from(vec![n; 16])))
            .unwrap();
        service.clone().oneshot(request)
    };

    assert_eq!(send(1).await.unwrap().status(), StatusCode::OK);
    fake.revoke_sessions();
    let response = send(2).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_ok());

    assert_eq!(fake.logins(), 2, "renewed once over HTTPS");
    assert_eq!(session.stats().replays, 1);
    let bodies: Vec<_> = fake
        .accepted_requests()
        .into_iter()
        .map(|a| a.body)
        .collect();
    assert_eq!(
        bodies,
        vec![Bytes::from(vec![1; 16]), Bytes::from(vec![2; 16])]
    );
    session.logout().await.unwrap();
    assert_eq!(fake.logouts(), 1);
}

#[tokio::test]
async fn plain_http_client_cannot_talk_to_the_https_server() {
    let fake = FakeInfobip::start_tls().await.unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let plain = format!("http://{}/sms/2/text/advanced", fake.addr());
    let result = client
        .request(Request::post(plain).body(Full::new(Bytes::new())).unwrap())
        .await;
    assert!(result.is_err() || result.unwrap().status() != StatusCode::OK);
    assert_eq!(fake.accepted(), 0);
}

#[test]
fn http_to_a_non_loopback_host_is_refused_with_a_clear_error() {
    for url in [
        "http://api.infobip.com",
        "http://10.0.0.1:8080",
        "http://xyz.api.infobip.com/",
    ] {
        for parsed in [BaseUrl::new(url), BaseUrl::insecure_loopback(url)] {
            let error = parsed.unwrap_err();
            assert!(error.kind() == ErrorKind::InvalidBaseUrl);
            assert!(error.to_string().contains("https"), "{error}");
        }
    }
}
