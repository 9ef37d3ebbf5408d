//! Heap allocations per request (static sources, a cached session, a 4 KiB
//! body), counted by a global allocator. The tests run one at a time (a
//! lock), so no other test allocates while one counts.
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
use http_body_util::{Empty, Full};
use infobip_auth::{
    ApiKey, AuthLayer, BaseUrl, Basic, CredentialSource, Ibsso, KeepsBody, ReplayBody, Rotating,
};
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

/// Counting is global: the tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn request(uri: &'static str) -> Request<Empty<Bytes>> {
    // A content type, as every Infobip API call carries: the header map is
    // then allocated by the caller, as it is in practice. The URI is parsed
    // from a `String`, as a caller formatting it would: cloning such a URI
    // (or a parsed header value) allocates, so the stack must not.
    Request::post(Uri::try_from(uri.to_owned()).unwrap())
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

type Inner = Request<Empty<Bytes>>;

fn respond(_req: Inner) -> std::future::Ready<Result<Response<String>, Infallible>> {
    ready(Ok(Response::new(String::new())))
}

fn cached_session() -> Ibsso {
    let transport = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            br#"{"token":"d3c49f59-734a-4daf-be9a-6188b540358e"}"#,
        ))))
    });
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let source = Ibsso::builder(base, "user", "password")
        .build(transport)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime
        .block_on(async { source.credential().await })
        .unwrap();
    source
}

fn measure<C>(source: C) -> (usize, usize)
where
    C: CredentialSource + Clone,
    C::Kind: KeepsBody<Empty<Bytes>>,
{
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
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The counter works: a plain allocation is seen.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![1u8; 16]));
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);

    let (app_abs, app_rel) = measure(ApiKey::new("003026bbc133714df1834b8638bb496e").unwrap());
    let (basic_abs, basic_rel) = measure(Basic::new("Aladdin", "openSesame").unwrap());
    let (rotating_abs, rotating_rel) = measure(Rotating::new(ApiKey::new("rotating").unwrap()));
    println!(
        "allocations over {REQUESTS} requests: app {app_abs}/{app_rel}, basic {basic_abs}/{basic_rel} (absolute/path-only URI)"
    );
    assert_eq!(app_abs, 0, "App, absolute URI");
    assert_eq!(app_rel, 0, "App, path-only URI");
    assert_eq!(basic_abs, 0, "Basic, absolute URI");
    assert_eq!(basic_rel, 0, "Basic, path-only URI");
    assert_eq!(rotating_abs, 0, "Rotating, absolute URI");
    assert_eq!(rotating_rel, 0, "Rotating, path-only URI");
}

/// A cached session keeps a copy of each request's head so that a 401 can be
/// replayed: a plain clone, as tower-http's `FollowRedirect` makes. What that
/// costs per request, for the request `request()` builds:
/// - the header map: its index table and its entry list (2);
/// - the content type, parsed from a string: `bytes` gives a buffer a
///   reference count the first time it is cloned (1);
/// - an absolute URI parsed from a `String` costs nothing: parsing sliced
///   its parts from one buffer, which is shared already;
/// - a path-only URI is resolved against the base URL when stamped (its
///   scheme and authority are the base URL's, shared), and its path, the
///   whole buffer it was parsed from, gets its reference count on the
///   first clone (1).
///
/// Header values and URIs made from `&'static str` clone for free.
#[test]
fn ibsso_cached_allocations_per_request_are_the_head_copy() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (absolute, relative) = measure(cached_session());
    println!("ibsso_cached: allocations over {REQUESTS} requests: {absolute}/{relative} (absolute/path-only URI)");
    assert_eq!(absolute, 3 * REQUESTS, "IBSSO, absolute URI");
    assert_eq!(relative, 4 * REQUESTS, "IBSSO, path-only URI");
}

/// Reads the whole body, as a transport does, so the replay body records it.
fn respond_after_reading<B: http_body::Body>(
    request: Request<B>,
) -> std::future::Ready<Result<Response<String>, Infallible>> {
    let mut body = std::pin::pin!(request.into_body());
    let mut cx = Context::from_waker(noop_waker_ref());
    while let Poll::Ready(Some(_)) = http_body::Body::poll_frame(body.as_mut(), &mut cx) {}
    ready(Ok(Response::new(String::new())))
}

/// The copy of a `Full<Bytes>` body is a reference count: a 4 KiB body
/// costs nothing more than the head copy (2 for the header map, 1 for the
/// content type; the URI here is static).
#[test]
fn ibsso_4k_full_body_costs_only_the_head_copy() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service = AuthLayer::new(base, cached_session())
        .layer(service_fn(respond_after_reading::<Full<Bytes>>));
    let per_request = body_4k_allocations(&mut service, Full::new);
    println!("ibsso_4k_body (Full): {per_request:.2} allocations per request");
    assert_eq!(per_request, 3.0);
}

/// A `String` body is copied for the replay: one allocation more than the
/// head copy.
#[test]
fn ibsso_4k_string_body_costs_its_copy() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service =
        AuthLayer::new(base, cached_session()).layer(service_fn(respond_after_reading::<String>));
    let text = "x".repeat(4096);
    let per_request = body_4k_allocations(&mut service, |_| text.clone());
    println!("ibsso_4k_body (String): {per_request:.2} allocations per request");
    assert_eq!(per_request, 4.0);
}

/// A body recorded by `ReplayBody` as it streams: the state both attempts
/// share (1) and the list of kept chunks (1), besides the head copy (3).
/// The chunk itself is kept by reference count.
#[test]
fn ibsso_4k_recorded_body_allocations_per_request() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service = AuthLayer::new(base, cached_session())
        .layer(service_fn(respond_after_reading::<ReplayBody<Full<Bytes>>>));
    let per_request = body_4k_allocations(&mut service, |chunk| ReplayBody::new(Full::new(chunk)));
    println!("ibsso_4k_body (ReplayBody): {per_request:.2} allocations per request");
    assert_eq!(per_request, 5.0);
}

/// A static source keeps nothing: a recorded body type passes through
/// without a copy or a recording.
#[test]
fn static_source_with_a_replay_body_allocates_nothing_per_request() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = BaseUrl::new("https://api.infobip.com").unwrap();
    let mut service = AuthLayer::new(base, ApiKey::new("key").unwrap())
        .layer(service_fn(respond_after_reading::<ReplayBody<Full<Bytes>>>));
    let per_request = body_4k_allocations(&mut service, |chunk| ReplayBody::new(Full::new(chunk)));
    assert_eq!(per_request, 0.0);
}

/// Allocations per request for `REQUESTS` requests with a 4 KiB body made
/// by `body` (outside the count).
fn body_4k_allocations<S, B>(service: &mut S, mut body: impl FnMut(Bytes) -> B) -> f64
where
    S: tower::Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    let chunk = Bytes::from(vec![b'x'; 4096]);
    let mut total = 0;
    // The second round counts: the first warms one-time reference counts.
    for _ in 0..2 {
        total = 0;
        for _ in 0..REQUESTS {
            let req = Request::post(Uri::from_static(
                "https://api.infobip.com/sms/2/text/advanced",
            ))
            .header("content-type", "application/json")
            .body(body(chunk.clone()))
            .unwrap();
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            poll_now(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
            let response = poll_now(service.call(req)).unwrap();
            total += ALLOCATIONS.load(Ordering::Relaxed) - before;
            drop(response);
        }
    }
    total as f64 / REQUESTS as f64
}
