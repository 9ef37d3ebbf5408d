//! Many accounts: heap bytes per idle account (10,000 accounts kept, each
//! after one request), for API-key accounts and for IBSSO-session accounts;
//! and, for callgrind, one account's requests through `AccountsLayer`
//! against the same account as a plain `AuthLayer` stack.
//!
//! `cargo bench --features accounts --bench accounts` prints `key value`
//! lines for `benches/report.sh`. `ACCOUNTS_CASE=single|selected` with
//! `ACCOUNTS_ITERS=<n>` runs one stack's requests alone, for
//! `valgrind --tool=callgrind`.
// A counting allocator cannot be written without `unsafe`.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use common::{round_trip, Drain};
use http::{Request, Response, Uri};
use http_body_util::{Empty, Full};
use infobip_auth::accounts::{Account, AccountsLayer};
use infobip_auth::{ApiKey, AuthError, AuthLayer, BaseUrl, Ibsso};
use tower::{service_fn, Layer};

const ACCOUNTS: u32 = 10_000;
const KEY: &str = "003026bbc133714df1834b8638bb496e-8f4b3d9a-e931-478d-a994-28a725159ab9";

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Customer(u32);

fn base() -> BaseUrl {
    BaseUrl::new("https://api.infobip.com").unwrap()
}

fn request(customer: Customer) -> Request<Empty<Bytes>> {
    let mut request = Request::post(Uri::from_static(
        "https://api.infobip.com/sms/2/text/advanced",
    ))
    .header("content-type", "application/json")
    .body(Empty::new())
    .unwrap();
    request.extensions_mut().insert(customer);
    request
}

/// An `Ibsso` whose logins are answered at once, in memory.
fn session() -> Ibsso {
    let transport = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            br#"{"token":"d3c49f59-734a-4daf-be9a-6188b540358e"}"#,
        ))))
    });
    Ibsso::builder(base(), "user", "password")
        .login_rate(1_000_000)
        .build(transport)
        .unwrap()
}

/// Heap bytes held per account, for `ACCOUNTS` accounts each kept after one
/// request.
async fn bytes_per_account(account: fn() -> Account) -> f64 {
    let resolver = move |_: Customer| async move { Ok::<_, AuthError>(account()) };
    let service = AccountsLayer::new(resolver).layer(Drain);
    let before = LIVE.load(Ordering::Relaxed);
    for n in 0..ACCOUNTS {
        tower::ServiceExt::oneshot(service.clone(), request(Customer(n)))
            .await
            .unwrap();
    }
    service.run_pending_tasks().await;
    assert_eq!(service.accounts(), u64::from(ACCOUNTS));
    (LIVE.load(Ordering::Relaxed) - before) as f64 / f64::from(ACCOUNTS)
}

/// One account's requests, `iterations` times: through `AccountsLayer`
/// (`selected`) or a plain `AuthLayer` stack (`single`).
fn single_case(case: &str, iterations: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    match case {
        "single" => {
            let mut service = AuthLayer::new(base(), ApiKey::new(KEY).unwrap()).layer(Drain);
            for _ in 0..iterations {
                black_box(round_trip(&mut service, request(Customer(0))));
            }
        }
        "selected" => {
            let resolver =
                |_: Customer| async { Ok::<_, AuthError>(Account::new(base(), ApiKey::new(KEY)?)) };
            let mut service = AccountsLayer::new(resolver).layer(Drain);
            // The account is resolved once, outside the count.
            runtime
                .block_on(tower::ServiceExt::oneshot(
                    service.clone(),
                    request(Customer(0)),
                ))
                .unwrap();
            for _ in 0..iterations {
                black_box(round_trip(&mut service, request(Customer(0))));
            }
        }
        other => panic!("unknown ACCOUNTS_CASE={other}"),
    }
}

fn main() {
    if let Ok(case) = std::env::var("ACCOUNTS_CASE") {
        let iterations = std::env::var("ACCOUNTS_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        single_case(&case, iterations);
        return;
    }
    // `cargo test --benches` runs bench targets without `--bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api_key = bytes_per_account(|| Account::mixed(base(), ApiKey::new(KEY).unwrap())).await;
        let ibsso = bytes_per_account(|| Account::session(session())).await;
        println!("accounts_bytes_api_key {api_key:.0}");
        println!("accounts_bytes_ibsso {ibsso:.0}");
    });
}
