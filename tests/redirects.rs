//! Redirects to another origin never carry credentials, whichever way
//! tower-http's `FollowRedirectLayer` and `AuthLayer` are stacked, and a
//! login or token request answered with a redirect is refused, whatever
//! the client's redirect policy.

mod common;

use bytes::Bytes;
use common::{authed, hyper_client, ibsso, send, sms};
use http::{Request, StatusCode};
use http_body_util::Full;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthError, AuthLayer, ErrorKind, OAuth2, ResolvePathsLayer};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

fn get(uri: http::Uri) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

async fn two_origins() -> (FakeInfobip, FakeInfobip) {
    let infobip = FakeInfobip::start().await.unwrap();
    let elsewhere = FakeInfobip::start().await.unwrap();
    let target = elsewhere.uri("/landing").to_string();
    infobip.redirect("/sms/1/reports", &target);
    (infobip, elsewhere)
}

#[tokio::test]
async fn follow_redirect_outside_auth_layer_scopes_every_hop() {
    let (infobip, elsewhere) = two_origins().await;
    let service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(AuthLayer::new(
            infobip.base_url(),
            ApiKey::new(FakeInfobip::API_KEY).unwrap(),
        ))
        .service(hyper_client());
    let response = service
        .oneshot(get(infobip.uri("/sms/1/reports")))
        .await
        .unwrap();
    // The other origin rejects the unauthenticated request: it got none.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(infobip.authorizations().len(), 1);
    assert!(
        infobip.authorizations()[0].is_some(),
        "the first hop is stamped"
    );
    assert_eq!(elsewhere.authorizations(), vec![None]);
}

