//! The session engine's second cache: a session shared with other processes
//! through a [`SessionStore`](crate::store::SessionStore). See
//! [`crate::store`] for the protocol. Without feature `session-store`,
//! [`Shared`] has no values and the engine never asks it anything.

#[cfg(feature = "session-store")]
pub(crate) use self::enabled::Shared;

#[cfg(not(feature = "session-store"))]
pub(crate) use self::disabled::Shared;

#[cfg(feature = "session-store")]
mod enabled {
    use std::fmt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use tokio::time::Instant;

    use crate::error::AuthError;
    use crate::source::session::{bump, Engine, Grant, Settings, MIN_LIFETIME};
    use crate::store::{Sealer, SessionStore, StoreFuture};

    pub(crate) struct Shared {
        store: Arc<dyn SessionStore>,
        name: String,
        sealer: Sealer,
        /// This engine's name on the lease: random, so that a lease is only
        /// ever given back by the process that took it.
        holder: String,
        timeout: std::time::Duration,
        poll_interval: std::time::Duration,
        /// The newest stored generation answered 401 here (0: none).
        rejected: AtomicU64,
    }

    impl Shared {
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
            Ok(Some(Self {
                store: config.store.clone(),
                name: config.name.clone(),
                sealer: Sealer::new(config, base_url, account),
                holder: id[..16].iter().map(|b| format!("{b:02x}")).collect(),
                timeout: config.timeout,
                poll_interval: config.poll_interval,
                rejected: AtomicU64::new(0),
            }))
        }

        /// A session for `engine`: the stored one, the one another process
        /// is logging in (waited for while it holds the lease), or a login
        /// of its own. Returns the grant and its stored generation (0: not
        /// stored).
        pub(crate) async fn obtain(&self, engine: &Engine) -> Result<(Grant, u64), AuthError> {
            let deadline = Instant::now() + engine.settings.login_timeout;
            loop {
                match self.stored(engine).await {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => {}
                    Err(Trouble) => return engine.log_in().await.map(|grant| (grant, 0)),
                }
                let ttl = engine.settings.login_timeout;
                match self
                    .call(engine, self.store.try_lease(&self.name, &self.holder, ttl))
                    .await
                {
                    Ok(true) => return self.lead(engine).await,
                    Ok(false) => {}
                    Err(Trouble) => return engine.log_in().await.map(|grant| (grant, 0)),
                }
                if Instant::now() >= deadline {
                    tracing::warn!(
                        store = %self.name,
                        "another process held the login lease for the whole login timeout: \
                         logging in without it"
                    );
                    return self.log_in_and_save(engine).await;
                }
                tokio::time::sleep(self.poll_interval).await;
            }
        }

        /// Holding the lease: takes a session stored since the last look,
        /// or logs in and stores one; then gives the lease back.
        async fn lead(&self, engine: &Engine) -> Result<(Grant, u64), AuthError> {
            let result = match self.stored(engine).await {
                Ok(Some(found)) => Ok(found),
                _ => self.log_in_and_save(engine).await,
            };
            // A release that fails leaves the lease to lapse.
            let _ = self
                .call(engine, self.store.release(&self.name, &self.holder))
                .await;
            result
        }

        async fn log_in_and_save(&self, engine: &Engine) -> Result<(Grant, u64), AuthError> {
            let grant = engine.log_in().await?;
            let ttl = match grant.expires_in {
                Some(expires_in) => Some(expires_in.max(MIN_LIFETIME)),
                None => engine.settings.idle_timeout,
            };
            let generation = match self.sealer.seal(&grant.value, grant.expires_in) {
                Some(sealed) => self
                    .call(engine, self.store.save(&self.name, &sealed, ttl))
                    .await
                    .unwrap_or(0),
                None => 0,
            };
            tracing::debug!(store = %self.name, generation, "stored the session");
            Ok((grant, generation))
        }

        /// The stored session, if there is one this process may use: not
        /// answered 401 here, sealed for this account, not due for a
        /// refresh. A rejected one is removed, if it is still the one stored.
        async fn stored(&self, engine: &Engine) -> Result<Option<(Grant, u64)>, Trouble> {
            let Some(record) = self.call(engine, self.store.load(&self.name)).await? else {
                return Ok(None);
            };
            if record.generation <= self.rejected.load(Ordering::Relaxed) {
                let removed = self
                    .call(engine, self.store.remove(&self.name, record.generation))
                    .await?;
                tracing::debug!(
                    store = %self.name,
                    generation = record.generation,
                    removed,
                    "the stored session was answered 401"
                );
                return Ok(None);
            }
            let Some(opened) = self.sealer.open(&record.sealed) else {
                tracing::debug!(
                    store = %self.name,
                    "the stored session does not open here (another key or account) or has expired"
                );
                return Ok(None);
            };
            // Due for a refresh by the engine's own rule (the refresh margin,
            // at most half the lifetime): then a new one is wanted.
            if let (Some(left), Some(lifetime)) = (opened.expires_in, opened.lifetime) {
                let lifetime = lifetime.max(MIN_LIFETIME);
                if left <= engine.settings.refresh_before.min(lifetime / 2) {
                    return Ok(None);
                }
            }
            bump(&engine.stats.shared_hits);
            tracing::debug!(
                store = %self.name,
                generation = record.generation,
                "took the stored session"
            );
            let grant = Grant {
                value: opened.value,
                expires_in: opened.expires_in,
            };
            Ok(Some((grant, record.generation)))
        }

        /// Notes that stored generation `generation` was answered 401: the
        /// next login here removes it from the store, if it is still there.
        pub(crate) fn reject(&self, generation: u64) {
            self.rejected.fetch_max(generation, Ordering::Relaxed);
        }

        /// Removes stored generation `generation` now, for a logout.
        pub(crate) async fn forget(&self, engine: &Engine, generation: u64) {
            self.reject(generation);
            let _ = self
                .call(engine, self.store.remove(&self.name, generation))
                .await;
        }

        /// One store call, bounded by the store timeout; trouble is logged
        /// and counted, never returned as a request's error.
        async fn call<T>(&self, engine: &Engine, call: StoreFuture<'_, T>) -> Result<T, Trouble> {
            let trouble = match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
            };
            bump(&engine.stats.store_errors);
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

    impl fmt::Debug for Shared {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Shared")
                .field("name", &self.name)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(not(feature = "session-store"))]
mod disabled {
    use crate::error::AuthError;
    use crate::source::session::{Engine, Grant, Settings};

    /// No store: there is never a value of this type.
    #[derive(Debug)]
    pub(crate) enum Shared {}

    impl Shared {
        pub(crate) fn new(_: &Settings, _: &str, _: &str) -> Result<Option<Self>, AuthError> {
            Ok(None)
        }

        pub(crate) async fn obtain(&self, _: &Engine) -> Result<(Grant, u64), AuthError> {
            match *self {}
        }

        pub(crate) fn reject(&self, _: u64) {
            match *self {}
        }

        pub(crate) async fn forget(&self, _: &Engine, _: u64) {
            match *self {}
        }
    }
}
