//! The engine behind the sources that log in: [`Ibsso`](crate::Ibsso) and
//! [`OAuth2`](crate::OAuth2). One session at a time, logged in by at most
//! one request (the others wait on the same login), renewed on a 401 only if
//! the rejected credential is still current, refreshed before a known
//! expiry, and throttled by a backoff after failures.

pub(crate) mod transport;
pub(crate) mod wire;
mod woken;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};
use http::{HeaderValue, Request};
use tokio::time::Instant;

use self::transport::{Answer, Transport};
use self::woken::PollWhenWoken;
use crate::base_url::BaseUrl;
use crate::error::{AuthError, ErrorKind};
use crate::source::Credential;

/// How long one login may take.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff after the first failed login; doubles with each further failure.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest backoff between failed logins.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The largest login or logout response body read.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// One login, driven only when it woke, not once per waiting request (see
/// [`PollWhenWoken`]).
type Login = PollWhenWoken<BoxFuture<'static, Result<Credential, AuthError>>>;
/// The login every request that needs it awaits.
type LoginFuture = Shared<Login>;

/// What a login yields: the header value and, if the server said, how long
/// it stays valid.
pub(crate) struct Grant {
    pub(crate) value: HeaderValue,
    pub(crate) expires_in: Option<Duration>,
}

/// How one kind of session logs in.
pub(crate) trait Protocol: Send + Sync {
    /// The login request, with the secrets in its body.
    fn login_request(&self) -> Result<Request<Bytes>, AuthError>;
    /// The grant in a login answer, or the error it means.
    fn grant(&self, answer: &Answer) -> Result<Grant, AuthError>;
}

/// Settings shared by the session sources' builders.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) refresh_before: Duration,
    pub(crate) login_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_response_bytes: usize,
}

impl Settings {
    pub(crate) fn new(idle_timeout: Option<Duration>, refresh_before: Duration) -> Self {
        Self {
            idle_timeout,
            refresh_before,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The builder methods every session source shares; expanded inside each
/// builder's `impl`, whose `settings` field they set.
macro_rules! shared_builder_methods {
    () => {
        /// How long one login (or logout) may take (default
        /// [`DEFAULT_LOGIN_TIMEOUT`](crate::source::DEFAULT_LOGIN_TIMEOUT)); a
        /// slower one fails with [`Timeout`](crate::ErrorKind::Timeout).
        pub fn login_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.login_timeout = timeout;
            self
        }

        /// The backoff after a failed login, doubling per consecutive failure
        /// up to `max` (defaults
        /// [`DEFAULT_BACKOFF_INITIAL`](crate::source::DEFAULT_BACKOFF_INITIAL),
        /// [`DEFAULT_BACKOFF_MAX`](crate::source::DEFAULT_BACKOFF_MAX)).
        pub fn backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
            self.settings.backoff_initial = initial;
            self.settings.backoff_max = max.max(initial);
            self
        }

        /// The largest login response body read (default
        /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::source::DEFAULT_MAX_RESPONSE_BYTES));
        /// a larger one is an [`InvalidResponse`](crate::ErrorKind::InvalidResponse).
        pub fn max_response_bytes(mut self, bytes: usize) -> Self {
            self.settings.max_response_bytes = bytes;
            self
        }
    };
}
pub(crate) use shared_builder_methods;

