//! Stores that stall, replay and lie: whatever a store answers, requests
//! keep succeeding (at worst each replica logs in on its own), and no
//! store answer makes a replica delete a record it did not itself see
//! answered 401.
//!
//! The replicas are session engines in one process over one store kept in
//! memory, wrapped so that it misbehaves on cue; `FakeInfobip` is the
//! server. `tests/fleet.rs` runs the same stall against a real
//! `redis-server` across processes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::{hyper_client, send, sms, HyperClient};
use http::StatusCode;
use infobip_auth::store::{SealingKey, SessionStore, SharedStore, StoreFuture, StoredSession};
use infobip_auth::testing::FakeInfobip;
use infobip_auth::ErrorKind;
use infobip_auth::{AuthLayer, AuthService, Ibsso};
use tokio::time::Instant;
use tower::Layer;

const STORE_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Memory {
    record: Option<StoredSession>,
    /// The lease's holder, and when it lapses.
    lease: Option<(String, Instant)>,
    last_generation: u64,
}

/// A store in memory that misbehaves on cue.
#[derive(Default)]
struct Hostile {
    memory: Mutex<Memory>,
    /// Calls wait until then, as on a Redis server busy with `DEBUG
    /// SLEEP`: a save sent meanwhile is applied when it wakes.
    stalled_until: Mutex<Option<Instant>>,
    /// The next lease taken stalls the store for this long (ms; 0: not).
    stall_on_lease: AtomicU64,
    /// Loads hand back this record, under ever higher generations.
    replay: Mutex<Option<Vec<u8>>>,
    /// The next save is given generation `u64::MAX`.
    max_generation_once: AtomicBool,
    /// Loads hand back a record this many bytes long (0: not).
    oversized: AtomicUsize,
    saves: AtomicUsize,
    /// Saves whose record was removed before any revocation.
    removes: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hostile {
    async fn wait_if_stalled(&self) {
        let until = *lock(&self.stalled_until);
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn current(&self) -> Option<StoredSession> {
        lock(&self.memory).record.clone()
    }
}

/// The store, shared by the replicas and the test.
#[derive(Clone, Default)]
struct Store(Arc<Hostile>);

impl SessionStore for Store {
    fn load<'a>(&'a self, _: &'a str) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            let store = &self.0;
            store.wait_if_stalled().await;
            let oversized = store.oversized.load(Ordering::SeqCst);
            if oversized > 0 {
                let generation = 1;
                return Ok(Some(StoredSession {
                    generation,
                    sealed: vec![2; oversized],
                }));
            }
            let replay = lock(&store.replay).clone();
            let mut memory = lock(&store.memory);
            if let Some(sealed) = replay {
                memory.last_generation += 1;
                let generation = memory.last_generation;
                return Ok(Some(StoredSession { generation, sealed }));
            }
            Ok(memory.record.clone())
        })
    }

    fn save<'a>(
        &'a self,
        _: &'a str,
        sealed: &'a [u8],
        _: Option<Duration>,
    ) -> StoreFuture<'a, u64> {
        // Sent now, applied once the store answers again, whoever still
        // waits for the answer.
        let store = self.0.clone();
        let sealed = sealed.to_vec();
        let applied = tokio::spawn(async move {
            store.wait_if_stalled().await;
            store.saves.fetch_add(1, Ordering::SeqCst);
            let mut memory = lock(&store.memory);
            // The lie: once u64::MAX, then on from its own counter.
            memory.last_generation += 1;
            let generation = match store.max_generation_once.swap(false, Ordering::SeqCst) {
                true => u64::MAX,
                false => memory.last_generation,
            };
            memory.record = Some(StoredSession { generation, sealed });
            generation
        });
        Box::pin(async move { Ok(applied.await?) })
    }

    fn remove<'a>(&'a self, _: &'a str, generation: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.0.wait_if_stalled().await;
            let mut memory = lock(&self.0.memory);
            let holds = memory
                .record
                .as_ref()
                .is_some_and(|r| r.generation == generation);
            if holds {
                memory.record = None;
                self.0.removes.fetch_add(1, Ordering::SeqCst);
            }
            Ok(holds)
        })
    }

    fn try_lease<'a>(
        &'a self,
        _: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.0.wait_if_stalled().await;
            let mut memory = lock(&self.0.memory);
            let now = Instant::now();
            if memory
                .lease
                .as_ref()
                .is_some_and(|(_, lapses)| now < *lapses)
            {
                return Ok(false);
            }
            memory.lease = Some((holder.to_owned(), now + ttl));
            let stall = self.0.stall_on_lease.swap(0, Ordering::SeqCst);
            if stall > 0 {
                *lock(&self.0.stalled_until) = Some(Instant::now() + Duration::from_millis(stall));
            }
            Ok(true)
        })
    }

    fn release<'a>(&'a self, _: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.0.wait_if_stalled().await;
            let mut memory = lock(&self.0.memory);
            if memory.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                memory.lease = None;
            }
            Ok(())
        })
    }
}

