//! [`AuthService`]: the middleware built by [`AuthLayer`](crate::AuthLayer).
//!
//! # Where the credential is resolved
//!
//! `poll_ready` first resolves the credential (a session source may log in
//! here) and only then readies the inner service. A slow login therefore
//! never holds an inner slot (a `ConcurrencyLimit` permit, a pool checkout).
//! The replay after a 401 works the same way: the first attempt's response
//! has completed (returning its slot), the renewed credential is obtained,
//! and only then is a fresh clone of the inner service readied and called.
//! When the source fails, `poll_ready` still returns `Ready(Ok(()))` without
//! readying the inner service, and the next `call` fails that one request
//! with the source's [`AuthError`], unsent, whatever its origin or headers:
//! a failed login never poisons a `Buffer` or a balancer in front of the
//! service.
//!
//! A credential may be rejected between `poll_ready` and `call`: in a storm,
//! many requests are readied with one session, the first 401 ends it, and
//! the rest are called after that. Such a request is held, not sent: the
//! readied inner service is dropped for an unready clone (freeing its slot),
//! and the request takes a replay's path, sent once with the renewed
//! credential.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::header::{Entry, AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use tower::Service;

use crate::base_url::{BaseUrl, Origin};
use crate::error::{AuthError, BoxError, ErrorKind};
use crate::future::{ResponseFuture, Retry};
use crate::layer::Config;
use crate::replay::{RecordBodies, ReplayMode};
use crate::source::{Credential, CredentialSource};

enum Pending<F> {
    Idle,
    Resolving(F),
    Resolved(Result<Credential, AuthError>),
}

/// Stamps `Authorization` on requests to one origin; see
/// [`AuthLayer`](crate::AuthLayer) for the behaviour.
///
/// `M`, the [`ReplayMode`], decides which body type the inner service
/// receives: [`ReplayBody<B>`](crate::ReplayBody) by default, the caller's
/// `B` with [`CloneBodies`](crate::CloneBodies).
///
/// Cloning gives a service that is not ready yet, as tower expects.
pub struct AuthService<S, C: CredentialSource, M = RecordBodies> {
    inner: S,
    shared: Arc<Shared<S, C>>,
    pending: Pending<C::Future>,
    mode: PhantomData<fn() -> M>,
}

/// What the clones of one service, and the requests they may replay,
/// share: one reference count to take per request that may be replayed.
pub(crate) struct Shared<S, C> {
    pub(crate) source: C,
    pub(crate) config: Config,
    /// A pristine clone of the inner service: a replay clones it then,
    /// instead of every request cloning the inner service up front.
    pub(crate) replay_service: Mutex<S>,
}

impl<S, C: CredentialSource> AuthService<S, C> {
    /// Wraps `inner`, stamping credentials from `source` on requests to
    /// `base_url`. [`AuthLayer`](crate::AuthLayer) offers more options.
    pub fn new(inner: S, base_url: BaseUrl, source: C) -> Self
    where
        S: Clone,
        C: Clone,
    {
        tower::Layer::layer(&crate::AuthLayer::new(base_url, source), inner)
    }
}

impl<S, C: CredentialSource, M> AuthService<S, C, M> {
    pub(crate) fn from_parts(inner: S, source: C, config: Config) -> Self
    where
        S: Clone,
    {
        Self {
            shared: Arc::new(Shared {
                source,
                config,
                replay_service: Mutex::new(inner.clone()),
            }),
            inner,
            pending: Pending::Idle,
            mode: PhantomData,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The credential source.
    pub fn source(&self) -> &C {
        &self.shared.source
    }
}

impl<S: Clone, C: CredentialSource, M> Clone for AuthService<S, C, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            pending: Pending::Idle,
            mode: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C: CredentialSource + fmt::Debug, M> fmt::Debug for AuthService<S, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("source", &self.shared.source)
            .field("base_url", &self.shared.config.base_url)
            .finish_non_exhaustive()
    }
}