/// `CredentialSource` and a redacted `Debug` for a session source type whose
/// `engine` field does the work.
macro_rules! engine_backed_source {
    ($source:ty, $name:literal) => {
        impl crate::source::CredentialSource for $source {
            type Future = crate::source::session::SessionFuture;

            fn credential(&self) -> Self::Future {
                self.engine.credential()
            }

            fn can_renew(&self) -> bool {
                true
            }

            fn on_unauthorized(&self, rejected: &crate::source::Credential) {
                self.engine.on_unauthorized(rejected)
            }

            #[inline]
            fn is_rejected(&self, credential: &crate::source::Credential) -> bool {
                self.engine.is_rejected(credential)
            }

            fn on_replay(&self, replayed: bool) {
                self.engine.on_replay(replayed)
            }
        }

        impl std::fmt::Debug for $source {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct($name);
                self.engine.debug_fields(&mut d);
                d.finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use engine_backed_source;

/// Checks a login pair before any request is built: neither part empty,
/// no control characters. `what` names them in the error.
pub(crate) fn validate_pair(
    what: &'static str,
    first: &str,
    second: &str,
) -> Result<(), AuthError> {
    if first.is_empty() || second.is_empty() {
        return Err(AuthError::new(
            ErrorKind::InvalidCredential,
            format!("{what} must not be empty"),
        ));
    }
    if first.chars().any(char::is_control) || second.chars().any(char::is_control) {
        return Err(AuthError::new(
            ErrorKind::InvalidCredential,
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(())
}

pub(crate) struct Engine {
    pub(crate) base_url: BaseUrl,
    pub(crate) settings: Settings,
    pub(crate) transport: Box<dyn Transport>,
    protocol: Box<dyn Protocol>,
    state: Mutex<State>,
    /// The current session, readable without the lock: the request path
    /// only loads it. Written, under the lock, together with `state.session`.
    live: ArcSwapOption<Session>,
    /// When the session was last handed out, in ticks (nanoseconds since
    /// `epoch`), to within `TOUCH_STEP`.
    last_used: AtomicU64,
    /// The newest generation answered 401 or ended by a logout: every
    /// generation up to it is known to be dead (0: none yet; logins count
    /// from 1).
    rejected: AtomicU64,
    /// `settings.idle_timeout` in ticks; `NEVER` if there is none.
    idle_ticks: u64,
    /// How far `last_used` may lag: a second, or less for a short timeout.
    touch_step: u64,
    epoch: Instant,
    stats: Counters,
}

#[derive(Default)]
struct State {
    session: Option<Arc<Session>>,
    login: Option<WeakShared<Login>>,
    /// Id of the newest login; also the generation of the session it yields.
    login_id: u64,
    consecutive_failures: u32,
    failed: Option<(AuthError, Instant)>,
}

/// Times on the request path are ticks: nanoseconds since the engine's
/// epoch, compared as integers.
const NEVER: u64 = u64::MAX;

/// `last_used` is written only when it is a second behind (or a sixteenth
/// of a shorter idle timeout): a store on every request would make every
/// core fight over its cache line, and a session is then judged idle at
/// most that much early.
const TOUCH_STEP: u64 = 1_000_000_000;

fn ticks(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(NEVER)
}

struct Session {
    credential: Credential,
    /// When the server will reject it, in ticks; `NEVER` if unknown.
    expires_at: u64,
    /// When to start obtaining the next one in the background, in ticks.
    refresh_at: u64,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    failed_logins: AtomicU64,
    renewals: AtomicU64,
    idle_renewals: AtomicU64,
    refreshes: AtomicU64,
    replays: AtomicU64,
    replays_skipped: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What a session source has done so far; from
/// [`Ibsso::stats`](crate::Ibsso::stats) or
/// [`OAuth2::stats`](crate::OAuth2::stats). Cheap to take, for export to a
/// metrics system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Logins started.
    pub logins: u64,
    /// Logins that ended in an error.
    pub failed_logins: u64,
    /// Sessions dropped because a request stamped with them got a 401.
    pub renewals: u64,
    /// Sessions dropped because they had been idle or had expired.
    pub idle_renewals: u64,
    /// Logins started ahead of a known expiry, while the old credential
    /// still served requests.
    pub refreshes: u64,
    /// Requests sent again after a 401.
    pub replays: u64,
    /// Requests answered 401 that could not be replayed (body over the limit).
    pub replays_skipped: u64,
}

impl Engine {
    pub(crate) fn new(
        base_url: BaseUrl,
        settings: Settings,
        transport: Box<dyn Transport>,
        protocol: Box<dyn Protocol>,
    ) -> Arc<Self> {
        let idle_ticks = settings.idle_timeout.map_or(NEVER, ticks);
        Arc::new(Self {
            base_url,
            settings,
            transport,
            protocol,
            state: Mutex::new(State::default()),
            live: ArcSwapOption::empty(),
            last_used: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            idle_ticks,
            touch_step: TOUCH_STEP.min(idle_ticks / 16),
            epoch: Instant::now(),
            stats: Counters::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> SessionStats {
        let c = &self.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SessionStats {
            logins: get(&c.logins),
            failed_logins: get(&c.failed_logins),
            renewals: get(&c.renewals),
            idle_renewals: get(&c.idle_renewals),
            refreshes: get(&c.refreshes),
            replays: get(&c.replays),
            replays_skipped: get(&c.replays_skipped),
        }
    }

    pub(crate) fn has_session(&self) -> bool {
        let (_, now) = self.now();
        self.live
            .load()
            .as_ref()
            .is_some_and(|s| self.is_live(s, now))
    }

    /// Forgets the session and hands back its credential, for a logout.
    pub(crate) fn take_session(&self) -> Option<Credential> {
        let mut state = self.lock();
        let session = state.session.take();
        self.live.store(None);
        if let Some(session) = &session {
            self.reject(session.credential.generation());
        }
        session.map(|s| s.credential.clone())
    }

    /// Replaces the session; the caller holds the lock.
    fn publish(&self, state: &mut State, session: Option<Arc<Session>>, now: Instant) {
        if session.is_some() {
            self.last_used.store(self.ticks_at(now), Ordering::Relaxed);
        }
        self.live.store(session.clone());
        state.session = session;
    }

    /// The current time, as an `Instant` and in ticks.
    fn now(&self) -> (Instant, u64) {
        let now = Instant::now();
        (now, self.ticks_at(now))
    }

    fn ticks_at(&self, at: Instant) -> u64 {
        ticks(at.saturating_duration_since(self.epoch))
    }

    fn touch(&self, now: u64) {
        if now.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= self.touch_step {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    fn is_live(&self, session: &Session, now: u64) -> bool {
        let idle = now.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= self.idle_ticks;
        !idle && now < session.expires_at
    }

    pub(crate) fn credential(self: &Arc<Self>) -> SessionFuture {
        let (now, ticks) = self.now();
        // The request path: no lock while a session is good.
        if let Some(session) = &*self.live.load() {
            if self.is_live(session, ticks) {
                self.touch(ticks);
                if ticks >= session.refresh_at {
                    self.refresh_in_background(&mut self.lock(), now);
                }
                return SessionFuture::ready(Ok(session.credential.clone()));
            }
        }
        let mut state = self.lock();
        if let Some(session) = state.session.clone() {
            if self.is_live(&session, ticks) {
                // Published by another request since the load above.
                self.touch(ticks);
                return SessionFuture::ready(Ok(session.credential.clone()));
            }
            // Idle or expired: the server has ended it.
            tracing::debug!(reason = "idle or expired", "renewing the session");
            self.publish(&mut state, None, now);
            bump(&self.stats.idle_renewals);
        }
        if let Some(login) = state.login.as_ref().and_then(WeakShared::upgrade) {
            return SessionFuture::login(login);
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
                return SessionFuture::ready(Err(error));
            }
        }
        SessionFuture::login(self.start_login(&mut state))
    }

    /// Starts the next login while the current credential still works, and
    /// drives it on the runtime so that no request has to wait for it.
    fn refresh_in_background(self: &Arc<Self>, state: &mut State, now: Instant) {
        let in_flight = state.login.as_ref().and_then(WeakShared::upgrade).is_some();
        let backing_off = state.failed.as_ref().is_some_and(|(_, until)| now < *until);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if in_flight || backing_off {
            return;
        }
        tracing::debug!(reason = "expiry ahead", "refreshing the session");
        bump(&self.stats.refreshes);
        let login = self.start_login(state);
        runtime.spawn(login.map(drop));
    }

    fn start_login(self: &Arc<Self>, state: &mut State) -> LoginFuture {
        state.login_id += 1;
        bump(&self.stats.logins);
        let id = state.login_id;
        let request = self.protocol.login_request();
        let send = request.map(|r| self.transport.send(r, self.settings.max_response_bytes));
        let timeout = self.settings.login_timeout;
        tracing::debug!(login = id, base_url = %self.base_url, "logging in to Infobip");
        let guard = LoginGuard {
            engine: Arc::downgrade(self),
            id,
            done: false,
        };
        let engine = Arc::downgrade(self);
        let login = async move {
            let mut guard = guard;
            let result = match send {
                Err(error) => Err(error),
                Ok(send) => match tokio::time::timeout(timeout, send).await {
                    Err(_) => Err(AuthError::new(
                        ErrorKind::Timeout,
                        format!("login did not finish within {} ms", timeout.as_millis()),
                    )),
                    Ok(Err(error)) => Err(error),
                    Ok(Ok(answer)) => match engine.upgrade() {
                        Some(engine) => engine.protocol.grant(&answer),
                        None => Err(AuthError::source_failed(
                            "the session source was dropped",
                            None,
                        )),
                    },
                },
            };
            guard.finish(result)
        }
        .boxed();
        let login = PollWhenWoken::new(login).shared();
        state.login = login.downgrade();
        login
    }

    pub(crate) fn on_unauthorized(&self, rejected: &Credential) {
        let mut state = self.lock();
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
            self.publish(&mut state, None, Instant::now());
            self.reject(rejected.generation());
            bump(&self.stats.renewals);
        }
    }

    fn reject(&self, generation: u64) {
        self.rejected.fetch_max(generation, Ordering::Relaxed);
    }

    /// One relaxed load: a request that reads an old value is sent with the
    /// rejected credential and replayed, as if it had been sent just before.
    /// Generation 0 is never one of this source's (logins count from 1).
    #[inline]
    pub(crate) fn is_rejected(&self, credential: &Credential) -> bool {
        let generation = credential.generation();
        generation != 0 && generation <= self.rejected.load(Ordering::Relaxed)
    }

    pub(crate) fn on_replay(&self, replayed: bool) {
        if replayed {
            tracing::debug!("replaying a request answered 401");
            bump(&self.stats.replays);
        } else {
            tracing::warn!(
                "not replaying a request answered 401: its body is over the replay limit"
            );
            bump(&self.stats.replays_skipped);
        }
    }

    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("base_url", &self.base_url)
            .field("has_session", &self.has_session());
    }
}

/// Records a login's outcome; if the login is dropped unfinished, clears it
/// so that the next request starts a new one.
struct LoginGuard {
    engine: Weak<Engine>,
    id: u64,
    done: bool,
}

impl LoginGuard {
    fn finish(&mut self, result: Result<Grant, AuthError>) -> Result<Credential, AuthError> {
        self.done = true;
        let result = result.map(|grant| {
            (
                Credential::from_header_value(grant.value).with_generation(self.id),
                grant.expires_in,
            )
        });
        let Some(engine) = self.engine.upgrade() else {
            return result.map(|(credential, _)| credential);
        };
        let mut state = engine.lock();
        let current = state.login_id == self.id;
        if current {
            state.login = None;
        }
        let now = Instant::now();
        match result {
            Ok((credential, expires_in)) => {
                tracing::debug!(login = self.id, "logged in");
                if current {
                    let refresh_before = expires_in
                        .map(|e| engine.settings.refresh_before.min(e / 2))
                        .unwrap_or_default();
                    let session = Session {
                        credential: credential.clone(),
                        expires_at: expires_in
                            .map_or(NEVER, |e| engine.ticks_at(now).saturating_add(ticks(e))),
                        refresh_at: expires_in.map_or(NEVER, |e| {
                            let lead = e.saturating_sub(refresh_before);
                            engine.ticks_at(now).saturating_add(ticks(lead))
                        }),
                    };
                    engine.publish(&mut state, Some(Arc::new(session)), now);
                    state.consecutive_failures = 0;
                    state.failed = None;
                }
                Ok(credential)
            }
            Err(error) => {
                tracing::warn!(login = self.id, kind = ?error.kind(), %error, "login failed");
                bump(&engine.stats.failed_logins);
                if current {
                    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                    let doublings = (state.consecutive_failures - 1).min(16);
                    let backoff = engine
                        .settings
                        .backoff_initial
                        .saturating_mul(1 << doublings)
                        .min(engine.settings.backoff_max)
                        .max(error.retry_after().unwrap_or_default());
                    state.failed = Some((error.clone(), now + backoff));
                }
                Err(error)
            }
        }
    }
}

impl Drop for LoginGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(engine) = self.engine.upgrade() {
            let mut state = engine.lock();
            if state.login_id == self.id {
                state.login = None;
            }
        }
    }
}

/// The future a session source hands out: ready at once while a session is
/// held, otherwise shared with every other request waiting on the same login.
pub struct SessionFuture {
    state: FutureState,
}

enum FutureState {
    Ready(Option<Result<Credential, AuthError>>),
    Login(LoginFuture),
}

impl SessionFuture {
    fn ready(result: Result<Credential, AuthError>) -> Self {
        Self {
            state: FutureState::Ready(Some(result)),
        }
    }

    fn login(login: LoginFuture) -> Self {
        Self {
            state: FutureState::Login(login),
        }
    }
}

impl Future for SessionFuture {
    type Output = Result<Credential, AuthError>;

    #[inline]
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

impl fmt::Debug for SessionFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            FutureState::Ready(_) => "ready",
            FutureState::Login(_) => "waiting for login",
        };
        f.debug_struct("SessionFuture")
            .field("state", &state)
            .finish()
    }
}
