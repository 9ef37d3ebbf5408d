//! The login rate: every source of the process that logs in to one base URL
//! (sessions, tokens, users' sessions) shares one limit, so that a cold
//! start with many accounts queues its logins instead of drawing 429s from
//! Infobip, which throttles its login and token endpoints at about 10 a
//! second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::base_url::BaseUrl;

/// Logins per second to one base URL, for the whole process.
pub const DEFAULT_LOGIN_RATE: u32 = 10;

/// Spaces the logins to one base URL evenly: each takes the next free slot.
pub(crate) struct LoginLimit {
    /// The next free slot. Real time (`std`), not tokio's clock: it is shared
    /// by every runtime of the process, and tokio's can be paused.
    next: Mutex<Instant>,
    /// Nanoseconds between two logins.
    interval: AtomicU64,
}

fn interval(per_second: u32) -> u64 {
    1_000_000_000 / u64::from(per_second.max(1))
}

impl LoginLimit {
    /// The limit for `base_url`, shared by every source of the process.
    /// `per_second`, when given, sets its rate (the last source to set one
    /// wins); otherwise a new limit takes [`DEFAULT_LOGIN_RATE`].
    pub(crate) fn for_base_url(base_url: &BaseUrl, per_second: Option<u32>) -> Arc<Self> {
        static LIMITS: OnceLock<Mutex<HashMap<String, Arc<LoginLimit>>>> = OnceLock::new();
        let mut limits = LIMITS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let limit = limits.entry(base_url.to_string()).or_insert_with(|| {
            Arc::new(Self {
                next: Mutex::new(Instant::now()),
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

    /// Waits for this login's slot.
    pub(crate) async fn acquire(&self) {
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + Duration::from_nanos(self.interval.load(Ordering::Relaxed));
            slot - now
        };
        // Tokio's timers count whole milliseconds: a shorter wait is not one.
        if wait >= Duration::from_millis(1) {
            tracing::trace!(
                wait_ms = wait.as_millis() as u64,
                "login queued by the login rate"
            );
            tokio::time::sleep(wait).await;
        }
    }
}
