//! [`Rotating`]: a static credential that can be replaced at run time for
//! every clone of a layer, without rebuilding the service stack.

use std::fmt;
use std::future::{ready, Ready};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::error::AuthError;
use crate::secret::REDACTED;
use crate::source::{ApiKey, Basic, Credential, CredentialSource};

/// A credential (an API key, a Basic pair, any [`Credential`]) that can be
/// replaced while requests are flowing.
///
/// Clones share it: every clone, and so every clone of the service stack
/// built on it, sees a replacement at once. Reading it on the request path takes no lock and
/// allocates nothing; each request carries either the old or the new value
/// whole.
///
/// ```
/// use infobip_auth::{ApiKey, Rotating};
///
/// let key = Rotating::new(ApiKey::new("first-key")?);
/// // ... build the stack with `AuthLayer::new(base, key.clone())`, then later:
/// key.rotate(ApiKey::new("second-key")?);
/// # Ok::<(), infobip_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct Rotating {
    current: Arc<ArcSwap<Credential>>,
}

impl Rotating {
    /// Starts with `initial`.
    pub fn new(initial: impl Into<Credential>) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(initial.into())),
        }
    }

    /// Replaces the credential for every request that has not yet taken one.
    pub fn rotate(&self, next: impl Into<Credential>) {
        self.current.store(Arc::new(next.into()));
        tracing::debug!("credential rotated");
    }

    /// Replaces the API key.
    ///
    /// # Errors
    ///
    /// As [`ApiKey::new`]; the current credential stays in use.
    pub fn rotate_api_key(&self, key: impl AsRef<str>) -> Result<(), AuthError> {
        self.rotate(ApiKey::new(key)?);
        Ok(())
    }

    /// Replaces the Basic username and password.
    ///
    /// # Errors
    ///
    /// As [`Basic::new`]; the current credential stays in use.
    pub fn rotate_basic(
        &self,
        username: impl AsRef<str>,
        password: impl AsRef<str>,
    ) -> Result<(), AuthError> {
        self.rotate(Basic::new(username, password)?);
        Ok(())
    }
}

impl CredentialSource for Rotating {
    type Future = Ready<Result<Credential, AuthError>>;
    type Kind = super::Static;

    fn credential(&self) -> Self::Future {
        ready(Ok(Credential::clone(&self.current.load())))
    }
}

impl fmt::Debug for Rotating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rotating").field(&REDACTED).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_a_rotation() {
        let source = Rotating::new(ApiKey::new("one").unwrap());
        let clone = source.clone();
        let handle = source.clone();
        assert_eq!(clone.credential().await.unwrap().header_value(), "App one");
        handle.rotate_api_key("two").unwrap();
        assert_eq!(source.credential().await.unwrap().header_value(), "App two");
        assert_eq!(clone.credential().await.unwrap().header_value(), "App two");
        handle.rotate_basic("Aladdin", "openSesame").unwrap();
        assert_eq!(
            clone.credential().await.unwrap().header_value(),
            "Basic QWxhZGRpbjpvcGVuU2VzYW1l"
        );
    }

    #[tokio::test]
    async fn a_bad_rotation_keeps_the_current_credential() {
        let source = Rotating::new(ApiKey::new("one").unwrap());
        let handle = source.clone();
        assert!(handle.rotate_api_key("App one").is_err());
        assert!(handle.rotate_basic("a:b", "c").is_err());
        assert_eq!(source.credential().await.unwrap().header_value(), "App one");
        assert!(!format!("{source:?} {handle:?}").contains("one"));
    }
}
