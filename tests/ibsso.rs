//! The IBSSO session source against FakeInfobip on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{
    authed, hyper_client, hyper_client_for, ibsso, send, sms, streaming, HyperClient, StreamingBody,
};
use futures_util::future::join_all;
use http::{Request, StatusCode};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{AuthLayer, AuthService, CredentialSource, ErrorKind, Ibsso, ReplaySkipped};
use tokio::sync::Barrier;
use tower::{Layer, Service, ServiceExt};

/// The layer's default replay limit.
const REPLAY_LIMIT: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_once_for_1000_concurrent_requests_on_revoked_session() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 1);

    fake.revoke_sessions();
    // Every request takes its credential before any is sent, so all 1,000
    // carry the revoked token.
    let barrier = Arc::new(Barrier::new(1000));
    let requests = (0..1000).map(|i| {
        let mut service = service.clone();
        let barrier = barrier.clone();
        tokio::spawn(async move {
            service.ready().await?;
            barrier.wait().await;
            let response = service.call(sms(format!("{{\"n\":{i}}}"))).await?;
            Ok::<_, infobip_auth::AuthError>(response.status())
        })
    });
    let results = join_all(requests).await;
    let ok = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(StatusCode::OK))))
        .count();
    assert_eq!(ok, 1000);
    assert_eq!(fake.logins(), 2, "one login at start, exactly one renewal");
    assert_eq!(fake.accepted(), 1001, "each request processed once");
    // Those sent before the first 401 reached the source were rejected and
    // replayed; those called after it were held and sent once. How many of
    // each depends on scheduling.
    let rejected = fake.rejected();
    assert!((1..=1000).contains(&rejected), "{rejected} rejected");
    let stats = source.stats();
    assert_eq!((stats.logins, stats.renewals), (2, 1));
    assert_eq!(
        stats.replays as usize, rejected,
        "each rejected request replayed once"
    );
}

/// The fake server, and a source for its account on a client of its own.
async fn started() -> (FakeInfobip, Ibsso) {
    let fake = FakeInfobip::start().await.unwrap();
    let source = ibsso(&fake, &hyper_client());
    (fake, source)
}

/// A service readied on a session that its source then logged out of: its
/// next request is held for a new login.
async fn readied_then_logged_out() -> (FakeInfobip, Ibsso, AuthService<HyperClient, Ibsso>) {
    let (fake, source) = started().await;
    let mut service = authed(&fake, source.clone());
    service.ready().await.unwrap();
    source.logout().await.unwrap();
    (fake, source, service)
}

