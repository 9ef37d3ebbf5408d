//! The login rate: every source of the process that logs in to one base URL
//! (sessions, tokens, users' sessions) shares one limit, so that a cold
//! start with many accounts queues its logins instead of drawing 429s from
//! Infobip, which throttles its login and token endpoints at about 10 a
//! second.
//!
//! Logins are spaced evenly, one interval apart, which holds whether a
//! server counts a fixed window, a sliding one, or a token bucket; the
//! default rate leaves a fifth of Infobip's 10 a second as headroom for
//! jitter between the spacing here and the arrivals there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::base_url::BaseUrl;

/// Logins per second to one base URL, for the whole process: 8, below
/// Infobip's 10, so that latency jitter never puts 11 in one second.
pub(crate) const DEFAULT_LOGIN_RATE: u32 = 8;

/// Who is logging in: users' logins ([`UserSession`](crate::UserSession))
/// take their turns one at a time, so that however many are queued or
/// abandoned, the sources the service runs on wait behind at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    Service,
    User,
}

/// Spaces the logins to one base URL evenly.
pub(crate) struct LoginLimit {
    /// When the last login was let through. Held by the login whose turn
    /// is next while it waits for it (tokio's lock is first come, first
    /// served), so a login dropped while it waits gives its turn back.
    /// Real time (`std`), not tokio's clock: it is shared by every runtime
    /// of the process, and tokio's can be paused.
    last: tokio::sync::Mutex<Option<Instant>>,
    /// Users' logins queue here before they queue at `last`.
    users: tokio::sync::Mutex<()>,
    /// Nanoseconds between two logins.
    interval: AtomicU64,
}

fn interval(per_second: u32) -> u64 {
    1_000_000_000 / u64::from(per_second.max(1))
}

impl LoginLimit {
    /// The limit for `base_url`, shared by every source of the process.
    /// `per_second`, when given, sets its rate (the last source to set one
    /// wins); otherwise a new limit takes `DEFAULT_LOGIN_RATE`.
    pub(crate) fn for_base_url(base_url: &BaseUrl, per_second: Option<u32>) -> Arc<Self> {
        static LIMITS: OnceLock<Mutex<HashMap<String, Arc<LoginLimit>>>> = OnceLock::new();
        let mut limits = LIMITS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let limit = limits.entry(base_url.to_string()).or_insert_with(|| {
            Arc::new(Self {
                last: tokio::sync::Mutex::new(None),
                users: tokio::sync::Mutex::new(()),
                interval: AtomicU64::new(interval(DEFAULT_LOGIN_RATE)),
            })
        });
        if let Some(per_second) = per_second {
            limit
                .interval
                .store(interval(per_second), Ordering::Relaxed);
        }
        limit.clone()
    }

    /// Waits for this login's turn. Dropping the future before it is ready
    /// takes nothing from the logins behind it.
    pub(crate) async fn acquire(&self, caller: Caller) {
        let _users = match caller {
            Caller::User => Some(self.users.lock().await),
            Caller::Service => None,
        };
        let mut last = self.last.lock().await;
        if let Some(at) = *last {
            // Bounded: the interval is at most a second.
            let next = at + Duration::from_nanos(self.interval.load(Ordering::Relaxed));
            let wait = next.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                tracing::trace!(
                    wait_ms = wait.as_millis() as u64,
                    "login queued by the login rate"
                );
                tokio::time::sleep(wait).await;
            }
        }
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32) -> LoginLimit {
        LoginLimit {
            last: tokio::sync::Mutex::new(None),
            users: tokio::sync::Mutex::new(()),
            interval: AtomicU64::new(interval(per_second)),
        }
    }

    /// Paused time: the waits are tokio's virtual time, not the wall clock.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_before_its_turn_gives_the_turn_back() {
        let limit = Arc::new(limit(1));
        limit.acquire(Caller::Service).await;
        // Queued behind the first, then abandoned.
        for _ in 0..50 {
            let limit = limit.clone();
            let _ = tokio::time::timeout(Duration::from_millis(1), async move {
                limit.acquire(Caller::User).await
            })
            .await;
        }
        let started = tokio::time::Instant::now();
        limit.acquire(Caller::Service).await;
        let waited = started.elapsed();
        assert!(
            waited <= Duration::from_millis(1100),
            "one interval at most, not one per abandoned waiter: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queued_user_logins_hold_at_most_one_turn_ahead_of_the_service() {
        let limit = Arc::new(limit(100));
        limit.acquire(Caller::Service).await;
        let users: Vec<_> = (0..20)
            .map(|_| {
                let limit = limit.clone();
                tokio::spawn(async move { limit.acquire(Caller::User).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let service = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire(Caller::Service).await })
        };
        let mut finished_before_service = 0;
        while !service.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            finished_before_service = users.iter().filter(|u| u.is_finished()).count();
        }
        assert!(
            finished_before_service <= 2,
            "{finished_before_service} user logins went ahead of the service's"
        );
        for user in users {
            user.await.unwrap();
        }
    }
}
