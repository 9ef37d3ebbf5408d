//! Sessions shared by many processes through a real `redis-server` on
//! loopback (`.ci/run` installs Debian's package when it is missing).
//!
//! The fleet tests run real OS processes: this test binary started again
//! with `--ignored --exact fleet_node`, each a replica with its own client
//! stack and session engine, talking to the parent's `FakeInfobip` and
//! Redis.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{hyper_client, send, sms, HyperClient};
use http::StatusCode;
use infobip_auth::store::{RedisStore, SealingKey, SessionStore, SharedStore};
use infobip_auth::testing::{FakeInfobip, RedisServer};
use infobip_auth::ErrorKind;
use infobip_auth::{AuthLayer, AuthService, BaseUrl, Ibsso, OAuth2};
use redis::AsyncCommands;
use tower::Layer;

const NAME: &str = "fleet-test";
const NODE_ENV: &str = "INFOBIP_AUTH_FLEET_NODE";

fn sealing_key() -> SealingKey {
    SealingKey::new([42; 32])
}

fn shared(redis: &str) -> SharedStore {
    SharedStore::new(RedisStore::new(redis).unwrap(), NAME, sealing_key())
}

fn replica_session(base: BaseUrl, redis: &str, login_timeout: Duration) -> Ibsso {
    Ibsso::builder(base, FakeInfobip::USERNAME, FakeInfobip::PASSWORD)
        .bind_to_client_ip(false)
        .login_rate(1_000_000)
        .login_timeout(login_timeout)
        .shared_store(shared(redis))
        .build(hyper_client())
        .unwrap()
}

/// One replica: its own client and session engine.
fn replica(fake: &FakeInfobip, redis: &str) -> (AuthService<HyperClient, Ibsso>, Ibsso) {
    let session = replica_session(fake.base_url(), redis, Duration::from_secs(10));
    let service = AuthLayer::new(fake.base_url(), session.clone()).layer(hyper_client());
    (service, session)
}

async fn ok(service: &AuthService<HyperClient, Ibsso>) -> bool {
    matches!(send(service, sms("{}")).await, Ok((StatusCode::OK, _)))
}

/// Sends `n` requests at once; how many were answered 200.
async fn burst(service: &AuthService<HyperClient, Ibsso>, n: usize) -> usize {
    let requests = (0..n).map(|_| ok(service));
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

async fn redis_connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn session_key(name: &str) -> String {
    format!("infobip-auth:{{{name}}}:session")
}

/// The generation Redis holds for `name`'s session, if any.
async fn stored_generation(redis: &RedisServer, name: &str) -> Option<u64> {
    let mut c = redis_connection(redis).await;
    let generation: Option<String> = c.hget(session_key(name), "generation").await.unwrap();
    generation.map(|g| g.parse().unwrap())
}

// ---- the replica process -------------------------------------------------

/// The replica process's body; runs only when started by a fleet test.
///
/// Sends one request, prints `fleet-node ready <ok>`, then waits for a line
/// on stdin and sends `INFOBIP_AUTH_FLEET_REQUESTS` requests at once, and
/// prints `fleet-node done ok=<n> logins=<n> shared_hits=<n>`.
#[test]
#[ignore = "a replica process, started by the fleet tests"]
fn fleet_node() {
    let env = |name: &str| std::env::var(name).expect(name);
    let base = BaseUrl::insecure_loopback(&env("INFOBIP_AUTH_FLEET_BASE")).unwrap();
    let redis = env("INFOBIP_AUTH_FLEET_REDIS");
    let requests: usize = env("INFOBIP_AUTH_FLEET_REQUESTS").parse().unwrap();
    let timeout = Duration::from_millis(env("INFOBIP_AUTH_FLEET_TIMEOUT_MS").parse().unwrap());
    assert_eq!(env(NODE_ENV), "1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let session = replica_session(base.clone(), &redis, timeout);
        let service = AuthLayer::new(base, session.clone()).layer(hyper_client());
        println!("fleet-node ready {}", ok(&service).await);
        if requests > 0 {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            let ok = burst(&service, requests).await;
            let stats = session.stats();
            println!(
                "fleet-node done ok={ok} logins={} shared_hits={}",
                stats.logins, stats.shared_hits
            );
        }
    });
}

