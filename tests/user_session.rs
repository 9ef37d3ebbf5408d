//! Per-user IBSSO sessions: logged in once with the user's credentials,
//! keeping only the token; a 401 asks the user to log in again.

mod common;

use common::{authed, hyper_client, send, sms};
use http::StatusCode;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::ErrorKind;
use infobip_auth::{CredentialSource, UserSession};

async fn logged_in(fake: &FakeInfobip) -> UserSession {
    UserSession::login(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
        hyper_client(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_user_session_stamps_its_token() {
    let fake = FakeInfobip::start().await.unwrap();
    let session = logged_in(&fake).await;
    let service = authed(&fake, session.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 1);
    let token = &fake.issued_tokens()[0];
    let stamped = fake.authorizations()[0].clone().unwrap();
    assert_eq!(stamped, format!("IBSSO {token}").as_str());
    assert!(session.is_active());
}

/// The session ends with its first 401: that request, and every later one,
/// fail with `ReauthenticationRequired`; no login is attempted, and later
/// requests are not sent.
#[tokio::test]
async fn a_401_asks_for_the_user_to_log_in_again_without_a_login() {
    let fake = FakeInfobip::start().await.unwrap();
    let session = logged_in(&fake).await;
    let service = authed(&fake, session.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    fake.revoke_sessions();

    let error = send(&service, sms("{}")).await.unwrap_err();
    assert!(
        error.kind() == ErrorKind::ReauthenticationRequired,
        "{error:?}"
    );
    assert!(!session.is_active());
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert!(
        error.kind() == ErrorKind::ReauthenticationRequired,
        "{error:?}"
    );
    assert_eq!(fake.logins(), 1, "no login attempted");
    assert_eq!(fake.rejected(), 1, "the later request was not sent");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let fake = FakeInfobip::start().await.unwrap();
    let session = logged_in(&fake).await;
    session.logout().await.unwrap();
    assert_eq!(fake.logouts(), 1);
    session.logout().await.unwrap();
    assert_eq!(fake.logouts(), 1, "once");
    let error = session.credential().await.unwrap_err();
    assert!(error.kind() == ErrorKind::ReauthenticationRequired);
}

#[tokio::test]
async fn wrong_credentials_fail_the_login() {
    let fake = FakeInfobip::start().await.unwrap();
    let error = UserSession::login(
        fake.base_url(),
        FakeInfobip::USERNAME,
        "wrong",
        hyper_client(),
    )
    .await
    .unwrap_err();
    assert!(error.kind() == ErrorKind::BadCredentials, "{error:?}");
    let error = UserSession::login(fake.base_url(), "", "pw", hyper_client())
        .await
        .unwrap_err();
    assert!(error.kind() == ErrorKind::InvalidCredential);
}

/// What the value holds: the base URL, the token (redacted) and whether it
/// is active; never the password or the username.
#[tokio::test]
async fn the_session_value_holds_no_password() {
    let fake = FakeInfobip::start().await.unwrap();
    let session = logged_in(&fake).await;
    let debug = format!("{session:?}");
    assert!(debug.contains("token: \"** redacted **\""), "{debug}");
    assert!(!debug.contains(FakeInfobip::PASSWORD), "{debug}");
    assert!(!debug.contains(FakeInfobip::USERNAME), "{debug}");
    assert!(!debug.contains(&fake.issued_tokens()[0]), "{debug}");
}
