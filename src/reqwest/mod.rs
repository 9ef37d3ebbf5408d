//! reqwest integrations (feature `reqwest`): [`ReqwestClient`], a
//! `reqwest::Client` as the transport under [`AuthLayer`](crate::AuthLayer);
//! and, with feature `reqwest-middleware`, [`AuthMiddleware`] for
//! `reqwest_middleware` client chains.
//!
//! Built for reqwest 0.13 and reqwest-middleware 0.5. Neither feature turns
//! on a TLS backend of reqwest's: that stays the application's choice.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http::Request;
//! use infobip_auth::reqwest::ReqwestClient;
//! use infobip_auth::{ApiKey, AuthLayer, BaseUrl, Ibsso};
//! use tower::{Layer, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! let client: ReqwestClient<Bytes> = ReqwestClient::new(reqwest::Client::new());
//!
//! // An API key...
//! let infobip = AuthLayer::new(base.clone(), ApiKey::new("key")?).layer(client.clone());
//! let request = Request::post("/sms/2/text/advanced").body(Bytes::from("{}"))?;
//! let response = infobip.oneshot(request).await?;
//! println!("{}", response.status());
//!
//! // ...or a session, logged in through the same client.
//! let session = Ibsso::builder(base.clone(), "user", "password").build(client.clone())?;
//! let infobip = AuthLayer::new(base, session).layer(client);
//! # let _ = infobip;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "reqwest-middleware")]
mod middleware;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::Service;

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub use middleware::AuthMiddleware;

/// A `reqwest::Client` as a `tower::Service<http::Request<B>>`, answering
/// `http::Response<reqwest::Body>`. `B` is the request body type: any body
/// reqwest takes (`reqwest::Body` by default, `Bytes`, `Vec<u8>`,
/// `String`, ...); name it on the type (`ReqwestClient<Bytes>`) where
/// nothing else fixes it.
///
/// Put [`AuthLayer`](crate::AuthLayer) in front of it. With a renewing
/// source the body must also be [`ReplayableBody`](crate::ReplayableBody):
/// `Bytes` (a reference count), `Vec<u8>`, `String`, or `reqwest::Body`
/// when it holds its bytes (copied once per request; a streaming
/// `reqwest::Body` is not replayed). A session source logs in through the
/// same client when `B` can be made from `Bytes` (`Bytes`, `Vec<u8>`,
/// `reqwest::Body`).
///
/// Errors are the `reqwest::Error` itself; under `AuthLayer` it stays
/// reachable through `std::error::Error::source`.
/// Cloning is cheap (reqwest's client is a reference count) and shares the
/// connection pool.
pub struct ReqwestClient<B = ::reqwest::Body> {
    client: ::reqwest::Client,
    body: PhantomData<fn(B)>,
}

impl<B> ReqwestClient<B> {
    /// Wraps `client`.
    pub fn new(client: ::reqwest::Client) -> Self {
        Self {
            client,
            body: PhantomData,
        }
    }

    /// The reqwest client.
    pub fn get_ref(&self) -> &::reqwest::Client {
        &self.client
    }

    /// Unwraps the reqwest client.
    pub fn into_inner(self) -> ::reqwest::Client {
        self.client
    }
}

impl<B> Clone for ReqwestClient<B> {
    fn clone(&self) -> Self {
        Self::new(self.client.clone())
    }
}

impl<B> std::fmt::Debug for ReqwestClient<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestClient")
            .field("client", &self.client)
            .finish()
    }
}

impl<B> From<::reqwest::Client> for ReqwestClient<B> {
    fn from(client: ::reqwest::Client) -> Self {
        Self::new(client)
    }
}

/// A `reqwest::Body` that holds its bytes is copied once, and both attempts
/// then share the copy; a streaming one is not replayed.
impl crate::ReplayableBody for ::reqwest::Body {
    fn replay_copy(&mut self, limit: usize) -> Option<Self> {
        let bytes = bytes::Bytes::copy_from_slice(self.as_bytes().filter(|b| b.len() <= limit)?);
        *self = bytes.clone().into();
        Some(bytes.into())
    }
}

type Pending = <::reqwest::Client as Service<::reqwest::Request>>::Future;

pin_project! {
    /// The response future of [`ReqwestClient`].
    pub struct ResponseFuture {
        #[pin]
        pending: Option<Pending>,
        // A request reqwest could not take (its URI is not a URL).
        error: Option<::reqwest::Error>,
        // For a call that carries credentials: the URL asked for, which
        // the answer must come from.
        asked: Option<Box<::reqwest::Url>>,
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<::reqwest::Body>, ::reqwest::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.pending.as_pin_mut() {
            Some(pending) => pending.poll(cx).map_ok(|response| {
                let elsewhere = this
                    .asked
                    .as_deref()
                    .is_some_and(|url| url != response.url());
                let mut response = http::Response::from(response);
                if elsewhere {
                    response
                        .extensions_mut()
                        .insert(crate::client::AnsweredElsewhere);
                }
                response
            }),
            None => Poll::Ready(Err(this
                .error
                .take()
                .expect("a ResponseFuture without a request holds its error until polled"))),
        }
    }
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B: Into<::reqwest::Body>> Service<http::Request<B>> for ReqwestClient<B> {
    type Response = http::Response<::reqwest::Body>;
    type Error = ::reqwest::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<::reqwest::Request>::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> ResponseFuture {
        use crate::client::CredentialBearing;
        let converted = if request.extensions().get::<CredentialBearing>().is_some() {
            // Secrets: a body reqwest cannot clone is never sent on by a
            // 307 or 308, and the answer must come from the URL asked.
            ::reqwest::Request::try_from(
                request.map(|body| ::reqwest::Body::wrap(Into::<::reqwest::Body>::into(body))),
            )
            .map(|request| {
                let asked = Box::new(request.url().clone());
                (request, Some(asked))
            })
        } else {
            ::reqwest::Request::try_from(request).map(|request| (request, None))
        };
        match converted {
            Ok((request, asked)) => ResponseFuture {
                pending: Some(self.client.call(request)),
                error: None,
                asked,
            },
            Err(error) => ResponseFuture {
                pending: None,
                error: Some(error),
                asked: None,
            },
        }
    }
}
