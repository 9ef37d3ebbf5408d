//! Sources behind a box: [`BoxCredentialSource`], and [`source_fn`] for a
//! closure.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Credential, CredentialSource, Renewing, SourceKind, Static};
use crate::base_url::BaseUrl;
use crate::error::AuthError;

/// Object-safe mirror of [`CredentialSource`] behind [`BoxCredentialSource`].
pub(super) trait DynSource: Send + Sync {
    fn dyn_credential(&self) -> BoxFuture<'static, Result<Credential, AuthError>>;
    fn dyn_can_renew(&self) -> bool;
    fn dyn_on_unauthorized(&self, rejected: &Credential);
    fn dyn_is_rejected(&self, credential: &Credential) -> bool;
    fn dyn_on_replay(&self, replayed: bool);
    fn dyn_base_url(&self) -> Option<&BaseUrl>;
}

impl<C> DynSource for C
where
    C: CredentialSource + Send + Sync,
    C::Future: Send + 'static,
{
    fn dyn_credential(&self) -> BoxFuture<'static, Result<Credential, AuthError>> {
        Box::pin(CredentialSource::credential(self))
    }

    fn dyn_can_renew(&self) -> bool {
        CredentialSource::can_renew(self)
    }

    fn dyn_on_unauthorized(&self, rejected: &Credential) {
        CredentialSource::on_unauthorized(self, rejected)
    }

    fn dyn_is_rejected(&self, credential: &Credential) -> bool {
        CredentialSource::is_rejected(self, credential)
    }

    fn dyn_on_replay(&self, replayed: bool) {
        CredentialSource::on_replay(self, replayed)
    }

    fn dyn_base_url(&self) -> Option<&BaseUrl> {
        CredentialSource::base_url(self)
    }
}

/// A type-erased, cloneable [`CredentialSource`], for choosing the source at
/// run time (e.g. from configuration) while keeping one service type.
///
/// `K` is its [`Kind`](CredentialSource::Kind). [`new`](Self::new) keeps
/// the source's own: a box of static sources (`BoxCredentialSource<Static>`)
/// asks nothing of request bodies. [`mixed`](Self::mixed) puts a source of
/// either kind in a renewing box, for one type over both; such a box still
/// replays only what its source renews.
///
/// Each credential lookup allocates one boxed future.
pub struct BoxCredentialSource<K = Renewing> {
    source: Arc<dyn DynSource>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: SourceKind> BoxCredentialSource<K> {
    /// Erases the type of `source`, keeping its kind.
    pub fn new<C>(source: C) -> Self
    where
        C: CredentialSource<Kind = K> + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self::boxed(source)
    }

    fn boxed<C>(source: C) -> Self
    where
        C: CredentialSource + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self {
            source: Arc::new(source),
            _kind: PhantomData,
        }
    }
}

impl BoxCredentialSource<Renewing> {
    /// Erases the type of `source`, of either kind, into a renewing box:
    /// its requests' bodies must be replayable, and only a source that
    /// renews has them replayed.
    pub fn mixed<C>(source: C) -> Self
    where
        C: CredentialSource + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self::boxed(source)
    }
}

impl<K> Clone for BoxCredentialSource<K> {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: SourceKind> CredentialSource for BoxCredentialSource<K> {
    type Future = BoxFuture<'static, Result<Credential, AuthError>>;
    type Kind = K;

    fn credential(&self) -> Self::Future {
        self.source.dyn_credential()
    }

    fn can_renew(&self) -> bool {
        self.source.dyn_can_renew()
    }

    fn on_unauthorized(&self, rejected: &Credential) {
        self.source.dyn_on_unauthorized(rejected)
    }

    fn is_rejected(&self, credential: &Credential) -> bool {
        self.source.dyn_is_rejected(credential)
    }

    fn on_replay(&self, replayed: bool) {
        self.source.dyn_on_replay(replayed)
    }

    fn base_url(&self) -> Option<&BaseUrl> {
        self.source.dyn_base_url()
    }
}

impl<K> fmt::Debug for BoxCredentialSource<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxCredentialSource")
            .finish_non_exhaustive()
    }
}

/// A [`CredentialSource`] built from a closure; see [`source_fn`].
#[derive(Clone)]
pub struct SourceFn<F> {
    f: F,
}

/// Builds a [`CredentialSource`] from a closure returning a future of a
/// [`Credential`]: keys from a vault, a file or the environment.
///
/// The closure runs once per request; its future is boxed (one allocation
/// per request). Implement [`CredentialSource`] directly to avoid that.
///
/// ```
/// use infobip_auth::{source_fn, Credential};
///
/// let source = source_fn(|| async {
///     // e.g. fetch from a secret store here
///     Credential::new("App", "003026bbc133714df1834b8638bb496e")
/// });
/// # let _ = source;
/// ```
pub fn source_fn<F, Fut>(f: F) -> SourceFn<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Credential, AuthError>>,
{
    SourceFn { f }
}

impl<F, Fut> CredentialSource for SourceFn<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Credential, AuthError>>,
{
    type Future = Pin<Box<Fut>>;
    type Kind = Static;

    fn credential(&self) -> Self::Future {
        Box::pin((self.f)())
    }
}

impl<F> fmt::Debug for SourceFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFn").finish_non_exhaustive()
    }
}