/// Two requests readied on a session that is then revoked: the first is
/// answered 401 and replayed; the second, called after that 401, is never
/// sent with the revoked token.
#[tokio::test]
async fn request_readied_before_a_401_is_sent_once_with_the_renewed_session() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);

    let (mut first, mut second) = (service.clone(), service.clone());
    first.ready().await.unwrap();
    second.ready().await.unwrap();
    fake.revoke_sessions();
    let response = first.call(sms(r#"{"n":1}"#)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!((fake.rejected(), fake.logins()), (1, 2));

    let response = second.call(sms(r#"{"n":2}"#)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        fake.rejected(),
        1,
        "the second was not sent on the old session"
    );
    assert_eq!(fake.logins(), 2, "and needed no login of its own");
    let accepted = fake.accepted_requests();
    assert_eq!(accepted.len(), 3);
    assert_eq!(accepted[2].body, r#"{"n":2}"#);
    let authorizations = fake.authorizations();
    let last = authorizations.last().unwrap().as_ref().unwrap();
    assert_eq!(last, source.credential().await.unwrap().header_value());
    assert_eq!(source.stats().replays, 1, "only the first was replayed");
}

#[tokio::test]
async fn request_readied_before_a_logout_is_sent_once_with_a_new_session() {
    let (fake, source, mut service) = readied_then_logged_out().await;

    let response = service.call(sms("{}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.logins(), 2);
    assert_eq!(fake.rejected(), 0, "never sent with the ended session");
    assert_eq!(fake.accepted(), 1);
    assert_eq!(source.stats().replays, 0);
}

#[tokio::test]
async fn late_401_for_an_old_generation_does_not_log_in_again() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    let old = source.credential().await.unwrap();
    assert_eq!(fake.logins(), 1);

    fake.revoke_sessions();
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 2);
    let fresh = source.credential().await.unwrap();
    assert_ne!(fresh.generation(), old.generation());

    // A 401 that arrives late, for a request stamped before the renewal.
    source.on_unauthorized(&old);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 2);
    let still = source.credential().await.unwrap();
    assert_eq!(still.generation(), fresh.generation());
    assert_eq!(still.header_value(), fresh.header_value());
}

#[tokio::test]
async fn is_rejected_holds_for_generations_answered_401_only() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    let first = source.credential().await.unwrap();
    assert!(!source.is_rejected(&first));

    fake.revoke_sessions();
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    let second = source.credential().await.unwrap();
    assert!(source.is_rejected(&first));
    assert!(!source.is_rejected(&second));
    // Not one of this source's: a static credential has generation 0.
    let key = infobip_auth::ApiKey::new("k")
        .unwrap()
        .credential()
        .await
        .unwrap();
    assert!(!source.is_rejected(&key));
}

/// After one request was answered 401 and replayed: the server processed
/// `whole` exactly once (after `before` earlier requests), with one
/// renewal.
fn assert_replayed_once(fake: &FakeInfobip, whole: &Bytes, before: usize) {
    let accepted = fake.accepted_requests();
    assert_eq!(accepted.len(), before + 1, "processed exactly once");
    assert_eq!(accepted[before].body, whole, "every byte, once, in order");
    assert_eq!(fake.rejected(), 1);
    assert_eq!(fake.logins(), 2, "the 401 renewed the session");
}

fn streaming_service(
    fake: &FakeInfobip,
    source: Ibsso,
    limit: usize,
) -> infobip_auth::AuthService<HyperClient<StreamingBody>, Ibsso> {
    AuthLayer::new(fake.base_url(), source)
        .replay_limit(limit)
        .layer(hyper_client_for::<StreamingBody>())
}

fn chunks(total: usize, size: usize) -> (Vec<Bytes>, Bytes) {
    let all: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
    let chunks = all.chunks(size).map(Bytes::copy_from_slice).collect();
    (chunks, Bytes::from(all))
}

#[tokio::test]
async fn replays_whole_body_once_when_401_comes_before_body_was_read() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let service = streaming_service(&fake, ibsso(&fake, &client), REPLAY_LIMIT);
    let (parts, whole) = chunks(48 * 1024, 4096);

    // The server answers 401 after reading 5 bytes of the body.
    fake.reject_early(1, 5);
    let request = Request::post("/sms/2/text/advanced")
        .body(streaming(parts))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.extensions().get::<ReplaySkipped>().is_none());

    assert_replayed_once(&fake, &whole, 0);
}

/// A held request whose renewal fails gets the login's typed error and is
/// never sent.
#[tokio::test]
async fn held_request_fails_unsent_when_the_renewal_fails() {
    let (fake, _source, mut service) = readied_then_logged_out().await;
    fake.fail_next_logins(1, StatusCode::INTERNAL_SERVER_ERROR);

    let error = service.call(sms("{}")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LoginFailed, "{error}");
    assert_eq!((fake.accepted(), fake.rejected()), (0, 0), "nothing sent");
    assert_eq!(fake.logins(), 2);
}

