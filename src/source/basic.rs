//! [`Basic`]: `Authorization: Basic <base64(username:password)>`.

use std::fmt;
use std::future::{ready, Ready};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::AuthError;
use crate::secret::{sensitive_header_with, REDACTED};
use crate::source::{Credential, CredentialSource};

/// Username and password, stamped as `Authorization: Basic <base64>`.
///
/// Encoded per RFC 7617: `username:password` in UTF-8, standard base64
/// alphabet with padding, **no line breaks** at any length. Infobip advises
/// [`ApiKey`](crate::ApiKey) instead, since Basic sends the password with
/// every request.
///
/// ```
/// use infobip_auth::{Basic, ErrorKind};
///
/// let basic = Basic::new("Aladdin", "openSesame").unwrap();
/// # let _ = basic;
/// assert_eq!(Basic::new("user:name", "pw").unwrap_err().kind(), ErrorKind::InvalidCredential);
/// ```
#[derive(Clone)]
pub struct Basic {
    credential: Credential,
}

impl Basic {
    /// Validates and encodes the pair once; requests then reuse the header.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](crate::ErrorKind::InvalidCredential) if the
    /// username is empty or contains `:`, or either contains a control
    /// character. An empty password is valid (RFC 7617; `curl -u user:`
    /// sends the same).
    pub fn new(username: impl AsRef<str>, password: impl AsRef<str>) -> Result<Self, AuthError> {
        let (username, password) = (username.as_ref(), password.as_ref());
        if username.is_empty() {
            return Err(AuthError::invalid_credential("Basic username is empty"));
        }
        if username.contains(':') {
            return Err(AuthError::invalid_credential(
                "Basic username must not contain ':' (RFC 7617)",
            ));
        }
        if username.chars().any(char::is_control) {
            return Err(AuthError::invalid_credential(
                "Basic username contains a control character",
            ));
        }
        if password.chars().any(char::is_control) {
            return Err(AuthError::invalid_credential(
                "Basic password contains a control character",
            ));
        }
        let mut pair = Zeroizing::new(Vec::with_capacity(username.len() + 1 + password.len()));
        pair.extend_from_slice(username.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(password.as_bytes());
        let encoded_len = base64::encoded_len(pair.len(), true)
            .ok_or_else(|| AuthError::invalid_credential("Basic credentials are too long"))?;
        let value = sensitive_header_with("Basic", encoded_len, |out| {
            let written = STANDARD
                .encode_slice(&*pair, out)
                .expect("buffer sized by encoded_len");
            debug_assert_eq!(written, encoded_len);
        })
        .ok_or_else(|| AuthError::invalid_credential("Basic credentials are not a valid header"))?;
        Ok(Self {
            credential: Credential::from_header_value(value),
        })
    }
}

impl CredentialSource for Basic {
    type Future = Ready<Result<Credential, AuthError>>;
    type Kind = super::Static;

    fn credential(&self) -> Self::Future {
        ready(Ok(self.credential.clone()))
    }
}

impl From<Basic> for Credential {
    fn from(basic: Basic) -> Self {
        basic.credential
    }
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Basic").field(&REDACTED).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    async fn header(user: &str, pass: &str) -> String {
        let c = Basic::new(user, pass).unwrap().credential().await.unwrap();
        assert!(c.header_value().is_sensitive());
        c.header_value().to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn matches_the_documented_vector() {
        assert_eq!(
            header("Aladdin", "openSesame").await,
            "Basic QWxhZGRpbjpvcGVuU2VzYW1l"
        );
    }

    #[tokio::test]
    async fn long_password_has_no_line_breaks() {
        let password = "p".repeat(300);
        let value = header("user", &password).await;
        assert!(!value.contains('\r') && !value.contains('\n'));
        let decoded = STANDARD.decode(&value["Basic ".len()..]).unwrap();
        assert_eq!(decoded, format!("user:{password}").into_bytes());
    }

    #[tokio::test]
    async fn utf8_and_colons_in_password_round_trip() {
        let value = header("žofia", "pa:ss wörd").await;
        let decoded = STANDARD.decode(&value["Basic ".len()..]).unwrap();
        assert_eq!(decoded, "žofia:pa:ss wörd".as_bytes());
    }

    #[test]
    fn rejects_every_malformed_pair() {
        let cases = [
            ("", "pw", "username is empty"),
            ("a:b", "pw", "':'"),
            ("us\ner", "pw", "username contains a control"),
            ("user", "p\0w", "password contains a control"),
            ("user", "p\x7fw", "password contains a control"),
        ];
        for (user, pass, why) in cases {
            let error = Basic::new(user, pass).unwrap_err();
            assert!(error.kind() == ErrorKind::InvalidCredential);
            assert!(error.to_string().contains(why), "{user:?}: {error}");
        }
    }

    #[test]
    fn an_empty_password_is_valid() {
        let basic = Basic::new("user", "").unwrap();
        // What `curl -u user:` sends.
        assert_eq!(basic.credential.header_value(), "Basic dXNlcjo=");
        assert!(Basic::new("us:er", "").unwrap_err().kind() == ErrorKind::InvalidCredential);
    }

    #[test]
    fn secrets_never_in_debug_or_errors() {
        let basic = Basic::new("Aladdin", "openSesame").unwrap();
        let debug = format!("{basic:?}");
        assert!(!debug.contains("openSesame") && !debug.contains("QWxh"));
        let error = Basic::new("user", "open\nSesame").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("Sesame"));
    }
}
