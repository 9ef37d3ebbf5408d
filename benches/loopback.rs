//! End-to-end figures on 127.0.0.1 against `FakeInfobip`:
//!
//! - `storm`: 10,000 concurrent requests, all stamped with a session the
//!   server has just revoked, through a hyper-util client (HTTP/2, one
//!   connection); logins (asserted: exactly 1) and sends per request
//!   (asserted: 1 or 2) in every round, time to completion beside the same
//!   10,000 requests on a valid session.
//! - `throughput`: requests/second at concurrency 64 through a hyper-util
//!   client (HTTP/1.1 pool), `AuthLayer` + `Ibsso` against tower-http
//!   stamping the same valid token, rounds interleaved.
//!
//! Prints `key value` lines that `benches/report.sh` reads, and each storm
//! round on stderr. Medians over `LOOPBACK_ROUNDS` rounds (default 7; the
//! storm runs twice as many and one). `LOOPBACK_SKIP_STORM=1` skips the
//! storm, `LOOPBACK_SKIP_THROUGHPUT=1` the throughput rounds;
//! `LOOPBACK_ONLY=ibsso|tower_http|warmup` runs one measured
//! round of one stack (or none) after the warm-up, for callgrind.
//! `LOOPBACK_BURST=valid|held|replayed|warm` runs one burst of the storm
//! alone, for callgrind (see `burst_only`). `LOOPBACK_TRACE=1` prints every
//! debug event on stderr.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{AuthLayer, CredentialSource, Ibsso, IbssoBuilder};
use tokio::sync::Barrier;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

type HyperClient = Client<HttpConnector, Full<Bytes>>;

const STORM: usize = 10_000;
const CONCURRENCY: usize = 64;
const THROUGHPUT_REQUESTS: usize = 10_000;

fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}

fn sms() -> Request<Full<Bytes>> {
    sms_to(Uri::from_static("/sms/2/text/advanced"))
}

fn sms_to(uri: Uri) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"messages":[]}"#)))
        .unwrap()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A session source for the fake's account, not built yet.
fn account(fake: &FakeInfobip) -> IbssoBuilder {
    Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
}

fn session(fake: &FakeInfobip, client: &HyperClient) -> Ibsso {
    account(fake).build(client.clone()).unwrap()
}

/// A session source whose logins go through `client` and are timed: the
/// milliseconds of each are pushed to `logins`.
fn timed_session(fake: &FakeInfobip, client: &HyperClient, logins: &Arc<Mutex<Vec<f64>>>) -> Ibsso {
    let logins = logins.clone();
    let transport = ServiceBuilder::new()
        .map_future(move |login| {
            let logins = logins.clone();
            async move {
                let start = Instant::now();
                let answer = login.await;
                logins
                    .lock()
                    .unwrap()
                    .push(start.elapsed().as_secs_f64() * 1e3);
                answer
            }
        })
        .service(client.clone());
    account(fake).build(transport).unwrap()
}

/// A fresh `FakeInfobip` and a client that reaches it over one HTTP/2
/// connection, as a storm needs: thousands of requests in flight at once.
async fn storm_server() -> (FakeInfobip, HyperClient) {
    let fake = FakeInfobip::start().await.unwrap();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector());
    (fake, client)
}

/// What happens to the session between the requests taking it and their
/// release.
#[derive(Clone, Copy, PartialEq)]
enum Storm {
    /// Nothing: a pass on a valid session.
    Valid,
    /// The server revokes it: the first 401s tell the source.
    Revoked,
    /// The source logs out: every request is held for the next login.
    LoggedOut,
}

/// Which request of a burst this is, carried in its extensions (a replay
/// keeps them).
#[derive(Clone, Copy)]
struct Id(usize);

