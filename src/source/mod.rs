//! Where credentials come from: the [`CredentialSource`] trait and its
//! implementations.

mod api_key;
mod basic;
pub(crate) mod ibsso;
pub(crate) mod oauth2;
mod rotating;
pub(crate) mod session;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::HeaderValue;

pub use crate::client::HttpClient;
pub use api_key::ApiKey;
pub use basic::Basic;
pub use ibsso::{Ibsso, IbssoBuilder, UserSession};
pub use oauth2::{OAuth2, OAuth2Builder};
pub use rotating::Rotating;
pub use session::{SessionFuture, SessionStats};

use crate::base_url::BaseUrl;
use crate::error::AuthError;
use crate::replay::ReplayableBody;
use crate::secret::{is_visible_ascii, sensitive_header, REDACTED};

/// The value to stamp into `Authorization`, e.g. `App 003026bb...`, with the
/// generation it belongs to.
///
/// The header value is always marked [sensitive](HeaderValue::set_sensitive),
/// and `Debug` never prints it. Cloning is cheap (a reference count).
///
/// Credentials have no `==`: comparing secrets byte by byte with an early
/// exit leaks, through timing, how much of a guess was right. Sources tell
/// credentials apart by their [`generation`](Self::generation).
///
/// ```compile_fail
/// # use infobip_auth::Credential;
/// # let (a, b) = (Credential::new("App", "k").unwrap(), Credential::new("App", "k").unwrap());
/// let _ = a == b; // error: `==` cannot be applied to `Credential`
/// ```
#[derive(Clone)]
pub struct Credential {
    value: HeaderValue,
    generation: u64,
}

impl Credential {
    /// Builds `"<scheme> <secret>"`, e.g. `Credential::new("App", key)`.
    ///
    /// The bytes are kept in a buffer that is zeroized when the last clone is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](crate::ErrorKind::InvalidCredential) if the scheme
    /// or the secret is empty or contains anything but visible ASCII.
    pub fn new(scheme: &str, secret: &str) -> Result<Self, AuthError> {
        if !is_visible_ascii(scheme.as_bytes()) {
            return Err(AuthError::invalid_credential(
                "scheme must be a non-empty visible ASCII word",
            ));
        }
        if !is_visible_ascii(secret.as_bytes()) {
            return Err(AuthError::invalid_credential(
                "credential must be non-empty visible ASCII without spaces or control characters",
            ));
        }
        let value = sensitive_header(scheme, secret.as_bytes()).ok_or_else(|| {
            AuthError::invalid_credential("credential is not a valid header value")
        })?;
        Ok(Self::from_header_value(value))
    }

    /// Wraps a complete header value, marking it sensitive.
    pub fn from_header_value(mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        Self {
            value,
            generation: 0,
        }
    }

    /// Tags the credential with a generation, so that a renewing source can
    /// tell a 401 for its current credential from a late 401 for an old one.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The header value to stamp.
    #[inline]
    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }

    #[inline]
    pub(crate) fn into_header_value(self) -> HeaderValue {
        self.value
    }

    /// The generation this credential belongs to (0 for static sources).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("value", &REDACTED)
            .field("generation", &self.generation)
            .finish()
    }
}

