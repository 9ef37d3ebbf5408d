//! API key management and rotation against `FakeInfobip`'s
//! `/settings/2/api-keys`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{hyper_client, send, sms, HyperClient};
use http::StatusCode;
use infobip_auth::keys::{ApiKeyUpdate, ApiKeys, CreatedApiKey, KeyRotator, NewApiKey};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, AuthService, Basic, ErrorKind, Rotating};
use tower::Layer;

fn admin(fake: &FakeInfobip) -> ApiKeys {
    let basic = Basic::new(FakeInfobip::USERNAME, FakeInfobip::PASSWORD).unwrap();
    ApiKeys::new(
        fake.base_url(),
        AuthLayer::new(fake.base_url(), basic).layer(hyper_client()),
    )
}

fn with_key(fake: &FakeInfobip, key: &str) -> AuthService<HyperClient, ApiKey> {
    AuthLayer::new(fake.base_url(), ApiKey::new(key).unwrap()).layer(hyper_client())
}

async fn status_with_key(fake: &FakeInfobip, key: &str) -> StatusCode {
    send(&with_key(fake, key), sms("{}")).await.unwrap().0
}

#[tokio::test]
async fn create_list_get_update_and_disable_a_key() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    let valid_to = SystemTime::now() + Duration::from_secs(30 * 86_400);
    let created = keys
        .create(
            &NewApiKey::new("sms-service")
                .allowed_ips(["10.0.0.1"])
                .permissions(["PUBLIC_API"])
                .valid_to(valid_to),
        )
        .await
        .unwrap();
    let info = &created.info;
    assert_eq!(info.name, "sms-service");
    assert_eq!(info.allowed_ips, ["10.0.0.1"]);
    assert_eq!(info.permissions, ["PUBLIC_API"]);
    assert!(info.enabled);
    // Millisecond precision on the wire.
    let returned = info.valid_to.unwrap();
    let drift = returned
        .duration_since(valid_to)
        .unwrap_or_else(|e| e.duration());
    assert!(drift < Duration::from_millis(1), "{drift:?}");

    let secret = created.secret.expose().to_owned();
    assert_eq!(status_with_key(&fake, &secret).await, StatusCode::OK);

    assert_eq!(keys.list().await.unwrap(), vec![info.clone()]);
    assert_eq!(&keys.get(&info.id).await.unwrap(), info);

    let renamed = keys
        .update(&info.id, &ApiKeyUpdate::new().name("renamed"))
        .await
        .unwrap();
    assert_eq!(renamed.name, "renamed");

    let disabled = keys.disable(&info.id).await.unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        status_with_key(&fake, &secret).await,
        StatusCode::UNAUTHORIZED,
        "a disabled key is refused"
    );
    assert_eq!(fake.key_changes(), 3);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    let created = keys
        .create(&NewApiKey::new("short").valid_for(Duration::from_millis(300)))
        .await
        .unwrap();
    let secret = created.secret.expose().to_owned();
    assert_eq!(status_with_key(&fake, &secret).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        status_with_key(&fake, &secret).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_api_key_may_not_manage_keys() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = ApiKeys::new(fake.base_url(), with_key(&fake, FakeInfobip::API_KEY));
    let error = keys.list().await.unwrap_err();
    assert!(error.kind() == ErrorKind::Forbidden, "{error}");
    assert!(
        error.to_string().contains("FORBIDDEN"),
        "Infobip's code: {error}"
    );
}

#[tokio::test]
async fn errors_are_typed() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    let missing = keys.get("no-such-key").await.unwrap_err();
    assert!(missing.kind() == ErrorKind::NotFound, "{missing}");
    let bad_id = keys.get("../auth/1/session").await.unwrap_err();
    assert!(bad_id.kind() == ErrorKind::InvalidConfig, "{bad_id}");
    fake.fail_next_key_changes(1, StatusCode::INTERNAL_SERVER_ERROR);
    let failed = keys.create(&NewApiKey::new("x")).await.unwrap_err();
    assert!(failed.kind() == ErrorKind::Rejected, "{failed}");
    let wrong = ApiKeys::new(
        fake.base_url(),
        AuthLayer::new(fake.base_url(), Basic::new("who", "knows").unwrap()).layer(hyper_client()),
    );
    assert!(wrong.list().await.unwrap_err().kind() == ErrorKind::BadCredentials);
}