/// Sends `requests` requests that all took their credential before any is
/// sent; returns the time from release to the last response. Asserts that
/// each request reached the transport once, or twice (a 401 and its
/// replay) when the session did not stay valid.
async fn burst(
    fake: &FakeInfobip,
    client: &HyperClient,
    source: &Ibsso,
    storm: Storm,
    requests: usize,
) -> Duration {
    let sends: Arc<Vec<AtomicU32>> = Arc::new((0..requests).map(|_| AtomicU32::new(0)).collect());
    let counted = sends.clone();
    let transport = ServiceBuilder::new()
        .map_request(move |request: Request<Full<Bytes>>| {
            let Id(id) = request.extensions().get::<Id>().copied().unwrap();
            counted[id].fetch_add(1, Ordering::Relaxed);
            request
        })
        .service(client.clone());
    let service = AuthLayer::new(fake.base_url(), source.clone()).layer(transport);
    let ready = Arc::new(Barrier::new(requests + 1));
    let go = Arc::new(Barrier::new(requests + 1));
    let tasks: Vec<_> = (0..requests)
        .map(|id| {
            let mut service = service.clone();
            let (ready, go) = (ready.clone(), go.clone());
            tokio::spawn(async move {
                service.ready().await.unwrap();
                ready.wait().await;
                go.wait().await;
                let mut request = sms();
                request.extensions_mut().insert(Id(id));
                let response = service.call(request).await.unwrap();
                let status = response.status();
                // Read the body to its end, as a client does. Dropped unread,
                // an HTTP/2 response is reset, and its DATA frame arriving
                // after the reset counts against the client connection's
                // limit on such resets (1,024 in h2): past it, h2 closes the
                // connection with every request on it.
                response.into_body().collect().await.unwrap();
                status
            })
        })
        .collect();
    ready.wait().await;
    match storm {
        Storm::Valid => {}
        Storm::Revoked => fake.revoke_sessions(),
        Storm::LoggedOut => source.logout().await.unwrap(),
    }
    let start = Instant::now();
    go.wait().await;
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let elapsed = start.elapsed();
    let most = if storm == Storm::Valid { 1 } else { 2 };
    for (id, sent) in sends.iter().enumerate() {
        let sent = sent.load(Ordering::Relaxed);
        assert!(
            (1..=most).contains(&sent),
            "request {id} was sent {sent} times"
        );
    }
    elapsed
}

