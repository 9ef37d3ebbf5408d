//! Property tests: values from outside the process at their extremes
//! (`u64::MAX`, 0, negative, fractions, far-future dates, text) never
//! panic a parser, and every result is typed or clamped. The engine's and
//! the sealer's own property tests are beside them, on the same strategies.

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;

use crate::client::wire::{self, MAX_RETRY_AFTER};
use crate::client::Answer;
use crate::error::ErrorKind;
use crate::source::oauth2::wire::token_grant;
use crate::source::session::MAX_LIFETIME;
use crate::strategies::retry_after;

/// `expires_in` as JSON: integers of both signs, floats, numbers beyond
/// `f64`, strings of numbers (`NaN` and `inf` among them), and others.
fn expires_in_json() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("1e400".to_owned()),
        Just("-0.0".to_owned()),
        prop::sample::select(vec![
            "\"NaN\"", "\"inf\"", "\"-5\"", "\"3600\"", "null", "{}", "[]"
        ])
        .prop_map(str::to_owned),
        "[a-z0-9.+-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn throttled(value: &str) -> Answer {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(RETRY_AFTER, value);
    }
    Answer::new(StatusCode::TOO_MANY_REQUESTS, headers, b"")
}

proptest! {
    #[test]
    fn retry_after_is_at_most_an_hour_and_a_throttled_login_carries_it(value in retry_after()) {
        let answer = throttled(&value);
        let wait = wire::retry_after(&answer);
        prop_assert!(wait.is_none_or(|w| w <= MAX_RETRY_AFTER), "{:?}", wait);
        let digits = value.trim();
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            prop_assert!(wait.is_some(), "seconds are always honoured");
        }
        let error = wire::failure(&answer);
        prop_assert_eq!(error.kind(), ErrorKind::Throttled);
        prop_assert_eq!(error.retry_after(), wait);
    }

    #[test]
    fn token_lifetimes_are_clamped_or_the_answer_is_invalid(raw in expires_in_json()) {
        let body = format!(r#"{{"access_token":"abc","expires_in":{raw}}}"#);
        let mut answer = Answer::new(StatusCode::OK, HeaderMap::new(), body.as_bytes());
        match token_grant(&mut answer) {
            Ok(grant) => prop_assert!(grant.expires_in.is_none_or(|e| e <= MAX_LIFETIME)),
            Err(error) => prop_assert_eq!(error.kind(), ErrorKind::InvalidResponse),
        }
    }

    #[test]
    fn login_answers_with_any_headers_and_body_are_typed(
        status in 100u16..600,
        value in retry_after(),
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut answer = throttled(&value);
        answer.status = StatusCode::from_u16(status).unwrap();
        answer.body.extend_from_slice(&body);
        let error = wire::failure(&answer);
        prop_assert!(error.retry_after().is_none_or(|w| w <= MAX_RETRY_AFTER));
        let _ = token_grant(&mut answer);
    }
}

#[cfg(any(feature = "api-keys", feature = "test-util"))]
mod timestamps {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use proptest::prelude::*;

    use crate::strategies::YEAR_9999;
    use crate::timestamp::{format, parse};

    proptest! {
        #[test]
        fn any_instant_formats_and_reads_back_to_the_millisecond(
            seconds in prop_oneof![0..=YEAR_9999, any::<u64>()],
            nanos in 0u32..1_000_000_000,
        ) {
            let Some(at) = UNIX_EPOCH.checked_add(Duration::new(seconds, nanos)) else {
                return Ok(());
            };
            let text = format(at);
            if seconds <= YEAR_9999 {
                let millis = Duration::new(seconds, nanos / 1_000_000 * 1_000_000);
                prop_assert_eq!(parse(&text), Some(UNIX_EPOCH + millis), "{}", text);
            }
        }

        #[test]
        fn any_text_parses_to_an_instant_or_nothing(text in "[0-9T:.+\\-Zz ]{0,40}|.{0,40}") {
            let _: Option<SystemTime> = parse(&text);
        }

        #[test]
        fn timestamp_like_text_never_panics(
            year in 0u32..10_000, month in 0u32..14, day in 0u32..33,
            hour in 0u32..25, minute in 0u32..61, second in 0u32..62,
            tail in prop::sample::select(vec!["", "Z", "+0000", "-2359", "+99:99", ".", ".123456789012", "+"]),
        ) {
            let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{tail}");
            let _ = parse(&text);
        }
    }
}
