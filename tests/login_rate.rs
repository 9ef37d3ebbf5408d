//! The login rate: every source of the process that logs in to one base URL
//! shares one limit, so a cold start with many accounts queues its logins
//! instead of drawing 429s from a server that throttles them.

mod common;

use futures_util::future::join_all;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{CredentialSource, Ibsso, DEFAULT_LOGIN_RATE};

/// `accounts` sources for the fake's account, each logging in once, all at
/// once; the client's login rate set to `rate` where given.
async fn cold_start(fake: &FakeInfobip, accounts: usize, rate: Option<u32>) {
    let client = common::hyper_client();
    let sources: Vec<Ibsso> = (0..accounts)
        .map(|_| {
            let builder = common::ibsso_builder(fake);
            let builder = match rate {
                Some(rate) => builder.login_rate(rate),
                None => builder,
            };
            builder.build(client.clone()).unwrap()
        })
        .collect();
    let results = join_all(sources.iter().map(|source| source.credential())).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed,
        fake.throttled_logins(),
        "only throttled logins fail"
    );
    for source in &sources {
        assert!(source.stats().logins <= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_of_1000_accounts_draws_no_429_at_200_per_second() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins(200);
    cold_start(&fake, 1000, Some(200)).await;
    assert_eq!(fake.logins(), 1000, "one login per account");
    assert_eq!(fake.throttled_logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_at_the_default_rate_draws_no_429() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins(DEFAULT_LOGIN_RATE);
    cold_start(&fake, 25, None).await;
    assert_eq!(fake.logins(), 25);
    assert_eq!(fake.throttled_logins(), 0);
}

/// The control: the same server, a client that does not hold back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_limit_the_same_cold_start_is_throttled() {
    let fake = FakeInfobip::start().await.unwrap();
    fake.throttle_logins(DEFAULT_LOGIN_RATE);
    cold_start(&fake, 25, Some(1_000_000)).await;
    assert!(fake.throttled_logins() > 0);
}
