//! [`CredentialSource`], and what a source's kind asks of request bodies.

use std::future::Future;
use std::sync::Arc;

use super::Credential;
use crate::base_url::BaseUrl;
use crate::error::AuthError;
use crate::replay::ReplayableBody;

/// Supplies the `Authorization` value for each request.
///
/// | source | header |
/// |---|---|
/// | [`ApiKey`](crate::ApiKey) | `App <key>` (recommended by Infobip) |
/// | [`Basic`](crate::Basic) | `Basic <base64(username:password)>` |
/// | [`Ibsso`](crate::Ibsso) | `IBSSO <session token>`, logged in, renewed and replayed on 401 |
/// | [`OAuth2`](crate::OAuth2) | `Bearer <access token>`, refreshed before expiry, renewed and replayed on 401 |
/// | [`Rotating`](crate::Rotating) | an `App` or `Basic` credential replaceable at run time |
/// | [`source_fn`](crate::source_fn) | whatever your closure returns |
///
/// # Writing a source
///
/// A source hands out a [`Credential`] (the full header value) through a
/// future. Static sources return [`std::future::Ready`]; sources that fetch
/// from elsewhere (a vault, a file, an environment variable) can use
/// [`source_fn`](crate::source_fn) or implement the trait. The future must be [`Unpin`] because
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
    /// a static one (as [`BoxCredentialSource::mixed`](crate::BoxCredentialSource::mixed) may) answers `false`, and
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
