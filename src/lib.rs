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
//! Anything else: implement [`CredentialSource`] or use [`source_fn`].
//!
//! # Example
//!
//! The layer drops into the client you already have: the client keeps its
//! type, here hyper-util's `Client<_, Full<Bytes>>`, whichever source
//! stamps its requests. (The example runs against
//! [`testing::FakeInfobip`]; in production the client has an HTTPS
//! connector and the base URL is your account's.)
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::{connect::HttpConnector, Client};
//! use hyper_util::rt::TokioExecutor;
//! use infobip_auth::testing::FakeInfobip;
//! use infobip_auth::{ApiKey, AuthLayer, Ibsso};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let fake = FakeInfobip::start().await?;
//! # let base = fake.base_url();
//! # let (api_key, username, password) = (FakeInfobip::API_KEY, FakeInfobip::USERNAME, FakeInfobip::PASSWORD);
//! // The client as it was before authentication came in.
//! let client: Client<HttpConnector, Full<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build_http();
//! let sms = || Request::post("/sms/2/text/advanced").body(Full::new(Bytes::from("{}")));
//!
//! // `Authorization: App <key>`.
//! let with_key = ServiceBuilder::new()
//!     .layer(AuthLayer::new(base.clone(), ApiKey::new(api_key)?))
//!     .service(client.clone());
//! assert!(with_key.oneshot(sms()?).await?.status().is_success());
//!
//! // `Authorization: IBSSO <token>`: logs in through the same client, renews
//! // on 401 and replays the request with a clone of its body.
//! let session = Ibsso::builder(base.clone(), username, password).build(client.clone())?;
//! let with_session = ServiceBuilder::new()
//!     .layer(AuthLayer::new(base, session))
//!     .service(client);
//! assert!(with_session.oneshot(sms()?).await?.status().is_success());
//! # Ok(())
//! # }
//! ```
//!
//! With a renewing source ([`Ibsso`], [`OAuth2`]) every request body must
//! be [`ReplayableBody`]: bodies in memory are, and a streaming body is made
//! so by wrapping it in [`ReplayBody`]. Static sources ask nothing of it.
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
//! # Tokio
//!
//! Static sources need no runtime. The session sources ([`Ibsso`],
//! [`OAuth2`]) and the 401 path of [`AuthService`] need a tokio runtime with
//! its time driver (`enable_time`, or `enable_all`; `#[tokio::main]` has
//! it):
//!
//! - a session source logs in on a task of the runtime it is called from;
//!   called outside any runtime, it fails the request with
//!   [`ErrorKind::Source`] instead;
//! - a login, [`Ibsso::logout`] and the reading of a 401's body are timed
//!   with tokio's timers. Without the time driver tokio panics there: a
//!   login then fails with [`ErrorKind::Source`] (its task panicked), and
//!   `logout` and the 401 path panic (see their `# Panics` sections).
//!
//! # Cargo features
//!
//! - `test-util`: [`testing::FakeInfobip`], a real HTTP server on 127.0.0.1
//!   that speaks Infobip's authentication endpoints, with fault knobs.
//! - `reqwest`: [`reqwest::ReqwestClient`], a `reqwest::Client` under
//!   [`AuthLayer`] (reqwest 0.13; no TLS backend of its own).
//! - `reqwest-middleware`: [`reqwest::AuthMiddleware`] for
//!   reqwest-middleware 0.5 client chains.
//! - `accounts`: [`accounts::AccountsLayer`], many accounts behind one stack.
//! - `session-store`: [`store::SharedStore`], one session for many
//!   processes through a store of your own (XChaCha20-Poly1305 sealing).
//! - `redis`: [`store::RedisStore`], that store on Redis.
//! - `api-keys`: [`keys::ApiKeys`], typed API key management, and
//!   [`keys::KeyRotator`], automated rotation.
//!
//! [Infobip]: https://www.infobip.com/docs/essentials/api-essentials/api-authentication
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "accounts")]
#[cfg_attr(docsrs, doc(cfg(feature = "accounts")))]
pub mod accounts;
mod base_url;
mod client;
mod error;
#[cfg(test)]
mod extreme_values;
mod future;
#[cfg(feature = "api-keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-keys")))]
pub mod keys;
mod layer;
mod protocol;
mod replay;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod resolve;
mod secret;
mod service;
mod source;
#[cfg(feature = "session-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "session-store")))]
pub mod store;
#[cfg(test)]
mod strategies;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
#[cfg(any(feature = "api-keys", feature = "test-util"))]
mod timestamp;

/// The defaults the crate applies have the values its documentation gives.
#[cfg(test)]
#[test]
fn defaults_are_as_documented() {
    use std::time::Duration;
    assert_eq!(replay::DEFAULT_REPLAY_LIMIT, 64 * 1024);
    assert_eq!(
        source::ibsso::DEFAULT_IDLE_TIMEOUT,
        Duration::from_secs(55 * 60)
    );
    assert_eq!(
        source::oauth2::DEFAULT_REFRESH_BEFORE,
        Duration::from_secs(60)
    );
    assert_eq!(
        source::session::DEFAULT_LOGIN_TIMEOUT,
        Duration::from_secs(10)
    );
    assert_eq!(source::session::DEFAULT_MAX_RESPONSE_BYTES, 16 * 1024);
    assert_eq!(client::login_rate::DEFAULT_LOGIN_RATE, 8);
}

pub use base_url::BaseUrl;
pub use error::{AuthError, BoxError, ErrorKind};
pub use future::ResponseFuture;
pub use layer::AuthLayer;
pub use replay::{ReplayBody, ReplaySkipped, ReplayableBody};
pub use resolve::{ResolvePaths, ResolvePathsLayer};
pub use service::AuthService;
pub use source::{
    source_fn, ApiKey, Basic, BoxCredentialSource, Credential, CredentialSource, HttpClient, Ibsso,
    IbssoBuilder, KeepsBody, OAuth2, OAuth2Builder, Renewing, Rotating, SessionFuture,
    SessionStats, SourceFn, SourceKind, Static, UserSession,
};
