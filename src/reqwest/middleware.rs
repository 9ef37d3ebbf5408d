//! [`AuthMiddleware`]: the crate's sources and promises for
//! `reqwest_middleware` client chains.

use std::fmt;

use ::reqwest::{Request, Response, StatusCode};
use http::header::AUTHORIZATION;
use http::Extensions;
use reqwest_middleware::{Error, Middleware, Next, Result};

use crate::base_url::BaseUrl;
use crate::error::AuthError;
use crate::future::{DRAIN_LIMIT, DRAIN_TIMEOUT};
use crate::replay::ReplaySkipped;
use crate::service::stamp;
use crate::source::CredentialSource;

/// A `reqwest_middleware::Middleware` that stamps `Authorization` from a
/// [`CredentialSource`], with the promises of [`AuthLayer`](crate::AuthLayer):
///
/// - credentials only on requests to the [`BaseUrl`]'s origin; others pass
///   through untouched;
/// - an `Authorization` the caller set is kept (unless
///   [`override_existing`](Self::override_existing));
/// - the stamped value is marked sensitive;
/// - with a renewing source ([`Ibsso`](crate::Ibsso),
///   [`OAuth2`](crate::OAuth2)), a 401 is reported to the source, the renewed
///   credential awaited and the request sent once more, a copy made with
///   `reqwest::Request::try_clone` before it was first sent. A streaming
///   body cannot be copied: its 401 reaches the caller marked
///   [`ReplaySkipped::BodyNotCloneable`].
///
/// A failure of the source is a `reqwest_middleware::Error::Middleware`
/// whose cause downcasts to [`AuthError`]. Data a caller attached with
/// `RequestBuilder::with_extension` reaches this middleware and everything
/// after it, replay included.
///
/// # Example
///
/// ```no_run
/// use infobip_auth::reqwest::AuthMiddleware;
/// use infobip_auth::{BaseUrl, Ibsso};
/// use infobip_auth::reqwest::ReqwestClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let base = BaseUrl::new("xyz.api.infobip.com")?;
/// let http = reqwest::Client::new();
/// // The session logs in through the plain client.
/// let session = Ibsso::builder(base.clone(), "user", "password")
///     .build(ReqwestClient::<bytes::Bytes>::new(http.clone()))?;
/// let client = reqwest_middleware::ClientBuilder::new(http)
///     .with(AuthMiddleware::new(base.clone(), session))
///     .build();
/// let response = client
///     .post(base.join("/sms/2/text/advanced")?.to_string())
///     .body("{}")
///     .send()
///     .await?;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AuthMiddleware<C> {
    source: C,
    base_url: BaseUrl,
    override_existing: bool,
    /// The source logs in at another base URL (see `AuthLayer::new`).
    mismatch: Option<AuthError>,
}

impl<C: CredentialSource> AuthMiddleware<C> {
    /// Stamps credentials from `source` on requests to `base_url`. A session
    /// source that logs in at another base URL fails every request it would
    /// stamp, unsent, as with [`AuthLayer::new`](crate::AuthLayer::new).
    pub fn new(base_url: BaseUrl, source: C) -> Self {
        let mismatch = crate::layer::base_url_mismatch(&base_url, &source);
        Self {
            source,
            base_url,
            override_existing: false,
            mismatch,
        }
    }

    /// Replace an `Authorization` header the caller set (default: keep it,
    /// and leave such requests alone).
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.override_existing = yes;
        self
    }

    /// The source this middleware stamps from.
    pub fn source(&self) -> &C {
        &self.source
    }
}

impl<C: fmt::Debug> fmt::Debug for AuthMiddleware<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthMiddleware")
            .field("source", &self.source)
            .field("base_url", &self.base_url)
            .field("override_existing", &self.override_existing)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<C> Middleware for AuthMiddleware<C>
where
    C: CredentialSource + Send + Sync + 'static,
    C::Future: Send,
{
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let callers_own = !self.override_existing && request.headers().contains_key(AUTHORIZATION);
        if callers_own || !self.base_url.matches_url(request.url()) {
            return next.run(request, extensions).await;
        }
        if let Some(mismatch) = &self.mismatch {
            return Err(Error::middleware(mismatch.clone()));
        }
        let credential = self.source.credential().await.map_err(Error::middleware)?;
        let value = credential.header_value().clone();
        stamp(request.headers_mut(), value, true).map_err(Error::middleware)?;
        if !self.source.can_renew() {
            return next.run(request, extensions).await;
        }
        let replay = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.source.on_unauthorized(&credential);
        self.source.on_replay(replay.is_some());
        let Some(mut replay) = replay else {
            let mut response = response;
            response
                .extensions_mut()
                .insert(ReplaySkipped::BodyNotCloneable);
            return Ok(response);
        };
        drain(response).await;
        let renewed = self.source.credential().await.map_err(Error::middleware)?;
        let value = renewed.header_value().clone();
        stamp(replay.headers_mut(), value, true).map_err(Error::middleware)?;
        let response = next.run(replay, extensions).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Replayed once is enough; the next request logs in again.
            self.source.on_unauthorized(&renewed);
        }
        Ok(response)
    }
}

/// Reads a 401's body, within the bounds `AuthService` uses, so that its
/// connection can carry the replay.
async fn drain(mut response: Response) {
    let read = async {
        let mut drained = 0;
        while drained <= DRAIN_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => drained += chunk.len().max(1),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, read).await;
}