/// A replica under continuous load, for the fault tests: after a warm-up
/// request (`fleet-node ready <ok>`), eight loops send requests until a
/// line arrives on stdin, then it prints `fleet-node done sent=<n>
/// failed=<n> store_errors=<n>`.
#[test]
#[ignore = "a replica process, started by the fleet tests"]
fn fleet_load_node() {
    let env = |name: &str| std::env::var(name).expect(name);
    let base = BaseUrl::insecure_loopback(&env("INFOBIP_AUTH_FLEET_BASE")).unwrap();
    let redis = env("INFOBIP_AUTH_FLEET_REDIS");
    let timeout = Duration::from_millis(env("INFOBIP_AUTH_FLEET_TIMEOUT_MS").parse().unwrap());
    assert_eq!(env(NODE_ENV), "1");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let session = replica_session(base.clone(), &redis, timeout);
        let service = AuthLayer::new(base, session.clone()).layer(hyper_client());
        println!("fleet-node ready {}", ok(&service).await);
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let load: Vec<_> = (0..8)
            .map(|_| {
                let (service, stop) = (service.clone(), stop.clone());
                let (sent, failed) = (sent.clone(), failed.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if !ok(&service).await {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
        })
        .await
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        println!(
            "fleet-node done sent={} failed={} store_errors={}",
            sent.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            session.stats().store_errors
        );
    });
}

struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Node {
    fn start(fake: &FakeInfobip, redis: &RedisServer, requests: usize, timeout_ms: u64) -> Self {
        Self::start_as("fleet_node", fake, redis, requests, timeout_ms)
    }

    /// A replica running the test function `node`.
    fn start_as(
        node: &str,
        fake: &FakeInfobip,
        redis: &RedisServer,
        requests: usize,
        timeout_ms: u64,
    ) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", node, "--nocapture", "--quiet"])
            .env(NODE_ENV, "1")
            .env("INFOBIP_AUTH_FLEET_BASE", fake.base_url().as_str())
            .env("INFOBIP_AUTH_FLEET_REDIS", redis.url())
            .env("INFOBIP_AUTH_FLEET_REQUESTS", requests.to_string())
            .env("INFOBIP_AUTH_FLEET_TIMEOUT_MS", timeout_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(line) = line.strip_prefix("fleet-node ") {
                    let _ = tx.send(line.to_owned());
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The replica's next report, waiting at most a minute.
    fn report(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the replica reported")
    }

    fn go(&mut self) {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    fn field(report: &str, name: &str) -> usize {
        report
            .split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {report:?}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` on a blocking thread, so that the fake server keeps answering
/// on the runtime while the test waits for its replicas.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

// ---- the tests -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_log_in_once_between_them_after_a_revocation() {
    const NODES: usize = 8;
    const REQUESTS: usize = 500;
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|_| Node::start(&fake, &redis, REQUESTS, 10_000))
        .collect();
    let nodes_ready = blocking(move || {
        for node in &nodes {
            assert_eq!(node.report(), "ready true", "the warm-up request succeeded");
        }
        nodes
    });
    nodes = nodes_ready.await;

    fake.revoke_sessions();
    let before = fake.logins();
    for node in &mut nodes {
        node.go();
    }
    let reports = blocking(move || nodes.iter().map(Node::report).collect::<Vec<_>>()).await;

    let ok: usize = reports.iter().map(|r| Node::field(r, "ok")).sum();
    assert_eq!(ok, NODES * REQUESTS, "every request succeeded: {reports:?}");
    assert_eq!(
        fake.logins() - before,
        1,
        "one login for the whole fleet: {reports:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_while_logging_in_is_taken_over_when_its_lease_lapses() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    fake.set_login_latency(Duration::from_millis(1500));
    let lease = format!("infobip-auth:{{{NAME}}}:lease");

    // The first replica takes the lease and starts its login...
    let mut holder = Node::start(&fake, &redis, 0, 3_000);
    let mut c = redis_connection(&redis).await;
    let leased = async {
        while !c.exists::<_, bool>(&lease).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), leased)
        .await
        .expect("the replica took the lease");
    // ...and dies before it ends.
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let dead: Option<String> = c.get(&lease).await.unwrap();
    assert!(dead.is_some(), "the dead holder's lease stays");
    assert_eq!(stored_generation(&redis, NAME).await, None);

    let heir = Node::start(&fake, &redis, 0, 3_000);
    // The heir logs in under a lease of its own, taken once the dead one
    // lapsed (not on its own after waiting out its login timeout).
    let taken_over = async {
        loop {
            let holder: Option<String> = c.get(&lease).await.unwrap();
            if holder.is_some() && holder != dead {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), taken_over)
        .await
        .expect("the heir took the lease");
    let report = blocking(move || heir.report()).await;
    assert_eq!(report, "ready true", "the next replica logged in");
    assert!(
        stored_generation(&redis, NAME).await.is_some(),
        "and stored the session"
    );
    assert!(
        !c.exists::<_, bool>(&lease).await.unwrap(),
        "and gave the lease back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_no_request_and_once_restarted_shares_again() {
    let fake = FakeInfobip::start().await.unwrap();
    let mut redis = RedisServer::start().unwrap();
    let replicas: Vec<_> = (0..4).map(|_| replica(&fake, &redis.url())).collect();
    for (service, _) in &replicas {
        assert!(ok(service).await);
    }
    assert_eq!(fake.logins(), 1, "the replicas share one session");

    // Load on every replica for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for (service, _) in &replicas {
        for _ in 0..8 {
            let (service, stop) = (service.clone(), stop.clone());
            let (sent, failed) = (sent.clone(), failed.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if !ok(&service).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    // Until every replica has dropped the revoked session and holds a new one.
    let sessions: Vec<Ibsso> = replicas.iter().map(|(_, s)| s.clone()).collect();
    let until_renewed = |count: u64| {
        let sessions = sessions.clone();
        async move {
            let renewals = || sessions.iter().map(|s| s.stats().renewals).sum::<u64>();
            let renewed = async {
                while renewals() < count || !sessions.iter().all(Ibsso::has_session) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), renewed)
                .await
                .expect("every replica renewed its session");
        }
    };

    redis.kill();
    let before = fake.logins();
    fake.revoke_sessions();
    until_renewed(4).await;
    let down = fake.logins() - before;
    assert!(
        (1..=4).contains(&down),
        "with Redis down, at most one login per replica: {down}"
    );
    let errors: u64 = replicas.iter().map(|(_, s)| s.stats().store_errors).sum();
    assert!(errors > 0, "the store errors are counted");

    redis.restart().unwrap();
    let before = fake.logins();
    fake.revoke_sessions();
    until_renewed(8).await;
    assert_eq!(
        fake.logins() - before,
        1,
        "with Redis back, one login for all replicas"
    );

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 0);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
}

/// Redis stalls (`DEBUG SLEEP`) for longer than the store timeout while a
/// lease holder logs in: its save is given up here but applied by Redis
/// when it wakes, and the other replicas log in on their own meanwhile.
/// Revocations after that, under load across four processes, fail no
/// request: no replica takes the record saved before a revocation as its
/// renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_stall_while_a_lease_is_held_then_revocations_fail_no_request() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let mut nodes: Vec<Node> = (0..4)
        .map(|_| Node::start_as("fleet_load_node", &fake, &redis, 0, 10_000))
        .collect();
    nodes = blocking(move || {
        for node in &nodes {
            assert_eq!(node.report(), "ready true", "the warm-up request succeeded");
        }
        nodes
    })
    .await;

    // The next login takes 300 ms; the moment a replica holds the lease,
    // Redis sleeps for 1.5 s, three times the store timeout.
    fake.set_login_latency(Duration::from_millis(300));
    let mut c = redis_connection(&redis).await;
    // A connection that waits out the sleep it asks for.
    let mut sleeper = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .unwrap();
    let lease = format!("infobip-auth:{{{NAME}}}:lease");
    let saved = stored_generation(&redis, NAME).await;
    fake.revoke_sessions();
    let leased = async {
        while !c.exists::<_, bool>(&lease).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), leased)
        .await
        .expect("a replica took the lease");
    let () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("1.5")
        .query_async(&mut sleeper)
        .await
        .unwrap();
    fake.set_login_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_stall = stored_generation(&redis, NAME).await;
    assert!(
        after_stall.is_some() && after_stall != saved,
        "the save made during the stall was applied"
    );

    for _ in 0..3 {
        fake.revoke_sessions();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    for node in &mut nodes {
        node.go();
    }
    let reports = blocking(move || nodes.iter().map(Node::report).collect::<Vec<_>>()).await;
    let sum = |field| reports.iter().map(|r| Node::field(r, field)).sum::<usize>();
    assert!(sum("sent") > 0);
    assert!(sum("store_errors") > 0, "the stall was seen: {reports:?}");
    assert_eq!(sum("failed"), 0, "no request failed: {reports:?}");
}

#[tokio::test]
async fn a_late_401_for_an_old_generation_never_removes_a_newer_stored_session() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let (early, _) = replica(&fake, &redis.url());
    let (late, _) = replica(&fake, &redis.url());
    assert!(ok(&early).await && ok(&late).await);
    let old = stored_generation(&redis, NAME).await.unwrap();
    assert_eq!(fake.logins(), 1);

    fake.revoke_sessions();
    assert!(ok(&early).await, "renewed and replayed");
    let new = stored_generation(&redis, NAME).await.unwrap();
    assert!(new > old);

    // `late` still holds the old session: its 401 comes after the renewal.
    assert!(ok(&late).await);
    assert_eq!(
        stored_generation(&redis, NAME).await,
        Some(new),
        "the newer session is still stored"
    );
    assert_eq!(fake.logins(), 2, "`late` took the stored session");

    // The store's own check, asked directly.
    let store = RedisStore::new(&redis.url()).unwrap();
    assert!(!store.remove(NAME, old).await.unwrap());
    assert_eq!(stored_generation(&redis, NAME).await, Some(new));
    assert!(store.remove(NAME, new).await.unwrap());
    assert_eq!(stored_generation(&redis, NAME).await, None);
}

#[tokio::test]
async fn a_logout_removes_the_stored_session() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let (service, session) = replica(&fake, &redis.url());
    assert!(ok(&service).await);
    assert!(stored_generation(&redis, NAME).await.is_some());
    session.logout().await.unwrap();
    assert_eq!(stored_generation(&redis, NAME).await, None);
    let (other, _) = replica(&fake, &redis.url());
    assert!(ok(&other).await, "the next replica logs in afresh");
    assert_eq!(fake.logins(), 2);
}

#[tokio::test]
async fn redis_holds_no_token_username_or_password_in_clear() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let (service, _) = replica(&fake, &redis.url());
    assert!(ok(&service).await);
    fake.revoke_sessions();
    assert!(ok(&service).await);
    let oauth = OAuth2::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .login_rate(1_000_000)
    .shared_store(SharedStore::new(
        RedisStore::new(&redis.url()).unwrap(),
        "fleet-oauth",
        sealing_key(),
    ))
    .build(hyper_client())
    .unwrap();
    let oauth_service = AuthLayer::new(fake.base_url(), oauth).layer(hyper_client());
    assert_eq!(
        send(&oauth_service, sms("{}")).await.unwrap().0,
        StatusCode::OK
    );

    // Everything Redis holds: every key, every value.
    let mut c = redis_connection(&redis).await;
    let keys: Vec<String> = c.keys("*").await.unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    let mut everything = Vec::new();
    for key in &keys {
        everything.extend_from_slice(key.as_bytes());
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "hash" => c.hgetall::<_, Vec<Vec<u8>>>(key).await.unwrap(),
            "string" => vec![c.get::<_, Vec<u8>>(key).await.unwrap()],
            other => panic!("unexpected {other} at {key}"),
        };
        values.into_iter().for_each(|v| everything.extend(v));
    }
    let text = String::from_utf8_lossy(&everything);
    let tokens = fake.issued_tokens();
    assert_eq!(tokens.len(), 3);
    for secret in tokens.iter().map(String::as_str).chain([
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
        "IBSSO",
        "Bearer",
    ]) {
        assert!(!text.contains(secret), "{secret:?} is in Redis");
    }
}

#[tokio::test]
async fn oauth2_replicas_share_one_token() {
    oauth2_replicas_share_one_token_living(Duration::from_secs(3600)).await;
}

/// A lifetime under twice the refresh margin: the stored token is taken
/// until half its life is gone, not refreshed by every replica at once.
#[tokio::test]
async fn oauth2_replicas_share_a_short_lived_token_too() {
    oauth2_replicas_share_one_token_living(Duration::from_secs(60)).await;
}

async fn oauth2_replicas_share_one_token_living(lifetime: Duration) {
    let fake = FakeInfobip::start().await.unwrap();
    fake.set_oauth_token_lifetime(lifetime);
    let redis = RedisServer::start().unwrap();
    let mut services = Vec::new();
    for _ in 0..3 {
        let source = OAuth2::builder(
            fake.base_url(),
            FakeInfobip::USERNAME,
            FakeInfobip::PASSWORD,
        )
        .login_rate(1_000_000)
        .shared_store(shared(&redis.url()))
        .build(hyper_client())
        .unwrap();
        services.push(AuthLayer::new(fake.base_url(), source).layer(hyper_client()));
    }
    for service in &services {
        assert_eq!(send(service, sms("{}")).await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(fake.logins(), 1);
}

#[tokio::test]
async fn replicas_with_different_sealing_keys_each_log_in_and_stay_correct() {
    let fake = FakeInfobip::start().await.unwrap();
    let redis = RedisServer::start().unwrap();
    let (a, _) = replica(&fake, &redis.url());
    let other = Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .bind_to_client_ip(false)
    .login_rate(1_000_000)
    .shared_store(SharedStore::new(
        RedisStore::new(&redis.url()).unwrap(),
        NAME,
        SealingKey::new([7; 32]),
    ))
    .build(hyper_client())
    .unwrap();
    let b = AuthLayer::new(fake.base_url(), other).layer(hyper_client());
    assert!(ok(&a).await);
    assert!(ok(&b).await, "a record it cannot open is a miss");
    assert_eq!(fake.logins(), 2);
}

#[tokio::test]
async fn redis_down_from_the_start_is_not_an_outage() {
    let fake = FakeInfobip::start().await.unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (service, session) = replica(&fake, &format!("redis://127.0.0.1:{port}/"));
    assert_eq!(burst(&service, 50).await, 50);
    fake.revoke_sessions();
    assert_eq!(burst(&service, 50).await, 50);
    assert_eq!(
        fake.logins(),
        2,
        "one login per revocation, as without a store"
    );
    assert!(session.stats().store_errors >= 2);
}

#[tokio::test]
async fn an_ip_bound_session_cannot_be_shared() {
    let fake = FakeInfobip::start().await.unwrap();
    let error = Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .shared_store(shared("redis://127.0.0.1:1/"))
    .build(hyper_client())
    .unwrap_err();
    assert!(error.kind() == ErrorKind::InvalidConfig, "{error}");
    assert!(error.to_string().contains("bind_to_client_ip(false)"));
}

#[tokio::test]
async fn a_bad_store_name_or_sealing_key_is_a_config_error() {
    let fake = FakeInfobip::start().await.unwrap();
    let store = || RedisStore::new("redis://127.0.0.1:1/").unwrap();
    for name in ["", "a{b}", "line\nbreak"] {
        let error = OAuth2::builder(fake.base_url(), "id", "secret")
            .shared_store(SharedStore::new(store(), name, sealing_key()))
            .build(hyper_client())
            .unwrap_err();
        assert!(
            error.kind() == ErrorKind::InvalidConfig,
            "{name:?}: {error}"
        );
    }
    for key in ["", "not base64!", "AAAA"] {
        let error = SealingKey::from_base64(key).unwrap_err();
        assert!(error.kind() == ErrorKind::InvalidConfig);
        assert!(key.is_empty() || !error.to_string().contains(key));
    }
    assert!(RedisStore::new("not a url").unwrap_err().kind() == ErrorKind::InvalidConfig);
    let key = SealingKey::generate().unwrap();
    assert_eq!(format!("{key:?}"), "SealingKey(\"** redacted **\")");
}
