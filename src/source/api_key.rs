//! [`ApiKey`]: `Authorization: App <key>`.

use std::fmt;
use std::future::{ready, Ready};

use crate::error::AuthError;
use crate::secret::{is_visible_ascii, sensitive_header, REDACTED};
use crate::source::{Credential, CredentialSource};

/// Schemes a key must not start with: the double-prefix mistake (`App App ...`).
const SCHEMES: [&str; 4] = ["app", "basic", "ibsso", "bearer"];

/// An Infobip API key, stamped as `Authorization: App <key>`.
///
/// Infobip recommends this method. The key is kept only inside a sensitive,
/// zeroize-on-drop header value; `Debug` prints a redacted marker.
///
/// ```
/// use infobip_auth::{ApiKey, ErrorKind};
///
/// let key = ApiKey::new("003026bbc133714df1834b8638bb496e-8f4b3d9a").unwrap();
/// assert_eq!(format!("{key:?}"), "ApiKey(\"** redacted **\")");
/// assert_eq!(ApiKey::new("App 003026bb").unwrap_err().kind(), ErrorKind::InvalidCredential);
/// ```
#[derive(Clone)]
pub struct ApiKey {
    credential: Credential,
}

impl ApiKey {
    /// Validates `key` (the part after `App `).
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](crate::ErrorKind::InvalidCredential) if the key is
    /// empty, already starts with a scheme (`App xxx`), or contains
    /// whitespace, control characters or non-ASCII characters.
    pub fn new(key: impl AsRef<str>) -> Result<Self, AuthError> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(AuthError::invalid_credential("API key is empty"));
        }
        if let Some((first, _)) = key.split_once(|c: char| c.is_ascii_whitespace()) {
            if SCHEMES.iter().any(|s| first.eq_ignore_ascii_case(s)) {
                return Err(AuthError::invalid_credential(
                    "API key starts with a scheme: pass only the key, without \"App \"",
                ));
            }
        }
        if !is_visible_ascii(key.as_bytes()) {
            return Err(AuthError::invalid_credential(
                "API key contains whitespace, control or non-ASCII characters",
            ));
        }
        let value = sensitive_header("App", key.as_bytes())
            .ok_or_else(|| AuthError::invalid_credential("API key is not a valid header value"))?;
        Ok(Self {
            credential: Credential::from_header_value(value),
        })
    }
}

impl CredentialSource for ApiKey {
    type Future = Ready<Result<Credential, AuthError>>;
    type Kind = super::Static;

    fn credential(&self) -> Self::Future {
        ready(Ok(self.credential.clone()))
    }
}

impl From<ApiKey> for Credential {
    fn from(key: ApiKey) -> Self {
        key.credential
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKey").field(&REDACTED).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    async fn header(key: &ApiKey) -> String {
        let c = key.credential().await.unwrap();
        assert!(c.header_value().is_sensitive());
        c.header_value().to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn stamps_app_with_one_space() {
        let key = "003026bbc133714df1834b8638bb496e-8f4b3d9a-e931-478d-a994-28a725159ab9";
        assert_eq!(
            header(&ApiKey::new(key).unwrap()).await,
            format!("App {key}")
        );
    }

    #[test]
    fn rejects_every_malformed_key() {
        let cases = [
            ("", "empty"),
            ("App abc", "scheme"),
            ("app abc", "scheme"),
            ("Bearer abc", "scheme"),
            ("IBSSO abc", "scheme"),
            ("ab c", "whitespace"),
            (" abc", "whitespace"),
            ("abc ", "whitespace"),
            ("ab\tc", "whitespace"),
            ("ab\r\nc", "whitespace"),
            ("ab\0c", "control"),
            ("ab\x7fc", "control"),
            ("kľúč", "non-ASCII"),
        ];
        for (key, why) in cases {
            let error = ApiKey::new(key).unwrap_err();
            assert!(error.kind() == ErrorKind::InvalidCredential, "{key:?}");
            assert!(error.to_string().contains(why), "{key:?}: {error}");
        }
    }

    #[test]
    fn secret_never_in_debug_or_errors() {
        let key = ApiKey::new("topsecretkey").unwrap();
        assert!(!format!("{key:?}").contains("topsecretkey"));
        let error = ApiKey::new("App topsecretkey").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("topsecretkey"));
    }
}