#[tokio::test]
async fn the_daily_limit_is_its_own_error_kind() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_key_change_limit(2);
    let keys = admin(&fake);
    let first = keys.create(&NewApiKey::new("a")).await.unwrap();
    keys.disable(&first.info.id).await.unwrap();
    let error = keys.create(&NewApiKey::new("b")).await.unwrap_err();
    assert!(error.kind() == ErrorKind::KeyLimitReached, "{error}");
    let error = keys.disable(&first.info.id).await.unwrap_err();
    assert!(
        error.kind() == ErrorKind::KeyLimitReached,
        "updates count too: {error}"
    );
    assert!(keys.list().await.is_ok(), "reading is not limited");
}

#[tokio::test]
async fn a_key_secret_is_never_in_debug_or_errors() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    let created = keys.create(&NewApiKey::new("secretive")).await.unwrap();
    let secret = created.secret.expose().to_owned();
    assert!(!format!("{created:?}").contains(&secret));
    assert!(!format!("{:?}", created.secret).contains(&secret));
    let rotator = KeyRotator::new(
        keys.clone(),
        Rotating::new(created.secret.api_key().unwrap()).clone(),
        created.info.id.clone(),
        NewApiKey::new("next"),
    );
    assert!(!format!("{rotator:?} {keys:?}").contains(&secret));
}

