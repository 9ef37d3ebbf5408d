//! [`AccountsLayer`]: many Infobip accounts behind one stack (feature
//! `accounts`). Each request names its account with a key of your type in
//! its extensions; the layer stamps it with that account's credential, on
//! that account's base URL.
//!
//! Accounts come from a resolver you supply, once per key however many
//! requests ask at once, and are kept in a bounded cache (moka) that drops
//! accounts idle for longer than 50 minutes (under Infobip's 60
//! idle minutes); a dropped IBSSO session is logged out. Every promise of
//! [`AuthLayer`] holds per account: origin scoping, the
//! caller's header kept, single-flight renewal, one replay.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::{connect::HttpConnector, Client};
//! use infobip_auth::accounts::{Account, AccountsLayer};
//! use infobip_auth::testing::FakeInfobip;
//! use infobip_auth::{ApiKey, AuthError};
//! use tower::{Layer, ServiceExt};
//!
//! /// Your platform's customer id.
//! #[derive(Clone, Debug, PartialEq, Eq, Hash)]
//! struct Customer(u32);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let fake = FakeInfobip::start().await?;
//! # let base = fake.base_url();
//! let client: Client<HttpConnector, Full<Bytes>> =
//!     Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
//! // Looks a customer's account up (a database, a vault): once per customer.
//! let resolver = move |customer: Customer| {
//!     let base = base.clone();
//!     async move {
//!         let key = match customer.0 {
//!             7 => FakeInfobip::API_KEY,
//!             _ => return Err(AuthError::source_failed("unknown customer", None)),
//!         };
//!         Ok(Account::new(base, ApiKey::new(key)?))
//!     }
//! };
//! let infobip = AccountsLayer::new(resolver).layer(client);
//!
//! let mut request = Request::post("/sms/2/text/advanced").body(Full::new(Bytes::from("{}")))?;
//! request.extensions_mut().insert(Customer(7));
//! assert!(infobip.oneshot(request).await?.status().is_success());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body::Body;
use tower::{Layer, Service, ServiceExt};

use crate::base_url::BaseUrl;
use crate::error::{AuthError, BoxError, ErrorKind};
use crate::layer::AuthLayer;
use crate::protocol::Common;
use crate::service::AuthService;
use crate::source::{
    BoxCredentialSource, CredentialSource, Ibsso, KeepsBody, Renewing, SourceKind, UserSession,
};

/// The most accounts kept at once, by default.
pub(crate) const DEFAULT_ACCOUNT_CAPACITY: u64 = 10_000;

/// How long an account is kept unused, by default: under Infobip's 60 idle
/// minutes, so that a session is logged out before the server ends it.
pub(crate) const DEFAULT_ACCOUNT_IDLE: Duration = Duration::from_secs(50 * 60);

type Logout = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// One account: its base URL and its credential source, from your resolver.
///
/// `Kd` is the [`Kind`](CredentialSource::Kind) of its source. A resolver
/// of static accounts only (`Account<Static>`, from [`new`](Self::new) with
/// an API key or Basic) makes a stack that accepts any body; one that may
/// return a session (`Account`, the default, renewing) needs replayable
/// bodies, as `AuthLayer` does with a renewing source.
pub struct Account<Kd = Renewing> {
    layer: AuthLayer<BoxCredentialSource<Kd>>,
    /// Ends the account's session when the cache drops it.
    logout: Option<Logout>,
}

impl<Kd> Clone for Account<Kd> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            logout: self.logout.clone(),
        }
    }
}

impl<Kd: SourceKind> Account<Kd> {
    /// An account stamped from `source`, keeping its kind.
    pub fn new<C>(base_url: BaseUrl, source: C) -> Self
    where
        C: CredentialSource<Kind = Kd> + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self {
            layer: AuthLayer::new(base_url, BoxCredentialSource::new(source)),
            logout: None,
        }
    }
}