/// Supplies the `Authorization` value for each request.
///
/// | source | header |
/// |---|---|
/// | [`ApiKey`] | `App <key>` (recommended by Infobip) |
/// | [`Basic`] | `Basic <base64(username:password)>` |
/// | [`Ibsso`] | `IBSSO <session token>`, logged in, renewed and replayed on 401 |
/// | [`OAuth2`] | `Bearer <access token>`, refreshed before expiry, renewed and replayed on 401 |
/// | [`Rotating`] | an `App` or `Basic` credential replaceable at run time |
/// | [`source_fn`] | whatever your closure returns |
///
/// # Writing a source
///
/// A source hands out a [`Credential`] (the full header value) through a
/// future. Static sources return [`std::future::Ready`]; sources that fetch
/// from elsewhere (a vault, a file, an environment variable) can use
/// [`source_fn`] or implement the trait. The future must be [`Unpin`] because
/// [`AuthService`](crate::AuthService) resolves it inside `poll_ready`, before
/// it readies the inner service; box it (`Pin<Box<_>>`) if yours is not.
///
/// ```
/// use std::future::{ready, Ready};
/// use infobip_auth::{AuthError, Credential, CredentialSource, Static};
///
/// /// Reads the API key from the environment each time it is needed.
/// #[derive(Clone)]
/// struct EnvKey;
///
/// impl CredentialSource for EnvKey {
///     type Future = Ready<Result<Credential, AuthError>>;
///     type Kind = Static;
///
///     fn credential(&self) -> Self::Future {
///         let key = std::env::var("INFOBIP_API_KEY")
///             .map_err(|_| AuthError::source_failed("INFOBIP_API_KEY is not set", None));
///         ready(key.and_then(|key| Credential::new("App", &key)))
///     }
/// }
/// ```
///
/// A source that can obtain a *new* credential (a session, a token) returns
/// `true` from [`can_renew`](CredentialSource::can_renew); the service then
/// reports every 401 to [`on_unauthorized`](CredentialSource::on_unauthorized)
/// with the credential that was rejected, asks for a fresh one and replays the
/// request once.
pub trait CredentialSource {
    /// The future [`credential`](Self::credential) returns.
    type Future: Future<Output = Result<Credential, AuthError>> + Unpin;

    /// [`Static`] for a source whose credential a 401 cannot mend (an API
    /// key, Basic): nothing is kept for a replay and any body type passes.
    /// [`Renewing`] for a source that obtains a new credential after a 401:
    /// requests are replayed once, so their bodies must be
    /// [`ReplayableBody`].
    type Kind: SourceKind;

    /// The credential to stamp on the next request.
    ///
    /// # Errors
    ///
    /// An error fails the request it was meant for; nothing is sent.
    fn credential(&self) -> Self::Future;

    /// Whether this source obtains a new credential after a 401; by default
    /// what its [`Kind`](Self::Kind) says. A [`Renewing`] source that holds
    /// a static one (as [`BoxCredentialSource`] may) answers `false`, and
    /// its requests are then not kept for a replay.
    fn can_renew(&self) -> bool {
        Self::Kind::RENEWS
    }

    /// Called when a request stamped with `rejected` was answered 401.
    ///
    /// A renewing source drops `rejected` if it is still its current
    /// credential (compare [`generation`](Credential::generation)s), so that
    /// the next [`credential`](Self::credential) call obtains a fresh one.
    fn on_unauthorized(&self, rejected: &Credential) {
        let _ = rejected;
    }

    /// Whether `credential` is already known to be rejected: a request
    /// stamped with it was answered 401 (or the session was ended) after
    /// `credential` was handed out.
    ///
    /// Checked, for renewing sources only, when a request is called: a
    /// request whose credential was resolved in `poll_ready` but rejected
    /// before `call` is not sent with it. It waits for the next
    /// [`credential`](Self::credential), like a replay, and is sent once.
    /// Called on every request, so it must be cheap (the session sources
    /// read one atomic integer). The default, `false`, sends every request
    /// with the credential it was resolved with.
    fn is_rejected(&self, credential: &Credential) -> bool {
        let _ = credential;
        false
    }

    /// Called after [`on_unauthorized`](Self::on_unauthorized) with whether
    /// the request is being replayed (`true`) or handed to the caller as a
    /// 401 because its body was over the replay limit (`false`). For
    /// statistics; the default does nothing.
    fn on_replay(&self, replayed: bool) {
        let _ = replayed;
    }

    /// The base URL this source logs in at, if it logs in at all (the
    /// session sources do). [`AuthLayer::new`](crate::AuthLayer::new)
    /// checks it against its own: a mismatch fails every request the layer
    /// would stamp with [`InvalidBaseUrl`](crate::ErrorKind::InvalidBaseUrl),
    /// unsent.
    fn base_url(&self) -> Option<&BaseUrl> {
        None
    }
}

