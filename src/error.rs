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
    /// most header fields `HeaderMap` allows, or, answered 401, it could not
    /// be rebuilt for its replay (a header or URI that bypassed `http`'s
    /// validation).
    Request,
}

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

    /// A constructor was given a malformed credential.
    pub fn is_invalid_credential(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidCredential
    }

    /// A base URL was rejected.
    pub fn is_invalid_base_url(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidBaseUrl
    }

    /// The login endpoint rejected the username or password.
    pub fn is_bad_credentials(&self) -> bool {
        self.inner.kind == ErrorKind::BadCredentials
    }

    /// Any failure to obtain a session (bad credentials, throttling, server
    /// error, timeout, transport, malformed response, or backoff).
    pub fn is_login(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::BadCredentials
                | ErrorKind::Throttled
                | ErrorKind::LoginFailed
                | ErrorKind::Timeout
                | ErrorKind::Transport
                | ErrorKind::InvalidResponse
                | ErrorKind::BackingOff
        )
    }

    /// The error came from the wrapped service; [`source`](StdError::source)
    /// returns it.
    pub fn is_inner(&self) -> bool {
        self.inner.kind == ErrorKind::Inner
    }

    /// The inner service's (or transport's) error, if this error wraps one.
    pub fn inner_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.inner.source.as_deref()
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
        assert!(error.is_inner());
        let source = error.source().expect("inner error kept");
        assert_eq!(source.to_string(), "refused");
        assert!(error
            .inner_error()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .is_some());
    }

    #[test]
    fn display_mentions_retry_after() {
        let error = AuthError::new(ErrorKind::Throttled, "login throttled")
            .with_retry_after(Some(Duration::from_secs(2)));
        assert_eq!(error.to_string(), "login throttled (retry after 2000 ms)");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
        assert!(error.is_login());
    }
}