/// A held request was never sent, so its body needs no recording: even a
/// streaming body over the replay limit goes whole, once.
#[tokio::test]
async fn held_streaming_body_over_the_replay_limit_is_sent_whole_once() {
    let (fake, source) = started().await;
    let mut service = streaming_service(&fake, source.clone(), 1024);
    let (parts, whole) = chunks(48 * 1024, 4096);
    service.ready().await.unwrap();
    source.logout().await.unwrap();

    let request = Request::post("/sms/2/text/advanced")
        .body(streaming(parts))
        .unwrap();
    let response = service.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.extensions().get::<ReplaySkipped>().is_none());
    assert_eq!(fake.rejected(), 0);
    let accepted = fake.accepted_requests();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].body, whole, "every byte, once, in order");
}

#[tokio::test]
async fn replays_an_in_memory_body_whole_when_401_comes_before_it_was_read() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let service = authed(&fake, ibsso(&fake, &client));
    // `Full` is cloned when the request is stamped (a reference count):
    // both attempts send the same bytes.
    let (_, whole) = chunks(48 * 1024, 48 * 1024);

    fake.reject_early(1, 5);
    let (status, _) = send(&service, sms(whole.clone())).await.unwrap();
    assert_eq!(status, StatusCode::OK);

    assert_replayed_once(&fake, &whole, 0);
}

/// The drop-in stack: the client takes the caller's `Full` body as it is,
/// and a replay sends a clone of it.
fn full_body_service(fake: &FakeInfobip, limit: usize) -> (AuthService<HyperClient, Ibsso>, Ibsso) {
    let client = hyper_client();
    let source = ibsso(fake, &client);
    let service = AuthLayer::new(fake.base_url(), source.clone())
        .replay_limit(limit)
        .layer(client);
    (service, source)
}

#[tokio::test]
async fn cloned_body_is_replayed_whole_after_the_session_is_revoked() {
    let fake = FakeInfobip::start().await.unwrap();
    let (service, source) = full_body_service(&fake, REPLAY_LIMIT);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);

    fake.revoke_sessions();
    let (_, whole) = chunks(48 * 1024, 48 * 1024);
    let (status, _) = send(&service, sms(whole.clone())).await.unwrap();
    assert_eq!(status, StatusCode::OK);

    assert_replayed_once(&fake, &whole, 1);
    assert_eq!(source.stats().replays, 1);
}

#[tokio::test]
async fn cloned_body_over_the_limit_gets_401_with_marker() {
    let fake = FakeInfobip::start().await.unwrap();
    let (service, _) = full_body_service(&fake, 1024);
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);

    fake.revoke_sessions();
    let response = service
        .clone()
        .oneshot(sms(vec![b'x'; 2048]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<ReplaySkipped>(),
        Some(&ReplaySkipped::BodyOverLimit)
    );
    assert_eq!(fake.accepted(), 1, "only the warm-up");
}

#[tokio::test]
async fn body_over_the_cap_gets_401_with_marker_and_next_request_renews() {
    let (fake, source) = started().await;
    let service = streaming_service(&fake, source.clone(), REPLAY_LIMIT);
    let warm = Request::post("/sms/2/text/advanced")
        .body(streaming(vec![Bytes::from_static(b"{}")]))
        .unwrap();
    assert_eq!(
        service.clone().oneshot(warm).await.unwrap().status(),
        StatusCode::OK
    );

    fake.revoke_sessions();
    let (parts, _) = chunks(1024 * 1024, 64 * 1024);
    let request = Request::post("/sms/2/text/advanced")
        .body(streaming(parts))
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<ReplaySkipped>(),
        Some(&ReplaySkipped::BodyOverLimit)
    );
    assert_eq!(
        fake.logins(),
        1,
        "no login for a request that cannot be replayed"
    );

    let next = Request::post("/sms/2/text/advanced")
        .body(streaming(vec![Bytes::from_static(b"{}")]))
        .unwrap();
    let response = service.clone().oneshot(next).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        fake.logins(),
        2,
        "the session was renewed for the next request"
    );
    assert_eq!(fake.rejected(), 1);
}

