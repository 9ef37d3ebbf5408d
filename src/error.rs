//! The crate's one error type, [`AuthError`].
//!
//! An [`AuthError`] says what went wrong and what to do about it; it never
//! carries an API key, a password or a session token. Use [`AuthError::kind`]
//! or the `is_*` predicates to branch on it, and [`std::error::Error::source`]
//! to reach the underlying cause (for example the inner service's error).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from an inner service or transport.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an [`AuthError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A credential given to a constructor is malformed (empty, bad
    /// characters, a scheme prefix, a `:` in a Basic username, ...).
    InvalidCredential,
    /// A base URL could not be used.
    InvalidBaseUrl,
    /// The login endpoint rejected the username or password (401 or 403).
    BadCredentials,
    /// The login endpoint answered 429; see [`AuthError::retry_after`].
    Throttled,
    /// The login endpoint failed (5xx or another unexpected status).
    LoginFailed,
    /// The login did not finish within its timeout.
    Timeout,
    /// The login request could not be sent or its response not read.
    Transport,
    /// The login response was not the JSON document expected, was too large,
    /// or carried a token that cannot be used in a header.
    InvalidResponse,
    /// A login is suppressed because recent logins failed; wait
    /// [`AuthError::retry_after`] before expecting another attempt.
    BackingOff,
    /// A custom [`CredentialSource`](crate::CredentialSource) failed.
    Source,
    /// The wrapped (inner) service returned an error.
    Inner,
    /// This request could not carry the credential: it already holds the
    /// most header fields `HeaderMap` allows.
    Request,
    /// [`AuthService`](crate::AuthService) was called without a
    /// `poll_ready` that returned `Ready` first, as tower requires.
    NotReady,
    /// A future was polled again after it had completed.
    PolledAfterCompletion,
    /// A [`UserSession`](crate::UserSession) has ended (answered 401, or
    /// logged out): the user must log in again. No login was attempted.
    ReauthenticationRequired,
    /// A request to [`Accounts`](crate::accounts::Accounts) names no account
    /// and no default is set.
    NoAccount,
    /// A builder was given settings that cannot work together, or a
    /// setting that cannot be used (a sealing key of the wrong size, a
    /// session bound to one IP shared across hosts, ...).
    InvalidConfig,
    /// The account's daily limit on creating and updating API keys is
    /// reached; try again tomorrow.
    KeyLimitReached,
    /// Infobip answered 403: the credential may not do this (an API key
    /// may never manage keys) or lacks the permission. Logging in again
    /// does not help.
    Forbidden,
    /// Infobip answered 404: no such thing (an API key id, say).
    NotFound,
    /// Infobip refused a management request (400, 5xx or another status).
    Rejected,
    /// A login, logout or key-management call was answered with a redirect
    /// (3xx), or its answer came from another URL: such calls carry
    /// secrets and never follow one. Check the base URL.
    Redirected,
}

impl ErrorKind {
    /// Any failure to obtain a session (bad credentials, throttling, server
    /// error, timeout, transport, malformed response, redirect, or backoff).
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Self::BadCredentials
                | Self::Throttled
                | Self::LoginFailed
                | Self::Timeout
                | Self::Transport
                | Self::InvalidResponse
                | Self::BackingOff
                | Self::Redirected
        )
    }
}

/// One `is_*` method per [`ErrorKind`].
/// The error returned by this crate's constructors, sources and services.
///
/// Cheap to clone (a failed login is handed to every request that waited on
/// it) and one pointer wide, so results that carry it stay small on the
/// request path.
#[derive(Clone)]
pub struct AuthError {
    inner: Arc<ErrorInner>,
}