#[tokio::test]
async fn auth_layer_outside_follow_redirect_leaks_nothing_either() {
    let (infobip, elsewhere) = two_origins().await;
    let service = ServiceBuilder::new()
        .layer(AuthLayer::new(
            infobip.base_url(),
            ApiKey::new(FakeInfobip::API_KEY).unwrap(),
        ))
        .layer(FollowRedirectLayer::new())
        .service(hyper_client());
    let response = service
        .oneshot(get(infobip.uri("/sms/1/reports")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        infobip.authorizations()[0].is_some(),
        "the first hop is stamped"
    );
    // tower-http's standard policy drops Authorization across origins.
    assert_eq!(elsewhere.authorizations(), vec![None]);
}

/// Sends a path-only URI (`/sms/1/reports`), as the README writes
/// requests, through `ResolvePathsLayer` (outermost) and `stack`: the
/// redirect is followed, and credentials still stay on their origin.
async fn path_only_redirect_is_followed<S>(infobip: &FakeInfobip, elsewhere: &FakeInfobip, stack: S)
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: std::fmt::Debug,
{
    let service = ServiceBuilder::new()
        .layer(ResolvePathsLayer::new(infobip.base_url()))
        .service(stack);
    let response = service
        .oneshot(get(http::Uri::from_static("/sms/1/reports")))
        .await
        .unwrap();
    assert_ne!(
        response.status(),
        StatusCode::TEMPORARY_REDIRECT,
        "followed"
    );
    assert!(
        infobip.authorizations()[0].is_some(),
        "the first hop is stamped"
    );
    assert_eq!(elsewhere.authorizations(), vec![None], "reached, unstamped");
}

#[tokio::test]
async fn path_only_uri_is_followed_with_follow_redirect_outside() {
    let (infobip, elsewhere) = two_origins().await;
    let stack = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(AuthLayer::new(
            infobip.base_url(),
            ApiKey::new(FakeInfobip::API_KEY).unwrap(),
        ))
        .service(hyper_client());
    path_only_redirect_is_followed(&infobip, &elsewhere, stack).await;
}

#[tokio::test]
async fn path_only_uri_is_followed_with_follow_redirect_inside() {
    let (infobip, elsewhere) = two_origins().await;
    let stack = ServiceBuilder::new()
        .layer(AuthLayer::new(
            infobip.base_url(),
            ApiKey::new(FakeInfobip::API_KEY).unwrap(),
        ))
        .layer(FollowRedirectLayer::new())
        .service(hyper_client());
    path_only_redirect_is_followed(&infobip, &elsewhere, stack).await;
}

/// A fake Infobip whose `path` answers `307` to the same path on another
/// fake origin, which must never hear from us.
async fn credential_call_redirected(path: &str) -> (FakeInfobip, FakeInfobip) {
    let infobip = FakeInfobip::start().await.unwrap();
    let elsewhere = FakeInfobip::start().await.unwrap();
    infobip.redirect(path, &elsewhere.uri(path).to_string());
    (infobip, elsewhere)
}

/// An OAuth 2.0 source for the fake's account, fetching tokens through
/// `client`.
fn oauth2<T, RB>(infobip: &FakeInfobip, client: T) -> OAuth2
where
    T: infobip_auth::HttpClient<RB>,
    RB: From<Bytes> + Send + 'static,
{
    OAuth2::builder(
        infobip.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .build(client)
    .unwrap()
}

fn assert_refused_and_kept_home(
    result: Result<(StatusCode, Bytes), AuthError>,
    elsewhere: &FakeInfobip,
) {
    let error = result.expect_err("a redirected login is an error");
    assert_eq!(error.kind(), ErrorKind::Redirected, "{error}");
    assert_eq!(elsewhere.logins(), 0, "no login elsewhere");
    assert_eq!(elsewhere.connections(), 0, "the other origin heard nothing");
}

#[tokio::test]
async fn a_session_login_redirected_elsewhere_is_refused_through_hyper_util() {
    let (infobip, elsewhere) = credential_call_redirected("/auth/1/session").await;
    let client = hyper_client();
    let service = authed(&infobip, ibsso(&infobip, &client));
    assert_refused_and_kept_home(send(&service, sms("{}")).await, &elsewhere);
    assert_eq!(
        infobip.accepted(),
        0,
        "nothing was sent without credentials"
    );
}

/// tower-http's `FollowRedirect` around the login client: the login is a
/// body it cannot clone, so the 307 comes back and is refused.
#[tokio::test]
async fn a_session_login_redirected_elsewhere_is_refused_through_follow_redirect() {
    let (infobip, elsewhere) = credential_call_redirected("/auth/1/session").await;
    let client = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .service(hyper_client());
    let source = common::ibsso_builder(&infobip).build(client).unwrap();
    let service = authed(&infobip, source);
    assert_refused_and_kept_home(send(&service, sms("{}")).await, &elsewhere);
}

#[tokio::test]
async fn a_token_request_redirected_elsewhere_is_refused_through_hyper_util() {
    let (infobip, elsewhere) = credential_call_redirected("/auth/1/oauth2/token").await;
    let source = oauth2(&infobip, hyper_client());
    let service = authed(&infobip, source);
    assert_refused_and_kept_home(send(&service, sms("{}")).await, &elsewhere);
}

/// reqwest's default policy follows a 307 and sends the body again when
/// it can clone it: the crate's client hands it one it cannot.
#[cfg(feature = "reqwest")]
mod through_reqwest {
    use super::*;
    use infobip_auth::reqwest::ReqwestClient;

    fn client() -> ReqwestClient<Bytes> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // reqwest's default redirect policy: up to 10 hops.
        ReqwestClient::new(reqwest::Client::new())
    }

    #[tokio::test]
    async fn a_session_login_redirected_elsewhere_is_refused() {
        let (infobip, elsewhere) = credential_call_redirected("/auth/1/session").await;
        let source = common::ibsso_builder(&infobip).build(client()).unwrap();
        let service = authed(&infobip, source);
        assert_refused_and_kept_home(send(&service, sms("{}")).await, &elsewhere);
    }

    #[tokio::test]
    async fn a_token_request_redirected_elsewhere_is_refused() {
        let (infobip, elsewhere) = credential_call_redirected("/auth/1/oauth2/token").await;
        let source = oauth2(&infobip, client());
        let service = authed(&infobip, source);
        assert_refused_and_kept_home(send(&service, sms("{}")).await, &elsewhere);
    }
}
