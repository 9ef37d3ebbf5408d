//! Sessions shared by many processes: one login for a whole fleet.
//!
//! A [`SharedStore`] given to [`IbssoBuilder::shared_store`] or
//! [`OAuth2Builder::shared_store`] puts a second cache under the session
//! engine. A request on the process's own session never touches the store;
//! only a process that needs a new session asks it:
//!
//! 1. **Read.** A session another process stored, and nobody has reported
//!    a 401 for, is taken as it is: no login.
//! 2. **Lease.** Otherwise the process tries to take the store's lease for
//!    the session. Its holder logs in and stores the session; the others
//!    poll the store until it appears, for at most the login timeout (the
//!    lease's lifetime, so a holder that died has lost it by then), and log
//!    in on their own only when that runs out.
//! 3. **Invalidation by generation.** Every stored session has a
//!    generation the store gave it. A 401 removes the stored session only if
//!    it still holds the generation that was rejected, so a late 401 never
//!    removes a newer session.
//! 4. **Sealed at rest.** The store holds the header value encrypted with
//!    XChaCha20-Poly1305 under a [`SealingKey`], bound to the store name,
//!    the base URL and the account (whose name is never stored). A record
//!    that does not open is a miss. Usernames, passwords and client secrets
//!    never go to the store.
//! 5. **Store trouble is never an outage.** Every store call is bounded by
//!    [`SharedStore::timeout`]; an error or a timeout is logged (`WARN`),
//!    counted in [`SessionStats::store_errors`](crate::SessionStats), and the
//!    process logs in on its own. Sharing resumes with the next login once
//!    the store answers again.
//!
//! The store itself is a [`SessionStore`]: [`RedisStore`] (feature `redis`),
//! or one of your own.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "redis")]
//! # fn main() -> Result<(), infobip_auth::AuthError> {
//! use infobip_auth::store::{RedisStore, SealingKey, SharedStore};
//! use infobip_auth::{BaseUrl, Ibsso};
//! # let client = hyper_util::client::legacy::Client::builder(
//! #     hyper_util::rt::TokioExecutor::new(),
//! # ).build::<_, http_body_util::Full<bytes::Bytes>>(
//! #     hyper_util::client::legacy::connect::HttpConnector::new(),
//! # );
//! # let key_from_your_secret_store = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
//!
//! let store = RedisStore::new("redis://127.0.0.1:6379/")?;
//! // Every replica gets the same 32-byte key, from your secret manager.
//! let key = SealingKey::from_base64(key_from_your_secret_store)?;
//! let shared = SharedStore::new(store, "billing-prod", key);
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! let session = Ibsso::builder(base, "username", "password")
//!     // A session bound to one host's IP fails on the others.
//!     .bind_to_client_ip(false)
//!     .shared_store(shared)
//!     .build(client)?;
//! # let _ = session;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "redis"))]
//! # fn main() {}
//! ```
//!
//! [`IbssoBuilder::shared_store`]: crate::IbssoBuilder::shared_store
//! [`OAuth2Builder::shared_store`]: crate::OAuth2Builder::shared_store

#[cfg(feature = "redis")]
mod redis;
pub(crate) mod seal;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::error::{AuthError, BoxError, ErrorKind};
use crate::secret::REDACTED;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
pub(crate) use self::seal::Sealer;

/// How long one store call may take before the process stops waiting for
/// it and logs in on its own.
pub(crate) const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a process that waits for another's login looks for its result.
pub(crate) const DEFAULT_STORE_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The longest store timeout and poll interval: a minute.
const MAX_STORE_WAIT: Duration = Duration::from_secs(60);

/// What a store call returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'a>>;

/// A stored session as the store keeps it: sealed bytes it cannot read,
/// and the generation it gave them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The generation [`SessionStore::save`] returned for this record.
    pub generation: u64,
    /// The sealed session, opaque to the store.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("generation", &self.generation)
            .field("sealed_bytes", &self.sealed.len())
            .finish()
    }
}

/// A store that many processes share: one record and one lease per key.
///
/// Every method is called off the request path, only by a process that
/// needs a new session, and is bounded by [`SharedStore::timeout`]. An
/// error makes that process log in on its own; it never fails a request.
pub trait SessionStore: Send + Sync + 'static {
    /// The record under `key`, if there is one.
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredSession>>;

    /// Replaces the record under `key` with `sealed`, to expire after `ttl`
    /// if given, under a generation greater than any the store gave `key`
    /// before (also across restarts of the store); returns that generation.
    fn save<'a>(
        &'a self,
        key: &'a str,
        sealed: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, u64>;

    /// Removes the record under `key` if, and only if, it still holds
    /// `generation`, in one atomic step; true if it did.
    fn remove<'a>(&'a self, key: &'a str, generation: u64) -> StoreFuture<'a, bool>;

    /// Takes the lease for `key` for `holder` if nobody holds it, to lapse
    /// after `ttl`; true if taken.
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Gives the lease for `key` back if, and only if, `holder` still holds
    /// it, in one atomic step.
    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, ()>;
}

