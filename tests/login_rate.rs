//! The login rate: every source of the process that logs in to one base URL
//! shares one limit, so a cold start with many accounts queues its logins
//! instead of drawing 429s from a server that throttles them, whichever
//! way that server counts, and users' logins cannot hold the service's own
//! back.

mod common;

use std::time::Duration;

use futures_util::future::join_all;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{CredentialSource, Ibsso, UserSession};

/// Logins a second Infobip allows.
const INFOBIP_LOGIN_RATE: u32 = 10;

/// `accounts` sources for the fake's account, each logging in once, all at
/// once; the client's login rate set to `rate` where given. A cold start
/// of many accounts waits its turn for longer than the default login
/// timeout, so the sources get a minute.
async fn cold_start(fake: &FakeInfobip, accounts: usize, rate: Option<u32>) -> usize {
    let client = common::hyper_client();
    let sources: Vec<Ibsso> = (0..accounts)
        .map(|_| {
            let builder = common::ibsso_builder(fake).login_timeout(Duration::from_secs(60));
            let builder = match rate {
                Some(rate) => builder.login_rate(rate),
                None => builder,
            };
            builder.build(client.clone()).unwrap()
        })
        .collect();
    let results = join_all(sources.iter().map(|source| source.credential())).await;
    for source in &sources {
        assert!(source.stats().logins <= 1);
    }
    results.iter().filter(|r| r.is_err()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_of_1000_accounts_draws_no_429_at_200_per_second() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins(200);
    let failed = cold_start(&fake, 1000, Some(200)).await;
    assert_eq!(
        failed,
        fake.throttled_logins(),
        "only throttled logins fail"
    );
    assert_eq!(fake.logins(), 1000, "one login per account");
    assert_eq!(fake.throttled_logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_at_the_default_rate_draws_no_429_from_a_token_bucket() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins(INFOBIP_LOGIN_RATE);
    assert_eq!(cold_start(&fake, 25, None).await, 0);
    assert_eq!(fake.logins(), 25);
    assert_eq!(fake.throttled_logins(), 0);
}

/// The strictest reading of "10 a second": no more than 10 in any second.
/// Logins spaced exactly 100 ms apart break it on the first jitter; the
/// default rate leaves room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_of_300_sessions_draws_no_429_from_a_sliding_second() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins_sliding(INFOBIP_LOGIN_RATE);
    assert_eq!(cold_start(&fake, 300, None).await, 0, "no request failed");
    assert_eq!(fake.logins(), 300);
    assert_eq!(fake.throttled_logins(), 0);
}

/// The control: the same server, a client that does not hold back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_limit_the_same_cold_start_is_throttled() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins_sliding(INFOBIP_LOGIN_RATE);
    cold_start(&fake, 25, Some(1_000_000)).await;
    assert!(fake.throttled_logins() > 0);
}

/// A login that waits past its login timeout for a turn fails `Throttled`,
/// without being sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_beyond_the_login_timeout_fails_throttled_and_sends_nothing() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = common::hyper_client();
    let build = |timeout| {
        common::ibsso_builder(&fake)
            .login_rate(1)
            .login_timeout(timeout)
            .build(client.clone())
            .unwrap()
    };
    build(Duration::from_secs(5)).credential().await.unwrap();
    let error = build(Duration::from_millis(100))
        .credential()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), infobip_auth::ErrorKind::Throttled, "{error}");
    assert_eq!(fake.logins(), 1, "the second login was never sent");
}

/// Users' logins abandoned half-way (a visitor who closes the page, or an
/// attacker who submits the login form and hangs up) give their turns
/// back, and however many users queue, the service's own session logs in
/// within its login timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighty_abandoned_user_logins_leave_the_service_login_within_its_timeout() {
    let fake = FakeInfobip::start().await.unwrap();
    let client = common::hyper_client();
    let service = common::ibsso_builder(&fake)
        .login_timeout(Duration::from_secs(1))
        .build(client.clone())
        .unwrap();
    let user_login = || {
        UserSession::login(
            fake.base_url(),
            FakeInfobip::USERNAME,
            FakeInfobip::PASSWORD,
            client.clone(),
        )
    };
    // One login takes the turn now: the rest have to wait.
    user_login().await.unwrap();
    let abandoned = (0..80).map(|_| tokio::time::timeout(Duration::from_millis(5), user_login()));
    for outcome in join_all(abandoned).await {
        assert!(outcome.is_err(), "abandoned while waiting for its turn");
    }
    // And 80 more that stay queued while the service logs in.
    let queued: Vec<_> = (0..80).map(|_| tokio::spawn(user_login())).collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    service
        .credential()
        .await
        .expect("the service logs in within its 1 s login timeout");
    assert_eq!(service.stats().logins, 1);
    for user in queued {
        user.abort();
    }
}
