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
//! use infobip_auth::{AuthLayer, BaseUrl, Ibsso, ReplayBody};
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), infobip_auth::AuthError> {
//! # let connector = hyper_util::client::legacy::connect::HttpConnector::new();
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! // `connector` is an HTTPS connector in production.
//! let client: Client<_, ReplayBody<Full<Bytes>>> =
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

pub(crate) mod transport;
pub(crate) mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};
use http::header::AUTHORIZATION;
use http::{Method, Request, Response, Uri};
use http_body::Body;
use tokio::time::Instant;
use tower::Service;

use self::transport::{ServiceTransport, Transport};
use crate::base_url::BaseUrl;
use crate::error::{AuthError, BoxError, ErrorKind};
use crate::secret::SecretString;
use crate::source::{Credential, CredentialSource};

/// Infobip ends a session after 60 idle minutes; log in again 5 minutes
/// before that, since the server's clock starts when it sees a request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(55 * 60);
/// How long one login may take.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff after the first failed login; doubles with each further failure.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest backoff between failed logins.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The largest session-endpoint response body read.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

type LoginFuture = Shared<BoxFuture<'static, Result<Credential, AuthError>>>;

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
/// - **Cancellation.** If every request waiting on a login is dropped, the
///   login is dropped too, and the next request starts a new one.
/// - **Logout.** [`Ibsso::logout`] ends the session on the server. A request
///   made afterwards logs in again.
///
/// Clones share one session.
#[derive(Clone)]
pub struct Ibsso {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: BaseUrl,
    session_uri: Uri,
    username: SecretString,
    password: SecretString,
    not_ip_bound: bool,
    idle_timeout: Duration,
    login_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    max_response_bytes: usize,
    transport: Box<dyn Transport>,
    state: Mutex<State>,
    stats: Counters,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    failed_logins: AtomicU64,
    renewals: AtomicU64,
    idle_renewals: AtomicU64,
    replays: AtomicU64,
    replays_skipped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What an [`Ibsso`] source has done so far; from [`Ibsso::stats`]. Cheap to
/// take, for export to a metrics system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IbssoStats {
    /// Logins started.
    pub logins: u64,
    /// Logins that ended in an error.
    pub failed_logins: u64,
    /// Sessions dropped because a request stamped with them got a 401.
    pub renewals: u64,
    /// Sessions dropped because they had been idle too long.
    pub idle_renewals: u64,
    /// Requests sent again after a 401.
    pub replays: u64,
    /// Requests answered 401 that could not be replayed (body over the limit).
    pub replays_skipped: u64,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    login: Option<WeakShared<BoxFuture<'static, Result<Credential, AuthError>>>>,
    /// Id of the newest login; also the generation of the session it yields.
    login_id: u64,
    consecutive_failures: u32,
    failed: Option<(AuthError, Instant)>,
}

struct Session {
    credential: Credential,
    last_used: Instant,
}

