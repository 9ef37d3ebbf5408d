//! The bytes of Infobip's session endpoints: the login request, and what
//! each login answer means.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{AuthError, ErrorKind};
use crate::source::session::transport::Answer;
use crate::source::session::wire as session_wire;

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
pub(crate) fn login_result(answer: &Answer) -> Result<HeaderValue, AuthError> {
    if !matches!(answer.status, StatusCode::OK | StatusCode::CREATED) {
        return Err(session_wire::failure(answer));
    }
    let answer: LoginAnswer<'_> = serde_json::from_slice(&answer.body).map_err(|_| {
        AuthError::new(
            ErrorKind::InvalidResponse,
            "login response is not JSON with a \"token\" string",
        )
    })?;
    session_wire::token_header("IBSSO", answer.token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_TYPE, RETRY_AFTER};
    use http::HeaderMap;
    use http::Method;
    use std::time::Duration;

    use crate::source::session::transport::test_answer as answer;

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
        let header = login_result(&answer(200, br#"{"token":"d3c49f59-734a"}"#)).unwrap();
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
            let error = login_result(&Answer {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Bytes::copy_from_slice(body),
            })
            .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{body:?}");
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert!(login_result(&answer(401, b""))
            .unwrap_err()
            .is_bad_credentials());
        assert!(login_result(&answer(403, b""))
            .unwrap_err()
            .is_bad_credentials());
        assert_eq!(
            login_result(&answer(500, b"")).unwrap_err().kind(),
            ErrorKind::LoginFailed
        );
        let mut throttled = answer(429, b"");
        throttled
            .headers
            .insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let error = login_result(&throttled).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Throttled);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    }
}