impl Account {
    /// An account stamped from a source of either kind, for a resolver
    /// whose accounts mix static sources and sessions.
    pub fn mixed<C>(base_url: BaseUrl, source: C) -> Self
    where
        C: CredentialSource + Send + Sync + 'static,
        C::Future: Send + 'static,
    {
        Self {
            layer: AuthLayer::new(base_url, BoxCredentialSource::mixed(source)),
            logout: None,
        }
    }

    /// An account with an IBSSO session, logged out when the cache drops it.
    pub fn session(session: Ibsso) -> Self {
        let base_url = session.base_url().clone();
        let ending = session.clone();
        Self::new(base_url, session).logged_out_with(move || {
            let session = ending.clone();
            Box::pin(async move {
                let _ = session.logout().await;
            })
        })
    }

    /// An account for one of your users ([`UserSession`]), logged out when
    /// the cache drops it.
    pub fn user(session: UserSession) -> Self {
        let base_url = session.base_url().clone();
        let ending = session.clone();
        Self::new(base_url, session).logged_out_with(move || {
            let session = ending.clone();
            Box::pin(async move {
                let _ = session.logout().await;
            })
        })
    }

    fn logged_out_with(
        mut self,
        logout: impl Fn() -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        self.logout = Some(Arc::new(logout));
        self
    }
}

impl<Kd> fmt::Debug for Account<Kd> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// Picks each request's account by the key of type `K` in its extensions
/// and stamps it as [`AuthLayer`] would for that account;
/// see the [module documentation](self).
pub struct AccountsLayer<K, R> {
    resolver: Arc<R>,
    capacity: u64,
    idle: Duration,
    default_key: Option<K>,
}

impl<K, R, Fut, Kd> AccountsLayer<K, R>
where
    R: Fn(K) -> Fut,
    Fut: Future<Output = Result<Account<Kd>, AuthError>>,
{
    /// Resolves each key to its [`Account`] with `resolver`, once per key
    /// while the account is kept.
    pub fn new(resolver: R) -> Self {
        Self {
            resolver: Arc::new(resolver),
            capacity: DEFAULT_ACCOUNT_CAPACITY,
            idle: DEFAULT_ACCOUNT_IDLE,
            default_key: None,
        }
    }
}

impl<K, R> AccountsLayer<K, R> {
    /// The most accounts kept at once (default
    /// 10,000); the least recently used go first.
    pub fn max_accounts(mut self, accounts: u64) -> Self {
        self.capacity = accounts;
        self
    }

    /// How long an unused account is kept (default 50 minutes;
    /// clamped to at most a year).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle.min(crate::source::session::MAX_LIFETIME);
        self
    }

    /// The account of a request that names none (default: such a request
    /// fails with [`ErrorKind::NoAccount`]).
    pub fn default_key(mut self, key: K) -> Self {
        self.default_key = Some(key);
        self
    }
}

impl<K: Clone, R> Clone for AccountsLayer<K, R> {
    fn clone(&self) -> Self {
        Self {
            resolver: self.resolver.clone(),
            capacity: self.capacity,
            idle: self.idle,
            default_key: self.default_key.clone(),
        }
    }
}

impl<K: fmt::Debug, R> fmt::Debug for AccountsLayer<K, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsLayer")
            .field("capacity", &self.capacity)
            .field("idle", &self.idle)
            .field("default_key", &self.default_key)
            .finish_non_exhaustive()
    }
}

/// An account as the cache keeps it: what its stamping service shares, and
/// how to end its session.
struct Kept<S, Kd> {
    shared: Arc<Common<S, BoxCredentialSource<Kd>>>,
    logout: Option<Logout>,
}

impl<S, Kd> Clone for Kept<S, Kd> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            logout: self.logout.clone(),
        }
    }
}