/// One burst alone, for an instruction-count profile (`LOOPBACK_BURST`):
/// - `valid`: a pass on a valid session;
/// - `held`: the session is logged out after every request took it, so
///   every request is held for the one login and sent once (a storm in
///   which no request outruns the first 401);
/// - `replayed`: the server revokes the session after every request took
///   it; on one thread every request is handed to the client before the
///   connection reads the first 401, so every request is answered 401 and
///   replayed (a storm in which every request outruns the first 401);
/// - `warm`: the set-up they all share.
///
/// `LOOPBACK_BURST_SIZE` requests (default 2,000).
async fn burst_only(kind: &str) {
    let requests = std::env::var("LOOPBACK_BURST_SIZE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let (fake, client) = storm_server().await;
    let source = session(&fake, &client);
    source.credential().await.unwrap();
    // Warm the connection and the pools.
    burst(&fake, &client, &source, Storm::Valid, requests).await;
    let storm = match kind {
        "valid" => Storm::Valid,
        "held" => Storm::LoggedOut,
        "replayed" => Storm::Revoked,
        "warm" => return,
        other => panic!("unknown LOOPBACK_BURST={other}"),
    };
    let (sent_before, logins_before) = (fake.accepted() + fake.rejected(), fake.logins());
    burst(&fake, &client, &source, storm, requests).await;
    let sent = fake.accepted() + fake.rejected() - sent_before;
    // Each burst is what its name says, or its count means nothing.
    let sends_each = if storm == Storm::Revoked { 2 } else { 1 };
    assert_eq!(sent, sends_each * requests, "sends in a `{kind}` burst");
    assert_eq!(
        fake.logins() - logins_before,
        usize::from(storm != Storm::Valid),
        "logins in a `{kind}` burst"
    );
    println!("burst_requests {requests}");
}

async fn storm(rounds: usize) {
    if let Ok(kind) = std::env::var("LOOPBACK_BURST") {
        return burst_only(&kind).await;
    }
    if std::env::var_os("LOOPBACK_SKIP_STORM").is_some() {
        return;
    }
    let mut rows: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let (fake, client) = storm_server().await;

        let logins = Arc::new(Mutex::new(Vec::new()));
        let source = timed_session(&fake, &client, &logins);
        source.credential().await.unwrap();

        // A round is four bursts: a valid pass, the storm and the control
        // (a third valid pass) in turn, another valid pass. Later bursts of
        // a round run a little slower, so the storm is weighed against the
        // mean of the passes around it, and the control, at the storm's
        // other place, shows how far a pass that cost nothing extra reads
        // from it.
        let middle = if round % 2 == 0 {
            [Storm::Revoked, Storm::Valid]
        } else {
            [Storm::Valid, Storm::Revoked]
        };
        let order = [Storm::Valid, middle[0], middle[1], Storm::Valid];
        let mut passes = Vec::new();
        let mut storm = Measured::default();
        for kind in order {
            let logins_before = fake.logins();
            let sent_before = fake.accepted() + fake.rejected();
            let cpu = process_cpu_ns();
            let ms = burst(&fake, &client, &source, kind, STORM)
                .await
                .as_secs_f64()
                * 1e3;
            let measured = Measured {
                ms,
                cpu_ms: (process_cpu_ns() - cpu) as f64 / 1e6,
                sent: fake.accepted() + fake.rejected() - sent_before,
            };
            if kind == Storm::Valid {
                passes.push(measured);
                continue;
            }
            assert_eq!(
                fake.logins() - logins_before,
                1,
                "a renewal storm must cost exactly one login"
            );
            // A request sent before the first 401 reached the source is
            // answered 401 once and replayed once; one called after it is
            // held and sent once. Never more: `burst` asserts it for each.
            storm = measured;
        }
        // The valid passes in the order they ran.
        let (first, control, last) = (passes[0], passes[1], passes[2]);
        // The round's two logins: the first, on an idle connection, and the
        // storm's, on the connection that carries the storm.
        let storm_login = match logins.lock().unwrap()[..] {
            [_, storm_login] => storm_login,
            ref all => panic!("{} logins in a storm round", all.len()),
        };
        let row = Round {
            storm_login,
            storm,
            valid: Measured {
                ms: (first.ms + last.ms) / 2.0,
                cpu_ms: (first.cpu_ms + last.cpu_ms) / 2.0,
                sent: first.sent,
            },
            control,
        };
        eprintln!(
            "storm round {round}: {} sends, {:.1} ms ({:.1} ms CPU, its login {:.2} ms); \
             valid {:.1} ms ({:.1} ms CPU); control {:.1} ms",
            row.storm.sent,
            row.storm.ms,
            row.storm.cpu_ms,
            row.storm_login,
            row.valid.ms,
            row.valid.cpu_ms,
            row.control.ms,
        );
        rows.push(row);
    }
    let of = |f: fn(&Round) -> f64| median(rows.iter().map(f).collect());
    let sends: Vec<f64> = rows.iter().map(|r| r.storm.sent as f64).collect();
    let most = sends.iter().copied().fold(0.0, f64::max);
    let fewest = sends.iter().copied().fold(f64::INFINITY, f64::min);
    println!("storm_ms {:.2}", of(|r| r.storm.ms));
    println!("storm_valid_ms {:.2}", of(|r| r.valid.ms));
    println!("storm_login_ms {:.3}", of(|r| r.storm_login));
    println!("storm_cpu_ms {:.2}", of(|r| r.storm.cpu_ms));
    println!("storm_valid_cpu_ms {:.2}", of(|r| r.valid.cpu_ms));
    println!("storm_round_ratio {:.3}", of(|r| r.storm.ms / r.valid.ms));
    println!(
        "storm_round_cpu_ratio {:.3}",
        of(|r| r.storm.cpu_ms / r.valid.cpu_ms)
    );
    println!("storm_rounds {rounds}");
    println!(
        "control_round_ratio {:.3}",
        of(|r| r.control.ms / r.valid.ms)
    );
    println!(
        "control_round_cpu_ratio {:.3}",
        of(|r| r.control.cpu_ms / r.valid.cpu_ms)
    );
    println!("storm_sends {:.0}", median(sends));
    println!("storm_most_sends {most:.0}");
    println!("storm_fewest_sends {fewest:.0}");
    // Each round's own figures, for `report.sh` to weigh against the cost
    // of its sends.
    for (round, row) in rows.iter().enumerate() {
        println!("storm_round_{round}_sends {}", row.storm.sent);
        println!("storm_round_{round}_ms {:.3}", row.storm.ms);
        println!("storm_round_{round}_valid_ms {:.3}", row.valid.ms);
        println!("storm_round_{round}_control_ms {:.3}", row.control.ms);
        println!("storm_round_{round}_login_ms {:.3}", row.storm_login);
    }
}

#[derive(Clone, Copy, Default)]
struct Measured {
    ms: f64,
    cpu_ms: f64,
    sent: usize,
}

/// One storm round: the storm, the mean of the valid passes before and
/// after it, and the control pass.
struct Round {
    /// The storm's own login, from the request to the answer, on the
    /// connection the storm's requests share.
    storm_login: f64,
    storm: Measured,
    valid: Measured,
    control: Measured,
}

