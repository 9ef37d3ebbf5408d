//! The public surface a user reaches for: defaults in one place.

use std::time::Duration;

use infobip_auth::{
    DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_IDLE_TIMEOUT, DEFAULT_LOGIN_RATE,
    DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REFRESH_BEFORE,
    DEFAULT_REPLAY_LIMIT,
};

/// Every default the crate applies is reachable from the crate root, with
/// the value the documentation gives.
#[test]
fn every_default_is_at_the_crate_root() {
    assert_eq!(DEFAULT_REPLAY_LIMIT, 64 * 1024);
    assert_eq!(DEFAULT_IDLE_TIMEOUT, Duration::from_secs(55 * 60));
    assert_eq!(DEFAULT_REFRESH_BEFORE, Duration::from_secs(60));
    assert_eq!(DEFAULT_LOGIN_TIMEOUT, Duration::from_secs(10));
    assert_eq!(DEFAULT_BACKOFF_INITIAL, Duration::from_secs(1));
    assert_eq!(DEFAULT_BACKOFF_MAX, Duration::from_secs(60));
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 16 * 1024);
    assert_eq!(DEFAULT_LOGIN_RATE, 8);
}
