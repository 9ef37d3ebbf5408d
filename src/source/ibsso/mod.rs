//! [`Ibsso`]: an Infobip session (`Authorization: IBSSO <token>`), logged in
//! on first use, renewed once for all waiters after a 401, and refreshed
//! before it dies of idleness.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use infobip_auth::{AuthLayer, BaseUrl, Ibsso};
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), infobip_auth::AuthError> {
//! # let connector = hyper_util::client::legacy::connect::HttpConnector::new();
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! // `connector` is an HTTPS connector in production.
//! let client: Client<_, Full<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build(connector);
//! // The session logs in through the same client the layer wraps.
//! let session = Ibsso::builder(base.clone(), "username", "password").build(client.clone())?;
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(base, session))
//!     .service(client);
//! # let _ = service;
//! # Ok(())
//! # }
//! ```
//!
//! See [`Ibsso`] for how sessions are renewed, expired and retried.

mod user;
pub(crate) mod wire;

pub use user::UserSession;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Method, Request, Uri};

use crate::base_url::BaseUrl;
use crate::client::{Answer, HttpClient, ServiceTransport, Transport};
use crate::error::{AuthError, ErrorKind};
use crate::secret::SecretString;
use crate::source::session::{validate_pair, Engine, Grant, Protocol, SessionStats, Settings};
use crate::source::Credential;

/// Infobip ends a session after 60 idle minutes; log in again 5 minutes
/// before that, since the server's clock starts when it sees a request.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(55 * 60);

/// An Infobip session source: `Authorization: IBSSO <token>`.
///
/// Logs in on first use (`POST /auth/1/session`), keeps the token, and on a
/// 401 renews the session once for every waiting request while
/// [`AuthService`](crate::AuthService) replays each request once.
///
/// - **Renewal.** Every credential carries the generation of the session it
///   belongs to. A 401 drops the session only if that generation is still the
///   current one, so a late 401 never discards a fresh session; one login then
///   runs and every waiting request shares its outcome.
/// - **Idle expiry.** Infobip ends a session after 60 idle minutes. The source
///   remembers when it last handed out the token and, once
///   [`idle_timeout`](IbssoBuilder::idle_timeout) has passed, logs in again
///   instead of sending on a session it knows is dead.
/// - **Failed logins.** Every waiter gets the [`AuthError`]. Further logins are
///   suppressed for a backoff that doubles with each consecutive failure (from
///   1 s up to 60 s by default, at least as long as a 429's `Retry-After`);
///   meanwhile requests fail at once with [`ErrorKind::BackingOff`].
/// - **Logins are tasks.** A login runs as a task on the tokio runtime and
///   every request waiting for it shares its outcome. It runs to its end
///   (at most the [login timeout](IbssoBuilder::login_timeout)) even if every
///   waiting request is dropped, and its session serves the next request:
///   a caller's timeout never wastes a login.
/// - **Logout.** [`Ibsso::logout`] ends the session on the server. A request
///   made afterwards logs in again. With a shared store, the stored session
///   is removed too: the other processes get a 401 and share a new one.
/// - **Many processes.** With
///   [`shared_store`](IbssoBuilder::shared_store) (feature `session-store`),
///   processes share one session through a store such as Redis: see
///   [`store`](crate::store).
///
/// Clones share one session.
#[derive(Clone)]
pub struct Ibsso {
    engine: Arc<Engine>,
}

struct Login {
    session_uri: Uri,
    username: SecretString,
    password: SecretString,
    not_ip_bound: bool,
}

impl Protocol for Login {
    fn login_request(&self) -> Result<Request<Bytes>, AuthError> {
        wire::login_request(
            &self.session_uri,
            self.username.expose(),
            self.password.expose(),
            self.not_ip_bound,
        )
    }

    fn grant(&self, answer: &mut Answer) -> Result<Grant, AuthError> {
        wire::login_result(answer).map(|value| Grant {
            value,
            expires_in: None,
        })
    }

    fn account(&self) -> &str {
        self.username.expose()
    }
}

/// Builds an [`Ibsso`]; from [`Ibsso::builder`].
pub struct IbssoBuilder {
    base_url: BaseUrl,
    username: SecretString,
    password: SecretString,
    not_ip_bound: bool,
    settings: Settings,
}