/// Sends `total` requests through `service`, spread over time, until done;
/// returns how many failed.
fn spread_load(
    service: AuthService<HyperClient, Rotating>,
    total: usize,
    every: Duration,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let failed = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..total {
            let (service, failed) = (service.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                match send(&service, sms("{}")).await {
                    Ok((StatusCode::OK, _)) => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
            tokio::time::sleep(every).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        failed.load(Ordering::Relaxed)
    })
}

/// A key made through the API, a `Rotating` source holding it, and a
/// rotator for it with `grace`.
struct UnderRotation {
    keys: ApiKeys,
    first: CreatedApiKey,
    source: Rotating,
    rotator: KeyRotator,
}

async fn under_rotation(fake: &FakeInfobip, first: NewApiKey, grace: Duration) -> UnderRotation {
    let keys = admin(fake);
    let first = keys.create(&first).await.unwrap();
    let source = Rotating::new(first.secret.api_key().unwrap());
    let rotator = KeyRotator::new(
        keys.clone(),
        source.clone(),
        first.info.id.clone(),
        NewApiKey::new("sms"),
    )
    .grace_period(grace);
    UnderRotation {
        keys,
        first,
        source,
        rotator,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request_and_retires_the_old_key_after_the_grace_period() {
    let fake = FakeInfobip::start().await.unwrap();
    let UnderRotation {
        keys,
        first,
        source,
        rotator,
    } = under_rotation(&fake, NewApiKey::new("sms"), Duration::from_millis(300)).await;
    let old_secret = first.secret.expose().to_owned();
    let service = AuthLayer::new(fake.base_url(), source).layer(hyper_client());

    // 1,000 requests over about a second; the rotation starts in the middle.
    let load = spread_load(service.clone(), 1_000, Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotation = rotator.rotate().await.unwrap();
    let failed = load.await.unwrap();

    assert_eq!(failed, 0, "no request failed during the rotation");
    assert_eq!(rotation.old_key_id, first.info.id);
    assert_eq!(rotator.current_key_id(), rotation.new_key_id);
    assert!(rotation.disable_error.is_none());
    assert_eq!(rotation.disable_attempts, 1);
    assert_eq!(
        status_with_key(&fake, &old_secret).await,
        StatusCode::UNAUTHORIZED,
        "the old key is refused after the grace period"
    );
    assert!(!keys.get(&first.info.id).await.unwrap().enabled);
    assert_eq!(
        send(&service, sms("{}")).await.unwrap().0,
        StatusCode::OK,
        "the stack uses the new key"
    );
}

#[tokio::test]
async fn a_failed_creation_leaves_the_old_key_in_use() {
    let fake = FakeInfobip::start().await.unwrap();
    let UnderRotation {
        keys,
        first,
        source,
        rotator,
    } = under_rotation(&fake, NewApiKey::new("sms"), Duration::ZERO).await;
    let service = AuthLayer::new(fake.base_url(), source).layer(hyper_client());

    fake.fail_next_key_changes(1, StatusCode::SERVICE_UNAVAILABLE);
    assert!(rotator.rotate().await.unwrap_err().kind() == ErrorKind::Rejected);
    fake.set_key_change_limit(fake.key_changes());
    assert!(rotator.rotate().await.unwrap_err().kind() == ErrorKind::KeyLimitReached);

    assert_eq!(rotator.current_key_id(), first.info.id);
    assert!(keys.get(&first.info.id).await.unwrap().enabled);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(
        fake.authorizations().last().unwrap().as_ref().unwrap(),
        &format!("App {}", first.secret.expose()),
        "still the old key"
    );
}

#[tokio::test]
async fn a_failed_disable_is_retried_with_backoff_and_reported() {
    let fake = FakeInfobip::start().await.unwrap();
    let UnderRotation { keys, rotator, .. } =
        under_rotation(&fake, NewApiKey::new("sms"), Duration::ZERO).await;
    let rotator = rotator.disable_backoff(Duration::from_millis(10));

    // The creation succeeds; the first two disables fail.
    fake.fail_next_key_updates(2, StatusCode::BAD_GATEWAY);
    let rotation = rotator.rotate().await.unwrap();
    assert_eq!(rotation.disable_attempts, 3, "two failures, then success");
    assert!(rotation.disable_error.is_none());
    assert!(!keys.get(&rotation.old_key_id).await.unwrap().enabled);

    // Every attempt failing is reported, with the old key left enabled.
    fake.fail_next_key_updates(6, StatusCode::BAD_GATEWAY);
    let rotation = rotator.rotate().await.unwrap();
    assert_eq!(rotation.disable_attempts, 6);
    assert!(rotation.disable_error.unwrap().kind() == ErrorKind::Rejected);
    assert!(keys.get(&rotation.old_key_id).await.unwrap().enabled);
    assert_eq!(
        rotator.current_key_id(),
        rotation.new_key_id,
        "the new key serves"
    );
}

#[tokio::test]
async fn rotates_ahead_of_valid_to_only_when_due() {
    let fake = FakeInfobip::start().await.unwrap();
    let first_key = NewApiKey::new("sms").valid_for(Duration::from_secs(3600));
    let UnderRotation {
        keys,
        first,
        rotator,
        ..
    } = under_rotation(&fake, first_key, Duration::ZERO).await;
    let rotator = rotator.key_lifetime(Duration::from_secs(90 * 86_400));
    assert!(rotator
        .rotate_if_due(Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    assert_eq!(rotator.current_key_id(), first.info.id);
    let rotation = rotator
        .rotate_if_due(Duration::from_secs(2 * 3600))
        .await
        .unwrap()
        .expect("due: the key expires within two hours");
    let new = keys.get(&rotation.new_key_id).await.unwrap();
    let lifetime = new
        .valid_to
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        lifetime > Duration::from_secs(89 * 86_400),
        "the new key's lifetime"
    );
    assert!(rotator
        .rotate_if_due(Duration::from_secs(2 * 3600))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn dot_segment_ids_are_refused_and_nothing_is_sent() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    for id in [".", "..", "...", ""] {
        let error = keys.get(id).await.unwrap_err();
        assert!(error.kind() == ErrorKind::InvalidConfig, "{id:?}: {error}");
        let error = keys.disable(id).await.unwrap_err();
        assert!(error.kind() == ErrorKind::InvalidConfig, "{id:?}: {error}");
        let update = ApiKeyUpdate::new().name("x");
        assert!(keys.update(id, &update).await.unwrap_err().kind() == ErrorKind::InvalidConfig);
    }
    assert_eq!(fake.connections(), 0, "nothing reached the server");
    assert_eq!(fake.key_changes(), 0);
    // A dot inside an id is fine.
    assert!(keys.get("key.1").await.unwrap_err().kind() == ErrorKind::NotFound);
}

#[tokio::test]
async fn a_create_answer_that_cannot_be_read_names_the_key_and_disables_it() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    fake.answer_next_creation_with_secret(serde_json::json!(12345));
    let error = keys.create(&NewApiKey::new("lost")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    let listed = keys.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let created = &listed[0];
    assert!(error.to_string().contains(&created.id), "{error}");
    assert!(error.to_string().contains("disabled"), "{error}");
    assert!(!created.enabled, "a key nobody can use is disabled");
}

#[tokio::test]
async fn a_new_secret_that_is_not_a_valid_key_is_disabled_named_and_the_old_key_stays() {
    let fake = FakeInfobip::start().await.unwrap();
    let UnderRotation {
        keys,
        first,
        source,
        rotator,
    } = under_rotation(&fake, NewApiKey::new("sms"), Duration::ZERO).await;
    let service = AuthLayer::new(fake.base_url(), source).layer(hyper_client());
    fake.answer_next_creation_with_secret(serde_json::json!("two words"));
    let error = rotator.rotate().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    let new = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id != first.info.id)
        .expect("the key was created");
    assert!(error.to_string().contains(&new.id), "{error}");
    assert!(!new.enabled, "disabled");
    assert!(
        !error.to_string().contains("two words"),
        "no secret: {error}"
    );
    assert_eq!(rotator.current_key_id(), first.info.id);
    assert!(keys.get(&first.info.id).await.unwrap().enabled);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
}

/// Two rotations at once: the second starts from the key the first left,
/// so the key the source ends on is the one left enabled.
#[tokio::test]
async fn concurrent_rotations_run_one_after_the_other() {
    let fake = FakeInfobip::start().await.unwrap();
    let UnderRotation {
        keys,
        first,
        source,
        rotator,
    } = under_rotation(&fake, NewApiKey::new("sms"), Duration::from_millis(400)).await;
    let service = AuthLayer::new(fake.base_url(), source).layer(hyper_client());
    // Inside the first rotation's grace period, the second has made no key.
    let during_grace = async {
        while rotator.current_key_id() == first.info.id {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.list().await.unwrap().len()
    };
    let (a, b, keys_during_grace) = tokio::join!(rotator.rotate(), rotator.rotate(), during_grace);
    assert_eq!(keys_during_grace, 2, "the second rotation waited its turn");
    let (a, b) = (a.unwrap(), b.unwrap());
    let (earlier, later) = if a.old_key_id == first.info.id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(earlier.old_key_id, first.info.id);
    assert_eq!(later.old_key_id, earlier.new_key_id, "one after the other");
    assert_eq!(rotator.current_key_id(), later.new_key_id);
    let enabled: Vec<_> = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.enabled)
        .map(|k| k.id)
        .collect();
    assert_eq!(enabled, vec![later.new_key_id.clone()]);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
}

/// Two due checks at once rotate once: the second sees the new key.
#[tokio::test]
async fn concurrent_due_checks_rotate_once() {
    let fake = FakeInfobip::start().await.unwrap();
    let first_key = NewApiKey::new("sms").valid_for(Duration::from_secs(3600));
    let UnderRotation { keys, rotator, .. } =
        under_rotation(&fake, first_key, Duration::ZERO).await;
    let rotator = rotator.key_lifetime(Duration::from_secs(90 * 86_400));
    let ahead = Duration::from_secs(2 * 3600);
    let (a, b) = tokio::join!(rotator.rotate_if_due(ahead), rotator.rotate_if_due(ahead));
    let rotations = [a.unwrap(), b.unwrap()];
    assert_eq!(rotations.iter().flatten().count(), 1, "one rotation");
    assert_eq!(keys.list().await.unwrap().len(), 2, "one new key");
}

/// Durations at their extremes are clamped, never a panic.
#[tokio::test]
async fn extreme_durations_are_clamped() {
    let fake = FakeInfobip::start().await.unwrap();
    let keys = admin(&fake);
    let created = keys
        .create(&NewApiKey::new("long").valid_for(Duration::MAX))
        .await
        .unwrap();
    let left = created
        .info
        .valid_to
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left <= Duration::from_secs(100 * 365 * 86_400),
        "a hundred years"
    );
    let UnderRotation { rotator, .. } =
        under_rotation(&fake, NewApiKey::new("sms"), Duration::ZERO).await;
    let rotator = rotator.key_lifetime(Duration::MAX);
    let rotation = rotator.rotate_if_due(Duration::MAX).await.unwrap();
    assert!(rotation.is_some(), "every key is due within forever");
}
