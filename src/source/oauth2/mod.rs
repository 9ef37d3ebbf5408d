//! [`OAuth2`]: Infobip's OAuth 2.0 client-credentials flow
//! (`Authorization: Bearer <access token>`).
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use infobip_auth::{AuthLayer, BaseUrl, OAuth2};
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), infobip_auth::AuthError> {
//! # let connector = hyper_util::client::legacy::connect::HttpConnector::new();
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! let client: Client<_, Full<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(connector);
//! let oauth = OAuth2::builder(base.clone(), "client-id", "client-secret").build(client.clone())?;
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(base, oauth))
//!     .service(client);
//! # let _ = service;
//! # Ok(())
//! # }
//! ```

pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};

use crate::base_url::BaseUrl;
use crate::client::{Answer, HttpClient, ServiceTransport};
use crate::error::AuthError;
use crate::secret::SecretString;
use crate::source::session::{validate_pair, Engine, Grant, Protocol, SessionStats, Settings};

/// Start refreshing an access token this long before it expires (or at half
/// its lifetime, if that is shorter).
pub(crate) const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// An OAuth 2.0 access token from Infobip's client-credentials endpoint
/// (`POST /auth/1/oauth2/token`), stamped as `Authorization: Bearer <token>`.
///
/// - The token is requested on first use, by one request for all waiting.
/// - It is refreshed in the background
///   [`refresh_before`](OAuth2Builder::refresh_before) it expires; requests
///   keep using the current token meanwhile. If the refresh fails while the
///   current token is still valid, the current token stays in use and the
///   refresh is retried after a backoff.
/// - An `expires_in` under 10 seconds (0, 1, ...) is taken as 10 seconds, so
///   that a token is refreshed at most every 5 seconds, never on every
///   request; a token that really dies sooner is renewed by the 401 it
///   earns.
/// - A 401 renews the token and replays the request once, as with
///   [`Ibsso`](crate::Ibsso); failed requests for a token back off alike.
///
/// Clones share one token.
#[derive(Clone)]
pub struct OAuth2 {
    engine: Arc<Engine>,
}

struct TokenLogin {
    token_uri: Uri,
    client_id: SecretString,
    client_secret: SecretString,
}

impl Protocol for TokenLogin {
    fn login_request(&self) -> Result<Request<Bytes>, AuthError> {
        Ok(wire::token_request(
            &self.token_uri,
            self.client_id.expose(),
            self.client_secret.expose(),
        ))
    }

    fn grant(&self, answer: &mut Answer) -> Result<Grant, AuthError> {
        wire::token_grant(answer)
    }

    fn account(&self) -> &str {
        self.client_id.expose()
    }
}

/// Builds an [`OAuth2`] source; from [`OAuth2::builder`].
pub struct OAuth2Builder {
    base_url: BaseUrl,
    client_id: SecretString,
    client_secret: SecretString,
    settings: Settings,
}

impl OAuth2 {
    /// Starts building a source for the account at `base_url`. Infobip's
    /// client id and secret are the account's username and password.
    pub fn builder(
        base_url: BaseUrl,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> OAuth2Builder {
        OAuth2Builder {
            base_url,
            client_id: SecretString::new(client_id.into()),
            client_secret: SecretString::new(client_secret.into()),
            settings: Settings::new(None, DEFAULT_REFRESH_BEFORE),
        }
    }

    /// Counters of token requests, refreshes, renewals and replays.
    pub fn stats(&self) -> SessionStats {
        self.engine.stats()
    }

    /// Whether a token is held and not known to have expired.
    pub fn has_token(&self) -> bool {
        self.engine.has_session()
    }

    /// The base URL tokens are requested from.
    pub fn base_url(&self) -> &BaseUrl {
        &self.engine.base_url
    }
}

crate::source::session::engine_backed_source!(OAuth2, "OAuth2");

impl OAuth2Builder {
    /// Start refreshing this long before the token expires (default
    /// 60 s; never more than half the token's life).
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.settings.refresh_before = margin;
        self
    }

    crate::source::session::shared_builder_methods!();

    /// Builds the source, requesting tokens through `transport` (any tower
    /// service taking `http::Request<RB>`). No request is sent until the
    /// first credential is needed.
    ///
    /// Pass the client itself, not a service stack that contains an
    /// `AuthLayer` built on this source: its login request would wait for
    /// its own credential.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](crate::ErrorKind::InvalidCredential) if the
    /// client id or secret is empty or contains a control character;
    /// [`InvalidConfig`](crate::ErrorKind::InvalidConfig) if a shared
    /// store's name is not valid.
    pub fn build<T, RB>(self, transport: T) -> Result<OAuth2, AuthError>
    where
        T: HttpClient<RB>,
        RB: From<Bytes> + Send + 'static,
    {
        validate_pair(
            "OAuth2 client id and secret",
            self.client_id.expose(),
            self.client_secret.expose(),
        )?;
        let login = TokenLogin {
            token_uri: self.base_url.join(wire::TOKEN_PATH)?,
            client_id: self.client_id,
            client_secret: self.client_secret,
        };
        Ok(OAuth2 {
            engine: Engine::new(
                self.base_url,
                self.settings,
                Box::new(ServiceTransport::<T, RB>::new(transport)),
                Box::new(login),
            )?,
        })
    }
}

impl fmt::Debug for OAuth2Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Builder")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}
