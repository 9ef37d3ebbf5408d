//! [`AuthLayer`]: configuration for [`AuthService`].

use std::marker::PhantomData;
use std::sync::Arc;

use tower::Layer;

use crate::base_url::BaseUrl;
use crate::replay::{CloneBodies, RecordBodies, DEFAULT_REPLAY_LIMIT};
use crate::service::AuthService;
use crate::source::CredentialSource;

/// What every [`AuthService`] built from one layer shares.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) base_url: BaseUrl,
    pub(crate) override_existing: bool,
    pub(crate) replay_limit: usize,
}

/// Stamps `Authorization` from a [`CredentialSource`] on every request to the
/// configured [`BaseUrl`].
///
/// - Requests whose URI is only a path are resolved against the base URL.
/// - Requests to any other origin pass through without credentials.
/// - An `Authorization` header the caller set is kept, unless
///   [`override_existing`](Self::override_existing) is on.
/// - When the source fails, the next request fails with its error, unsent,
///   whatever its origin or headers (the inner service was not readied).
/// - The stamped header value is marked sensitive.
/// - With a renewing source ([`Ibsso`](crate::Ibsso)), a 401 renews the
///   credential and the request is replayed once, transparently. A request
///   whose credential was rejected between `poll_ready` and `call` (by
///   another request's 401, or a logout) is not sent with it: it waits for
///   the renewal and is sent once. The inner
///   service receives [`ReplayBody<B>`](crate::ReplayBody), which keeps any
///   body for that, or with [`clone_bodies`](Self::clone_bodies) the
///   caller's `B`, cloned for a replay.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use http_body_util::Empty;
/// use bytes::Bytes;
/// use infobip_auth::{ApiKey, AuthLayer, BaseUrl, ReplayBody};
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let base = BaseUrl::new("https://xyz.api.infobip.com")?;
/// let transport = service_fn(|req: Request<ReplayBody<Empty<Bytes>>>| async move {
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
pub struct AuthLayer<C, M = RecordBodies> {
    source: C,
    config: Arc<Config>,
    mode: PhantomData<fn() -> M>,
}

impl<C> AuthLayer<C> {
    /// Stamps credentials from `source` on requests to `base_url`.
    pub fn new(base_url: BaseUrl, source: C) -> Self {
        Self {
            mode: PhantomData,
            source,
            config: Arc::new(Config {
                base_url,
                override_existing: false,
                replay_limit: DEFAULT_REPLAY_LIMIT,
            }),
        }
    }
}

impl<C, M> AuthLayer<C, M> {
    /// Replace an `Authorization` header the caller set (default: keep it,
    /// and leave such requests alone).
    pub fn override_existing(mut self, yes: bool) -> Self {
        Arc::make_mut(&mut self.config).override_existing = yes;
        self
    }

    /// How many body bytes are kept so that a request answered 401 can be
    /// replayed (default [`DEFAULT_REPLAY_LIMIT`], 64 KiB). Only renewing
    /// sources keep anything.
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).replay_limit = bytes;
        self
    }

    /// Hands the inner service the caller's body type `B` itself and, for a
    /// replay, a clone of the body made when the request is stamped; every
    /// request body must then be `Clone` (see [`CloneBodies`]).
    ///
    /// The default ([`RecordBodies`]) works for any body, and the inner
    /// service receives [`ReplayBody<B>`](crate::ReplayBody). For bodies such
    /// as `Full<Bytes>`, whose clone is a reference count, this mode costs
    /// no more, and a hyper-util client keeps its own body type:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::{connect::HttpConnector, Client};
    /// use hyper_util::rt::TokioExecutor;
    /// use infobip_auth::{AuthLayer, BaseUrl, Ibsso};
    /// use tower::Layer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), infobip_auth::AuthError> {
    /// let base = BaseUrl::new("https://xyz.api.infobip.com")?;
    /// let client: Client<HttpConnector, Full<Bytes>> =
    ///     Client::builder(TokioExecutor::new()).build_http();
    /// let source = Ibsso::builder(base.clone(), "user", "password").build(client.clone())?;
    /// let infobip = AuthLayer::new(base, source).clone_bodies().layer(client);
    /// # let _ = infobip;
    /// # Ok(())
    /// # }
    /// ```
    pub fn clone_bodies(self) -> AuthLayer<C, CloneBodies> {
        AuthLayer {
            source: self.source,
            config: self.config,
            mode: PhantomData,
        }
    }

    /// The source this layer stamps from.
    pub fn source(&self) -> &C {
        &self.source
    }
}

impl<S, C, M> Layer<S> for AuthLayer<C, M>
where
    S: Clone,
    C: CredentialSource + Clone,
{
    type Service = AuthService<S, C, M>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::from_parts(inner, self.source.clone(), (*self.config).clone())
    }
}
