//! [`AuthLayer`]: configuration for [`AuthService`].

use std::sync::Arc;

use tower::Layer;

use crate::base_url::BaseUrl;
use crate::protocol::Config;
use crate::service::AuthService;
use crate::source::CredentialSource;

/// Stamps `Authorization` from a [`CredentialSource`] on every request to the
/// configured [`BaseUrl`].
///
/// - Requests whose URI is only a path are resolved against the base URL.
/// - Requests to any other origin pass through without credentials.
/// - An `Authorization` header the caller set is kept, unless
///   [`override_existing`](Self::override_existing) is on.
/// - When the source fails, the next request it would stamp fails with its
///   error, unsent; a request it would not stamp (another origin, the
///   caller's own `Authorization`) is sent as it is.
/// - The stamped header value is marked sensitive.
/// - With a renewing source ([`Ibsso`](crate::Ibsso)), a 401 renews the
///   credential and the request is replayed once, transparently. A request
///   whose credential was rejected between `poll_ready` and `call` (by
///   another request's 401, or a logout) is not sent with it: it waits for
///   the renewal and is sent once. The inner service receives the caller's
///   request and body type; the replay sends the body's second copy (see
///   [`ReplayableBody`](crate::ReplayableBody)).
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use http_body_util::Empty;
/// use bytes::Bytes;
/// use infobip_auth::{ApiKey, AuthLayer, BaseUrl};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let base = BaseUrl::new("https://xyz.api.infobip.com")?;
/// let transport = service_fn(|req: Request<Empty<Bytes>>| async move {
///     let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
///     Ok::<_, Infallible>(Response::new(auth))
/// });
/// let client = ServiceBuilder::new()
///     .layer(AuthLayer::new(base, ApiKey::new("my-api-key")?))
///     .service(transport);
///
/// let response = client
///     .oneshot(Request::get("/sms/1/reports").body(Empty::new())?)
///     .await?;
/// assert_eq!(response.body(), "App my-api-key");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer<C> {
    source: C,
    config: Arc<Config>,
}

impl<C> AuthLayer<C> {
    /// Stamps credentials from `source` on requests to `base_url`.
    ///
    /// A session source logs in at a base URL of its own; if it is not
    /// `base_url`, its credential would be stamped on another account's
    /// requests. Then every request the layer would stamp fails with
    /// [`InvalidBaseUrl`](crate::ErrorKind::InvalidBaseUrl), unsent.
    pub fn new(base_url: BaseUrl, source: C) -> Self
    where
        C: CredentialSource,
    {
        let config = Arc::new(Config::new(base_url, &source));
        Self { source, config }
    }

    /// Replace an `Authorization` header the caller set (default: keep it,
    /// and leave such requests alone).
    pub fn override_existing(mut self, yes: bool) -> Self {
        Arc::make_mut(&mut self.config).override_existing = yes;
        self
    }

    /// How many body bytes are kept so that a request answered 401 can be
    /// replayed (default 64 KiB). Only renewing
    /// sources keep anything.
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).replay_limit = bytes;
        self
    }

    /// The source this layer stamps from.
    pub fn source(&self) -> &C {
        &self.source
    }
}

impl<S, C> Layer<S> for AuthLayer<C>
where
    S: Clone,
    C: CredentialSource + Clone,
{
    type Service = AuthService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::from_parts(inner, self.source.clone(), (*self.config).clone())
    }
}
