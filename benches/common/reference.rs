//! A reference point for the `app` and `basic` cases, not part of the
//! crate: the least a layer can do per request while keeping three of
//! `AuthLayer`'s promises. It stamps one fixed value, only on requests to
//! one origin (scheme and authority compared byte for byte), keeps an
//! `Authorization` header the caller set, and fails with an error instead
//! of panicking when the header map is full. It resolves nothing in
//! `poll_ready`, never replays, and handles none of the rarer cases (an
//! origin spelt otherwise, a relative URI).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Request};
use pin_project_lite::pin_project;
use tower::Service;

/// Stamps `value` on requests to `https://<authority>`; with
/// `check_origin` false, on every request.
#[derive(Clone, Debug)]
pub struct Reference<S> {
    pub inner: S,
    pub value: HeaderValue,
    pub authority: Authority,
    pub check_origin: bool,
}

/// What the reference layer fails with.
#[derive(Debug)]
pub enum ReferenceError<E> {
    Inner(E),
    TooManyHeaders,
}

pin_project! {
    #[project = ReferenceFutureProj]
    pub enum ReferenceFuture<F> {
        Sent { #[pin] future: F },
        Failed,
    }
}

impl<F, T, E> Future for ReferenceFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ReferenceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ReferenceFutureProj::Sent { future } => future.poll(cx).map_err(ReferenceError::Inner),
            ReferenceFutureProj::Failed => Poll::Ready(Err(ReferenceError::TooManyHeaders)),
        }
    }
}

impl<S, B> Service<Request<B>> for Reference<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = ReferenceError<S::Error>;
    type Future = ReferenceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ReferenceError::Inner)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let uri = request.uri();
        let ours = !self.check_origin
            || (uri.scheme() == Some(&Scheme::HTTPS)
                && uri.authority().map(Authority::as_str) == Some(self.authority.as_str()));
        if ours {
            // One probe: appending to an absent name is a plain insert.
            match request
                .headers_mut()
                .try_append(AUTHORIZATION, self.value.clone())
            {
                Ok(false) => {}
                Ok(true) => drop_ours(request.headers_mut()),
                Err(_) => return ReferenceFuture::Failed,
            }
        }
        ReferenceFuture::Sent {
            future: self.inner.call(request),
        }
    }
}

/// The caller had set `Authorization`: removes ours, the last value.
#[cold]
fn drop_ours(headers: &mut HeaderMap) {
    let mut values: Vec<HeaderValue> = headers.get_all(AUTHORIZATION).iter().cloned().collect();
    values.pop();
    headers.remove(AUTHORIZATION);
    for value in values {
        // Re-adding what was there cannot pass the map's limit.
        let _ = headers.try_append(AUTHORIZATION, value);
    }
}
