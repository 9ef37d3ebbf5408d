//! What a session source counts.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) logins: AtomicU64,
    pub(crate) failed_logins: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) idle_renewals: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) replays_skipped: AtomicU64,
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

impl Counters {
    /// The counts; a shared store's own are added by the engine.
    pub(crate) fn snapshot(&self) -> SessionStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SessionStats {
            logins: get(&self.logins),
            failed_logins: get(&self.failed_logins),
            renewals: get(&self.renewals),
            idle_renewals: get(&self.idle_renewals),
            refreshes: get(&self.refreshes),
            replays: get(&self.replays),
            replays_skipped: get(&self.replays_skipped),
            shared_hits: 0,
            store_errors: 0,
        }
    }
}
