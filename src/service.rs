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
//!
//! # When the source fails
//!
//! `poll_ready` does not fail: it readies the inner service all the same,
//! so a failed login never poisons a `Buffer` or a balancer in front of the
//! service. The next `call` then decides by what the request needs:
//!
//! - a request the layer would stamp fails with the source's
//!   [`AuthError`], unsent, and the inner service's readiness is given up
//!   (dropped for an unready clone) so that it holds no slot;
//! - a request the layer would not stamp (to another origin, or carrying
//!   the caller's own `Authorization` without
//!   [`override_existing`](crate::AuthLayer::override_existing)) does not
//!   depend on the source and is sent as it is.
//!
//! A credential may be rejected between `poll_ready` and `call`: in a storm,
//! many requests are readied with one session, the first 401 ends it, and
//! the rest are called after that. Such a request is held, not sent: the
//! readied inner service is dropped for an unready clone (freeing its slot),
//! and the request takes a replay's path, sent once with the renewed
//! credential.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::base_url::{BaseUrl, Origin};
use crate::error::{AuthError, BoxError, ErrorKind};
use crate::future::{Replay, ResponseFuture};
use crate::protocol::{self, Common, Config};
use crate::source::{Credential, CredentialSource, KeepsBody};

enum Pending<F> {
    Idle,
    Resolving(F),
    Resolved(Result<Credential, AuthError>),
}

/// Stamps `Authorization` on requests to one origin; see
/// [`AuthLayer`](crate::AuthLayer) for the behaviour.
///
/// The inner service receives the caller's request, body type included.
/// Cloning gives a service that is not ready yet, as tower expects.
///
/// # Compile errors
///
/// `AuthService<S, C>` is a `Service<Request<B>>` when `S` is one whose
/// response is `http::Response<RB>` with `RB: http_body::Body`, and, for a
/// renewing source, when `B` is [`ReplayableBody`](crate::ReplayableBody).
/// Where a `Service` is required by a bound (`BoxCloneService::new`, a
/// generic function), rustc names the one that fails (for example
/// "`Vec<u8>: http_body::Body` is not satisfied", or "`BoxBody<..>` cannot
/// be sent again after a 401"). A method call (`service.call(..)`,
/// `service.oneshot(..)`) reports only "method not found" or "trait bounds
/// were not satisfied": check those two.
///
/// # Panics
///
/// With a renewing source, the response future of a request answered 401
/// panics outside a tokio runtime with its time driver: the 401's body is
/// read within a time bound (see [the crate docs](crate#tokio)).
pub struct AuthService<S, C: CredentialSource> {
    inner: S,
    common: Arc<Common<S, C>>,
    pending: Pending<C::Future>,
}

impl<S, C: CredentialSource> AuthService<S, C> {
    /// Wraps `inner`, stamping credentials from `source` on requests to
    /// `base_url`. [`AuthLayer`](crate::AuthLayer) offers more options.
    pub fn new(inner: S, base_url: BaseUrl, source: C) -> Self
    where
        S: Clone,
    {
        let config = Config::new(base_url, &source);
        Self::from_parts(inner, source, config)
    }

    pub(crate) fn from_parts(inner: S, source: C, config: Config) -> Self
    where
        S: Clone,
    {
        let common = Arc::new(Common {
            source,
            config,
            replay_service: Mutex::new(inner.clone()),
        });
        Self::with_common(inner, common)
    }

    /// A service over `inner` for what `common` holds (an account's source
    /// and configuration, kept by the accounts layer).
    pub(crate) fn with_common(inner: S, common: Arc<Common<S, C>>) -> Self {
        Self {
            inner,
            common,
            pending: Pending::Idle,
        }
    }

    /// What every clone of this service shares.
    #[cfg(feature = "accounts")]
    pub(crate) fn common(&self) -> &Arc<Common<S, C>> {
        &self.common
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
        &self.common.source
    }
}

impl<S: Clone, C: CredentialSource> Clone for AuthService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            common: self.common.clone(),
            pending: Pending::Idle,
        }
    }
}

impl<S: fmt::Debug, C: CredentialSource + fmt::Debug> fmt::Debug for AuthService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("source", &self.common.source)
            .field("base_url", &self.common.config.base_url)
            .finish_non_exhaustive()
    }
}

impl<S, C, B, RB> Service<Request<B>> for AuthService<S, C>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    C: CredentialSource,
    C::Kind: KeepsBody<B>,
    RB: Body,
{
    type Response = Response<RB>;
    type Error = AuthError;
    type Future = ResponseFuture<S, C, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Pending::Idle = self.pending {
            self.pending = match &self.common.config.mismatch {
                Some(mismatch) => Pending::Resolved(Err(mismatch.clone())),
                None => Pending::Resolving(self.common.source.credential()),
            };
        }
        if let Pending::Resolving(future) = &mut self.pending {
            self.pending = Pending::Resolved(ready!(Pin::new(future).poll(cx)));
        }
        // Readied whatever the source said: a request that needs no
        // credential is sent all the same. A failure is reported by `call`,
        // for the request it was meant for only.
        self.inner.poll_ready(cx).map_err(AuthError::inner)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Pending::Resolved(resolved) = mem::replace(&mut self.pending, Pending::Idle) else {
            return ResponseFuture::failed(AuthError::new(
                ErrorKind::NotReady,
                "AuthService::call was called before poll_ready returned Ready",
            ));
        };
        let config = &self.common.config;
        if !config.base_url.resolve_path_only(request.uri_mut())
            && config.base_url.origin_of(request.uri()) == Origin::Other
            || config.callers_own(request.headers())
        {
            return ResponseFuture::first(self.inner.call(request), None);
        }
        let credential = match resolved {
            Ok(credential) => credential,
            Err(error) => return self.fail_unsent(error),
        };
        // A static source hands its value over; a renewing one keeps the
        // credential, to report a 401 against.
        let (value, credential) = if self.common.source.can_renew() {
            (credential.header_value().clone(), Some(credential))
        } else {
            (credential.into_header_value(), None)
        };
        if let Err(error) = protocol::stamp(request.headers_mut(), value) {
            return self.fail_unsent(error);
        }
        let Some(credential) = credential else {
            return ResponseFuture::first(self.inner.call(request), None);
        };
        if protocol::must_hold(&self.common.source, &credential) {
            self.release_readiness();
            let replay = Replay::held(self.common.clone(), credential, request);
            return ResponseFuture::held(replay);
        }
        let copy = C::Kind::keep(request.body_mut(), self.common.config.replay_limit);
        let replay = Replay::new(self.common.clone(), credential, &request, copy);
        ResponseFuture::first(self.inner.call(request), Some(replay))
    }
}

impl<S: Clone, C: CredentialSource> AuthService<S, C> {
    /// Gives up the inner service's readiness, for a request that will not
    /// be sent now: the readied service is dropped for an unready clone, so
    /// that the slot it may hold (a `ConcurrencyLimit` permit, a `Buffer`
    /// slot) is free meanwhile.
    fn release_readiness(&mut self) {
        let unready = self.inner.clone();
        drop(mem::replace(&mut self.inner, unready));
    }

    /// Fails a request unsent, giving up the readiness `poll_ready` took.
    fn fail_unsent<B>(&mut self, error: AuthError) -> ResponseFuture<S, C, B>
    where
        S: Service<Request<B>>,
    {
        self.release_readiness();
        ResponseFuture::failed(error)
    }
}
