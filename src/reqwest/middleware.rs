//! [`AuthMiddleware`]: the crate's sources and promises for
//! `reqwest_middleware` client chains.

use std::fmt;

use ::reqwest::{Body, Request, Response, StatusCode};
use http::Extensions;
use reqwest_middleware::{Error, Middleware, Next, Result};

use crate::base_url::BaseUrl;
use crate::protocol::{self, Config, Drain};
use crate::replay::{ReplayBody, ReplaySkipped, ReplayableBody};
use crate::source::{Credential, CredentialSource};

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
///   credential awaited and the request sent once more. A body in memory is
///   copied (a reference count); a streaming body is kept as it streams
///   ([`ReplayBody`]), so it is replayed byte for byte however early the
///   401 came, up to the [`replay_limit`](Self::replay_limit); beyond it
///   the 401 reaches the caller marked [`ReplaySkipped::BodyOverLimit`];
/// - a request whose credential was rejected while it was on its way here
///   (another request's 401, a logout) is not sent with it: it waits for
///   the renewal and is sent once.
///
/// A failure of the source is a `reqwest_middleware::Error::Middleware`
/// whose cause downcasts to [`AuthError`](crate::AuthError). Data a caller attached with
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
    config: Config,
}

impl<C: CredentialSource> AuthMiddleware<C> {
    /// Stamps credentials from `source` on requests to `base_url`. A session
    /// source that logs in at another base URL fails every request it would
    /// stamp, unsent, as with [`AuthLayer::new`](crate::AuthLayer::new).
    pub fn new(base_url: BaseUrl, source: C) -> Self {
        let config = Config::new(base_url, &source);
        Self { source, config }
    }

    /// Replace an `Authorization` header the caller set (default: keep it,
    /// and leave such requests alone).
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.config.override_existing = yes;
        self
    }

    /// How many body bytes are kept so that a request answered 401 can be
    /// replayed (default 64 KiB), as [`AuthLayer::replay_limit`](crate::AuthLayer::replay_limit).
    pub fn replay_limit(mut self, bytes: usize) -> Self {
        self.config.replay_limit = bytes;
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
            .field("base_url", &self.config.base_url)
            .field("override_existing", &self.config.override_existing)
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
        let (source, config) = (&self.source, &self.config);
        if !config.base_url.matches_url(request.url()) || config.callers_own(request.headers()) {
            return next.run(request, extensions).await;
        }
        if let Some(mismatch) = &config.mismatch {
            return Err(Error::middleware(mismatch.clone()));
        }
        let mut credential = source.credential().await.map_err(Error::middleware)?;
        let held = protocol::must_hold(source, &credential);
        if held {
            credential = source.credential().await.map_err(Error::middleware)?;
        }
        stamp(&mut request, &credential)?;
        if !source.can_renew() {
            return next.run(request, extensions).await;
        }
        if held {
            // Sent once, with the renewed credential, and never replayed.
            let response = next.run(request, extensions).await?;
            protocol::replay_answered(source, &credential, response.status());
            return Ok(response);
        }
        let copy = replay_copy(&mut request, config.replay_limit);
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let copy = copy.filter(Copy::start_replay);
        protocol::first_unauthorized(source, &credential, copy.is_some());
        let Some(copy) = copy else {
            let mut response = response;
            response
                .extensions_mut()
                .insert(ReplaySkipped::BodyOverLimit);
            return Ok(response);
        };
        Drain::new(http::Response::<Body>::from(response)).await;
        let renewed = source.credential().await.map_err(Error::middleware)?;
        let mut replay = copy.into_request();
        stamp(&mut replay, &renewed)?;
        let response = next.run(replay, extensions).await?;
        protocol::replay_answered(source, &renewed, response.status());
        Ok(response)
    }
}

fn stamp(request: &mut Request, credential: &Credential) -> Result<()> {
    let value = credential.header_value().clone();
    protocol::stamp(request.headers_mut(), value).map_err(Error::middleware)
}

/// A request's second copy: its head with a body in memory (a reference
/// count), or its head and the recording of its streaming body.
struct Copy {
    head: Request,
    recorded: Option<ReplayBody<Body>>,
}

impl Copy {
    fn start_replay(&self) -> bool {
        self.recorded
            .as_ref()
            .is_none_or(ReplayableBody::start_replay)
    }

    fn into_request(self) -> Request {
        let mut request = self.head;
        if let Some(recorded) = self.recorded {
            *request.body_mut() = Some(Body::wrap(recorded));
        }
        request
    }
}

/// The copy of `request` a replay sends, or `None` over `limit`. A
/// streaming body is put back wrapped, so that it is kept as it is sent.
fn replay_copy(request: &mut Request, limit: usize) -> Option<Copy> {
    let Some(body) = request.body_mut().take_if(|body| body.as_bytes().is_none()) else {
        let over = request
            .body()
            .and_then(Body::as_bytes)
            .is_some_and(|b| b.len() > limit);
        let head = request.try_clone().filter(|_| !over)?;
        return Some(Copy {
            head,
            recorded: None,
        });
    };
    let mut recording = ReplayBody::new(body);
    let recorded = recording.replay_copy(limit);
    // Without its body, a request always clones.
    let head = request.try_clone();
    *request.body_mut() = Some(Body::wrap(recording));
    Some(Copy {
        head: head?,
        recorded: Some(recorded?),
    })
}
