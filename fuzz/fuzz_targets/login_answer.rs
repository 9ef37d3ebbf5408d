//! Login answers from arbitrary bytes: never panic; a token is only ever
//! accepted as visible ASCII, and the stamped value is sensitive.
#![no_main]

use infobip_auth::testing::parse_login_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((&first, rest)) => (if first % 2 == 0 { 200 } else { 100 + u16::from(first) * 2 }, rest),
        None => (200, data),
    };
    if let Ok(value) = parse_login_answer(status, body) {
        assert!(value.is_sensitive());
        let bytes = value.as_bytes();
        assert!(bytes.starts_with(b"IBSSO "));
        assert!(bytes["IBSSO ".len()..].iter().all(|b| (0x21..=0x7e).contains(b)));
    }
});
