//! Fault-injected soak: many requests at high concurrency through a
//! hyper-util client + `AuthLayer` + `Ibsso` against `FakeInfobip`, while
//! sessions are revoked, logins fail and slow down, 401s arrive before the
//! body was read, and connections drop.
//!
//! Bounded by default (`SOAK_REQUESTS`, default 20,000; `SOAK_CONCURRENCY`,
//! default 256). A larger run: `SOAK_REQUESTS=200000 cargo test --release
//! --all-features --test soak -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{hyper_client_for, streaming, StreamingBody};
use futures_util::stream::{self, StreamExt};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{AuthError, AuthLayer};
use tower::{Layer, ServiceExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so a failing run can be
/// repeated with the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn body_of(id: usize) -> Vec<Bytes> {
    let text = format!(
        "{{\"id\":{id},\"pad\":\"{}\"}}",
        "x".repeat((id * 37) % 3000)
    );
    text.into_bytes()
        .chunks(512)
        .map(Bytes::copy_from_slice)
        .collect()
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Status(u16),
    Error(String),
    Hung,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_loses_nothing_and_replays_at_most_once() {
    let requests = env("SOAK_REQUESTS", 20_000);
    let concurrency = env("SOAK_CONCURRENCY", 256);
    let seed = env("SOAK_SEED", 0x5eed) as u64 | 1;
    let fake = FakeInfobip::start().await.unwrap();
    fake.fail_every_nth_login(10, StatusCode::SERVICE_UNAVAILABLE);

    let client = hyper_client_for::<StreamingBody>();
    let login_client = common::hyper_client();
    let session = common::ibsso_builder(&fake)
        .backoff(Duration::from_millis(5), Duration::from_millis(100))
        .login_timeout(Duration::from_secs(5))
        .build(login_client)
        .unwrap();
    let service = AuthLayer::new(fake.base_url(), session.clone()).layer(client);

    // Faults are decided per request, before it is sent.
    let mut rng = Rng(seed);
    let (mut revocations, mut early, mut drops) = (0, 0, 0);
    let mut plan = Vec::with_capacity(requests);
    for _ in 0..requests {
        let roll = rng.below(1000);
        plan.push((roll, rng.below(200)));
    }

    let started = Instant::now();
    let fake_ref = &fake;
    let outcomes: Vec<(usize, Outcome)> = stream::iter(plan.into_iter().enumerate())
        .map(|(id, (roll, latency))| {
            match roll {
                0..=9 => {
                    fake_ref.set_login_latency(Duration::from_millis(latency));
                    fake_ref.revoke_sessions();
                    revocations += 1;
                }
                10..=14 => {
                    fake_ref.reject_early(1, 100);
                    early += 1;
                }
                15..=17 => {
                    fake_ref.drop_next(1);
                    drops += 1;
                }
                _ => {}
            }
            let request = Request::post("/sms/2/text/advanced")
                .header("x-request-id", id.to_string())
                .body(streaming(body_of(id)))
                .unwrap();
            let call = service.clone().oneshot(request);
            async move {
                let outcome = match tokio::time::timeout(Duration::from_secs(30), call).await {
                    Err(_) => Outcome::Hung,
                    Ok(Err(error)) => Outcome::Error(format!("{:?}", AuthError::kind(&error))),
                    Ok(Ok(response)) => {
                        let status = response.status();
                        let _ = response.into_body().collect().await;
                        if status == StatusCode::OK {
                            Outcome::Ok
                        } else {
                            Outcome::Status(status.as_u16())
                        }
                    }
                };
                (id, outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut tally: BTreeMap<&Outcome, usize> = BTreeMap::new();
    for (_, outcome) in &outcomes {
        *tally.entry(outcome).or_default() += 1;
    }
    let stats = session.stats();
    let attempts = fake.attempts_by_request_id();
    let accepted = fake.accepted_requests();
    println!(
        "soak: {requests} requests at concurrency {concurrency} in {:.1} s (seed {seed})",
        elapsed.as_secs_f64()
    );
    println!("soak: outcomes {tally:?}");
    println!(
        "soak: faults revocations={revocations} early_401={early} dropped={} failed_logins={}",
        fake.dropped(),
        fake.failed_logins()
    );
    println!(
        "soak: logins={} renewals={} replays={} replays_skipped={}",
        fake.logins(),
        stats.renewals,
        stats.replays,
        stats.replays_skipped
    );

    // Every request ended, in a response or a typed error; none hung.
    assert_eq!(outcomes.len(), requests);
    assert!(!tally.contains_key(&Outcome::Hung), "a request hung");
    assert!(tally.get(&Outcome::Ok).copied().unwrap_or(0) > requests / 2);

    // Processed at most once; every success exactly once, byte for byte.
    let mut processed: BTreeMap<usize, usize> = BTreeMap::new();
    for request in &accepted {
        let id: usize = request.request_id.as_ref().unwrap().parse().unwrap();
        *processed.entry(id).or_default() += 1;
        assert_eq!(request.body, body_of(id).concat(), "body of request {id}");
    }
    assert!(
        processed.values().all(|&n| n == 1),
        "a request was processed twice"
    );
    for (id, outcome) in &outcomes {
        if *outcome == Outcome::Ok {
            assert_eq!(
                processed.get(id),
                Some(&1),
                "success {id} not processed once"
            );
        }
    }

    // Sent at most twice: the first attempt and one replay.
    assert!(
        attempts.values().all(|&n| n <= 2),
        "a request was replayed more than once"
    );

    // One login per event that ends a session, per failed login, plus the first.
    assert!(drops >= fake.dropped());
    let bound = revocations + early + fake.failed_logins() + 1;
    assert!(
        fake.logins() <= bound,
        "{} logins > bound {bound}",
        fake.logins()
    );
}
