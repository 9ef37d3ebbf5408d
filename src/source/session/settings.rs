//! What a session source is built with, and the builder methods every
//! session source shares.

use std::time::Duration;

/// How long one login may take.
pub(crate) const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff after the first failed login; doubles with each further failure.
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// The longest backoff between failed logins.
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The largest login or logout response body read.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024;

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
        /// 10 s); a
        /// slower one fails with [`Timeout`](crate::ErrorKind::Timeout).
        /// Clamped to at most an hour.
        pub fn login_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.settings.login_timeout = timeout.min(crate::source::session::MAX_LOGIN_TIMEOUT);
            self
        }

        /// The backoff after a failed login, doubling per consecutive failure
        /// up to `max` (defaults
        /// 1 s,
        /// 60 s). Both are
        /// clamped to at most a day.
        pub fn backoff(mut self, initial: std::time::Duration, max: std::time::Duration) -> Self {
            let bound = crate::source::session::MAX_BACKOFF;
            self.settings.backoff_initial = initial.min(bound);
            self.settings.backoff_max = max.max(initial).min(bound);
            self
        }

        /// Logins per second to this source's base URL, for every source of
        /// the process that logs in there (default
        /// 8 a second, below
        /// Infobip's own 10); further logins queue for their turn, inside
        /// the login timeout. The last source built with a rate sets it for
        /// all; 0 counts as 1.
        pub fn login_rate(mut self, per_second: u32) -> Self {
            self.settings.login_rate = Some(per_second);
            self
        }

        /// The largest login response body read (default
        /// 16 KiB);
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

impl Settings {
    /// How long before a grant of `lifetime` expires its refresh is due:
    /// the refresh margin, at most half the lifetime.
    pub(crate) fn refresh_margin(&self, lifetime: Duration) -> Duration {
        self.refresh_before.min(lifetime / 2)
    }
}