impl Ibsso {
    /// Starts building a session source for the account at `base_url`.
    pub fn builder(
        base_url: BaseUrl,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> IbssoBuilder {
        IbssoBuilder {
            base_url,
            username: SecretString::new(username.into()),
            password: SecretString::new(password.into()),
            not_ip_bound: false,
            settings: Settings::new(Some(DEFAULT_IDLE_TIMEOUT), Duration::ZERO),
        }
    }

    /// Ends the session on the server (`DELETE /auth/1/session`) and forgets
    /// the token. Does nothing when there is no session. A request sent
    /// afterwards logs in again.
    ///
    /// # Errors
    ///
    /// [`Transport`](ErrorKind::Transport) if the request could not be sent,
    /// [`Timeout`](ErrorKind::Timeout) if it took longer than the login
    /// timeout, [`LoginFailed`](ErrorKind::LoginFailed) if the server answered
    /// other than 2xx. The token is forgotten either way.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver (the logout is timed).
    pub async fn logout(&self) -> Result<(), AuthError> {
        let Some(credential) = self.engine.take_session().await else {
            tracing::debug!("logout: no session to end");
            return Ok(());
        };
        let settings = &self.engine.settings;
        end_session(
            &*self.engine.transport,
            &self.engine.base_url,
            &credential,
            settings.login_timeout,
            settings.max_response_bytes,
        )
        .await
    }

    /// Whether a session is held and not known to be idle-expired.
    pub fn has_session(&self) -> bool {
        self.engine.has_session()
    }

    /// Counters of logins, renewals and replays.
    pub fn stats(&self) -> SessionStats {
        self.engine.stats()
    }

    /// The base URL sessions are created at.
    pub fn base_url(&self) -> &BaseUrl {
        &self.engine.base_url
    }
}

crate::source::session::engine_backed_source!(Ibsso, "Ibsso");

/// `DELETE /auth/1/session` for `credential`'s session, within `timeout`.
async fn end_session(
    transport: &dyn Transport,
    base_url: &BaseUrl,
    credential: &Credential,
    timeout: Duration,
    max_body: usize,
) -> Result<(), AuthError> {
    tracing::debug!("logging out of Infobip");
    let mut request = Request::new(Bytes::new());
    *request.method_mut() = Method::DELETE;
    *request.uri_mut() = base_url.join(wire::SESSION_PATH)?;
    request
        .headers_mut()
        .insert(AUTHORIZATION, credential.header_value().clone());
    let answer = tokio::time::timeout(timeout, transport.send(request, max_body))
        .await
        .map_err(|_| AuthError::new(ErrorKind::Timeout, "logout timed out"))??;
    if answer.status.is_success() {
        tracing::debug!("logged out");
        Ok(())
    } else {
        tracing::warn!(status = answer.status.as_u16(), "logout failed");
        Err(AuthError::new(
            ErrorKind::LoginFailed,
            format!(
                "Infobip's logout failed with HTTP {}",
                answer.status.as_u16()
            ),
        ))
    }
}

impl IbssoBuilder {
    /// Whether the session is bound to the client's IP address (default
    /// `true`). Pass `false` when requests leave through several egress IPs;
    /// this sends `"unsafe": true` to Infobip.
    pub fn bind_to_client_ip(mut self, bind: bool) -> Self {
        self.not_ip_bound = !bind;
        self
    }

    /// Log in again once the session has not been used for this long
    /// (default 55 minutes; clamped to at most a
    /// year).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = Some(timeout.min(crate::source::session::MAX_LIFETIME));
        self
    }

    crate::source::session::shared_builder_methods!();

    /// Builds the source, logging in through `transport`: any tower service
    /// taking `http::Request<RB>` (a hyper-util client, the service the
    /// layer wraps, or a transport of your own). No request is sent until
    /// the first credential is needed.
    ///
    /// Pass the client itself, not a service stack that contains an
    /// `AuthLayer` built on this source: its login request would wait for
    /// its own credential.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](ErrorKind::InvalidCredential) if the username or
    /// password is empty or contains a control character;
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) if the session is to be
    /// shared through a store but is bound to the client's IP (sharing needs
    /// [`bind_to_client_ip(false)`](Self::bind_to_client_ip): a session
    /// bound to one host fails on the others), or the store's name is not
    /// valid.
    pub fn build<T, RB>(self, transport: T) -> Result<Ibsso, AuthError>
    where
        T: HttpClient<RB>,
        RB: From<Bytes> + Send + 'static,
    {
        validate_pair(
            "IBSSO username and password",
            self.username.expose(),
            self.password.expose(),
        )?;
        #[cfg(feature = "session-store")]
        if self.settings.shared.is_some() && !self.not_ip_bound {
            return Err(AuthError::new(
                ErrorKind::InvalidConfig,
                "an IBSSO session bound to the client IP cannot be shared through a store: \
                 other hosts would be refused it; call bind_to_client_ip(false) to share it",
            ));
        }
        let login = Login {
            session_uri: self.base_url.join(wire::SESSION_PATH)?,
            username: self.username,
            password: self.password,
            not_ip_bound: self.not_ip_bound,
        };
        Ok(Ibsso {
            engine: Engine::new(
                self.base_url,
                self.settings,
                Box::new(ServiceTransport::<T, RB>::new(transport)),
                Box::new(login),
            )?,
        })
    }
}

impl fmt::Debug for IbssoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IbssoBuilder")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("bind_to_client_ip", &!self.not_ip_bound)
            .finish_non_exhaustive()
    }
}
