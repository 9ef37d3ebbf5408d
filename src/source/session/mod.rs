//! The engine behind the sources that log in: [`Ibsso`](crate::Ibsso) and
//! [`OAuth2`](crate::OAuth2). One session at a time, logged in by at most
//! one request (the others wait on the same login), renewed on a 401 only if
//! the rejected credential is still current, refreshed before a known
//! expiry, and throttled by a backoff after failures.

pub(crate) mod shared;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::{HeaderValue, Request};
use tokio::time::Instant;

use crate::base_url::BaseUrl;
use crate::client::login_rate::{Caller, LoginLimit};
use crate::client::{send_login, Answer, Transport};
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

/// The longest login timeout a builder takes; a longer one is clamped.
pub(crate) const MAX_LOGIN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest backoff a builder takes; a longer one is clamped.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest lifetime a grant (or an idle timeout) is taken to have,
/// whatever a server or a builder says: a year.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A login every request that needs it awaits: a task on the runtime, so
/// it runs to its end (within the login timeout) whoever waits for it.
type LoginFuture = Shared<BoxFuture<'static, Result<Credential, AuthError>>>;

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
    /// The grant in a login answer, or the error it means; wipes the
    /// answer's body once read.
    fn grant(&self, answer: &mut Answer) -> Result<Grant, AuthError>;
    /// The account's name (username, client id): bound into what a shared
    /// store holds, never stored itself.
    fn account(&self) -> &str;
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
    pub(crate) login_rate: Option<u32>,
    #[cfg(feature = "session-store")]
    pub(crate) shared: Option<crate::store::SharedStore>,
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
            login_rate: None,
            #[cfg(feature = "session-store")]
            shared: None,
        }
    }
}

