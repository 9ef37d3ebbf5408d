//! Redirects to another origin never carry credentials, whichever way
//! tower-http's `FollowRedirectLayer` and `AuthLayer` are stacked.

mod common;

use bytes::Bytes;
use common::hyper_client;
use http::{Request, StatusCode};
use http_body_util::Full;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, ResolvePathsLayer};
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
