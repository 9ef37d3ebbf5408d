//! [`RedisStore`]: the shared session store on Redis.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use tokio::sync::OnceCell;

use super::{SessionStore, StoreFuture, StoredSession};
use crate::error::{AuthError, BoxError, ErrorKind};

/// The prefix of every key the store writes.
const DEFAULT_PREFIX: &str = "infobip-auth";

/// Milliseconds for `PEXPIRE` or `SET PX`: at least 1, at most a year, so
/// that Redis never refuses one half-way through a script.
fn ttl_ms(ttl: Duration) -> u64 {
    let year = crate::source::session::MAX_LIFETIME;
    crate::source::session::millis(ttl.min(year)).max(1)
}

/// Generations follow the server's clock in microseconds, and always grow
/// by at least one: they keep growing across a restart that lost the
/// counter, so an old 401 can never match a new record.
const SAVE: &str = r"
local t = redis.call('TIME')
local g = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last >= g then g = last + 1 end
local generation = string.format('%.0f', g)
redis.call('SET', KEYS[2], generation)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'generation', generation, 'sealed', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return generation
";

const REMOVE: &str = r"
if redis.call('HGET', KEYS[1], 'generation') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`SessionStore`] on Redis, through the `redis` crate's reconnecting
/// connection manager (one connection, multiplexed, made on first use).
///
/// Each session takes three keys, in one hash slot:
/// `infobip-auth:{<name>}:session` (a hash: `generation` and the sealed
/// record, expiring with the session), `…:lease` (the holder of the login
/// under way) and `…:generation` (the last generation given out).
///
/// If Redis is down when a call is made, it fails and the session source
/// logs in on its own; the connection is made again by a later call.
pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    save: Script,
    remove: Script,
    release: Script,
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://` with the
    /// `redis` crate's TLS features, `redis+unix://`). Does not connect yet.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) if the URL is not one the
    /// `redis` crate takes. The message never repeats the URL, which may
    /// hold a password.
    pub fn new(url: &str) -> Result<Self, AuthError> {
        let client = redis::Client::open(url).map_err(|e| {
            AuthError::new(
                ErrorKind::InvalidConfig,
                format!("not a Redis URL the redis crate takes ({:?})", e.kind()),
            )
        })?;
        Ok(Self::from_client(client))
    }

    /// A store over a `redis::Client` you configured.
    pub fn from_client(client: redis::Client) -> Self {
        Self {
            client,
            connection: OnceCell::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            save: Script::new(SAVE),
            remove: Script::new(REMOVE),
            release: Script::new(RELEASE),
        }
    }

    /// Writes keys under `prefix` instead of `infobip-auth`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, name: &str, part: &str) -> String {
        format!("{}:{{{name}}}:{part}", self.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        self.connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
    }

    /// Runs `call` on the connection, once more if the first attempt found
    /// the connection broken: that attempt started the reconnect the second
    /// one waits for, so a restarted server answers at once.
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, BoxError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let connection = self.connection().await?;
        match call(connection.clone()).await {
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
                Ok(call(connection).await?)
            }
            result => Ok(result?),
        }
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<StoredSession>> {
        let key = self.key(name, "session");
        Box::pin(async move {
            let (generation, sealed): (Option<String>, Option<Vec<u8>>) = self
                .run(|mut c| {
                    let key = &key;
                    async move {
                        redis::cmd("HMGET")
                            .arg(key)
                            .arg("generation")
                            .arg("sealed")
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            Ok(match (generation.and_then(|g| g.parse().ok()), sealed) {
                (Some(generation), Some(sealed)) => Some(StoredSession { generation, sealed }),
                _ => None,
            })
        })
    }

    fn save<'a>(
        &'a self,
        name: &'a str,
        sealed: &'a [u8],
        ttl: Option<Duration>,
    ) -> StoreFuture<'a, u64> {
        let keys = [self.key(name, "session"), self.key(name, "generation")];
        let ttl_ms = ttl.map_or(0, ttl_ms);
        Box::pin(async move {
            let generation: String = self
                .run(|mut c| {
                    let mut call = self.save.prepare_invoke();
                    call.key(&keys[0]).key(&keys[1]).arg(sealed).arg(ttl_ms);
                    async move { call.invoke_async(&mut c).await }
                })
                .await?;
            Ok(generation.parse()?)
        })
    }

    fn remove<'a>(&'a self, name: &'a str, generation: u64) -> StoreFuture<'a, bool> {
        let key = self.key(name, "session");
        Box::pin(async move {
            let removed: u64 = self
                .run(|mut c| {
                    let mut call = self.remove.prepare_invoke();
                    call.key(&key).arg(generation.to_string());
                    async move { call.invoke_async(&mut c).await }
                })
                .await?;
            Ok(removed > 0)
        })
    }

    fn try_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let key = self.key(name, "lease");
        let ttl_ms = ttl_ms(ttl);
        Box::pin(async move {
            let taken: Option<String> = self
                .run(|mut c| {
                    let key = &key;
                    async move {
                        redis::cmd("SET")
                            .arg(key)
                            .arg(holder)
                            .arg("NX")
                            .arg("PX")
                            .arg(ttl_ms)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            Ok(taken.is_some())
        })
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        let key = self.key(name, "lease");
        Box::pin(async move {
            let _: u64 = self
                .run(|mut c| {
                    let mut call = self.release.prepare_invoke();
                    call.key(&key).arg(holder);
                    async move { call.invoke_async(&mut c).await }
                })
                .await?;
            Ok(())
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("connected", &self.connection.initialized())
            .finish_non_exhaustive()
    }
}
