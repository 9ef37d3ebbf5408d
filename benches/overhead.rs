//! Per-request cost of stamping, against tower-http's `AddAuthorization`
//! and the bare inner service, in one run. Overhead of a case = its time
//! minus `bare`. Every iteration builds its request (a constant cost that
//! `bare` pays too, so it cancels out of the overhead) and drives it to the
//! response by hand, without a runtime.

mod common;
#[path = "common/reference.rs"]
mod reference;

use std::hint::black_box;

use bytes::Bytes;
use common::{round_trip, Drain};
use criterion::{criterion_group, Criterion};
use http::{Request, Uri};
use http_body_util::{Empty, Full};
use infobip_auth::{ApiKey, AuthLayer, BaseUrl, Basic, Credential, Ibsso};
use tower::Layer;
use tower_http::auth::AddAuthorizationLayer;

const KEY: &str = "003026bbc133714df1834b8638bb496e-8f4b3d9a-e931-478d-a994-28a725159ab9";
const URI: &str = "https://api.infobip.com/sms/2/text/advanced";

fn empty() -> Request<Empty<Bytes>> {
    Request::post(Uri::from_static(URI))
        .header("content-type", "application/json")
        .body(Empty::new())
        .unwrap()
}

fn body_4k() -> Request<Full<Bytes>> {
    Request::post(Uri::from_static(URI))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(vec![b'x'; 4096])))
        .unwrap()
}

fn base() -> BaseUrl {
    BaseUrl::new("https://api.infobip.com").unwrap()
}

/// An `Ibsso` holding a valid session.
fn cached_session() -> Ibsso {
    common::logged_in(Ibsso::builder(base(), "user", "password"))
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead");

    let mut bare = Drain;
    group.bench_function("bare", |b| {
        b.iter(|| black_box(round_trip(&mut bare, empty())))
    });

    let mut tower_http = AddAuthorizationLayer::bearer(KEY)
        .as_sensitive(true)
        .layer(Drain);
    group.bench_function("tower_http", |b| {
        b.iter(|| black_box(round_trip(&mut tower_http, empty())))
    });

    let mut app = AuthLayer::new(base(), ApiKey::new(KEY).unwrap()).layer(Drain);
    group.bench_function("app", |b| {
        b.iter(|| black_box(round_trip(&mut app, empty())))
    });

    let mut basic =
        AuthLayer::new(base(), Basic::new("Aladdin", "openSesame").unwrap()).layer(Drain);
    group.bench_function("basic", |b| {
        b.iter(|| black_box(round_trip(&mut basic, empty())))
    });

    let mut ibsso = AuthLayer::new(base(), cached_session()).layer(Drain);
    group.bench_function("ibsso_cached", |b| {
        b.iter(|| black_box(round_trip(&mut ibsso, empty())))
    });

    let mut bare_4k = Drain;
    group.bench_function("bare_4k_body", |b| {
        b.iter(|| black_box(round_trip(&mut bare_4k, body_4k())))
    });

    let mut ibsso_4k = AuthLayer::new(base(), cached_session()).layer(Drain);
    group.bench_function("ibsso_4k_body", |b| {
        b.iter(|| black_box(round_trip(&mut ibsso_4k, body_4k())))
    });

    group.finish();
}

/// `OVERHEAD_CASE=<case> cargo bench --bench overhead` runs only that case,
/// `OVERHEAD_ITERS` times, without criterion: for instruction counts under
/// `valgrind --tool=callgrind`, which are repeatable where wall time is not.
fn single_case(case: &str, iterations: usize) {
    macro_rules! run {
        ($service:expr, $request:expr) => {{
            let mut service = $service;
            for _ in 0..iterations {
                black_box(round_trip(&mut service, $request()));
            }
        }};
    }
    match case {
        "bare" => run!(Drain, empty),
        "tower_http" => run!(
            AddAuthorizationLayer::bearer(KEY)
                .as_sensitive(true)
                .layer(Drain),
            empty
        ),
        "app" => run!(
            AuthLayer::new(base(), ApiKey::new(KEY).unwrap()).layer(Drain),
            empty
        ),
        "basic" => run!(
            AuthLayer::new(base(), Basic::new("Aladdin", "openSesame").unwrap()).layer(Drain),
            empty
        ),
        "ibsso_cached" => run!(AuthLayer::new(base(), cached_session()).layer(Drain), empty),
        "bare_4k_body" => run!(Drain, body_4k),
        "ibsso_4k_body" => run!(
            AuthLayer::new(base(), cached_session()).layer(Drain),
            body_4k
        ),
        "reference" => run!(reference_layer(true), empty),
        "reference_no_origin" => run!(reference_layer(false), empty),
        other => panic!("unknown case {other}"),
    }
}

/// The reference stamp (see `common/reference.rs`) with `app`'s value, for
/// callgrind only: what `app` would cost with nothing but an origin check
/// (or not even that) around tower-http's work.
fn reference_layer(check_origin: bool) -> reference::Reference<Drain> {
    reference::Reference {
        inner: Drain,
        value: Credential::from(ApiKey::new(KEY).unwrap())
            .header_value()
            .clone(),
        authority: http::uri::Authority::from_static("api.infobip.com"),
        check_origin,
    }
}

criterion_group!(benches, overhead);

fn main() {
    if let Ok(case) = std::env::var("OVERHEAD_CASE") {
        let iterations = std::env::var("OVERHEAD_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        single_case(&case, iterations);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
