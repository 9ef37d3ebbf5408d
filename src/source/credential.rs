//! [`Credential`]: a complete `Authorization` value.

use std::fmt;

use http::HeaderValue;

use crate::error::AuthError;
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
    pub fn header_value(&self) -> &HeaderValue {
        &self.value
    }

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
