//! Sessions shared through Redis (a real `redis-server` on loopback).
//!
//! - `FLEET_CASE=ibsso_cached|ibsso_cached_shared` (with `FLEET_ITERS`):
//!   requests on a cached session without and with the shared store
//!   configured, driven by hand as in `overhead`, for instruction counts
//!   under callgrind. The request path never asks the store.
//! - Otherwise: storms after a revocation, wall time from the revocation to
//!   the last answer. 8 processes (this binary started again as replicas)
//!   sending 500 requests each at once, against one process sending 4,000
//!   at once without a store; `FLEET_ROUNDS` rounds (default 5), medians.
//!   Prints `key value` lines for `report.sh`.

mod common;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{round_trip, Drain};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::store::{RedisStore, SealingKey, SharedStore};
use infobip_auth::testing::{FakeInfobip, RedisServer};
use infobip_auth::{AuthLayer, BaseUrl, Ibsso};
use tower::{Layer, ServiceExt};

const NODES: usize = 8;
const PER_NODE: usize = 500;

fn key() -> SealingKey {
    SealingKey::new([9; 32])
}

/// An `Ibsso` holding a valid session; with `redis`, obtained through the
/// shared store (so the session came from the store's login path).
fn cached_session(redis: Option<&RedisServer>) -> Ibsso {
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut builder = Ibsso::builder(base, "user", "password").bind_to_client_ip(false);
    if let Some(redis) = redis {
        let store = RedisStore::new(&redis.url()).unwrap();
        builder = builder.shared_store(SharedStore::new(store, "bench", key()));
    }
    let source = common::logged_in(builder);
    if redis.is_some() {
        assert_eq!(source.stats().store_errors, 0, "the store answered");
    }
    source
}

fn single_case(case: &str, iterations: usize) {
    let redis = RedisServer::start().unwrap();
    let session = match case {
        "ibsso_cached" => cached_session(None),
        "ibsso_cached_shared" => cached_session(Some(&redis)),
        other => panic!("unknown case {other}"),
    };
    let base = session.base_url().clone();
    let mut service = AuthLayer::new(base, session).layer(Drain);
    for _ in 0..iterations {
        let request = Request::post("https://api.infobip.com/sms/2/text/advanced")
            .body(Empty::<Bytes>::new())
            .unwrap();
        black_box(round_trip(&mut service, request));
    }
}

type Service = infobip_auth::AuthService<
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    Ibsso,
>;

fn stack(base: &BaseUrl, shared: Option<SharedStore>) -> Service {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Ibsso::builder(base.clone(), FakeInfobip::USERNAME, FakeInfobip::PASSWORD)
        .bind_to_client_ip(false)
        .login_rate(1_000_000);
    if let Some(shared) = shared {
        builder = builder.shared_store(shared);
    }
    let session = builder.build(client.clone()).unwrap();
    AuthLayer::new(base.clone(), session).layer(client)
}

/// Sends `n` requests at once; how many were answered 200.
async fn burst(service: &Service, n: usize) -> usize {
    let sends = (0..n).map(|_| async {
        let request = Request::post("/sms/2/text/advanced")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        match service.clone().oneshot(request).await {
            Ok(response) if response.status() == StatusCode::OK => {
                response.into_body().collect().await.is_ok()
            }
            Ok(response) => {
                eprintln!("answered {}", response.status());
                false
            }
            Err(e) => {
                eprintln!("failed: {e}");
                false
            }
        }
    });
    futures_util::future::join_all(sends)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

/// A replica: answers each `go` line with a burst, `done <ok>`.
fn node() {
    let base = BaseUrl::insecure_loopback(&std::env::var("FLEET_BASE").unwrap()).unwrap();
    let redis = std::env::var("FLEET_REDIS").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let shared = SharedStore::new(RedisStore::new(&redis).unwrap(), "fleet", key());
        let service = stack(&base, Some(shared));
        println!("ready {}", burst(&service, 1).await);
        for line in std::io::stdin().lock().lines() {
            if line.unwrap() != "go" {
                break;
            }
            println!("done {}", burst(&service, PER_NODE).await);
        }
    });
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Node {
    fn report(&mut self) -> String {
        self.lines.next().unwrap().unwrap()
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn storms(rounds: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeInfobip::start()).unwrap();
    let redis = RedisServer::start().unwrap();
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env("FLEET_NODE", "1")
                .env("FLEET_BASE", fake.base_url().as_str())
                .env("FLEET_REDIS", redis.url())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = child.stdin.take().unwrap();
            let lines = BufReader::new(child.stdout.take().unwrap()).lines();
            Node {
                child,
                stdin,
                lines,
            }
        })
        .collect();
    for node in &mut nodes {
        assert_eq!(node.report(), "ready 1");
    }
    let single = stack(&fake.base_url(), None);
    assert_eq!(runtime.block_on(burst(&single, 1)), 1);

    let (mut fleet_ms, mut single_ms) = (Vec::new(), Vec::new());
    let (mut fleet_logins, mut single_logins) = (0, 0);
    for _ in 0..rounds {
        let before = fake.logins();
        fake.revoke_sessions();
        let start = Instant::now();
        for node in &mut nodes {
            node.stdin.write_all(b"go\n").unwrap();
        }
        for node in &mut nodes {
            assert_eq!(node.report(), format!("done {PER_NODE}"));
        }
        fleet_ms.push(start.elapsed().as_secs_f64() * 1e3);
        fleet_logins = fleet_logins.max(fake.logins() - before);

        let before = fake.logins();
        fake.revoke_sessions();
        let start = Instant::now();
        assert_eq!(
            runtime.block_on(burst(&single, NODES * PER_NODE)),
            NODES * PER_NODE
        );
        single_ms.push(start.elapsed().as_secs_f64() * 1e3);
        single_logins = single_logins.max(fake.logins() - before);
    }
    for mut node in nodes {
        drop(node.stdin);
        node.child.wait().unwrap();
    }
    let (fleet, single) = (median(fleet_ms), median(single_ms));
    println!("fleet_storm_ms {fleet:.1}");
    println!("single_storm_ms {single:.1}");
    println!("fleet_storm_ratio {:.2}", fleet / single);
    println!("fleet_storm_most_logins {fleet_logins}");
    println!("single_storm_most_logins {single_logins}");
    println!("fleet_storm_rounds {rounds}");
    std::thread::sleep(Duration::from_millis(10));
}

fn main() {
    if std::env::var_os("FLEET_NODE").is_some() {
        return node();
    }
    if let Ok(case) = std::env::var("FLEET_CASE") {
        let iterations = std::env::var("FLEET_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        return single_case(&case, iterations);
    }
    let rounds = std::env::var("FLEET_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    storms(rounds);
}
