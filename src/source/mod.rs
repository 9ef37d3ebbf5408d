//! Where credentials come from: the [`CredentialSource`] trait and its
//! implementations.

mod api_key;
mod basic;
mod boxed;
mod credential;
pub(crate) mod ibsso;
mod kind;
pub(crate) mod oauth2;
mod rotating;
pub(crate) mod session;

pub use crate::client::HttpClient;
pub use api_key::ApiKey;
pub use basic::Basic;
pub use boxed::{source_fn, BoxCredentialSource, SourceFn};
pub use credential::Credential;
pub use ibsso::{Ibsso, IbssoBuilder, UserSession};
pub use kind::{CredentialSource, KeepsBody, Renewing, SourceKind, Static};
pub use oauth2::{OAuth2, OAuth2Builder};
pub use rotating::Rotating;
pub use session::{SessionFuture, SessionStats};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::HeaderValue;

    use super::boxed::DynSource;
    use super::*;
    use crate::{AuthError, ErrorKind};

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