impl<S, K, R, Fut, Kd> Layer<S> for AccountsLayer<K, R>
where
    S: Clone + Send + Sync + 'static,
    K: Clone + Hash + Eq + Send + Sync + 'static,
    R: Fn(K) -> Fut,
    Fut: Future<Output = Result<Account<Kd>, AuthError>>,
    Kd: 'static,
{
    type Service = Accounts<S, K, R, Kd>;

    fn layer(&self, inner: S) -> Self::Service {
        let cache = moka::future::Cache::builder()
            .max_capacity(self.capacity)
            .time_to_idle(self.idle)
            .eviction_listener(|_, kept: Kept<S, Kd>, _| {
                // Logged out on the runtime, never in the cache's way.
                if let (Some(logout), Ok(runtime)) =
                    (kept.logout, tokio::runtime::Handle::try_current())
                {
                    runtime.spawn(logout());
                }
            })
            .build();
        Accounts {
            inner,
            shared: Arc::new(AccountsShared {
                cache,
                resolver: self.resolver.clone(),
                default_key: self.default_key.clone(),
            }),
            _key: PhantomData,
        }
    }
}

struct AccountsShared<S, K, R, Kd> {
    cache: moka::future::Cache<K, Kept<S, Kd>>,
    resolver: Arc<R>,
    default_key: Option<K>,
}

/// The service [`AccountsLayer`] builds.
///
/// `poll_ready` is always ready: each request's account readies the inner
/// service (a clone of it) once its credential is in hand, so that neither
/// resolving an account nor logging in holds an inner slot.
pub struct Accounts<S, K, R, Kd = Renewing> {
    inner: S,
    shared: Arc<AccountsShared<S, K, R, Kd>>,
    _key: PhantomData<fn(K)>,
}

impl<S: Clone, K, R, Kd> Clone for Accounts<S, K, R, Kd> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            _key: PhantomData,
        }
    }
}

impl<S: fmt::Debug, K, R, Kd> fmt::Debug for Accounts<S, K, R, Kd> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("inner", &self.inner)
            .field("accounts", &self.shared.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl<S, K, R, Kd> Accounts<S, K, R, Kd>
where
    S: Clone + Send + Sync + 'static,
    K: Clone + Hash + Eq + Send + Sync + 'static,
    Kd: 'static,
{
    /// How many accounts are kept now (as of the cache's last tidy-up: see
    /// [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn accounts(&self) -> u64 {
        self.shared.cache.entry_count()
    }

    /// Applies the cache's pending evictions (it applies them as it goes;
    /// this is for tests and for a periodic tidy-up).
    pub async fn run_pending_tasks(&self) {
        self.shared.cache.run_pending_tasks().await;
    }
}

impl<S, K, R, Fut, Kd, B, RB> Service<Request<B>> for Accounts<S, K, R, Kd>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    K: Clone + Hash + Eq + Send + Sync + 'static,
    R: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Account<Kd>, AuthError>> + Send + 'static,
    Kd: KeepsBody<B> + 'static,
    B: Send + 'static,
    RB: Body + Send + 'static,
{
    type Response = Response<RB>;
    type Error = AuthError;
    type Future = BoxFuture<'static, Result<Response<RB>, AuthError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let key = request.extensions().get::<K>().cloned();
        let Some(key) = key.or_else(|| self.shared.default_key.clone()) else {
            return Box::pin(std::future::ready(Err(AuthError::new(
                ErrorKind::NoAccount,
                "the request names no account (no key in its extensions) and there is no default",
            ))));
        };
        let (inner, shared) = (self.inner.clone(), self.shared.clone());
        Box::pin(async move {
            let wanted = key.clone();
            // Runs only when the cache has no account for `key`, and then
            // once for all the requests that ask for it meanwhile.
            let resolve = async {
                let account = (shared.resolver)(wanted).await?;
                let service = account.layer.layer(inner.clone());
                Ok::<_, AuthError>(Kept {
                    shared: service.common().clone(),
                    logout: account.logout,
                })
            };
            let kept = shared
                .cache
                .try_get_with(key, resolve)
                .await
                .map_err(|error| (*error).clone())?;
            AuthService::with_common(inner, kept.shared)
                .oneshot(request)
                .await
        })
    }
}