/// What a [`CredentialSource`]'s [`Kind`](CredentialSource::Kind) says
/// about it: [`Static`] or [`Renewing`]. Sealed.
pub trait SourceKind: sealed::Sealed {
    /// Whether sources of this kind renew their credential after a 401.
    const RENEWS: bool;
}

/// The [`Kind`](CredentialSource::Kind) of sources whose credential a 401
/// cannot mend: requests are never replayed, any body type passes.
#[derive(Debug, Clone, Copy)]
pub enum Static {}

/// The [`Kind`](CredentialSource::Kind) of sources that obtain a new
/// credential after a 401: each request is replayed once, so its body must
/// be [`ReplayableBody`].
#[derive(Debug, Clone, Copy)]
pub enum Renewing {}

impl SourceKind for Static {
    const RENEWS: bool = false;
}

impl SourceKind for Renewing {
    const RENEWS: bool = true;
}

/// How requests with bodies of type `B` are kept for a replay, by
/// [`SourceKind`]: never for [`Static`], through [`ReplayableBody`] for
/// [`Renewing`]. Sealed; it is what asks a renewing source's request bodies
/// to be replayable, and asks nothing of a static source's.
///
/// A compile error saying that `Renewing: KeepsBody<YourBody>` is not
/// satisfied means a renewing source was given a body it cannot send twice:
/// wrap the body in [`ReplayBody`](crate::ReplayBody) or send a body in
/// memory (see [`ReplayableBody`]).
#[diagnostic::on_unimplemented(
    message = "`{B}` cannot be sent again after a 401, which a renewing source (Ibsso, OAuth2) needs",
    note = "wrap a streaming body in `infobip_auth::ReplayBody::new(body)`, or send a body in memory such as `Full<Bytes>`"
)]
pub trait KeepsBody<B>: SourceKind {
    #[doc(hidden)]
    fn keep(body: &mut B, limit: usize) -> Option<B>;
    #[doc(hidden)]
    fn start_replay(kept: &B) -> bool;
}

impl<B> KeepsBody<B> for Static {
    fn keep(_: &mut B, _: usize) -> Option<B> {
        None
    }

    fn start_replay(_: &B) -> bool {
        false
    }
}

impl<B: ReplayableBody> KeepsBody<B> for Renewing {
    fn keep(body: &mut B, limit: usize) -> Option<B> {
        body.replay_copy(limit)
    }

    fn start_replay(kept: &B) -> bool {
        kept.start_replay()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Static {}
    impl Sealed for super::Renewing {}
}

impl<T: CredentialSource + ?Sized> CredentialSource for Arc<T> {
    type Future = T::Future;
    type Kind = T::Kind;

    fn credential(&self) -> Self::Future {
        (**self).credential()
    }

    fn can_renew(&self) -> bool {
        (**self).can_renew()
    }

    fn on_unauthorized(&self, rejected: &Credential) {
        (**self).on_unauthorized(rejected)
    }

    fn is_rejected(&self, credential: &Credential) -> bool {
        (**self).is_rejected(credential)
    }

    fn on_replay(&self, replayed: bool) {
        (**self).on_replay(replayed)
    }

    fn base_url(&self) -> Option<&BaseUrl> {
        (**self).base_url()
    }
}

impl<T: CredentialSource + ?Sized> CredentialSource for Box<T> {
    type Future = T::Future;
    type Kind = T::Kind;

    fn credential(&self) -> Self::Future {
        (**self).credential()
    }

    fn can_renew(&self) -> bool {
        (**self).can_renew()
    }

    fn on_unauthorized(&self, rejected: &Credential) {
        (**self).on_unauthorized(rejected)
    }

    fn is_rejected(&self, credential: &Credential) -> bool {
        (**self).is_rejected(credential)
    }

    fn on_replay(&self, replayed: bool) {
        (**self).on_replay(replayed)
    }

