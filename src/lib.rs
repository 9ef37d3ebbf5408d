//! Tower middleware that authenticates requests to the [Infobip] API.
//!
//! [`AuthLayer`] wraps any `tower::Service<http::Request<B>>` (a hyper-util
//! client, a tower-http stack, a transport of your own) and stamps the
//! `Authorization` header from a [`CredentialSource`]:
//!
//! | source | header | notes |
//! |---|---|---|
//! | [`ApiKey`] | `App <key>` | recommended by Infobip |
//! | [`Basic`] | `Basic <base64(user:pass)>` | RFC 7617, no line breaks |
//! | [`Ibsso`] | `IBSSO <token>` | logs in, renews once on 401 for all waiters, replays the request |
//! | [`OAuth2`] | `Bearer <token>` | client credentials; refreshed ahead of expiry; renews and replays like `Ibsso` |
//! | [`Rotating`] | `App` or `Basic` | replaceable at run time for every clone, lock-free |
//!
//! Anything else: implement [`CredentialSource`] or use [`source::from_fn`].
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use infobip_auth::{AuthLayer, BaseUrl, Basic, ReplayBody};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Any tower service taking `Request<ReplayBody<B>>` works as the transport;
//! // in production it is a hyper-util client (see the README).
//! let transport = service_fn(|req: Request<ReplayBody<Full<Bytes>>>| async move {
//!     let stamped = &req.headers()["authorization"];
//!     assert!(stamped.is_sensitive());
//!     Ok::<_, Infallible>(Response::new(stamped.to_str().unwrap().to_owned()))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(AuthLayer::new(
//!         BaseUrl::new("xyz.api.infobip.com")?,
//!         Basic::new("Aladdin", "openSesame")?,
//!     ))
//!     .service(transport);
//!
//! let request = Request::post("/sms/2/text/advanced").body(Full::new(Bytes::from("{}")))?;
//! let stamped = client.oneshot(request).await?.into_body();
//! assert_eq!(stamped, "Basic QWxhZGRpbjpvcGVuU2VzYW1l");
//! # Ok(())
//! # }
//! ```
//!
//! # Security defaults
//!
//! - Credentials are stamped only on requests to the configured [`BaseUrl`]
//!   (scheme, host and port); requests to other origins pass through untouched.
//!   A request whose URI is only a path is resolved against the base URL.
//! - `http://` is refused unless the host is loopback and
//!   [`BaseUrl::insecure_loopback`] was used.
//! - Stamped header values are marked sensitive; secrets are kept in buffers
//!   that are zeroized on drop, and `Debug` prints `** redacted **`.
//! - An `Authorization` header set by the caller is kept
//!   ([`AuthLayer::override_existing`] changes that).
//! - Errors ([`AuthError`]) never contain a key, password or token.
//!
//! # Cargo features
//!
//! - `test-util`: [`testing::FakeInfobip`], a real HTTP server on 127.0.0.1
//!   that speaks Infobip's authentication endpoints, with fault knobs.
//!
//! [Infobip]: https://www.infobip.com/docs/essentials/api-essentials/api-authentication
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod base_url;
mod error;
mod future;
mod head;
mod layer;
mod replay;
mod secret;
mod service;
pub mod source;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use base_url::BaseUrl;
pub use error::{AuthError, BoxError, ErrorKind};
pub use future::ResponseFuture;
pub use layer::AuthLayer;
pub use replay::{
    CloneBodies, RecordBodies, ReplayBody, ReplayMode, ReplaySkipped, DEFAULT_REPLAY_LIMIT,
};
pub use service::AuthService;
pub use source::{
    ApiKey, Basic, BoxCredentialSource, Credential, CredentialSource, Ibsso, IbssoBuilder, OAuth2,
    OAuth2Builder, Rotating, RotationHandle, SessionStats,
};