/// Builds an [`Ibsso`]; from [`Ibsso::builder`].
pub struct IbssoBuilder {
    base_url: BaseUrl,
    username: SecretString,
    password: SecretString,
    not_ip_bound: bool,
    idle_timeout: Duration,
    login_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    max_response_bytes: usize,
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
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Ends the session on the server (`DELETE /auth/1/session`) and forgets
    /// the token. Does nothing when there is no session. A request sent
    /// afterwards logs in again.
    ///
    /// # Errors
    ///
    /// [`Transport`](ErrorKind::Transport) if the request could not be sent,
    /// [`LoginFailed`](ErrorKind::LoginFailed) if the server answered other
    /// than 2xx. The token is forgotten either way.
    pub async fn logout(&self) -> Result<(), AuthError> {
        let Some(session) = self.inner.lock().session.take() else {
            tracing::debug!("logout: no session to end");
            return Ok(());
        };
        tracing::debug!("logging out of Infobip");
        let mut request = Request::new(Bytes::new());
        *request.method_mut() = Method::DELETE;
        *request.uri_mut() = self.inner.session_uri.clone();
        request
            .headers_mut()
            .insert(AUTHORIZATION, session.credential.header_value().clone());
        let send = self
            .inner
            .transport
            .send(request, self.inner.max_response_bytes);
        let answer = tokio::time::timeout(self.inner.login_timeout, send)
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

    /// Whether a session is held and not known to be idle-expired.
    pub fn has_session(&self) -> bool {
        let state = self.inner.lock();
        state
            .session
            .as_ref()
            .is_some_and(|s| s.last_used.elapsed() < self.inner.idle_timeout)
    }

    /// Counters of logins, renewals and replays.
    pub fn stats(&self) -> IbssoStats {
        let c = &self.inner.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IbssoStats {
            logins: get(&c.logins),
            failed_logins: get(&c.failed_logins),
            renewals: get(&c.renewals),
            idle_renewals: get(&c.idle_renewals),
            replays: get(&c.replays),
            replays_skipped: get(&c.replays_skipped),
        }
    }

    /// The base URL sessions are created at.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base_url
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The future of a new login with id `id`. It holds the source weakly,
    /// so a source dropped mid-login is not kept alive by it.
    fn start_login(self: &Arc<Self>, id: u64) -> LoginFuture {
        let request = wire::login_request(
            &self.session_uri,
            self.username.expose(),
            self.password.expose(),
            self.not_ip_bound,
        );
        let send = request.map(|r| self.transport.send(r, self.max_response_bytes));
        let timeout = self.login_timeout;
        tracing::debug!(login = id, base_url = %self.base_url, "logging in to Infobip");
        let guard = LoginGuard {
            inner: Arc::downgrade(self),
            id,
            done: false,
        };
        async move {
            let mut guard = guard;
            let result = match send {
                Err(error) => Err(error),
                Ok(send) => match tokio::time::timeout(timeout, send).await {
                    Err(_) => Err(AuthError::new(
                        ErrorKind::Timeout,
                        format!("login did not finish within {} ms", timeout.as_millis()),
                    )),
                    Ok(Err(error)) => Err(error),
                    Ok(Ok(answer)) => wire::login_result(&answer)
                        .map(|value| Credential::from_header_value(value).with_generation(id)),
                },
            };
            guard.finish(&result);
            result
        }
        .boxed()
        .shared()
    }
}

/// Records a login's outcome; if the login is dropped unfinished, clears it
/// so that the next request starts a new one.
struct LoginGuard {
    inner: Weak<Inner>,
    id: u64,
    done: bool,
}

impl LoginGuard {
    fn finish(&mut self, result: &Result<Credential, AuthError>) {
        self.done = true;
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut state = inner.lock();
        if state.login_id != self.id {
            return;
        }
        state.login = None;
        let now = Instant::now();
        match result {
            Ok(credential) => {
                tracing::debug!(login = self.id, "logged in");
                state.session = Some(Session {
                    credential: credential.clone(),
                    last_used: now,
                });
                state.consecutive_failures = 0;
                state.failed = None;
            }
            Err(error) => {
                tracing::warn!(login = self.id, kind = ?error.kind(), %error, "login failed");
                bump(&inner.stats.failed_logins);
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let doublings = (state.consecutive_failures - 1).min(16);
                let backoff = inner
                    .backoff_initial
                    .saturating_mul(1 << doublings)
                    .min(inner.backoff_max)
                    .max(error.retry_after().unwrap_or_default());
                state.failed = Some((error.clone(), now + backoff));
            }
        }
    }
}

impl Drop for LoginGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            let mut state = inner.lock();
            if state.login_id == self.id {
                state.login = None;
            }
        }
    }
}

/// The future [`Ibsso`] hands out: ready at once while a session is held,
/// otherwise shared with every other request waiting on the same login.
pub struct IbssoFuture {
    state: FutureState,
}

enum FutureState {
    Ready(Option<Result<Credential, AuthError>>),
    Login(LoginFuture),
}

impl Future for IbssoFuture {
    type Output = Result<Credential, AuthError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutureState::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(AuthError::source_failed(
                    "credential future polled after completion",
                    None,
                ))
            })),
            FutureState::Login(login) => Pin::new(login).poll(cx),
        }
    }
}

impl fmt::Debug for IbssoFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            FutureState::Ready(_) => "ready",
            FutureState::Login(_) => "waiting for login",
        };
        f.debug_struct("IbssoFuture")
            .field("state", &state)
            .finish()
    }
}

impl CredentialSource for Ibsso {
    type Future = IbssoFuture;

