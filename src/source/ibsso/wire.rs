//! The bytes of Infobip's session endpoints: the login request, and what
//! each login answer means.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::client::wire as session_wire;
use crate::client::Answer;
use crate::error::{AuthError, ErrorKind};

/// Where sessions are created and destroyed.
pub(super) const SESSION_PATH: &str = "/auth/1/session";

#[derive(Serialize)]
struct LoginBody<'a> {
    username: &'a str,
    password: &'a str,
    #[serde(rename = "unsafe")]
    not_ip_bound: bool,
}

#[derive(Deserialize)]
struct LoginAnswer<'a> {
    #[serde(borrow)]
    token: Cow<'a, str>,
}

/// `POST /auth/1/session` with the JSON body, no `Authorization` header.
/// The body lives in a buffer that is zeroized when the request is done.
pub(super) fn login_request(
    uri: &Uri,
    username: &str,
    password: &str,
    not_ip_bound: bool,
) -> Result<Request<Bytes>, AuthError> {
    let body = LoginBody {
        username,
        password,
        not_ip_bound,
    };
    // Room for the worst-case escaping, so the buffer never reallocates and
    // leaves a copy of the password behind.
    let capacity = 64 + 6 * (username.len() + password.len());
    let mut json = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *json, &body).map_err(|e| {
        AuthError::new(
            ErrorKind::InvalidCredential,
            "could not encode the login request",
        )
        .with_source(e)
    })?;
    Ok(session_wire::login_post(uri, "application/json", json))
}

/// The `IBSSO <token>` header from a login answer, or the error it means.
/// The answer's body is wiped once read.
pub(crate) fn login_result(answer: &mut Answer) -> Result<HeaderValue, AuthError> {
    let result = read_login(answer);
    answer.wipe();
    result
}

fn read_login(answer: &Answer) -> Result<HeaderValue, AuthError> {
    if !matches!(answer.status, StatusCode::OK | StatusCode::CREATED) {
        return Err(session_wire::failure(answer));
    }
    let parsed: LoginAnswer<'_> = serde_json::from_slice(&answer.body).map_err(|_| {
        AuthError::new(
            ErrorKind::InvalidResponse,
            "login response is not JSON with a \"token\" string",
        )
    })?;
    session_wire::token_header("IBSSO", parsed.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_TYPE, RETRY_AFTER};
    use http::HeaderMap;
    use http::Method;
    use std::time::Duration;

    use crate::client::test_answer as answer;

    #[test]
    fn login_body_is_json_with_escaping() {
        let uri: Uri = "https://api.infobip.com/auth/1/session".parse().unwrap();
        let request = login_request(&uri, "us\"er", "pa\\ss", true).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert!(request.headers().get("authorization").is_none());
        let value: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"username": "us\"er", "password": "pa\\ss", "unsafe": true})
        );
    }

    #[test]
    fn token_becomes_sensitive_ibsso_header() {
        let header = login_result(&mut answer(200, br#"{"token":"d3c49f59-734a"}"#)).unwrap();
        assert_eq!(header, "IBSSO d3c49f59-734a");
        assert!(header.is_sensitive());
    }

    #[test]
    fn malformed_answers_are_typed_errors() {
        for body in [
            &b"not json"[..],
            br#"{}"#,
            br#"{"token": 5}"#,
            br#"{"token": ""}"#,
            br#"{"token": "a\r\nb"}"#,
            br#"{"token": "a b"}"#,
            br#"{"token": "\u00e9"}"#,
        ] {
            let error =
                login_result(&mut Answer::new(StatusCode::OK, HeaderMap::new(), body)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{body:?}");
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert!(
            login_result(&mut answer(401, b"")).unwrap_err().kind() == ErrorKind::BadCredentials
        );
        assert!(
            login_result(&mut answer(403, b"")).unwrap_err().kind() == ErrorKind::BadCredentials
        );
        assert_eq!(
            login_result(&mut answer(500, b"")).unwrap_err().kind(),
            ErrorKind::LoginFailed
        );
        let mut throttled = answer(429, b"");
        throttled
            .headers
            .insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let error = login_result(&mut throttled).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Throttled);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_as_an_http_date_is_honoured() {
        let mut throttled = answer(429, b"");
        // Bounded: a constant half minute.
        let at = std::time::SystemTime::now() + Duration::from_secs(30);
        let date = httpdate::fmt_http_date(at);
        throttled
            .headers
            .insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = login_result(&mut throttled)
            .unwrap_err()
            .retry_after()
            .unwrap();
        // The date has whole seconds: 29 to 30 seconds from now.
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );

        let mut past = answer(429, b"");
        past.headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let wait = login_result(&mut past).unwrap_err().retry_after();
        assert_eq!(
            wait,
            Some(Duration::ZERO),
            "a date that has passed: no wait"
        );
    }

    #[test]
    fn infobip_error_bodies_reach_the_message() {
        let legacy = br#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#;
        let error = login_result(&mut answer(401, legacy)).unwrap_err();
        assert!(error.kind() == ErrorKind::BadCredentials);
        assert!(
            error
                .to_string()
                .contains("UNAUTHORIZED: Invalid login details"),
            "{error}"
        );

        let newer = br#"{"errorCode":"E429","description":"Too many requests","action":"Wait","violations":[],"resources":[]}"#;
        let error = login_result(&mut answer(429, newer)).unwrap_err();
        assert!(error.kind() == ErrorKind::Throttled);
        assert!(
            error.to_string().contains("E429: Too many requests"),
            "{error}"
        );

        let policy = br#"{"requestError":{"policyException":{"messageId":"FORBIDDEN","text":"Not allowed"}}}"#;
        let error = login_result(&mut answer(403, policy)).unwrap_err();
        assert!(
            error.to_string().contains("FORBIDDEN: Not allowed"),
            "{error}"
        );

        // Control characters are dropped; a body that is not Infobip's
        // shape adds nothing.
        let odd = br#"{"errorCode":"E500","description":"line\nbreak"}"#;
        let error = login_result(&mut answer(500, odd)).unwrap_err();
        assert!(error.to_string().contains("E500: linebreak"), "{error}");
        let error = login_result(&mut answer(500, b"<html>oops</html>")).unwrap_err();
        assert_eq!(error.to_string(), "Infobip's login failed (HTTP 500)");
    }

    #[test]
    fn login_answers_are_wiped_once_read() {
        for (status, body) in [
            (200, &br#"{"token":"d3c49f59-734a"}"#[..]),
            (401, br#"{"errorCode":"E401","description":"no"}"#),
            (200, b"not json"),
        ] {
            let mut answer = answer(status, body);
            let _ = login_result(&mut answer);
            assert_eq!(answer.body.len(), body.len());
            assert!(answer.body.iter().all(|&b| b == 0), "{status}: {body:?}");
        }
    }
}