/// CPU time used so far by every thread of this process (client and server
/// alike), in nanoseconds, from Linux's per-thread scheduler statistics.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Requests/second and CPU nanoseconds per request, for
/// `THROUGHPUT_REQUESTS` requests at `CONCURRENCY`.
async fn rate<S>(service: S, uri: &Uri) -> (f64, f64)
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    let start = Instant::now();
    let cpu = process_cpu_ns();
    let ok = stream::iter(0..THROUGHPUT_REQUESTS)
        .map(|_| service.clone().oneshot(sms_to(uri.clone())))
        .buffer_unordered(CONCURRENCY)
        .filter(|r| std::future::ready(matches!(r, Ok(r) if r.status() == StatusCode::OK)))
        .count()
        .await;
    assert_eq!(ok, THROUGHPUT_REQUESTS);
    let cpu_per_request = (process_cpu_ns() - cpu) as f64 / THROUGHPUT_REQUESTS as f64;
    (
        THROUGHPUT_REQUESTS as f64 / start.elapsed().as_secs_f64(),
        cpu_per_request,
    )
}

async fn throughput(rounds: usize) {
    let fake = FakeInfobip::start().await.unwrap();
    let client: HyperClient = Client::builder(TokioExecutor::new()).build(connector());
    let source = session(&fake, &client);
    let token = source.credential().await.unwrap().header_value().clone();
    let ours = AuthLayer::new(fake.base_url(), source).layer(client.clone());
    // tower-http's AddAuthorization builds only Basic and Bearer values, so
    // its SetRequestHeader stamps the same IBSSO value. All get the same
    // absolute URI.
    let mut token: HeaderValue = token;
    token.set_sensitive(true);
    let theirs = SetRequestHeaderLayer::overriding(AUTHORIZATION, token).layer(client);
    let uri = fake.uri("/sms/2/text/advanced");
    // Warm the pools.
    rate(ours.clone(), &uri).await;
    rate(theirs.clone(), &uri).await;
    // One stack alone, for an instruction-count profile of it; `warmup`
    // stops here, giving the cost the profiles share.
    let only = std::env::var("LOOPBACK_ONLY");
    if let Ok(only) = only.as_deref() {
        let before = fake.connections();
        match only {
            "warmup" => return,
            "ibsso" => rate(ours, &uri).await,
            "tower_http" => rate(theirs, &uri).await,
            other => panic!("unknown LOOPBACK_ONLY={other}"),
        };
        println!("connections_opened {}", fake.connections() - before);
        return;
    }
    // Rotate which goes first, so none always runs on a warmer (or more
    // fragmented) process.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for turn in 0..2 {
            match (round + turn) % 2 {
                0 => a.push(rate(ours.clone(), &uri).await),
                _ => b.push(rate(theirs.clone(), &uri).await),
            }
        }
    }
    let split = |v: Vec<(f64, f64)>| -> (f64, f64) {
        let (rps, cpu): (Vec<f64>, Vec<f64>) = v.into_iter().unzip();
        (median(rps), median(cpu))
    };
    let ((a, a_cpu), (b, b_cpu)) = (split(a), split(b));
    println!("throughput_ibsso_rps {a:.0}");
    println!("throughput_tower_http_rps {b:.0}");
    println!("throughput_ratio {:.3}", a / b);
    println!("cpu_ns_per_request_ibsso {a_cpu:.0}");
    println!("cpu_ns_per_request_tower_http {b_cpu:.0}");
    println!("cpu_ratio {:.3}", b_cpu / a_cpu);
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: keep
    // that quick by doing nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = std::env::var("LOOPBACK_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    // `LOOPBACK_RUNTIME=current_thread` runs client and server on one
    // thread: no work stealing, so instruction counts repeat more closely.
    let mut builder = match std::env::var("LOOPBACK_RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    // `LOOPBACK_TRACE=1`: every debug event (h2 frames and resets among
    // them) on stderr. Slow; for finding why a run failed, not for figures.
    if std::env::var_os("LOOPBACK_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = builder.enable_all().build().unwrap();
    runtime.block_on(async {
        // Twice the rounds and one: a storm round is short, and its wall
        // clock moves more than a throughput round's.
        storm(2 * rounds + 1).await;
        if std::env::var_os("LOOPBACK_SKIP_THROUGHPUT").is_none() {
            throughput(rounds).await;
        }
    });
}