impl<T: SessionStore + ?Sized> SessionStore for Arc<T> {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredSession>> {
        (**self).load(key)
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        sealed: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, u64> {
        (**self).save(key, sealed, ttl)
    }

    fn remove<'a>(&'a self, key: &'a str, generation: u64) -> StoreFuture<'a, bool> {
        (**self).remove(key, generation)
    }

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        (**self).try_lease(key, holder, ttl)
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        (**self).release(key, holder)
    }
}

/// `SessionStore` must stay usable as a trait object.
const _: Option<&dyn SessionStore> = None;

/// The 32-byte key sessions are sealed with in the store. Every process that
/// shares a session needs the same key; keep it in your secret manager, not
/// in the store. Wiped from memory when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct SealingKey(Arc<Zeroizing<[u8; 32]>>);

impl SealingKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Arc::new(Zeroizing::new(bytes)))
    }

    /// A key from standard base64 (with padding), as a secret manager or an
    /// environment variable holds it (`openssl rand -base64 32` makes one).
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) if the text is not
    /// base64 of exactly 32 bytes. The message never repeats the text.
    pub fn from_base64(text: &str) -> Result<Self, AuthError> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| {
                    AuthError::new(ErrorKind::InvalidConfig, "sealing key is not valid base64")
                })?,
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            AuthError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "sealing key must be 32 bytes, not {} (openssl rand -base64 32 makes one)",
                    decoded.len()
                ),
            )
        })?;
        Ok(Self::new(bytes))
    }

    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) if the operating system
    /// has no random numbers to give.
    pub fn generate() -> Result<Self, AuthError> {
        let bytes = seal::random_32().ok_or_else(|| {
            AuthError::new(
                ErrorKind::InvalidConfig,
                "no random numbers for a sealing key",
            )
        })?;
        Ok(Self::new(*bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SealingKey").field(&REDACTED).finish()
    }
}

/// Where and how a session source shares its session with other processes:
/// the store, the name the session is stored under, and the sealing key.
/// Give it to [`IbssoBuilder::shared_store`](crate::IbssoBuilder::shared_store)
/// or [`OAuth2Builder::shared_store`](crate::OAuth2Builder::shared_store).
///
/// The name identifies one account's session among those in the store:
/// the processes that share a session use the same name, and different
/// accounts use different names. A record sealed for another account or
/// base URL does not open, so a mix-up costs logins, never a wrong
/// credential.
#[derive(Clone)]
pub struct SharedStore {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) name: String,
    pub(crate) key: SealingKey,
    pub(crate) previous_key: Option<SealingKey>,
    pub(crate) timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl SharedStore {
    /// Shares sessions through `store` under `name`, sealed with `key`.
    pub fn new(store: impl SessionStore, name: impl Into<String>, key: SealingKey) -> Self {
        Self {
            store: Arc::new(store),
            name: name.into(),
            key,
            previous_key: None,
            timeout: DEFAULT_STORE_TIMEOUT,
            poll_interval: DEFAULT_STORE_POLL_INTERVAL,
        }
    }

    /// A key records may still be sealed with, during a change of keys:
    /// records are opened with it too, for an
    /// hour from when the source is built, and always sealed with the new
    /// one.
    pub fn previous_key(mut self, key: SealingKey) -> Self {
        self.previous_key = Some(key);
        self
    }

    /// How long one store call may take (default
    /// 500 ms); a slower one counts as a store error.
    /// Clamped to at most a minute.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_STORE_WAIT);
        self
    }

    /// How often a process waiting for another's login polls the store
    /// (default 20 ms). Clamped to between 1 ms
    /// and a minute; the wait never outlasts the login timeout.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.clamp(Duration::from_millis(1), MAX_STORE_WAIT);
        self
    }

    /// Checks the name: not empty, at most 200 bytes, no control characters,
    /// no braces (stores use them to keep a session's keys together).
    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        let name = &self.name;
        if name.is_empty()
            || name.len() > 200
            || name.chars().any(|c| c.is_control() || c == '{' || c == '}')
        {
            return Err(AuthError::new(
                ErrorKind::InvalidConfig,
                "a shared store's name must be 1 to 200 bytes, without control characters or braces",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}
