//! proptest strategies for values from outside the process at their
//! extremes, shared by the property tests of the parsers, the engine and
//! the sealer.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

/// The last second of the year 9999, as Unix seconds.
pub(crate) const YEAR_9999: u64 = 253_402_300_799;

/// `Retry-After` texts: seconds up to `u64::MAX` and beyond, negative,
/// fractional, HTTP dates past and future, and any visible text.
pub(crate) fn retry_after() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("0".to_owned()),
        Just("99999999999999999999999".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (0..=YEAR_9999).prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s))),
        "[ -~]{0,40}",
    ]
}

/// Lifetimes as a grant or a record may carry them.
pub(crate) fn lifetime() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        Just(None),
        Just(Some(Duration::MAX)),
        Just(Some(Duration::ZERO)),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Some(Duration::new(s, n))),
    ]
}