    fn base_url(&self) -> Option<&BaseUrl> {
        (**self).base_url()
    }
}

/// Object-safe mirror of [`CredentialSource`] behind [`BoxCredentialSource`].
trait DynSource: Send + Sync {
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
/// Each credential lookup allocates one boxed future.
#[derive(Clone)]
pub struct BoxCredentialSource(Arc<dyn DynSource>);

impl BoxCredentialSource {
    /// Erases the type of `source`.
    pub fn new<C>(source: C) -> Self
    where
        C: CredentialSource + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self(Arc::new(source))
    }
}

impl CredentialSource for BoxCredentialSource {
    type Future = BoxFuture<'static, Result<Credential, AuthError>>;
    type Kind = Renewing;

    fn credential(&self) -> Self::Future {
        self.0.dyn_credential()
    }

    fn can_renew(&self) -> bool {
        self.0.dyn_can_renew()
    }

    fn on_unauthorized(&self, rejected: &Credential) {
        self.0.dyn_on_unauthorized(rejected)
    }

    fn is_rejected(&self, credential: &Credential) -> bool {
        self.0.dyn_is_rejected(credential)
    }

    fn on_replay(&self, replayed: bool) {
        self.0.dyn_on_replay(replayed)
    }

    fn base_url(&self) -> Option<&BaseUrl> {
        self.0.dyn_base_url()
    }
}

impl fmt::Debug for BoxCredentialSource {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn _object_safe(_: &dyn DynSource) {}

    #[test]
    fn credential_validates_and_redacts() {
        let c = Credential::new("App", "secret-key").unwrap();
        assert_eq!(c.header_value(), "App secret-key");
        assert!(c.header_value().is_sensitive());
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret-key"), "{debug}");
        assert!(Credential::new("App", "").unwrap_err().kind() == ErrorKind::InvalidCredential);
        assert!(Credential::new("App", "a\nb").is_err());
        assert!(Credential::new("", "abc").is_err());
        assert!(Credential::new("Ap p", "abc").is_err());
    }

    #[test]
    fn from_header_value_marks_sensitive() {
        let c = Credential::from_header_value(HeaderValue::from_static("App x"));
        assert!(c.header_value().is_sensitive());
        assert_eq!(c.with_generation(7).generation(), 7);
    }

    #[tokio::test]
    async fn closure_and_boxed_sources_forward() {
        let source = source_fn(|| async { Credential::new("App", "k1") });
        assert_eq!(source.credential().await.unwrap().header_value(), "App k1");
        assert!(!source.can_renew());
        let boxed = BoxCredentialSource::new(ApiKey::new("k2").unwrap());
        assert_eq!(boxed.credential().await.unwrap().header_value(), "App k2");
        let shared = Arc::new(ApiKey::new("k3").unwrap());
        assert_eq!(shared.credential().await.unwrap().header_value(), "App k3");
    }

    /// Rejects every credential of generation 5 or below.
    struct RejectsUpTo5;

    impl CredentialSource for RejectsUpTo5 {
        type Future = std::future::Ready<Result<Credential, AuthError>>;
        type Kind = Renewing;

        fn credential(&self) -> Self::Future {
            std::future::ready(Credential::new("IBSSO", "t"))
        }

        fn is_rejected(&self, credential: &Credential) -> bool {
            credential.generation() <= 5
        }
    }

    #[test]
    fn is_rejected_is_forwarded_and_false_by_default() {
        let (old, new) = (
            Credential::new("IBSSO", "t").unwrap().with_generation(5),
            Credential::new("IBSSO", "t").unwrap().with_generation(6),
        );
        let sources: [&dyn Fn(&Credential) -> bool; 3] = [
            &|c| Arc::new(RejectsUpTo5).is_rejected(c),
            &|c| Box::new(RejectsUpTo5).is_rejected(c),
            &|c| BoxCredentialSource::new(RejectsUpTo5).is_rejected(c),
        ];
        for is_rejected in sources {
            assert!(is_rejected(&old));
            assert!(!is_rejected(&new));
        }
        assert!(!ApiKey::new("k").unwrap().is_rejected(&old));
    }
}
