//! The session engine's second cache: a session shared with other processes
//! through a [`SessionStore`](crate::store::SessionStore). See
//! [`crate::store`] for the protocol. Without feature `session-store`,
//! [`Fleet`] has no values and the engine never asks it anything.

#[cfg(feature = "session-store")]
pub(crate) use self::enabled::{Fleet, Stored};

#[cfg(not(feature = "session-store"))]
pub(crate) use self::disabled::{Fleet, Stored};

#[cfg(feature = "session-store")]
mod enabled {
    use std::collections::VecDeque;
    use std::fmt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, SystemTime};

    use tokio::time::Instant;

    use std::future::Future;

    use crate::error::AuthError;
    use crate::source::session::{bump, Grant, Settings, MAX_LIFETIME, MIN_LIFETIME};
    use crate::store::seal::{unix_ms, RecordId};
    use crate::store::{Sealer, SessionStore, StoreFuture};

    /// How long a record without an expiry is taken, for a source without
    /// an idle timeout: a day.
    const MAX_RECORD_AGE: Duration = Duration::from_secs(24 * 60 * 60);
    /// How many records answered 401 here are remembered, to remove them
    /// from the store when they are seen there again.
    const REMEMBERED: usize = 8;

    /// What an engine knows of the stored record its session came from or
    /// went to.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Stored {
        /// The generation the store gave it; `None` if a save went
        /// unanswered (the store may or may not hold it).
        generation: Option<u64>,
        record: RecordId,
    }

    pub(crate) struct Fleet {
        store: Arc<dyn SessionStore>,
        name: String,
        sealer: Sealer,
        /// This engine's name on the lease: random, so that a lease is only
        /// ever given back by the process that took it.
        holder: String,
        timeout: Duration,
        poll_interval: Duration,
        /// How long a record without an expiry lives in the store.
        record_age: Duration,
        /// Records sealed at or before this (Unix ms) are never taken: it
        /// moves to each 401 here (and past the rejected record), so a
        /// renewal is newer than what was rejected and than the revocation,
        /// whatever the store says.
        floor: AtomicU64,
        /// Ids of records answered 401 here: removed from the store when
        /// seen there, whatever generation it gives them.
        rejected: Mutex<VecDeque<[u8; 16]>>,
        /// The record of the session answered 401 last (`None`: it had
        /// none): its renewal by another process is taken.
        last_rejected: Mutex<Option<[u8; 16]>>,
        /// Sessions taken from the store.
        hits: AtomicU64,
        /// Store calls that failed or timed out.
        errors: AtomicU64,
    }

    impl Fleet {
        /// The shared part of an engine for `account` at `base_url`, if its
        /// settings name a store.
        pub(crate) fn new(
            settings: &Settings,
            base_url: &str,
            account: &str,
        ) -> Result<Option<Self>, AuthError> {
            let Some(config) = &settings.shared else {
                return Ok(None);
            };
            config.validate()?;
            let id = crate::store::seal::random_32().ok_or_else(|| {
                AuthError::new(
                    crate::ErrorKind::InvalidConfig,
                    "no random numbers for a lease holder's name",
                )
            })?;
            let record_age = settings
                .idle_timeout
                .unwrap_or(MAX_RECORD_AGE)
                .min(MAX_LIFETIME);
            Ok(Some(Self {
                store: config.store.clone(),
                name: config.name.clone(),
                sealer: Sealer::new(config, base_url, account, record_age),
                holder: id[..16].iter().map(|b| format!("{b:02x}")).collect(),
                timeout: config.timeout,
                poll_interval: config.poll_interval,
                record_age,
                floor: AtomicU64::new(0),
                rejected: Mutex::new(VecDeque::new()),
                last_rejected: Mutex::new(None),
                hits: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            }))
        }

        /// A session for `engine`: the stored one, the one another process
        /// is logging in (waited for while it holds the lease), or a login
        /// of its own; with what is known of its record in the store.
        pub(crate) async fn obtain<F, L>(
            &self,
            settings: &Settings,
            log_in: F,
        ) -> Result<(Grant, Option<Stored>), AuthError>
        where
            F: Fn() -> L,
            L: Future<Output = Result<Grant, AuthError>>,
        {
            // Bounded: builders clamp login timeouts to MAX_LOGIN_TIMEOUT.
            let deadline = Instant::now() + settings.login_timeout;
            loop {
                match self.stored(settings).await {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => {}
                    Err(Trouble) => return log_in().await.map(|grant| (grant, None)),
                }
                let ttl = settings.login_timeout;
                match self
                    .call(self.store.try_lease(&self.name, &self.holder, ttl))
                    .await
                {
                    Ok(true) => return self.lead(settings, &log_in).await,
                    Ok(false) => {}
                    Err(Trouble) => return log_in().await.map(|grant| (grant, None)),
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        store = %self.name,
                        "another process held the login lease for the whole login timeout: \
                         logging in without it"
                    );
                    return self.log_in_and_save(&log_in).await;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(self.poll_interval.min(left)).await;
            }
        }

        /// Holding the lease: takes a session stored since the last look,
        /// or logs in and stores one; then gives the lease back.
        async fn lead<F, L>(
            &self,
            settings: &Settings,
            log_in: &F,
        ) -> Result<(Grant, Option<Stored>), AuthError>
        where
            F: Fn() -> L,
            L: Future<Output = Result<Grant, AuthError>>,
        {
            let result = match self.stored(settings).await {
                Ok(Some(found)) => Ok(found),
                _ => self.log_in_and_save(log_in).await,
            };
            // A release that fails leaves the lease to lapse.
            let _ = self
                .call(self.store.release(&self.name, &self.holder))
                .await;
            result
        }

        async fn log_in_and_save<F, L>(
            &self,
            log_in: &F,
        ) -> Result<(Grant, Option<Stored>), AuthError>
        where
            F: Fn() -> L,
            L: Future<Output = Result<Grant, AuthError>>,
        {
            let grant = log_in().await?;
            let ttl = match grant.expires_in {
                Some(expires_in) => expires_in.clamp(MIN_LIFETIME, MAX_LIFETIME),
                None => self.record_age,
            };
            let replaces = self.latest_rejected();
            let sealed = self.sealer.seal(&grant.value, grant.expires_in, replaces);
            let Some((sealed, record)) = sealed else {
                return Ok((grant, None));
            };
            // An unanswered save may still be applied: the record is then
            // known by its id, not its generation.
            let generation = self
                .call(self.store.save(&self.name, &sealed, Some(ttl)))
                .await
                .ok();
            tracing::debug!(store = %self.name, ?generation, "stored the session");
            Ok((grant, Some(Stored { generation, record })))
        }

        /// The stored session, if there is one this process may use: sealed
        /// for this account, newer than anything answered 401 here, not due
        /// for a refresh. One answered 401 here is removed, if it is still
        /// the one stored.
        async fn stored(
            &self,
            settings: &Settings,
        ) -> Result<Option<(Grant, Option<Stored>)>, Trouble> {
            let Some(found) = self.call(self.store.load(&self.name)).await? else {
                return Ok(None);
            };
            let Some(opened) = self.sealer.open(&found.sealed) else {
                tracing::debug!(
                    store = %self.name,
                    "the stored session does not open here (another key or account), \
                     has expired, or is too old"
                );
                return Ok(None);
            };
            if self.was_rejected(&opened.record.id) {
                let removed = self
                    .call(self.store.remove(&self.name, found.generation))
                    .await?;
                tracing::debug!(
                    store = %self.name,
                    generation = found.generation,
                    removed,
                    "the stored session was answered 401 here"
                );
                return Ok(None);
            }
            // The renewal of the record answered 401 here is taken, however
            // late this process saw the 401; anything else only if sealed
            // after it.
            let renews_ours = self.latest_rejected() == Some(opened.record.replaces);
            if !renews_ours && opened.record.sealed_at <= self.floor.load(Ordering::Relaxed) {
                tracing::debug!(
                    store = %self.name,
                    "the stored session is no newer than one answered 401 here"
                );
                return Ok(None);
            }
            // Due for a refresh by the engine's own rule (the refresh margin,
            // at most half the lifetime): then a new one is wanted.
            if let (Some(left), Some(lifetime)) = (opened.expires_in, opened.lifetime) {
                let lifetime = lifetime.clamp(MIN_LIFETIME, MAX_LIFETIME);
                if left <= settings.refresh_margin(lifetime) {
                    return Ok(None);
                }
            }
            bump(&self.hits);
            tracing::debug!(
                store = %self.name,
                generation = found.generation,
                "took the stored session"
            );
            let grant = Grant {
                value: opened.value,
                expires_in: opened.expires_in,
            };
            let stored = Stored {
                generation: Some(found.generation),
                record: opened.record,
            };
            Ok(Some((grant, Some(stored))))
        }

        fn was_rejected(&self, id: &[u8; 16]) -> bool {
            let rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
            rejected.contains(id)
        }

        /// The record of the session answered 401 last here, if it had one.
        fn latest_rejected(&self) -> Option<[u8; 16]> {
            *self
                .last_rejected
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        }

        /// Notes that a session was answered 401 (or logged out): from now
        /// on a record is taken only if it was sealed after now, or if it
        /// is the renewal of this session's own record (another process
        /// logged in after the same 401). A record sealed before a
        /// revocation died with it, and the 401 comes after the revocation,
        /// so an unrelated record sealed before the 401 may be dead too.
        /// The session's own record, if it has one, is removed from the
        /// store when next seen there.
        pub(crate) fn reject(&self, stored: Option<&Stored>) {
            let mut floor = unix_ms(SystemTime::now());
            *self
                .last_rejected
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = stored.map(|s| s.record.id);
            if let Some(stored) = stored {
                let mut rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
                if rejected.len() == REMEMBERED {
                    rejected.pop_front();
                }
                rejected.push_back(stored.record.id);
                floor = floor.max(stored.record.sealed_at);
            }
            self.floor.fetch_max(floor, Ordering::Relaxed);
        }

        /// (sessions taken from the store, store calls that failed).
        pub(crate) fn counts(&self) -> (u64, u64) {
            let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
            (get(&self.hits), get(&self.errors))
        }

        /// Removes the session's record now, for a logout: by its
        /// generation, or, if its save went unanswered, by its id.
        pub(crate) async fn forget(&self, stored: Option<Stored>) {
            self.reject(stored.as_ref());
            let Some(stored) = stored else { return };
            let generation = match stored.generation {
                Some(generation) => Some(generation),
                None => match self.call(self.store.load(&self.name)).await {
                    Ok(Some(found)) => self
                        .sealer
                        .open(&found.sealed)
                        .filter(|opened| opened.record.id == stored.record.id)
                        .map(|_| found.generation),
                    _ => None,
                },
            };
            if let Some(generation) = generation {
                let _ = self.call(self.store.remove(&self.name, generation)).await;
            }
        }

        /// One store call, bounded by the store timeout; trouble is logged
        /// and counted, never returned as a request's error.
        async fn call<T>(&self, call: StoreFuture<'_, T>) -> Result<T, Trouble> {
            let trouble = match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
            };
            bump(&self.errors);
            tracing::warn!(
                store = %self.name,
                error = %trouble,
                "session store failed: this process logs in on its own"
            );
            Err(Trouble)
        }
    }

    /// The store failed or did not answer in time (already logged).
    struct Trouble;

    impl fmt::Debug for Fleet {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Fleet")
                .field("name", &self.name)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(not(feature = "session-store"))]
mod disabled {
    use std::future::Future;

    use crate::error::AuthError;
    use crate::source::session::{Grant, Settings};

    /// No store: there is never a value of this type.
    #[derive(Debug)]
    pub(crate) enum Fleet {}

    /// No store: no session was ever stored.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Stored {}

    impl Fleet {
        pub(crate) fn new(_: &Settings, _: &str, _: &str) -> Result<Option<Self>, AuthError> {
            Ok(None)
        }

        pub(crate) async fn obtain<F, L>(
            &self,
            _: &Settings,
            _: F,
        ) -> Result<(Grant, Option<Stored>), AuthError>
        where
            F: Fn() -> L,
            L: Future<Output = Result<Grant, AuthError>>,
        {
            match *self {}
        }

        pub(crate) fn counts(&self) -> (u64, u64) {
            match *self {}
        }

        pub(crate) fn reject(&self, _: Option<&Stored>) {
            match *self {}
        }

        pub(crate) async fn forget(&self, _: Option<Stored>) {
            match *self {}
        }
    }
}
