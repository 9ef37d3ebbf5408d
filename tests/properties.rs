//! Property tests of the public parsing and encoding paths.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use futures_util::task::noop_waker_ref;
use infobip_auth::testing::parse_login_answer;
use infobip_auth::{BaseUrl, Basic, CredentialSource};
use proptest::prelude::*;

fn stamped(source: &impl CredentialSource) -> http::HeaderValue {
    let mut future = pin!(source.credential());
    match future
        .as_mut()
        .poll(&mut Context::from_waker(noop_waker_ref()))
    {
        Poll::Ready(Ok(credential)) => credential.header_value().clone(),
        _ => panic!("a static source is ready at once"),
    }
}

proptest! {
    #[test]
    fn basic_matches_the_standard_encoder(
        user in "[^:\\p{Cc}]{1,80}",
        pass in "[^\\p{Cc}]{1,300}",
    ) {
        let value = stamped(&Basic::new(&user, &pass).unwrap());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        prop_assert_eq!(value.as_bytes(), expected.as_bytes());
        prop_assert!(!value.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'));
        prop_assert!(value.is_sensitive());
    }

    #[test]
    fn base_url_parsing_never_panics(text in ".{0,200}") {
        for base in [BaseUrl::new(&text), BaseUrl::insecure_loopback(&text)].into_iter().flatten() {
            prop_assert_eq!(BaseUrl::insecure_loopback(base.as_str()).unwrap(), base.clone());
            prop_assert!(base.matches(&base.join("/x").unwrap()));
        }
    }

    #[test]
    fn base_url_like_inputs_never_panic(
        scheme in prop::sample::select(vec!["", "http://", "https://", "HTTPS://", "ftp://"]),
        host in "[a-zA-Z0-9.\\-\\[\\]:@]{0,40}",
        tail in "[/?#a-z]{0,10}",
    ) {
        let text = format!("{scheme}{host}{tail}");
        let _ = BaseUrl::new(&text);
        let _ = BaseUrl::insecure_loopback(&text);
    }

    #[test]
    fn login_answers_never_panic_and_only_yield_visible_tokens(
        status in 100u16..600,
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(value) = parse_login_answer(status, &body) {
            let token = &value.as_bytes()["IBSSO ".len()..];
            prop_assert!(!token.is_empty());
            prop_assert!(token.iter().all(|b| (0x21..=0x7e).contains(b)));
            prop_assert!(value.is_sensitive());
        }
    }

    #[test]
    fn json_login_answers_with_any_token(status in prop::sample::select(vec![200u16, 201]), token in ".{0,40}") {
        let body = serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap();
        match parse_login_answer(status, &body) {
            Ok(value) => {
                let expected = format!("IBSSO {token}");
                prop_assert_eq!(value.as_bytes(), expected.as_bytes());
            }
            Err(error) => {
                prop_assert!(token.is_empty() || token.bytes().any(|b| !(0x21..=0x7e).contains(&b)));
                prop_assert_eq!(error.kind(), infobip_auth::ErrorKind::InvalidResponse);
            }
        }
    }
}
