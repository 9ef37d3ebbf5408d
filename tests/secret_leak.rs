//! Runs every flow with a subscriber capturing every tracing event at TRACE,
//! formats every public type and every error with `{:?}` and `{}`, and
//! checks that no API key, password, Basic credential or session token
//! appears anywhere in that text.

mod common;

use std::fmt::Write as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::{authed, hyper_client, hyper_client_for, ibsso, send, sms, streaming, StreamingBody};
use http::{Request, StatusCode};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{
    source_fn, ApiKey, AuthError, AuthLayer, BaseUrl, Basic, BoxCredentialSource, Credential,
    CredentialSource, Ibsso, ReplayBody, UserSession,
};
use tower::{Layer, ServiceExt};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const API_KEY_SECRET: &str = "very-secret-api-key-4711";
const WRONG_PASSWORD: &str = "wrong-password-0815";

#[tokio::test]
async fn no_secret_reaches_logs_debug_display_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let fake = FakeInfobip::start().await.unwrap();
    fake.add_api_key(API_KEY_SECRET);
    let mut text = String::new();
    let mut errors: Vec<AuthError> = Vec::new();

    // App and Basic, accepted and rejected.
    let app = authed(&fake, ApiKey::new(API_KEY_SECRET).unwrap());
    assert_eq!(send(&app, sms("{}")).await.unwrap().0, StatusCode::OK);
    let basic_source = Basic::new(FakeInfobip::USERNAME, FakeInfobip::PASSWORD).unwrap();
    let basic = authed(&fake, basic_source.clone());
    assert_eq!(send(&basic, sms("{}")).await.unwrap().0, StatusCode::OK);
    errors.push(ApiKey::new(format!("App {API_KEY_SECRET}")).unwrap_err());
    errors.push(ApiKey::new(format!("{API_KEY_SECRET}\n")).unwrap_err());
    errors.push(Basic::new("user:x", FakeInfobip::PASSWORD).unwrap_err());
    errors.push(Basic::new("user", format!("{}\0", FakeInfobip::PASSWORD)).unwrap_err());
    errors.push(
        BaseUrl::new(&format!(
            "https://u:{}@api.infobip.com",
            FakeInfobip::PASSWORD
        ))
        .unwrap_err(),
    );
    errors.push(Credential::new("App", &format!("{API_KEY_SECRET} x")).unwrap_err());

    // IBSSO: login, renewal with replay, a skipped replay, 403, logout.
    let client = hyper_client();
    let session = ibsso(&fake, &client);
    let service = authed(&fake, session.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    fake.revoke_sessions();
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    let streaming_service = AuthLayer::new(fake.base_url(), session.clone())
        .replay_limit(4)
        .layer(hyper_client_for::<StreamingBody>());
    fake.revoke_sessions();
    let big = Request::post("/sms/2/text/advanced")
        .body(streaming(vec![Bytes::from_static(b"0123456789")]))
        .unwrap();
    let skipped = streaming_service.oneshot(big).await.unwrap();
    assert_eq!(skipped.status(), StatusCode::UNAUTHORIZED);
    writeln!(
        text,
        "{:?}",
        skipped.extensions().get::<infobip_auth::ReplaySkipped>()
    )
    .unwrap();
    fake.forbid_next(1);
    assert_eq!(
        send(&service, sms("{}")).await.unwrap().0,
        StatusCode::FORBIDDEN
    );
    let credential = session.credential().await.unwrap();
    writeln!(text, "{credential:?} {:?}", credential.header_value()).unwrap();
    writeln!(text, "{session:?} {:?} {service:?}", session.stats()).unwrap();
    session.logout().await.unwrap();

    // Failed logins: bad password, then backoff; a server error; a timeout.
    let bad = Ibsso::builder(fake.base_url(), FakeInfobip::USERNAME, WRONG_PASSWORD)
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build(client.clone())
        .unwrap();
    writeln!(text, "{bad:?}").unwrap();
    let bad_service = authed(&fake, bad);
    errors.push(send(&bad_service, sms("{}")).await.unwrap_err());
    errors.push(send(&bad_service, sms("{}")).await.unwrap_err());
    let flaky = common::ibsso_builder(&fake)
        .backoff(Duration::ZERO, Duration::ZERO)
        .login_timeout(Duration::from_millis(50))
        .build(client.clone())
        .unwrap();
    fake.fail_next_logins(1, StatusCode::INTERNAL_SERVER_ERROR);
    errors.push(flaky.credential().await.unwrap_err());
    fake.fail_next_logins(1, StatusCode::TOO_MANY_REQUESTS);
    errors.push(flaky.credential().await.unwrap_err());
    // Within the 429's Retry-After: backing off.
    errors.push(flaky.credential().await.unwrap_err());
    let slow = common::ibsso_builder(&fake)
        .login_timeout(Duration::from_millis(50))
        .build(client.clone())
        .unwrap();
    fake.set_login_latency(Duration::from_secs(2));
    // Past the login rate's spacing, so the 50 ms go to the login itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    errors.push(slow.credential().await.unwrap_err());
    fake.set_login_latency(Duration::ZERO);
    let kinds: Vec<_> = errors.iter().map(AuthError::kind).collect();
    for kind in [
        infobip_auth::ErrorKind::InvalidCredential,
        infobip_auth::ErrorKind::InvalidBaseUrl,
        infobip_auth::ErrorKind::BadCredentials,
        infobip_auth::ErrorKind::BackingOff,
        infobip_auth::ErrorKind::LoginFailed,
        infobip_auth::ErrorKind::Throttled,
        infobip_auth::ErrorKind::Timeout,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} was exercised");
    }

    // A user's session: login, a request, a 401 that ends it, a failed
    // login with a wrong password, a logout.
    let user_login = |password| {
        UserSession::login(
            fake.base_url(),
            FakeInfobip::USERNAME,
            password,
            client.clone(),
        )
    };
    let user = user_login(FakeInfobip::PASSWORD).await.unwrap();
    let for_user = authed(&fake, user.clone());
    assert_eq!(send(&for_user, sms("{}")).await.unwrap().0, StatusCode::OK);
    writeln!(text, "{user:?}").unwrap();
    fake.revoke_sessions();
    errors.push(send(&for_user, sms("{}")).await.unwrap_err());
    errors.push(user_login(WRONG_PASSWORD).await.unwrap_err());
    let other = user_login(FakeInfobip::PASSWORD).await.unwrap();
    other.logout().await.unwrap();
    writeln!(text, "{other:?}").unwrap();

    // API key management and rotation: the created keys' secrets.
    #[cfg(feature = "api-keys")]
    let managed_secrets = {
        use infobip_auth::keys::{ApiKeys, KeyRotator, NewApiKey};
        let keys = ApiKeys::new(fake.base_url(), basic.clone());
        let created = keys.create(&NewApiKey::new("leak-scan")).await.unwrap();
        let rotating = infobip_auth::Rotating::new(created.secret.api_key().unwrap());
        let rotator = KeyRotator::new(
            keys.clone(),
            rotating.clone(),
            created.info.id.clone(),
            NewApiKey::new("leak-scan"),
        )
        .grace_period(std::time::Duration::ZERO);
        let rotation = rotator.rotate().await.unwrap();
        fake.set_key_change_limit(fake.key_changes());
        errors.push(rotator.rotate().await.unwrap_err());
        errors.push(keys.create(&NewApiKey::new("over")).await.unwrap_err());
        writeln!(
            text,
            "{created:?} {rotation:?} {rotator:?} {keys:?} {rotating:?}"
        )
        .unwrap();
        // The new key's secret, as the rotated stack sends it.
        let rotated = authed(&fake, rotating.clone());
        assert_eq!(send(&rotated, sms("{}")).await.unwrap().0, StatusCode::OK);
        let header = fake.authorizations().last().cloned().flatten().unwrap();
        let new_secret = header.to_str().unwrap().strip_prefix("App ").unwrap();
        assert_ne!(new_secret, created.secret.expose());
        let secrets = vec![created.secret.expose().to_owned(), new_secret.to_owned()];
        secrets
    };
    #[cfg(not(feature = "api-keys"))]
    let managed_secrets: Vec<String> = Vec::new();

    // Every other public type.
    writeln!(
        text,
        "{:?} {:?} {:?} {:?} {:?}",
        ApiKey::new(API_KEY_SECRET).unwrap(),
        basic_source,
        AuthLayer::new(fake.base_url(), ApiKey::new(API_KEY_SECRET).unwrap()),
        app,
        common::ibsso_builder(&fake),
    )
    .unwrap();
    writeln!(
        text,
        "{:?} {:?} {:?} {:?}",
        BoxCredentialSource::new(ApiKey::new(API_KEY_SECRET).unwrap()),
        source_fn(|| async { Credential::new("App", API_KEY_SECRET) }),
        ReplayBody::new(Bytes::from_static(b"body")),
        fake,
    )
    .unwrap();
    writeln!(text, "{} {:?}", fake.base_url(), fake.base_url()).unwrap();
    for error in &errors {
        writeln!(text, "{error} | {error:?}").unwrap();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            writeln!(text, "{cause} | {cause:?}").unwrap();
            source = cause.source();
        }
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("logging in to Infobip"),
        "events were captured"
    );
    assert!(
        logs.contains("login failed"),
        "failure events were captured"
    );
    assert!(logs.contains("renewing the session"));
    let everything = format!("{logs}\n{text}");

    let basic_b64 = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD
    ));
    let mut secrets = vec![
        API_KEY_SECRET.to_owned(),
        FakeInfobip::API_KEY.to_owned(),
        FakeInfobip::PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        basic_b64,
    ];
    let tokens = fake.issued_tokens();
    assert!(tokens.len() >= 3, "sessions were issued and renewed");
    secrets.extend(tokens);
    secrets.extend(managed_secrets);
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret leaked into logs or formatting"
        );
    }
    assert!(everything.contains("** redacted **"));
}
