//! Heap allocations per request on the static path, counted by a global
//! allocator. One test per binary, so no other test allocates meanwhile.
// A global allocator cannot be written without `unsafe`; the library itself
// forbids it in `lib.rs`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::{ready, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::noop_waker_ref;
use http::{Request, Response, Uri};
use http_body_util::Empty;
use infobip_auth::{ApiKey, AuthLayer, BaseUrl, Basic, CredentialSource, ReplayBody};
use tower::{service_fn, Layer, Service};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUESTS: usize = 10_000;

fn request(uri: &'static str) -> Request<Empty<Bytes>> {
    // A content type, as every Infobip API call carries: the header map is
    // then allocated by the caller, as it is in practice.
    Request::post(Uri::from_static(uri))
        .header("content-type", "application/json")
        .body(Empty::new())
        .unwrap()
}

fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(noop_waker_ref()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an immediately ready stack returned Pending"),
    }
}

/// Allocations made by `poll_ready` + `call` + driving the response future,
/// summed over `REQUESTS` requests (request construction excluded).
fn allocations_per_run<S>(service: &mut S, uri: &'static str) -> usize
where
    S: Service<Request<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let mut total = 0;
    for _ in 0..REQUESTS {
        let req = request(uri);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        poll_now(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
        let response = poll_now(service.call(req)).unwrap();
        total += ALLOCATIONS.load(Ordering::Relaxed) - before;
        drop(response);
    }
    total
}

type Inner = Request<ReplayBody<Empty<Bytes>>>;

fn respond(_req: Inner) -> std::future::Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

fn measure<C: CredentialSource + Clone>(source: C) -> (usize, usize) {
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service = AuthLayer::new(base, source).layer(service_fn(respond));
    // Warm-up: the first clone of a shared buffer (the base URL's authority)
    // allocates its reference count once, not per request.
    allocations_per_run(&mut service, "https://api.infobip.com/sms/2/text/advanced");
    allocations_per_run(&mut service, "/sms/2/text/advanced");
    let absolute = allocations_per_run(&mut service, "https://api.infobip.com/sms/2/text/advanced");
    let relative = allocations_per_run(&mut service, "/sms/2/text/advanced");
    (absolute, relative)
}

#[test]
fn static_sources_allocate_nothing_per_request() {
    // The counter works: a plain allocation is seen.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![1u8; 16]));
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);

    let (app_abs, app_rel) = measure(ApiKey::new("003026bbc133714df1834b8638bb496e").unwrap());
    let (basic_abs, basic_rel) = measure(Basic::new("Aladdin", "openSesame").unwrap());
    println!(
        "allocations over {REQUESTS} requests: app {app_abs}/{app_rel}, basic {basic_abs}/{basic_rel} (absolute/path-only URI)"
    );
    assert_eq!(app_abs, 0, "App, absolute URI");
    assert_eq!(app_rel, 0, "App, path-only URI");
    assert_eq!(basic_abs, 0, "Basic, absolute URI");
    assert_eq!(basic_rel, 0, "Basic, path-only URI");
}
