//! reqwest users, side by side in one run: a `reqwest::Client` with the API
//! key in `default_headers` (what a reqwest user does without this crate),
//! that client through `ReqwestClient` alone (the `http::Request`
//! interface, no layer), a client under `AuthLayer` with `ApiKey`, and under
//! `AuthLayer` with `Ibsso`. For each, the client thread's CPU and heap allocations per
//! request.
//!
//! The fake server runs on a runtime of its own (its own threads); the
//! client runs on this thread alone (a current-thread runtime), so this
//! thread's CPU time and allocations are the client's. Rounds are
//! interleaved; medians over `REQWEST_ROUNDS` rounds (default 7) of 5,000
//! requests at concurrency 32. Prints `key value` lines for
//! `benches/report.sh`. `REQWEST_ONLY=<stack>` with `REQWEST_BATCHES=<n>`
//! runs one stack alone, for the client thread's instruction count under
//! `valgrind --tool=callgrind --separate-threads=yes`.
// A counting allocator cannot be written without `unsafe`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use infobip_auth::reqwest::ReqwestClient;
use infobip_auth::testing::FakeInfobip;
use infobip_auth::{ApiKey, AuthLayer, Ibsso};
use tower::{Layer, ServiceExt};

const REQUESTS: usize = 5_000;
const CONCURRENCY: usize = 32;
const BODY: &[u8] = br#"{"messages":[]}"#;

/// Counts the allocations of the thread that makes them.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This thread's CPU time so far, in nanoseconds (Linux's scheduler
/// statistics).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU nanoseconds and allocations per request of this thread, for
/// `REQUESTS` requests made by `send` at `CONCURRENCY`.
async fn measure<F, Fut>(send: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    let (cpu, allocations) = (thread_cpu_ns(), ALLOCATIONS.with(Cell::get));
    let ok = stream::iter(0..REQUESTS)
        .map(|_| send())
        .buffer_unordered(CONCURRENCY)
        .filter(|status| std::future::ready(*status == StatusCode::OK))
        .count()
        .await;
    assert_eq!(ok, REQUESTS);
    let per = |n: u64| n as f64 / REQUESTS as f64;
    (
        per(thread_cpu_ns() - cpu),
        per(ALLOCATIONS.with(Cell::get) - allocations),
    )
}

/// One request through an `http::Request` stack (`ReqwestClient`, alone
/// or under `AuthLayer`).
fn layered<S>(service: &S, url: &str) -> impl Future<Output = StatusCode>
where
    S: tower::Service<Request<Bytes>, Response = http::Response<reqwest::Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    let request = Request::post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(Bytes::from_static(BODY))
        .unwrap();
    let service = service.clone();
    async move { service.oneshot(request).await.unwrap().status() }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets without `--bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("REQWEST_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = server.block_on(FakeInfobip::start()).unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(run(&fake, rounds));
}

async fn run(fake: &FakeInfobip, rounds: usize) {
    let url = fake.uri("/sms/2/text/advanced").to_string();
    let mut key = HeaderValue::from_str(&format!("App {}", FakeInfobip::API_KEY)).unwrap();
    key.set_sensitive(true);
    let with_default_headers = reqwest::Client::builder()
        .default_headers(HeaderMap::from_iter([(AUTHORIZATION, key)]))
        .build()
        .unwrap();
    let plain: ReqwestClient<Bytes> = ReqwestClient::new(reqwest::Client::new());
    // The adapter alone, the key in its client's default headers: what the
    // http::Request interface costs before any layer.
    let adapter: ReqwestClient<Bytes> = ReqwestClient::new(with_default_headers.clone());
    let app = AuthLayer::new(fake.base_url(), ApiKey::new(FakeInfobip::API_KEY).unwrap())
        .layer(plain.clone());
    let session = Ibsso::builder(
        fake.base_url(),
        FakeInfobip::USERNAME,
        FakeInfobip::PASSWORD,
    )
    .build(plain.clone())
    .unwrap();
    let ibsso = AuthLayer::new(fake.base_url(), session).layer(plain);

    let default_headers = || {
        let request = with_default_headers
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(BODY);
        async move { request.send().await.unwrap().status() }
    };
    let adapter_send = || layered(&adapter, &url);
    let app_send = || layered(&app, &url);
    let ibsso_send = || layered(&ibsso, &url);

    // One stack alone, for callgrind: a warm-up batch, then
    // `REQWEST_BATCHES` batches; the difference between two counts of the
    // client thread (`--separate-threads=yes`) prices one batch.
    if let Ok(only) = std::env::var("REQWEST_ONLY") {
        let batches: usize = std::env::var("REQWEST_BATCHES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 0..=batches {
            match only.as_str() {
                "default_headers" => measure(default_headers).await,
                "adapter" => measure(adapter_send).await,
                "layer_app" => measure(app_send).await,
                "layer_ibsso" => measure(ibsso_send).await,
                other => panic!("unknown REQWEST_ONLY={other}"),
            };
        }
        return;
    }

    // Warm the pools (and log in).
    measure(default_headers).await;
    measure(adapter_send).await;
    measure(app_send).await;
    measure(ibsso_send).await;
    let mut figures: [Vec<(f64, f64)>; 4] = Default::default();
    for round in 0..rounds {
        for turn in 0..4 {
            let which = (round + turn) % 4;
            let measured = match which {
                0 => measure(default_headers).await,
                1 => measure(adapter_send).await,
                2 => measure(app_send).await,
                _ => measure(ibsso_send).await,
            };
            figures[which].push(measured);
        }
    }
    for (name, runs) in ["default_headers", "adapter", "layer_app", "layer_ibsso"]
        .iter()
        .zip(figures)
    {
        let (cpu, allocations): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
        println!("reqwest_cpu_ns_{name} {:.0}", median(cpu));
        println!("reqwest_allocations_{name} {:.2}", median(allocations));
    }
    println!("reqwest_rounds {rounds}");
}