struct Replica {
    service: AuthService<HyperClient, Ibsso>,
    session: Ibsso,
}

fn replicas(fake: &FakeInfobip, store: &Store, n: usize) -> Vec<Replica> {
    (0..n)
        .map(|_| {
            let shared = SharedStore::new(store.clone(), "hostile", SealingKey::new([7; 32]))
                .timeout(STORE_TIMEOUT)
                .poll_interval(Duration::from_millis(5));
            let session = common::ibsso_builder(fake)
                .bind_to_client_ip(false)
                .login_rate(1_000_000)
                .login_timeout(Duration::from_secs(2))
                .shared_store(shared)
                .build(hyper_client())
                .unwrap();
            let service = AuthLayer::new(fake.base_url(), session.clone()).layer(hyper_client());
            Replica { service, session }
        })
        .collect()
}

async fn ok(service: &AuthService<HyperClient, Ibsso>) -> bool {
    matches!(send(service, sms("{}")).await, Ok((StatusCode::OK, _)))
}

/// Continuous requests from every replica until stopped; counts failures.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(replicas: &[Replica]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for replica in replicas {
            for _ in 0..4 {
                let (service, stop) = (replica.service.clone(), stop.clone());
                let (sent, failed) = (sent.clone(), failed.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if !ok(&service).await {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
        }
        Self {
            stop,
            sent,
            failed,
            tasks,
        }
    }

    /// Stops; (sent, failed).
    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Revokes every session and waits until every replica has renewed its own
/// (its renewals counter moved past `seen` and it holds a session again).
async fn revoke_and_renew(fake: &FakeInfobip, replicas: &[Replica]) {
    let renewals = |r: &Replica| r.session.stats().renewals;
    let seen: Vec<u64> = replicas.iter().map(renewals).collect();
    fake.revoke_sessions();
    // A request from each, so that each meets the revocation.
    let requests = replicas.iter().map(|r| ok(&r.service));
    for ok in futures_util::future::join_all(requests).await {
        assert!(ok, "a request after the revocation succeeded");
    }
    let renewed = async {
        while !replicas
            .iter()
            .zip(&seen)
            .all(|(r, seen)| renewals(r) > *seen && r.session.has_session())
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), renewed)
        .await
        .expect("every replica renewed its session");
    // Requests already under way with the old sessions settle.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn warm(replicas: &[Replica]) {
    for replica in replicas {
        assert!(ok(&replica.service).await, "the warm-up request succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_that_times_out_but_lands_is_never_taken_as_a_renewal_after_a_revocation() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = Store::default();
    let replicas = replicas(&fake, &store, 4);
    warm(&replicas).await;
    let load = Load::start(&replicas);

    // The next lease holder finds the store stalled for longer than the
    // store timeout while it saves: its save is applied after it gave up.
    fake.set_login_latency(Duration::from_millis(50));
    store.0.stall_on_lease.store(400, Ordering::SeqCst);
    let saves = store.0.saves.load(Ordering::SeqCst);
    revoke_and_renew(&fake, &replicas).await;
    fake.set_login_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        store.0.saves.load(Ordering::SeqCst) > saves,
        "the stalled save was applied"
    );
    let errors: u64 = replicas
        .iter()
        .map(|r| r.session.stats().store_errors)
        .sum();
    assert!(errors > 0, "the stall was seen");

    for _ in 0..3 {
        revoke_and_renew(&fake, &replicas).await;
    }
    let (sent, failed) = load.finish().await;
    assert!(sent > 0);
    assert_eq!(failed, 0, "no request failed, of {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_replaying_an_old_record_under_ever_higher_generations_costs_logins_not_requests() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = Store::default();
    let replicas = replicas(&fake, &store, 4);
    warm(&replicas).await;
    assert_eq!(fake.logins(), 1, "the replicas share one session");
    let old = store.0.current().expect("a stored session").sealed;
    let load = Load::start(&replicas);
    revoke_and_renew(&fake, &replicas).await;

    // From now on every load hands back the revoked session's record.
    *lock(&store.0.replay) = Some(old);
    for _ in 0..3 {
        let before = fake.logins();
        revoke_and_renew(&fake, &replicas).await;
        assert!(
            fake.logins() > before,
            "real logins, not the replayed record"
        );
    }
    let (sent, failed) = load.finish().await;
    assert_eq!(failed, 0, "no request failed, of {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_under_generation_u64_max_neither_stops_sharing_nor_deletes_fresh_records() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = Store::default();
    store.0.max_generation_once.store(true, Ordering::SeqCst);
    let replicas = replicas(&fake, &store, 4);
    warm(&replicas).await;
    assert_eq!(store.0.current().unwrap().generation, u64::MAX);
    assert_eq!(fake.logins(), 1, "the replicas share one session");

    for _ in 0..3 {
        let (logins, removes) = (fake.logins(), store.0.removes.load(Ordering::SeqCst));
        revoke_and_renew(&fake, &replicas).await;
        // A replica that takes the revoked record from the store may remove
        // it; nobody removes the fresh one, so the fleet goes on sharing.
        assert!(
            fake.logins() - logins <= 2,
            "the fleet still shares: {} logins for 4 replicas",
            fake.logins() - logins
        );
        assert!(store.0.removes.load(Ordering::SeqCst) - removes <= 1);
        assert!(store.0.current().is_some(), "the fresh record stays");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_is_a_miss_not_a_failed_request() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = Store::default();
    store.0.oversized.store(1 << 20, Ordering::SeqCst);
    let replicas = replicas(&fake, &store, 2);
    warm(&replicas).await;
    let load = Load::start(&replicas);
    revoke_and_renew(&fake, &replicas).await;
    let (sent, failed) = load.finish().await;
    assert_eq!(failed, 0, "no request failed, of {sent}");
    let hits: u64 = replicas.iter().map(|r| r.session.stats().shared_hits).sum();
    assert_eq!(hits, 0, "the oversized record was never taken");
}

/// Every duration a builder takes, at `Duration::MAX`: clamped, so the
/// replicas still share one login and serve, and a failed login backs off
/// for at most a day.
#[tokio::test]
async fn settings_at_duration_max_are_clamped_and_still_serve() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = Store::default();
    let build = |name: &str, password: &str| {
        let shared = SharedStore::new(store.clone(), name, SealingKey::new([7; 32]))
            .timeout(Duration::MAX)
            .poll_interval(Duration::MAX);
        let session = Ibsso::builder(fake.base_url(), FakeInfobip::USERNAME, password)
            .bind_to_client_ip(false)
            .login_timeout(Duration::MAX)
            .backoff(Duration::MAX, Duration::MAX)
            .idle_timeout(Duration::MAX)
            .shared_store(shared)
            .build(hyper_client())
            .unwrap();
        AuthLayer::new(fake.base_url(), session).layer(hyper_client())
    };
    let fleet = || build("extreme", FakeInfobip::PASSWORD);
    for replica in [fleet(), fleet()] {
        assert!(ok(&replica).await);
    }
    assert_eq!(fake.logins(), 1, "one login, shared");

    // A store name of its own: the fleet's record would serve it otherwise.
    let wrong = build("extreme-wrong", "wrong-password");
    let error = send(&wrong, sms("{}")).await.unwrap_err();
    assert!(
        error.kind() == ErrorKind::BadCredentials || error.kind() == ErrorKind::BackingOff,
        "{error}"
    );
    let error = send(&wrong, sms("{}")).await.unwrap_err();
    assert!(error.kind() == ErrorKind::BackingOff, "{error}");
    let day = Duration::from_secs(86_400);
    assert!(error.retry_after().is_some_and(|wait| wait <= day));
}