impl<S, C, M, B, RB> Service<Request<B>> for AuthService<S, C, M>
where
    M: ReplayMode<B>,
    S: Service<Request<M::Body>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    C: CredentialSource,
    B: Body,
    RB: Body,
{
    type Response = Response<RB>;
    type Error = AuthError;
    type Future = ResponseFuture<S, C, B, RB, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let resolved = match &mut self.pending {
            Pending::Resolved(resolved) => resolved.is_ok(),
            Pending::Idle => {
                // Most sources answer at once: their future never needs
                // to be stored.
                let mut future = self.shared.source.credential();
                let Poll::Ready(resolved) = Pin::new(&mut future).poll(cx) else {
                    self.pending = Pending::Resolving(future);
                    return Poll::Pending;
                };
                let ok = resolved.is_ok();
                self.pending = Pending::Resolved(resolved);
                ok
            }
            Pending::Resolving(future) => {
                let resolved = std::task::ready!(Pin::new(future).poll(cx));
                let ok = resolved.is_ok();
                self.pending = Pending::Resolved(resolved);
                ok
            }
        };
        if !resolved {
            // The error is reported by `call`, for this request only.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(AuthError::inner)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let credential = match mem::replace(&mut self.pending, Pending::Idle) {
            Pending::Resolved(Ok(credential)) => credential,
            // After the source failed, `poll_ready` did not ready the inner
            // service, so nothing may be sent: not this request, whatever
            // its origin or headers.
            Pending::Resolved(Err(error)) => return ResponseFuture::failed(error),
            _ => {
                return ResponseFuture::failed(AuthError::new(
                    ErrorKind::Inner,
                    "AuthService::call was called before poll_ready returned Ready",
                ))
            }
        };
        // The request is changed in place and moved once, into its
        // replayable form: this is the per-request hot path.
        let origin = if request.uri().scheme().is_none() && request.uri().authority().is_none() {
            // Moved, not cloned: cloning a parsed path allocates.
            let path = mem::take(request.uri_mut())
                .into_parts()
                .path_and_query
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
            *request.uri_mut() = self.shared.config.base_url.resolve(path);
            Origin::Exact
        } else {
            self.shared.config.base_url.origin_of(request.uri())
        };
        if origin == Origin::Other {
            return ResponseFuture::first(self.inner.call(request.map(M::pass)), None);
        }
        // A static source hands its value over; a renewing one keeps the
        // credential, to report a 401 against.
        let renews = self.shared.source.can_renew();
        let (value, credential) = if renews {
            (credential.header_value().clone(), Some(credential))
        } else {
            (credential.into_header_value(), None)
        };
        let replace = self.shared.config.override_existing;
        let ours_sent = match stamp(request.headers_mut(), value, replace) {
            Ok(ours_sent) => ours_sent,
            Err(error) => return ResponseFuture::failed(error),
        };
        let Some(credential) = credential.filter(|_| ours_sent) else {
            return ResponseFuture::first(self.inner.call(request.map(M::pass)), None);
        };
        let at_base = origin == Origin::Exact;
        if self.shared.source.is_rejected(&credential) {
            return self.hold(request, credential);
        }
        let (parts, body) = request.into_parts();
        let (first, replay) = M::keep(body, self.shared.config.replay_limit);
        let retry = Retry::new(self.shared.clone(), credential, &parts, at_base, replay);
        let request = Request::from_parts(parts, first);
        ResponseFuture::first(self.inner.call(request), Some(retry))
    }
}

impl<S, C, M> AuthService<S, C, M>
where
    S: Clone,
    C: CredentialSource,
{
    /// A request whose credential was answered 401 between `poll_ready`
    /// and `call` (a renewal storm: many requests readied, one rejected
    /// first). Sending it would only earn another 401, so it is not sent:
    /// it takes the replay's path (the renewed credential, then a fresh
    /// clone of the inner service readied) and is sent once.
    ///
    /// The readied inner service is dropped for an unready clone, so that
    /// the slot it may hold (a `ConcurrencyLimit` permit, a `Buffer` slot)
    /// is not held while the renewal runs.
    #[cold]
    #[inline(never)]
    fn hold<B, RB>(
        &mut self,
        request: Request<B>,
        stamped: Credential,
    ) -> ResponseFuture<S, C, B, RB, M>
    where
        M: ReplayMode<B>,
        S: Service<Request<M::Body>, Response = Response<RB>>,
        S::Error: Into<BoxError>,
        RB: Body,
    {
        let unready = self.inner.clone();
        drop(mem::replace(&mut self.inner, unready));
        let (parts, body) = request.into_parts();
        let retry = Retry::held(self.shared.clone(), stamped, parts, M::pass(body));
        ResponseFuture::held(retry)
    }
}

/// Sets `Authorization` to `value`. Unless `replace`, a value the caller
/// set is kept and ours dropped. Returns whether ours is the one sent.
fn stamp(headers: &mut HeaderMap, value: HeaderValue, replace: bool) -> Result<bool, AuthError> {
    if replace {
        headers
            .try_insert(AUTHORIZATION, value)
            .map_err(|_| too_many_headers())?;
        return Ok(true);
    }
    // Appending to an absent name is a plain insert: one probe, where a
    // lookup followed by an insert (or the entry API) costs more.
    let had_one = headers
        .try_append(AUTHORIZATION, value)
        .map_err(|_| too_many_headers())?;
    if had_one {
        // Rare: take ours (the last value) back out, keeping the caller's
        // values in their order.
        let Ok(Entry::Occupied(entry)) = headers.try_entry(AUTHORIZATION) else {
            return Err(too_many_headers());
        };
        let mut values: Vec<HeaderValue> = entry.remove_entry_mult().1.collect();
        values.pop();
        for value in values {
            headers
                .try_append(AUTHORIZATION, value)
                .map_err(|_| too_many_headers())?;
        }
    }
    Ok(!had_one)
}

/// `HeaderMap` holds at most 32,768 fields; a request at that limit cannot
/// take one more.
fn too_many_headers() -> AuthError {
    AuthError::new(
        ErrorKind::Request,
        "the request has too many headers to add Authorization",
    )
}
