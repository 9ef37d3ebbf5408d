//! [`ResolvePathsLayer`]: makes path-only request URIs absolute on the base
//! URL, for the layers outside [`AuthLayer`](crate::AuthLayer) that need an
//! absolute URI.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::base_url::BaseUrl;

/// Makes path-only request URIs absolute on a [`BaseUrl`].
///
/// [`AuthService`](crate::AuthService) resolves a path-only URI itself, but
/// only for the layers inside it. A layer outside it that reads the URI
/// (tower-http's `FollowRedirectLayer`, which needs an absolute URI to
/// follow a `Location`) sees the path alone: put this layer outermost.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// use infobip_auth::{ApiKey, AuthLayer, BaseUrl, ResolvePathsLayer};
/// use tower::ServiceBuilder;
/// use tower_http::follow_redirect::FollowRedirectLayer;
///
/// # fn main() -> Result<(), infobip_auth::AuthError> {
/// let base = BaseUrl::new("xyz.api.infobip.com")?;
/// let client: Client<HttpConnector, Full<Bytes>> =
///     Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
/// let infobip = ServiceBuilder::new()
///     .layer(ResolvePathsLayer::new(base.clone()))
///     .layer(FollowRedirectLayer::new())
///     .layer(AuthLayer::new(base, ApiKey::new("key")?))
///     .service(client);
/// # let _ = infobip;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ResolvePathsLayer {
    base_url: BaseUrl,
}

impl ResolvePathsLayer {
    /// Resolves path-only URIs against `base_url`.
    pub fn new(base_url: BaseUrl) -> Self {
        Self { base_url }
    }
}

impl<S> Layer<S> for ResolvePathsLayer {
    type Service = ResolvePaths<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResolvePaths {
            inner,
            base_url: self.base_url.clone(),
        }
    }
}

/// The service [`ResolvePathsLayer`] builds. Any URI with a scheme or an
/// authority passes unchanged.
#[derive(Debug, Clone)]
pub struct ResolvePaths<S> {
    inner: S,
    base_url: BaseUrl,
}

impl<S> ResolvePaths<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ResolvePaths<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        self.base_url.resolve_path_only(request.uri_mut());
        self.inner.call(request)
    }
}
