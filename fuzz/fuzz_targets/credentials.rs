//! Credential constructors: never panic; what they accept is a valid,
//! sensitive header value with the scheme and exactly one space.
#![no_main]

use infobip_auth::{ApiKey, Basic, Credential, CredentialSource};
use libfuzzer_sys::fuzz_target;

fn stamped(source: &impl CredentialSource) -> http::HeaderValue {
    let future = source.credential();
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    match future.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(Ok(credential)) => credential.header_value().clone(),
        other => panic!("a static source is ready at once: {:?}", other.is_ready()),
    }
}

use std::future::Future as _;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = ApiKey::new(&*text) {
        let value = stamped(&key);
        assert!(value.is_sensitive());
        assert_eq!(value.as_bytes(), format!("App {text}").as_bytes());
    }
    let (user, pass) = text.split_once('\u{1}').unwrap_or((&text, "p"));
    if let Ok(basic) = Basic::new(user, pass) {
        let value = stamped(&basic);
        assert!(value.is_sensitive());
        assert!(value.as_bytes().starts_with(b"Basic "));
        assert!(!value.as_bytes().contains(&b'\n'));
    }
    let _ = Credential::new("App", &text);
});