#[derive(Clone)]
struct ErrorInner {
    kind: ErrorKind,
    detail: Cow<'static, str>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl AuthError {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            inner: Arc::new(ErrorInner {
                kind,
                detail: detail.into(),
                retry_after: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        Arc::make_mut(&mut self.inner).source = Some(Arc::from(source.into()));
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        Arc::make_mut(&mut self.inner).retry_after = wait;
        self
    }

    pub(crate) fn invalid_credential(detail: &'static str) -> Self {
        Self::new(ErrorKind::InvalidCredential, detail)
    }

    pub(crate) fn invalid_base_url(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidBaseUrl, detail)
    }

    pub(crate) fn inner(error: impl Into<BoxError>) -> Self {
        Self::new(ErrorKind::Inner, "the inner service failed").with_source(error)
    }

    /// Builds the error a custom [`CredentialSource`](crate::CredentialSource)
    /// reports when it cannot produce a credential.
    ///
    /// `detail` ends up in the error message: it must not contain a secret.
    pub fn source_failed(detail: impl Into<Cow<'static, str>>, cause: Option<BoxError>) -> Self {
        let error = Self::new(ErrorKind::Source, detail);
        match cause {
            Some(cause) => error.with_source(cause),
            None => error,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// How long to wait before a login is worth trying again, when known
    /// (from `Retry-After` on a 429, or the remaining backoff).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AuthError");
        d.field("kind", &self.inner.kind)
            .field("detail", &self.inner.detail);
        if let Some(wait) = self.inner.retry_after {
            d.field("retry_after", &wait);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.detail)?;
        if let Some(wait) = self.inner.retry_after {
            write!(f, " (retry after {} ms)", wait.as_millis())?;
        }
        Ok(())
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_error_is_reachable_through_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = AuthError::inner(io);
        assert!(error.kind() == ErrorKind::Inner);
        let source = error.source().expect("inner error kept");
        assert_eq!(source.to_string(), "refused");
        assert!(error
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .is_some());
    }

    #[test]
    fn every_kind_has_its_own_predicate() {
        use ErrorKind::*;
        let kinds = [
            InvalidCredential,
            InvalidBaseUrl,
            BadCredentials,
            Throttled,
            LoginFailed,
            Timeout,
            Transport,
            InvalidResponse,
            BackingOff,
            Source,
            Inner,
            Request,
            NotReady,
            PolledAfterCompletion,
            ReauthenticationRequired,
            NoAccount,
            InvalidConfig,
            KeyLimitReached,
            Forbidden,
            NotFound,
            Rejected,
        ];
        let predicates: [fn(&AuthError) -> bool; 21] = [
            (|e: &AuthError| e.kind() == ErrorKind::InvalidCredential),
            (|e: &AuthError| e.kind() == ErrorKind::InvalidBaseUrl),
            (|e: &AuthError| e.kind() == ErrorKind::BadCredentials),
            (|e: &AuthError| e.kind() == ErrorKind::Throttled),
            (|e: &AuthError| e.kind() == ErrorKind::LoginFailed),
            (|e: &AuthError| e.kind() == ErrorKind::Timeout),
            (|e: &AuthError| e.kind() == ErrorKind::Transport),
            (|e: &AuthError| e.kind() == ErrorKind::InvalidResponse),
            (|e: &AuthError| e.kind() == ErrorKind::BackingOff),
            (|e: &AuthError| e.kind() == ErrorKind::Source),
            (|e: &AuthError| e.kind() == ErrorKind::Inner),
            (|e: &AuthError| e.kind() == ErrorKind::Request),
            (|e: &AuthError| e.kind() == ErrorKind::NotReady),
            (|e: &AuthError| e.kind() == ErrorKind::PolledAfterCompletion),
            (|e: &AuthError| e.kind() == ErrorKind::ReauthenticationRequired),
            (|e: &AuthError| e.kind() == ErrorKind::NoAccount),
            (|e: &AuthError| e.kind() == ErrorKind::InvalidConfig),
            (|e: &AuthError| e.kind() == ErrorKind::KeyLimitReached),
            (|e: &AuthError| e.kind() == ErrorKind::Forbidden),
            (|e: &AuthError| e.kind() == ErrorKind::NotFound),
            (|e: &AuthError| e.kind() == ErrorKind::Rejected),
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let error = AuthError::new(kind, "x");
            for (j, is) in predicates.iter().enumerate() {
                assert_eq!(is(&error), i == j, "{kind:?}, predicate {j}");
            }
        }
    }

    #[test]
    fn display_mentions_retry_after() {
        let error = AuthError::new(ErrorKind::Throttled, "login throttled")
            .with_retry_after(Some(Duration::from_secs(2)));
        assert_eq!(error.to_string(), "login throttled (retry after 2000 ms)");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
        assert!(error.kind().is_login());
    }
}