    fn credential(&self) -> IbssoFuture {
        let now = Instant::now();
        let mut state = self.inner.lock();
        if let Some(session) = &mut state.session {
            if now.saturating_duration_since(session.last_used) < self.inner.idle_timeout {
                session.last_used = now;
                return IbssoFuture {
                    state: FutureState::Ready(Some(Ok(session.credential.clone()))),
                };
            }
            // Idle for too long: the server has ended it.
            tracing::debug!(reason = "idle", "renewing the session");
            state.session = None;
            bump(&self.inner.stats.idle_renewals);
        }
        if let Some(login) = state.login.as_ref().and_then(WeakShared::upgrade) {
            return IbssoFuture {
                state: FutureState::Login(login),
            };
        }
        if let Some((error, until)) = &state.failed {
            if now < *until {
                tracing::trace!("login suppressed: backing off after a failed login");
                let error = AuthError::new(
                    ErrorKind::BackingOff,
                    "not logging in again yet: the last login failed",
                )
                .with_retry_after(Some(*until - now))
                .with_source(error.clone());
                return IbssoFuture {
                    state: FutureState::Ready(Some(Err(error))),
                };
            }
        }
        state.login_id += 1;
        bump(&self.inner.stats.logins);
        let login = self.inner.start_login(state.login_id);
        state.login = login.downgrade();
        IbssoFuture {
            state: FutureState::Login(login),
        }
    }

    fn can_renew(&self) -> bool {
        true
    }

    fn on_unauthorized(&self, rejected: &Credential) {
        let mut state = self.inner.lock();
        if state
            .session
            .as_ref()
            .is_some_and(|s| s.credential.generation() == rejected.generation())
        {
            tracing::debug!(
                reason = "401",
                generation = rejected.generation(),
                "renewing the session"
            );
            state.session = None;
            bump(&self.inner.stats.renewals);
        }
    }

    fn on_replay(&self, replayed: bool) {
        if replayed {
            tracing::debug!("replaying a request answered 401");
        } else {
            tracing::warn!(
                "not replaying a request answered 401: its body is over the replay limit"
            );
        }
        let stats = &self.inner.stats;
        bump(if replayed {
            &stats.replays
        } else {
            &stats.replays_skipped
        });
    }
}

impl fmt::Debug for Ibsso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ibsso")
            .field("base_url", &self.inner.base_url)
            .field("username", &self.inner.username)
            .field("has_session", &self.has_session())
            .finish_non_exhaustive()
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
    /// (default [`DEFAULT_IDLE_TIMEOUT`], 55 minutes).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a login (or logout) may take (default [`DEFAULT_LOGIN_TIMEOUT`]).
    pub fn login_timeout(mut self, timeout: Duration) -> Self {
        self.login_timeout = timeout;
        self
    }

    /// The backoff after a failed login, doubling per consecutive failure up
    /// to `max` (defaults [`DEFAULT_BACKOFF_INITIAL`], [`DEFAULT_BACKOFF_MAX`]).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// The largest session response body read (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]); a larger one is an
    /// [`InvalidResponse`](ErrorKind::InvalidResponse).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Builds the source, logging in through `transport`: any tower service
    /// taking `http::Request<RB>` (a hyper-util client, the service the
    /// layer wraps, or a transport of your own). No request is sent until
    /// the first credential is needed.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](ErrorKind::InvalidCredential) if the username or
    /// password is empty or contains a control character.
    pub fn build<T, RB, ResB>(self, transport: T) -> Result<Ibsso, AuthError>
    where
        T: Service<Request<RB>, Response = Response<ResB>> + Clone + Send + Sync + 'static,
        T::Future: Send + 'static,
        T::Error: Into<BoxError>,
        RB: From<Bytes> + Send + 'static,
        ResB: Body + Send + 'static,
        ResB::Data: Send,
        ResB::Error: Into<BoxError>,
    {
        let (username, password) = (self.username.expose(), self.password.expose());
        if username.is_empty() {
            return Err(AuthError::invalid_credential("IBSSO username is empty"));
        }
        if password.is_empty() {
            return Err(AuthError::invalid_credential("IBSSO password is empty"));
        }
        if username.chars().any(char::is_control) || password.chars().any(char::is_control) {
            return Err(AuthError::invalid_credential(
                "IBSSO username or password contains a control character",
            ));
        }
        let session_uri = self.base_url.join(wire::SESSION_PATH)?;
        Ok(Ibsso {
            inner: Arc::new(Inner {
                base_url: self.base_url,
                session_uri,
                username: self.username,
                password: self.password,
                not_ip_bound: self.not_ip_bound,
                idle_timeout: self.idle_timeout,
                login_timeout: self.login_timeout,
                backoff_initial: self.backoff_initial,
                backoff_max: self.backoff_max,
                max_response_bytes: self.max_response_bytes,
                transport: Box::new(ServiceTransport::<T, RB>::new(transport)),
                state: Mutex::new(State::default()),
                stats: Counters::default(),
            }),
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
