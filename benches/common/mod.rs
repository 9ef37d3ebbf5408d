//! Pieces the benches share: an immediately ready inner service that drains
//! the request body, and a hand-driven poll loop (no runtime in the way).

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::noop_waker_ref;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use infobip_auth::{CredentialSource, Ibsso, IbssoBuilder};
use tower::{service_fn, Service};

/// Answers at once, after reading the whole body as a transport would.
#[derive(Clone, Copy, Debug)]
pub struct Drain;

impl<B: Body + Unpin> Service<Request<B>> for Drain {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut body = request.into_body();
        let mut cx = Context::from_waker(noop_waker_ref());
        while let Poll::Ready(Some(_)) = Pin::new(&mut body).poll_frame(&mut cx) {}
        ready(Ok(Response::new(String::new())))
    }
}

/// Inlined, like `round_trip`, so that how a future is moved here does not
/// depend on the inliner's choice for each service type.
#[inline(always)]
pub fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(noop_waker_ref()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an immediately ready stack returned Pending"),
    }
}

/// One request through `service`: `poll_ready`, `call`, drive the response.
#[inline(always)]
pub fn round_trip<S, B>(service: &mut S, request: Request<B>) -> S::Response
where
    S: Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    poll_now(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
    poll_now(service.call(request)).unwrap()
}

/// The `Ibsso` `builder` makes, logged in through an in-memory transport
/// before measuring: its session is cached.
pub fn logged_in(builder: IbssoBuilder) -> Ibsso {
    let transport = service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            br#"{"token":"d3c49f59-734a-4daf-be9a-6188b540358e"}"#,
        ))))
    });
    let source = builder.build(transport).unwrap();
    // With I/O: a shared store's connection is made on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async { source.credential().await })
        .unwrap();
    source
}