/// The builder methods every session source shares; expanded inside each
/// builder's `impl`, whose `settings` field they set.
macro_rules! shared_builder_methods {
    () => {
        /// How long one login (or logout) may take, its wait for a turn
        /// at the login rate included (default
        /// [`DEFAULT_LOGIN_TIMEOUT`](crate::DEFAULT_LOGIN_TIMEOUT)); a
        /// slower one fails with [`Timeout`](crate::ErrorKind::Timeout).
        /// Clamped to at most an hour.
        pub fn login_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.login_timeout = timeout.min(crate::source::session::MAX_LOGIN_TIMEOUT);
            self
        }

        /// The backoff after a failed login, doubling per consecutive failure
        /// up to `max` (defaults
        /// [`DEFAULT_BACKOFF_INITIAL`](crate::DEFAULT_BACKOFF_INITIAL),
        /// [`DEFAULT_BACKOFF_MAX`](crate::DEFAULT_BACKOFF_MAX)). Both are
        /// clamped to at most a day.
        pub fn backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
            let bound = crate::source::session::MAX_BACKOFF;
            self.settings.backoff_initial = initial.min(bound);
            self.settings.backoff_max = max.max(initial).min(bound);
            self
        }

        /// Logins per second to this source's base URL, for every source of
        /// the process that logs in there (default
        /// [`DEFAULT_LOGIN_RATE`](crate::DEFAULT_LOGIN_RATE), 8, below
        /// Infobip's own 10); further logins queue for their turn, inside
        /// the login timeout. The last source built with a rate sets it for
        /// all; 0 counts as 1.
        pub fn login_rate(mut self, per_second: u32) -> Self {
            self.settings.login_rate = Some(per_second);
            self
        }

        /// The largest login response body read (default
        /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::DEFAULT_MAX_RESPONSE_BYTES));
        /// a larger one is an [`InvalidResponse`](crate::ErrorKind::InvalidResponse).
        pub fn max_response_bytes(mut self, bytes: usize) -> Self {
            self.settings.max_response_bytes = bytes;
            self
        }

        /// Shares the session with other processes through a store: one
        /// login for the whole fleet (see [`store`](crate::store)).
        #[cfg(feature = "session-store")]
        #[cfg_attr(docsrs, doc(cfg(feature = "session-store")))]
        pub fn shared_store(mut self, store: crate::store::SharedStore) -> Self {
            self.settings.shared = Some(store);
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
            type Kind = crate::source::Renewing;

            fn credential(&self) -> Self::Future {
                self.engine.credential()
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

            fn base_url(&self) -> Option<&crate::BaseUrl> {
                Some(&self.engine.base_url)
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
    /// The session shared with other processes, if a store is configured.
    shared: Option<shared::Shared>,
    /// The login rate this source shares with the process's others.
    limit: Arc<LoginLimit>,
    state: Mutex<State>,
    /// The current session, readable without the lock: the request path
    /// only loads it. Written, under the lock, together with `state.session`.
    live: ArcSwapOption<Session>,
    /// The last failed login and until when no other is started; read
    /// without the lock, so that requests during a backoff never queue.
    failed: ArcSwapOption<Failure>,
    /// When the session was last handed out, in ticks, to within
    /// `touch_step`.
    last_used: AtomicU64,
    /// When the next background refresh is due, in ticks (`NEVER` while one
    /// runs or none is due): the one request that swaps it out starts it.
    refresh_at: AtomicU64,
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
    /// How often the lock was taken, for the tests that show the request
    /// path does not take it.
    #[cfg(test)]
    locks: AtomicU64,
}

#[derive(Default)]
struct State {
    session: Option<Arc<Session>>,
    /// The login under way and its id.
    login: Option<(u64, LoginFuture)>,
    /// Id of the newest login; also the generation of the session it yields.
    login_id: u64,
    consecutive_failures: u32,
}

struct Failure {
    error: AuthError,
    until: Instant,
}

/// The shortest lifetime a grant is taken to have, whatever its
/// `expires_in` says (0, 1, ...): a token is then refreshed at most every
/// 5 seconds, never on every request. One that really dies sooner is
/// renewed by the 401 it earns.
pub(crate) const MIN_LIFETIME: Duration = Duration::from_secs(10);

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
    /// Its record in the shared store, if it has been there.
    stored: Option<shared::Stored>,
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
    shared_hits: AtomicU64,
    store_errors: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
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
    /// Logins answered by a shared store instead: a session another process
    /// logged in (counted in `logins` too).
    pub shared_hits: u64,
    /// Shared store calls that failed or timed out; each made this process
    /// log in on its own.
    pub store_errors: u64,
}

impl Engine {
    pub(crate) fn new(
        base_url: BaseUrl,
        settings: Settings,
        transport: Box<dyn Transport>,
        protocol: Box<dyn Protocol>,
    ) -> Result<Arc<Self>, AuthError> {
        let idle_ticks = settings.idle_timeout.map_or(NEVER, ticks);
        let limit = LoginLimit::for_base_url(&base_url, settings.login_rate);
        let shared = shared::Shared::new(&settings, base_url.as_str(), protocol.account())?;
        Ok(Arc::new(Self {
            shared,
            limit,
            base_url,
            settings,
            transport,
            protocol,
            state: Mutex::new(State::default()),
            live: ArcSwapOption::empty(),
            failed: ArcSwapOption::empty(),
            last_used: AtomicU64::new(0),
            refresh_at: AtomicU64::new(NEVER),
            rejected: AtomicU64::new(0),
            idle_ticks,
            touch_step: TOUCH_STEP.min(idle_ticks / 16),
            epoch: Instant::now(),
            stats: Counters::default(),
            #[cfg(test)]
            locks: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        #[cfg(test)]
        bump(&self.locks);
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
            shared_hits: get(&c.shared_hits),
            store_errors: get(&c.store_errors),
        }
    }

    pub(crate) fn has_session(&self) -> bool {
        let now = self.ticks_at(Instant::now());
        self.live
            .load()
            .as_ref()
            .is_some_and(|s| self.is_live(s, now))
    }

    /// Forgets the session and hands back its credential, for a logout;
    /// removes it from the shared store too, if it is still the one there.
    pub(crate) async fn take_session(&self) -> Option<Credential> {
        let session = {
            let mut state = self.lock();
            self.publish(&mut state, None)?
        };
        self.reject(session.credential.generation());
        if let Some(shared) = &self.shared {
            shared.forget(self, session.stored).await;
        }
        Some(session.credential.clone())
    }

    /// Replaces the session, handing back the one it replaces; the caller
    /// holds the lock.
    fn publish(&self, state: &mut State, session: Option<Arc<Session>>) -> Option<Arc<Session>> {
        let refresh_at = session.as_ref().map_or(NEVER, |s| s.refresh_at);
        if session.is_some() {
            let now = self.ticks_at(Instant::now());
            self.last_used.store(now, Ordering::Relaxed);
        }
        self.refresh_at.store(refresh_at, Ordering::Relaxed);
        self.live.store(session.clone());
        std::mem::replace(&mut state.session, session)
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
        let now = Instant::now();
        let ticks = self.ticks_at(now);
        // The request path: no lock while a session is good.
        if let Some(session) = &*self.live.load() {
            if self.is_live(session, ticks) {
                self.touch(ticks);
                self.refresh_if_due(ticks);
                return SessionFuture::ready(Ok(session.credential.clone()));
            }
        }
        if let Some(error) = self.backing_off(now) {
            return SessionFuture::ready(Err(error));
        }
        self.credential_locked(now)
    }

    /// The error a request gets while a failed login's backoff runs.
    fn backing_off(&self, now: Instant) -> Option<AuthError> {
        let failure = self.failed.load();
        let failure = failure.as_ref().filter(|f| now < f.until)?;
        tracing::trace!("login suppressed: backing off after a failed login");
        let error = AuthError::new(
            ErrorKind::BackingOff,
            "not logging in again yet: the last login failed",
        )
        .with_retry_after(Some(failure.until - now))
        .with_source(failure.error.clone());
        Some(error)
    }

    /// The path past the lock-free checks: everything is checked again
    /// under the lock, since a login may have ended since.
    fn credential_locked(self: &Arc<Self>, now: Instant) -> SessionFuture {
        let ticks = self.ticks_at(now);
        let mut state = self.lock();
        if let Some(session) = state.session.clone() {
            if self.is_live(&session, ticks) {
                // Published by another request since the load above.
                return SessionFuture::ready(Ok(session.credential.clone()));
            }
            // Idle or expired: the server has ended it.
            tracing::debug!(reason = "idle or expired", "renewing the session");
            self.publish(&mut state, None);
            bump(&self.stats.idle_renewals);
        }
        if let Some((_, login)) = &state.login {
            return SessionFuture::login(login.clone());
        }
        // A failure recorded since the lock-free check.
        if let Some(error) = self.backing_off(now) {
            return SessionFuture::ready(Err(error));
        }
        match self.start_login(&mut state) {
            Ok(login) => SessionFuture::login(login),
            Err(error) => SessionFuture::ready(Err(error)),
        }
    }

    /// Starts the next login while the current credential still works, once:
    /// only the request that swaps the due time out takes the lock.
    fn refresh_if_due(self: &Arc<Self>, now: u64) {
        let due = self.refresh_at.load(Ordering::Relaxed);
        if now < due
            || self
                .refresh_at
                .compare_exchange(due, NEVER, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let mut state = self.lock();
        if state.login.is_some() {
            // The login under way publishes the next due time when it ends.
            return;
        }
        match self.start_login(&mut state) {
            Ok(_) => {
                tracing::debug!(reason = "expiry ahead", "refreshing the session");
                bump(&self.stats.refreshes);
            }
            // No runtime to log in on: the next request tries again.
            Err(_) => self.refresh_at.store(due, Ordering::Relaxed),
        }
    }

    /// Spawns a login on the runtime; the lock is held only to record it.
    fn start_login(self: &Arc<Self>, state: &mut State) -> Result<LoginFuture, AuthError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AuthError::source_failed(
                "a session source logs in on a tokio runtime: call it from within one",
                None,
            )
        })?;
        state.login_id += 1;
        let id = state.login_id;
        bump(&self.stats.logins);
        tracing::debug!(login = id, base_url = %self.base_url, "logging in to Infobip");
        let engine = self.clone();
        let task = runtime.spawn(async move {
            let result = engine.login().await;
            engine.finish(id, result)
        });
        let engine = Arc::downgrade(self);
        let login = async move {
            task.await.unwrap_or_else(|error| {
                // The task panicked (a runtime without its time driver) or
                // its runtime shut down: let the next request start another.
                if let Some(engine) = engine.upgrade() {
                    let mut state = engine.lock();
                    if state.login.as_ref().is_some_and(|(l, _)| *l == id) {
                        state.login = None;
                    }
                }
                Err(AuthError::source_failed(
                    if error.is_panic() {
                        "the login task panicked: a session source needs a tokio runtime \
                         with its time driver (enable_time)"
                    } else {
                        "the login task was cancelled: its tokio runtime shut down"
                    },
                    None,
                ))
            })
        }
        .boxed()
        .shared();
        state.login = Some((id, login.clone()));
        Ok(login)
    }

    /// A new session: from the shared store if there is one, else a login;
    /// with its record in the store, if it has one.
    async fn login(&self) -> Result<(Grant, Option<shared::Stored>), AuthError> {
        match &self.shared {
            Some(shared) => shared.obtain(self).await,
            None => self.log_in().await.map(|grant| (grant, None)),
        }
    }

    /// Sends one login request and reads its grant.
    pub(crate) async fn log_in(&self) -> Result<Grant, AuthError> {
        let timeout = self.settings.login_timeout;
        let mut answer = send_login(&self.limit, Caller::Service, timeout, || {
            let request = self.protocol.login_request()?;
            Ok(self
                .transport
                .send(request, self.settings.max_response_bytes))
        })
        .await?;
        self.protocol.grant(&mut answer)
    }

    /// Records login `id`'s outcome: the new session, or the failure and
    /// its backoff.
    fn finish(
        &self,
        id: u64,
        result: Result<(Grant, Option<shared::Stored>), AuthError>,
    ) -> Result<Credential, AuthError> {
        let mut state = self.lock();
        let current = state.login_id == id;
        if current {
            state.login = None;
        }
        let now = Instant::now();
        match result {
            Ok((grant, stored)) => {
                tracing::debug!(login = id, "logged in");
                let credential = Credential::from_header_value(grant.value).with_generation(id);
                if current {
                    let at = |after: Duration| self.ticks_at(now).saturating_add(ticks(after));
                    let expires_in = grant
                        .expires_in
                        .map(|e| e.clamp(MIN_LIFETIME, MAX_LIFETIME));
                    let lead = expires_in
                        .map(|e| e.saturating_sub(self.settings.refresh_before.min(e / 2)));
                    let session = Session {
                        credential: credential.clone(),
                        expires_at: expires_in.map_or(NEVER, at),
                        refresh_at: lead.map_or(NEVER, at),
                        stored,
                    };
                    self.publish(&mut state, Some(Arc::new(session)));
                    state.consecutive_failures = 0;
                    self.failed.store(None);
                }
                Ok(credential)
            }
            Err(error) => {
                tracing::warn!(login = id, kind = ?error.kind(), %error, "login failed");
                bump(&self.stats.failed_logins);
                if current {
                    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                    let doublings = (state.consecutive_failures - 1).min(16);
                    let backoff = self
                        .settings
                        .backoff_initial
                        .saturating_mul(1 << doublings)
                        .min(self.settings.backoff_max)
                        .max(error.retry_after().unwrap_or_default())
                        .min(MAX_BACKOFF);
                    // Bounded: backoff is at most MAX_BACKOFF, a day.
                    let until = now + backoff;
                    self.failed.store(Some(Arc::new(Failure {
                        error: error.clone(),
                        until,
                    })));
                    // A failed refresh is tried again after the backoff,
                    // while the session it was to replace still serves.
                    if let Some(session) = &state.session {
                        let retry = self.ticks_at(until).min(session.expires_at);
                        self.refresh_at.store(retry, Ordering::Relaxed);
                    }
                }
                Err(error)
            }
        }
    }

    pub(crate) fn on_unauthorized(&self, rejected: &Credential) {
        let mut state = self.lock();
        if let Some(session) = state
            .session
            .as_ref()
            .filter(|s| s.credential.generation() == rejected.generation())
        {
            if let Some(shared) = &self.shared {
                shared.reject(session.stored.as_ref());
            }
            tracing::debug!(
                reason = "401",
                generation = rejected.generation(),
                "renewing the session"
            );
            self.publish(&mut state, None);
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutureState::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(AuthError::new(
                    ErrorKind::PolledAfterCompletion,
                    "credential future polled after completion",
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

#[cfg(test)]
mod tests {
    use std::sync::{OnceLock, Weak};

    use http::StatusCode;

    use super::*;

    /// Where a probe finds the engine it belongs to.
    type Home = Arc<OnceLock<Weak<Engine>>>;

    /// Fails the test if the engine's lock is held: the login request is
    /// built, and the transport called, outside it.
    fn assert_unlocked(home: &Home) {
        let engine = home.get().and_then(Weak::upgrade).expect("engine");
        assert!(engine.state.try_lock().is_ok(), "called with the lock held");
    }

    struct Probe {
        home: Home,
        status: StatusCode,
        headers: http::HeaderMap,
        expires_in: Option<Duration>,
    }

    impl Protocol for Probe {
        fn login_request(&self) -> Result<Request<Bytes>, AuthError> {
            assert_unlocked(&self.home);
            Ok(Request::new(Bytes::new()))
        }

        fn grant(&self, answer: &mut Answer) -> Result<Grant, AuthError> {
            if answer.status != StatusCode::OK {
                return Err(crate::client::wire::failure(answer));
            }
            Ok(Grant {
                value: HeaderValue::from_static("IBSSO token"),
                expires_in: self.expires_in,
            })
        }

        fn account(&self) -> &str {
            "probe"
        }
    }

    impl Transport for Probe {
        fn send(
            &self,
            _: Request<Bytes>,
            _: usize,
        ) -> BoxFuture<'static, Result<Answer, AuthError>> {
            assert_unlocked(&self.home);
            let answer = Answer::new(self.status, self.headers.clone(), b"");
            Box::pin(std::future::ready(Ok(answer)))
        }
    }

    fn engine(status: StatusCode, expires_in: Option<Duration>) -> Arc<Engine> {
        answering(
            "https://api.infobip.com",
            status,
            http::HeaderMap::new(),
            expires_in,
        )
    }

    /// An engine for `base` whose every login is answered `status` with
    /// `headers`, granting a session of `expires_in` when the status is 200.
    /// Tests that log in often use a base URL of their own: the login rate
    /// is shared by every engine of the process with the same one.
    fn answering(
        base: &str,
        status: StatusCode,
        headers: http::HeaderMap,
        expires_in: Option<Duration>,
    ) -> Arc<Engine> {
        let home = Home::default();
        let probe = || {
            Box::new(Probe {
                home: home.clone(),
                status,
                headers: headers.clone(),
                expires_in,
            })
        };
        let mut settings = Settings::new(None, Duration::from_secs(60));
        // The login rate spaces logins by the wall clock, which paused
        // time does not move: tests that log in often run without it.
        if base != "https://api.infobip.com" {
            settings.login_rate = Some(u32::MAX);
        }
        let base = BaseUrl::new(base).unwrap();
        let engine = Engine::new(base, settings, probe(), probe()).unwrap();
        home.set(Arc::downgrade(&engine)).unwrap();
        engine
    }

    fn locks(engine: &Engine) -> u64 {
        engine.locks.load(Ordering::Relaxed)
    }

    #[tokio::test(start_paused = true)]
    async fn requests_during_a_backoff_do_not_take_the_lock() {
        let engine = engine(StatusCode::SERVICE_UNAVAILABLE, None);
        assert!(engine.credential().await.unwrap_err().is_login_failed());
        let before = locks(&engine);
        for _ in 0..100 {
            assert!(engine.credential().await.unwrap_err().is_backing_off());
        }
        assert_eq!(locks(&engine), before, "no request took the lock");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_passed_the_backoff_check_before_the_failure_does_not_log_in_again() {
        let engine = engine(StatusCode::SERVICE_UNAVAILABLE, None);
        // The lock-free check of a request that arrives while the login is
        // still failing: no backoff recorded yet.
        let now = Instant::now();
        assert!(engine.backing_off(now).is_none());
        // The login fails and records its backoff ...
        assert!(engine.credential().await.unwrap_err().is_login_failed());
        // ... before that request reaches the lock.
        let error = engine.credential_locked(now).await.unwrap_err();
        assert!(error.is_backing_off(), "{error:?}");
        let stats = engine.stats();
        assert_eq!((stats.logins, stats.failed_logins), (1, 1), "one login");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_refresh_time_take_the_lock_once_between_them() {
        let engine = engine(StatusCode::OK, Some(Duration::from_secs(120)));
        engine.credential().await.unwrap();
        // 60 s before expiry, the refresh is due.
        tokio::time::advance(Duration::from_secs(70)).await;
        let before = locks(&engine);
        let mut waiting = Vec::new();
        for _ in 0..100 {
            waiting.push(engine.credential());
        }
        assert_eq!(
            locks(&engine),
            before + 1,
            "only the request that starts the refresh"
        );
        for credential in waiting {
            assert_eq!(
                credential.await.unwrap().generation(),
                1,
                "the old one serves meanwhile"
            );
        }
        // The refresh runs as its own task, after its turn at the login rate.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            engine.credential().await.unwrap().generation(),
            2,
            "refreshed"
        );
        assert_eq!(engine.stats().refreshes, 1);
    }

    mod extreme_values {
        use proptest::prelude::*;

        use super::*;
        use crate::client::wire::MAX_RETRY_AFTER;
        use crate::strategies::{lifetime, retry_after};

        fn run(test: impl std::future::Future<Output = ()>) {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(test);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Whatever a login answer says about time, the engine neither
            /// panics nor waits past its bounds: a failure backs off for at
            /// most a day, a session lives at most `MAX_LIFETIME`, and no
            /// login is repeated inside either.
            #[test]
            fn extreme_answers_are_clamped_and_never_panic(
                status in prop::sample::select(vec![200u16, 401, 429, 503]),
                wait in retry_after(),
                expires_in in lifetime(),
            ) {
                let mut headers = http::HeaderMap::new();
                if let Ok(value) = HeaderValue::from_str(&wait) {
                    headers.insert(http::header::RETRY_AFTER, value);
                }
                let status = StatusCode::from_u16(status).unwrap();
                run(async move {
                    let base = "https://extreme.api.infobip.com";
                    let engine = answering(base, status, headers, expires_in);
                    let logins = || engine.stats().logins;
                    let expected = match engine.credential().await {
                        Ok(_) if expires_in.is_none() => 1,
                        Ok(first) => {
                            let again = engine.credential().await.unwrap();
                            // A grant of no lifetime still serves a while.
                            assert_eq!(again.header_value(), first.header_value());
                            assert_eq!(logins(), 1, "the session is live");
                            tokio::time::advance(MAX_LIFETIME + Duration::from_secs(1)).await;
                            2
                        }
                        Err(error) => {
                            assert!(error.retry_after().is_none_or(|w| w <= MAX_RETRY_AFTER));
                            let again = engine.credential().await.unwrap_err();
                            assert_eq!(again.kind(), ErrorKind::BackingOff, "{again:?}");
                            assert!(again.retry_after().is_none_or(|w| w <= MAX_BACKOFF));
                            assert_eq!(logins(), 1, "no login inside the backoff");
                            tokio::time::advance(MAX_BACKOFF + Duration::from_secs(1)).await;
                            2
                        }
                    };
                    // Past every bound, the next request logs in again (a
                    // session with no expiry stays until its 401).
                    let _ = engine.credential().await;
                    assert_eq!(logins(), expected, "not locked out");
                });
            }
        }
    }
}