#[tokio::test]
async fn idle_session_is_renewed_before_sending_not_after_a_401() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 1);

    // 61 idle minutes, on tokio's clock (shared with the fake server).
    common::advance_clock(Duration::from_secs(61 * 60)).await;
    assert_eq!(fake.sessions(), 0, "the server ended the idle session");

    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.rejected(), 0, "no 401 was ever seen");
    assert_eq!(fake.logins(), 2, "logged in again instead");
    assert_eq!(source.stats().idle_renewals, 1);
}

#[tokio::test]
async fn session_in_regular_use_is_never_renewed_for_idleness() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    // The default idle timeout (55 minutes), used every 20 minutes for 3
    // hours; then a short one (400 ms), used every 100 ms for 3 s.
    for (idle, gap, rounds) in [
        (None, Duration::from_secs(20 * 60), 9),
        (
            Some(Duration::from_millis(400)),
            Duration::from_millis(100),
            30,
        ),
    ] {
        let mut builder = common::ibsso_builder(&fake);
        if let Some(idle) = idle {
            builder = builder.idle_timeout(idle);
        }
        let source = builder.build(client.clone()).unwrap();
        let service = authed(&fake, source.clone());
        for _ in 0..rounds {
            assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
            common::advance_clock(gap).await;
        }
        assert_eq!(source.stats().logins, 1, "idle timeout {idle:?}");
        assert_eq!(source.stats().idle_renewals, 0, "idle timeout {idle:?}");
    }
    assert_eq!(fake.rejected(), 0);
}

#[tokio::test]
async fn bad_password_fails_every_waiter_and_backoff_limits_logins() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let source = Ibsso::builder(fake.base_url(), FakeInfobip::USERNAME, "wrong-password")
        // Longer than this test can take, so every later request falls in it.
        .backoff(Duration::from_secs(600), Duration::from_secs(600))
        .build(client.clone())
        .unwrap();
    let service = authed(&fake, source);

    let waiters = (0..20).map(|_| send(&service, sms("{}")));
    for result in join_all(waiters).await {
        let error = result.unwrap_err();
        assert!(error.kind() == ErrorKind::BadCredentials, "{error:?}");
    }
    assert_eq!(fake.logins(), 1, "one login for all concurrent waiters");

    for _ in 0..100 {
        let error = send(&service, sms("{}")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BackingOff);
        assert!(error.retry_after().is_some());
    }
    // Bound: one login per backoff window; the whole test fits in one.
    assert_eq!(fake.logins(), 1);
    assert_eq!(
        fake.authorizations().len(),
        0,
        "nothing was sent unauthenticated"
    );
}

/// A session that may log in again at once after a failed login (only a
/// server's `Retry-After` holds it back).
fn without_backoff(fake: &FakeInfobip) -> Ibsso {
    common::ibsso_builder(fake)
        .backoff(Duration::ZERO, Duration::ZERO)
        .build(hyper_client())
        .unwrap()
}

#[tokio::test]
async fn login_server_error_is_typed_and_a_later_request_logs_in() {
    let fake = FakeInfobip::start().await.unwrap();
    let service = authed(&fake, without_backoff(&fake));
    fake.fail_next_logins(1, StatusCode::SERVICE_UNAVAILABLE);
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LoginFailed);
    assert!(error.to_string().contains("503"));
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 2);
}

#[tokio::test]
async fn throttled_login_honours_retry_after() {
    let fake = FakeInfobip::start().await.unwrap();
    let service = authed(&fake, without_backoff(&fake));
    fake.fail_next_logins(1, StatusCode::TOO_MANY_REQUESTS);
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Throttled);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    // Within the server's Retry-After: no new login.
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BackingOff);
    assert_eq!(fake.logins(), 1);
}

