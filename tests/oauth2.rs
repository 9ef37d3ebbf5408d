//! The OAuth 2.0 Bearer source against FakeInfobip's token endpoint.

mod common;

use std::time::Duration;

use common::{authed, hyper_client, send, sms, HyperClient};
use futures_util::future::join_all;
use http::StatusCode;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{CredentialSource, ErrorKind, OAuth2};
use tower::{Service, ServiceExt};

fn oauth(fake: &FakeInfobip, client: &HyperClient) -> OAuth2 {
    OAuth2::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .backoff(Duration::from_secs(1), Duration::from_secs(1))
    .build(client.clone())
    .unwrap()
}

fn bearer_of(fake: &FakeInfobip, n: usize) -> String {
    fake.authorizations()[n]
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// Lets background work (a refresh) run to completion on loopback.
async fn settle(fake: &FakeInfobip, logins: usize) {
    for _ in 0..200 {
        if fake.logins() >= logins {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// The fake server, and a source for its account on a client of its own.
async fn started() -> (FakeInfobip, OAuth2) {
    let fake = FakeInfobip::start().await.unwrap();
    let source = oauth(&fake, &hyper_client());
    (fake, source)
}

#[tokio::test]
async fn stamps_bearer_from_one_token_request_for_all_waiters() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let service = authed(&fake, oauth(&fake, &client));
    let results = join_all((0..50).map(|_| send(&service, sms("{}")))).await;
    assert!(results.iter().all(|r| matches!(r, Ok((StatusCode::OK, _)))));
    assert_eq!(
        fake.logins(),
        1,
        "one token request for 50 concurrent callers"
    );
    assert!(bearer_of(&fake, 0).starts_with("Bearer "));
}

#[tokio::test]
async fn wrong_secret_is_a_typed_error() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let source = OAuth2::builder(fake.base_url(), FakeInfobip::USERNAME, "nope")
        .build(client.clone())
        .unwrap();
    let error = source.credential().await.unwrap_err();
    assert!(error.kind() == ErrorKind::BadCredentials);
}

#[tokio::test]
async fn refreshes_before_expiry_without_making_anyone_wait() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_oauth_token_lifetime(Duration::from_secs(120));
    let client = hyper_client();
    let source = oauth(&fake, &client);
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    let first = bearer_of(&fake, 0);

    // 70 s later the token has 50 s left: inside the 60 s refresh margin.
    common::advance_clock(Duration::from_secs(70)).await;
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(bearer_of(&fake, 1), first, "served with the current token");
    settle(&fake, 2).await;
    assert_eq!(fake.logins(), 2, "refreshed in the background");
    assert_eq!(source.stats().refreshes, 1);

    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_ne!(
        bearer_of(&fake, 2),
        first,
        "the next request uses the new token"
    );
    assert_eq!(fake.rejected(), 0);
}

#[tokio::test]
async fn failed_refresh_keeps_the_valid_token_and_retries_after_backoff() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_oauth_token_lifetime(Duration::from_secs(120));
    let client = hyper_client();
    let source = oauth(&fake, &client);
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    let first = bearer_of(&fake, 0);

    fake.fail_next_logins(1, StatusCode::SERVICE_UNAVAILABLE);
    common::advance_clock(Duration::from_secs(70)).await;
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    settle(&fake, 2).await;
    assert_eq!(source.stats().failed_logins, 1);
    // Still within the backoff: the old token serves, no new attempt.
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(bearer_of(&fake, 2), first);
    assert_eq!(fake.logins(), 2);

    // After the backoff the refresh is tried again and succeeds.
    common::advance_clock(Duration::from_secs(2)).await;
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    settle(&fake, 3).await;
    assert_eq!(fake.logins(), 3);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_ne!(bearer_of(&fake, 4), first);
    assert_eq!(
        fake.rejected(),
        0,
        "no request ever carried an expired token"
    );
}

#[tokio::test]
async fn expired_token_is_replaced_before_sending() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_oauth_token_lifetime(Duration::from_secs(120));
    let client = hyper_client();
    let service = authed(&fake, oauth(&fake, &client));
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    common::advance_clock(Duration::from_secs(121)).await;
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 2);
    assert_eq!(fake.rejected(), 0);
}

#[tokio::test]
async fn revoked_token_renews_once_and_replays() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    fake.revoke_sessions();
    assert_eq!(
        send(&service, sms("{\"n\":2}")).await.unwrap().0,
        StatusCode::OK
    );
    assert_eq!(fake.logins(), 2);
    assert_eq!(source.stats().replays, 1);
    assert_eq!(fake.accepted_requests()[1].body, "{\"n\":2}");
}

/// As with IBSSO: a request readied before another's 401 and called after
/// it is sent once, with the new token.
#[tokio::test]
async fn request_readied_before_a_401_is_sent_once_with_the_new_token() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    let (mut first, mut second) = (service.clone(), service.clone());
    first.ready().await.unwrap();
    second.ready().await.unwrap();
    fake.revoke_sessions();

    let response = first.call(sms("{\"n\":1}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = second.call(sms("{\"n\":2}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        fake.rejected(),
        1,
        "only the first was sent with the old token"
    );
    assert_eq!(fake.logins(), 2);
    assert_eq!(source.stats().replays, 1);
    assert_eq!(bearer_of(&fake, 1), bearer_of(&fake, 2));
}

#[tokio::test]
async fn bad_credentials_back_off() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let source = OAuth2::builder(fake.base_url(), FakeInfobip::USERNAME, "nope")
        .backoff(Duration::from_secs(600), Duration::from_secs(600))
        .build(client.clone())
        .unwrap();
    let service = authed(&fake, source);
    assert!(send(&service, sms("{}")).await.unwrap_err().kind() == ErrorKind::BadCredentials);
    for _ in 0..20 {
        let error = send(&service, sms("{}")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BackingOff);
    }
    assert_eq!(fake.logins(), 1);
}

/// A token endpoint that says `expires_in` of 0, 1 or 2 seconds: the
/// lifetime is clamped, so 300 requests over 3 seconds cost one login, not
/// one each.
#[tokio::test(start_paused = true)]
async fn a_tiny_expires_in_never_makes_every_request_log_in() {
    for expires_in in [0u64, 1, 2] {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let transport = tower::service_fn(
            move |_: http::Request<http_body_util::Full<bytes::Bytes>>| {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    let body = format!(r#"{{"access_token":"t-{n}","expires_in":{expires_in}}}"#);
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                }
            },
        );
        let base = infobip_auth::BaseUrl::new("https://api.infobip.com").unwrap();
        let source = OAuth2::builder(base, "id", "secret")
            .build(transport)
            .unwrap();
        for _ in 0..300 {
            source.credential().await.unwrap();
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "expires_in {expires_in}: one login for 3 seconds of requests"
        );
    }
}
