//! The engine behind the sources that log in: [`Ibsso`](crate::Ibsso) and
//! [`OAuth2`](crate::OAuth2). One session at a time, logged in by at most
//! one request (the others wait on the same login), renewed on a 401 only if
//! the rejected credential is still current, refreshed before a known
//! expiry, and throttled by a backoff after failures.

pub(crate) mod fleet;
mod future;
mod login;
mod settings;
mod stats;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::FutureExt;
use tokio::time::Instant;

pub(crate) use self::future::engine_backed_source;
use self::future::LoginFuture;
pub use self::future::SessionFuture;
pub(crate) use self::login::{validate_pair, Grant, Protocol};
pub(crate) use self::settings::{shared_builder_methods, Settings};
pub(crate) use self::settings::{DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
pub(crate) use self::stats::bump;
use self::stats::Counters;
pub use self::stats::SessionStats;
use crate::base_url::BaseUrl;
use crate::client::login_rate::{Caller, LoginLimit};
use crate::client::{send_login, Transport};
use crate::error::{AuthError, ErrorKind};
use crate::source::Credential;

/// The longest login timeout a builder takes; a longer one is clamped.
pub(crate) const MAX_LOGIN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest backoff a builder takes; a longer one is clamped.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest lifetime a grant (or an idle timeout) is taken to have,
/// whatever a server or a builder says: a year.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The shortest lifetime a grant is taken to have, whatever its
/// `expires_in` says (0, 1, ...): a token is then refreshed at most every
/// 5 seconds, never on every request. One that really dies sooner is
/// renewed by the 401 it earns.
pub(crate) const MIN_LIFETIME: Duration = Duration::from_secs(10);

pub(crate) struct Engine {
    pub(crate) base_url: BaseUrl,
    pub(crate) settings: Settings,
    pub(crate) transport: Box<dyn Transport>,
    protocol: Box<dyn Protocol>,
    /// The session shared with other processes, if a store is configured.
    shared: Option<fleet::Fleet>,
    /// The login rate this source shares with the process's others.
    limit: Arc<LoginLimit>,
    /// What requests read, without a lock: replaced whole, by a writer
    /// holding `login`.
    state: ArcSwap<State>,
    /// The login under way; held by every writer of `state`.
    login: Mutex<Login>,
    /// When a request last took the session, in milliseconds since
    /// `epoch`, for the idle timeout; written only once it is a second (or
    /// a sixteenth of a shorter idle timeout) old, so that concurrent
    /// requests do not all write it. A session is then judged idle at most
    /// that much early.
    last_used: AtomicU64,
    /// The idle timeout, and how far `last_used` may lag, in milliseconds.
    idle_ms: u64,
    touch_step_ms: u64,
    epoch: Instant,
    pub(crate) stats: Counters,
    /// How often `login` was locked, for the tests that show the request
    /// path does not lock it.
    #[cfg(test)]
    locks: AtomicU64,
}

/// The engine's state, as one snapshot.
#[derive(Clone, Default)]
struct State {
    session: Option<Arc<Session>>,
    /// The last failed login, while its backoff runs.
    failure: Option<Arc<Failure>>,
    consecutive_failures: u32,
    /// The newest generation answered 401 or ended by a logout: every
    /// generation up to it is dead (logins count from 1).
    rejected: u64,
}

#[derive(Clone)]
struct Session {
    credential: Credential,
    /// When the server will reject it, if known.
    expires_at: Option<Instant>,
    /// When to start obtaining the next one in the background; `None`
    /// once that has started, or if it never expires.
    refresh_at: Option<Instant>,
    /// Its record in the shared store, if it has been there.
    stored: Option<fleet::Stored>,
}

struct Failure {
    error: AuthError,
    until: Instant,
}

#[derive(Default)]
struct Login {
    /// The newest login's id: the generation of the session it yields.
    id: u64,
    running: Option<(u64, LoginFuture)>,
}

impl Engine {
    pub(crate) fn new(
        base_url: BaseUrl,
        settings: Settings,
        transport: Box<dyn Transport>,
        protocol: Box<dyn Protocol>,
    ) -> Result<Arc<Self>, AuthError> {
        let limit = LoginLimit::for_base_url(&base_url, settings.login_rate);
        let idle = settings.idle_timeout;
        let shared = fleet::Fleet::new(&settings, base_url.as_str(), protocol.account())?;
        Ok(Arc::new(Self {
            shared,
            limit,
            base_url,
            settings,
            transport,
            protocol,
            state: ArcSwap::default(),
            login: Mutex::default(),
            last_used: AtomicU64::new(0),
            idle_ms: idle.map_or(u64::MAX, millis),
            touch_step_ms: idle.map_or(1000, |idle| millis(idle / 16).min(1000)),
            epoch: Instant::now(),
            stats: Counters::default(),
            #[cfg(test)]
            locks: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Login> {
        #[cfg(test)]
        bump(&self.locks);
        self.login.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the state with `change` applied to it; the caller holds
    /// the lock.
    fn update(&self, _: &MutexGuard<'_, Login>, change: impl FnOnce(&mut State)) {
        let mut next = State::clone(&self.state.load());
        change(&mut next);
        self.state.store(Arc::new(next));
    }

    pub(crate) fn stats(&self) -> SessionStats {
        let mut stats = self.stats.snapshot();
        if let Some(shared) = &self.shared {
            (stats.shared_hits, stats.store_errors) = shared.counts();
        }
        stats
    }

    pub(crate) fn has_session(&self) -> bool {
        let now = Instant::now();
        let state = self.state.load();
        let now_ms = self.millis(now);
        state
            .session
            .as_ref()
            .is_some_and(|s| self.is_live(s, now, now_ms))
    }

    /// Forgets the session and hands back its credential, for a logout;
    /// removes it from the shared store too, if it is still the one there.
    pub(crate) async fn take_session(&self) -> Option<Credential> {
        let session = {
            let guard = self.lock();
            let session = self.state.load().session.clone()?;
            let generation = session.credential.generation();
            self.update(&guard, |state| {
                state.session = None;
                state.rejected = state.rejected.max(generation);
            });
            session
        };
        if let Some(shared) = &self.shared {
            shared.forget(session.stored).await;
        }
        Some(session.credential.clone())
    }

    /// Milliseconds since `epoch`.
    fn millis(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.epoch))
    }

    fn touch(&self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= self.touch_step_ms {
            self.last_used.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Neither expired nor idle.
    fn is_live(&self, session: &Session, now: Instant, now_ms: u64) -> bool {
        let unused = now_ms.saturating_sub(self.last_used.load(Ordering::Relaxed));
        unused < self.idle_ms && session.expires_at.is_none_or(|at| now < at)
    }

    pub(crate) fn credential(self: &Arc<Self>) -> SessionFuture {
        let now = Instant::now();
        let now_ms = self.millis(now);
        let state = self.state.load();
        // The request path: no lock while a session is good.
        if let Some(session) = state
            .session
            .as_ref()
            .filter(|s| self.is_live(s, now, now_ms))
        {
            self.touch(now_ms);
            if session.refresh_at.is_some_and(|at| at <= now) {
                self.refresh(now);
            }
            return SessionFuture::ready(Ok(session.credential.clone()));
        }
        if let Some(error) = backing_off(&state, now) {
            return SessionFuture::ready(Err(error));
        }
        self.credential_locked(now)
    }

    /// The path past the lock-free checks: everything is checked again
    /// under the lock, since a login may have ended since.
    fn credential_locked(self: &Arc<Self>, now: Instant) -> SessionFuture {
        let mut guard = self.lock();
        let state = self.state.load_full();
        if let Some(session) = &state.session {
            if self.is_live(session, now, self.millis(now)) {
                // Published by another request since the lock-free look.
                return SessionFuture::ready(Ok(session.credential.clone()));
            }
            // Idle or expired: the server has ended it.
            tracing::debug!(reason = "idle or expired", "renewing the session");
            self.update(&guard, |state| state.session = None);
            bump(&self.stats.idle_renewals);
        }
        if let Some((_, login)) = &guard.running {
            return SessionFuture::login(login.clone());
        }
        // A failure recorded since the lock-free check.
        if let Some(error) = backing_off(&state, now) {
            return SessionFuture::ready(Err(error));
        }
        match self.start_login(&mut guard) {
            Ok(login) => SessionFuture::login(login),
            Err(error) => SessionFuture::ready(Err(error)),
        }
    }

    /// Starts the next login while the current credential still serves.
    /// Only a request that finds the lock free looks; the first one to
    /// start the refresh clears the due time, so later ones do not.
    fn refresh(self: &Arc<Self>, now: Instant) {
        let mut guard = match self.login.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        #[cfg(test)]
        bump(&self.locks);
        let due = self
            .state
            .load()
            .session
            .as_ref()
            .and_then(|s| s.refresh_at);
        if guard.running.is_some() || due.is_none_or(|at| now < at) {
            return;
        }
        if self.start_login(&mut guard).is_ok() {
            tracing::debug!(reason = "expiry ahead", "refreshing the session");
            bump(&self.stats.refreshes);
            self.update(&guard, |state| set_refresh(state, None));
        }
        // Without a runtime to log in on, the next request tries again.
    }

    /// Spawns a login on the runtime; the lock is held only to record it.
    fn start_login(self: &Arc<Self>, login: &mut Login) -> Result<LoginFuture, AuthError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AuthError::source_failed(
                "a session source logs in on a tokio runtime: call it from within one",
                None,
            )
        })?;
        login.id += 1;
        let id = login.id;
        bump(&self.stats.logins);
        tracing::debug!(login = id, base_url = %self.base_url, "logging in to Infobip");
        let engine = self.clone();
        let task = runtime.spawn(async move {
            let result = engine.obtain().await;
            engine.finish(id, result)
        });
        let engine = Arc::downgrade(self);
        let future = async move {
            task.await.unwrap_or_else(|error| {
                // The task panicked (a runtime without its time driver) or
                // its runtime shut down: let the next request start another.
                if let Some(engine) = engine.upgrade() {
                    let mut login = engine.lock();
                    if login.running.as_ref().is_some_and(|(l, _)| *l == id) {
                        login.running = None;
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
        login.running = Some((id, future.clone()));
        Ok(future)
    }

    /// A new session: from the shared store if there is one, else a login;
    /// with its record in the store, if it has one.
    async fn obtain(&self) -> Result<(Grant, Option<fleet::Stored>), AuthError> {
        match &self.shared {
            Some(shared) => shared.obtain(&self.settings, || self.log_in()).await,
            None => self.log_in().await.map(|grant| (grant, None)),
        }
    }

    /// Sends one login request and reads its grant.
    async fn log_in(&self) -> Result<Grant, AuthError> {
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
        result: Result<(Grant, Option<fleet::Stored>), AuthError>,
    ) -> Result<Credential, AuthError> {
        let mut guard = self.lock();
        let current = guard.running.as_ref().is_some_and(|(l, _)| *l == id);
        if current {
            guard.running = None;
        }
        let now = Instant::now();
        match result {
            Ok((grant, stored)) => {
                tracing::debug!(login = id, "logged in");
                let credential = Credential::from_header_value(grant.value).with_generation(id);
                if current {
                    let lifetime = grant
                        .expires_in
                        .map(|e| e.clamp(MIN_LIFETIME, MAX_LIFETIME));
                    // Bounded: a lifetime is at most MAX_LIFETIME, a year.
                    let at = |after: Duration| now + after;
                    let session = Session {
                        credential: credential.clone(),
                        expires_at: lifetime.map(at),
                        refresh_at: lifetime.map(|l| at(l - self.settings.refresh_margin(l))),
                        stored,
                    };
                    self.last_used.store(self.millis(now), Ordering::Relaxed);
                    self.update(&guard, |state| {
                        state.session = Some(Arc::new(session));
                        state.failure = None;
                        state.consecutive_failures = 0;
                    });
                }
                Ok(credential)
            }
            Err(error) => {
                tracing::warn!(login = id, kind = ?error.kind(), %error, "login failed");
                bump(&self.stats.failed_logins);
                if current {
                    self.update(&guard, |state| {
                        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                        // Bounded: a backoff is at most MAX_BACKOFF, a day.
                        let until = now + self.backoff(state.consecutive_failures, &error);
                        state.failure = Some(Arc::new(Failure {
                            error: error.clone(),
                            until,
                        }));
                        // A failed refresh is tried again after the backoff,
                        // while the session it was to replace still serves.
                        let retry = state
                            .session
                            .as_ref()
                            .map(|s| s.expires_at.map_or(until, |expires| expires.min(until)));
                        if retry.is_some() {
                            set_refresh(state, retry);
                        }
                    });
                }
                Err(error)
            }
        }
    }

    /// The wait after the `failures`-th failed login in a row: doubling
    /// from the initial backoff up to its maximum, at least what the
    /// server asked for, at most `MAX_BACKOFF` (so the sum is bounded).
    fn backoff(&self, failures: u32, error: &AuthError) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.settings
            .backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.settings.backoff_max)
            .max(error.retry_after().unwrap_or_default())
            .min(MAX_BACKOFF)
    }

    pub(crate) fn on_unauthorized(&self, rejected: &Credential) {
        let guard = self.lock();
        let generation = rejected.generation();
        let state = self.state.load();
        let Some(session) = state
            .session
            .as_ref()
            .filter(|s| s.credential.generation() == generation)
        else {
            return;
        };
        if let Some(shared) = &self.shared {
            shared.reject(session.stored.as_ref());
        }
        tracing::debug!(reason = "401", generation, "renewing the session");
        self.update(&guard, |state| {
            state.session = None;
            state.rejected = state.rejected.max(generation);
        });
        bump(&self.stats.renewals);
    }

    /// A request that reads an old state is sent with the rejected
    /// credential and replayed, as if it had been sent just before.
    /// Generation 0 is never one of this source's (logins count from 1).
    pub(crate) fn is_rejected(&self, credential: &Credential) -> bool {
        let generation = credential.generation();
        generation != 0 && generation <= self.state.load().rejected
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

/// `duration` in whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    (duration.as_secs().saturating_mul(1000)).saturating_add(u64::from(duration.subsec_millis()))
}

/// The error a request gets while a failed login's backoff runs.
fn backing_off(state: &State, now: Instant) -> Option<AuthError> {
    let failure = state.failure.as_ref().filter(|f| now < f.until)?;
    tracing::trace!("login suppressed: backing off after a failed login");
    let error = AuthError::new(
        ErrorKind::BackingOff,
        "not logging in again yet: the last login failed",
    )
    .with_retry_after(Some(failure.until - now))
    .with_source(failure.error.clone());
    Some(error)
}

/// Sets when the session's refresh is due.
fn set_refresh(state: &mut State, at: Option<Instant>) {
    if let Some(session) = &mut state.session {
        Arc::make_mut(session).refresh_at = at;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{OnceLock, Weak};

    use bytes::Bytes;
    use futures_util::future::BoxFuture;
    use http::{HeaderValue, Request, StatusCode};

    use crate::client::Answer;

    use super::*;

    /// Where a probe finds the engine it belongs to.
    type Home = Arc<OnceLock<Weak<Engine>>>;

    /// Fails the test if the engine's lock is held: the login request is
    /// built, and the transport called, outside it.
    fn assert_unlocked(home: &Home) {
        let engine = home.get().and_then(Weak::upgrade).expect("engine");
        assert!(engine.login.try_lock().is_ok(), "called with the lock held");
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
        answering(status, http::HeaderMap::new(), expires_in)
    }

    /// An engine whose every login is answered `status` with
    /// `headers`, granting a session of `expires_in` when the status is 200.
    fn answering(
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
        // time does not move: these tests run without it.
        settings.login_rate = Some(u32::MAX);
        let base = BaseUrl::new("https://api.infobip.com").unwrap();
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
        assert!(engine.credential().await.unwrap_err().kind() == ErrorKind::LoginFailed);
        let before = locks(&engine);
        for _ in 0..100 {
            assert!(engine.credential().await.unwrap_err().kind() == ErrorKind::BackingOff);
        }
        assert_eq!(locks(&engine), before, "no request took the lock");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_passed_the_backoff_check_before_the_failure_does_not_log_in_again() {
        let engine = engine(StatusCode::SERVICE_UNAVAILABLE, None);
        // The lock-free check of a request that arrives while the login is
        // still failing: no backoff recorded yet.
        let now = Instant::now();
        assert!(backing_off(&engine.state.load(), now).is_none());
        // The login fails and records its backoff ...
        assert!(engine.credential().await.unwrap_err().kind() == ErrorKind::LoginFailed);
        // ... before that request reaches the lock.
        let error = engine.credential_locked(now).await.unwrap_err();
        assert!(error.kind() == ErrorKind::BackingOff, "{error:?}");
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
                    let engine = answering(status, headers, expires_in);
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