/// A server's `Retry-After` at its extremes: seconds beyond `u64`, a
/// millennium, an HTTP date centuries ahead. None panics, none locks the
/// source out for more than an hour, and no login is tried inside it.
#[tokio::test]
async fn an_extreme_retry_after_is_capped_at_an_hour_and_honoured() {
    const HOUR: Duration = Duration::from_secs(3600);
    for value in [
        "18446744073709551615",
        "99999999999999999999999",
        "1000000000000",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let fake = FakeInfobip::start().await.unwrap();
        fake.set_login_retry_after(value);
        let service = authed(&fake, without_backoff(&fake));
        fake.fail_next_logins(1, StatusCode::TOO_MANY_REQUESTS);
        let error = send(&service, sms("{}")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Throttled, "{value}: {error:?}");
        assert_eq!(error.retry_after(), Some(HOUR), "{value}");
        let error = send(&service, sms("{}")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BackingOff, "{value}: {error:?}");
        assert!(error.retry_after().is_some_and(|w| w <= HOUR), "{value}");
        assert_eq!(fake.logins(), 1, "{value}: no login inside the wait");
        // An hour on, the source logs in again.
        common::advance_clock(HOUR + Duration::from_secs(1)).await;
        assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
        assert_eq!(fake.logins(), 2, "{value}");
    }
}

#[tokio::test]
async fn login_timeout_is_a_typed_error() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_login_latency(Duration::from_secs(5));
    let client = hyper_client();
    let source = common::ibsso_builder(&fake)
        .login_timeout(Duration::from_millis(50))
        .build(client.clone())
        .unwrap();
    let service = authed(&fake, source);
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn forbidden_never_triggers_a_login() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let service = authed(&fake, ibsso(&fake, &client));
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    fake.forbid_next(1);
    assert_eq!(
        send(&service, sms("{}")).await.unwrap().0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(fake.logins(), 1);
    assert_eq!(fake.authorizations().len(), 2, "no replay after a 403");
}

#[tokio::test]
async fn logout_deletes_the_current_session_and_next_request_logs_in() {
    let (fake, source) = started().await;
    let service = authed(&fake, source.clone());
    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.sessions(), 1);

    // The fake answers 401 to a DELETE with any other token.
    source.logout().await.unwrap();
    assert_eq!(fake.logouts(), 1);
    assert_eq!(fake.sessions(), 0);
    assert!(!source.has_session());
    // Nothing left to end.
    source.logout().await.unwrap();
    assert_eq!(fake.logouts(), 1);

    assert_eq!(send(&service, sms("{}")).await.unwrap().0, StatusCode::OK);
    assert_eq!(fake.logins(), 2);
    assert_eq!(fake.rejected(), 0);
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = hyper_client();
    let source = ibsso(&fake, &client);
    let token = source.credential().await.unwrap();
    let token = token.header_value().to_str().unwrap()["IBSSO ".len()..].to_owned();
    let debug = format!(
        "{source:?} {:?} {:?}",
        source.credential().await.unwrap(),
        Ibsso::builder(fake.base_url(), "u", FakeInfobip::PASSWORD)
    );
    assert!(!debug.contains(&token), "{debug}");
    assert!(!debug.contains(FakeInfobip::PASSWORD), "{debug}");

    let bad = Ibsso::builder(fake.base_url(), FakeInfobip::USERNAME, "secret-wrong-pw")
        .build(client.clone())
        .unwrap();
    let error = bad.credential().await.unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains("secret-wrong-pw"), "{text}");
}

/// A session source logs in at its own base URL; given to a layer for
/// another one, its token would be stamped on that account's requests.
/// Every request the layer would stamp fails instead, unsent, saying why.
#[tokio::test]
async fn a_layer_and_its_session_source_must_name_the_same_base_url() {
    let (fake, source) = started().await;
    let other = FakeInfobip::start().await.unwrap();
    let service = AuthLayer::new(other.base_url(), source).layer(hyper_client());
    let error = send(&service, sms("{}")).await.unwrap_err();
    assert!(error.kind() == ErrorKind::InvalidBaseUrl, "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&fake.base_url().to_string()), "{message}");
    assert!(message.contains(&other.base_url().to_string()), "{message}");
    assert_eq!(fake.logins() + other.logins(), 0, "no login");
    assert_eq!(other.accepted() + other.rejected(), 0, "nothing sent");
}
