//! What a kind of session (IBSSO, OAuth 2.0) tells the engine: how to log
//! in, and what a login yields.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request};

use crate::client::Answer;
use crate::error::{AuthError, ErrorKind};

/// What a login yields: the header value and, if the server said, how long
/// it stays valid.
pub(crate) struct Grant {
    pub(crate) value: HeaderValue,
    pub(crate) expires_in: Option<Duration>,
}

/// How one kind of session logs in.
pub(crate) trait Protocol: Send + Sync {
    /// The login request, with the secrets in its body.
    fn login_request(&self) -> Result<Request<Bytes>, AuthError>;
    /// The grant in a login answer, or the error it means; wipes the
    /// answer's body once read.
    fn grant(&self, answer: &mut Answer) -> Result<Grant, AuthError>;
    /// The account's name (username, client id): bound into what a shared
    /// store holds, never stored itself.
    fn account(&self) -> &str;
}

/// Checks a login pair before any request is built: neither part empty,
/// no control characters. `what` names them in the error.
pub(crate) fn validate_pair(
    what: &'static str,
    first: &str,
    second: &str,
) -> Result<(), AuthError> {
    if first.is_empty() || second.is_empty() {
        return Err(AuthError::new(
            ErrorKind::InvalidCredential,
            format!("{what} must not be empty"),
        ));
    }
    if first.chars().any(char::is_control) || second.chars().any(char::is_control) {
        return Err(AuthError::new(
            ErrorKind::InvalidCredential,
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(())
}
