//! The bytes of Infobip's OAuth 2.0 client-credentials endpoint.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::client::wire as session_wire;
use crate::client::Answer;
use crate::error::{AuthError, ErrorKind};
use crate::source::session::Grant;

/// Where access tokens are issued.
pub(super) const TOKEN_PATH: &str = "/auth/1/oauth2/token";

#[derive(Deserialize)]
struct TokenAnswer<'a> {
    #[serde(borrow)]
    access_token: Cow<'a, str>,
    /// Whatever the server wrote: read by [`lifetime`], never trusted.
    expires_in: Option<serde_json::Value>,
}

/// `expires_in` as a lifetime: a number of seconds (or a string holding
/// one), fractions kept, negative as 0, at most `MAX_LIFETIME`; `None` when
/// it is no number at all (the token is then renewed on its first 401).
fn lifetime(expires_in: &serde_json::Value) -> Option<Duration> {
    let seconds = match expires_in {
        serde_json::Value::String(text) => text.trim().parse::<f64>().ok()?,
        other => other.as_f64()?,
    };
    let longest = crate::source::session::MAX_LIFETIME.as_secs_f64();
    // `is_finite` first: NaN or infinity would make `from_secs_f64` panic.
    seconds
        .is_finite()
        .then(|| Duration::from_secs_f64(seconds.clamp(0.0, longest)))
}

/// `POST /auth/1/oauth2/token`, form-encoded, credentials in the body (never
/// the URL), no `Authorization` header. The body is zeroized when done.
pub(super) fn token_request(uri: &Uri, client_id: &str, client_secret: &str) -> Request<Bytes> {
    // Percent-encoding at most triples a byte: the buffer never reallocates
    // and so never leaves a copy of the secret behind.
    let capacity = 64 + 3 * (client_id.len() + client_secret.len());
    let mut body = Zeroizing::new(String::with_capacity(capacity));
    form_urlencoded::Serializer::new(&mut *body)
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .append_pair("grant_type", "client_credentials")
        .finish();
    let bytes = Zeroizing::new(std::mem::take(&mut *body).into_bytes());
    session_wire::login_post(uri, "application/x-www-form-urlencoded", bytes)
}

/// The `Bearer <token>` grant in a token answer, or the error it means.
/// The answer's body is wiped once read.
pub(crate) fn token_grant(answer: &mut Answer) -> Result<Grant, AuthError> {
    let result = read_grant(answer);
    answer.wipe();
    result
}

fn read_grant(answer: &Answer) -> Result<Grant, AuthError> {
    if answer.status != StatusCode::OK {
        return Err(session_wire::failure(answer));
    }
    let parsed: TokenAnswer<'_> = serde_json::from_slice(&answer.body).map_err(|_| {
        AuthError::new(
            ErrorKind::InvalidResponse,
            "token response is not JSON with an \"access_token\" string",
        )
    })?;
    let expires_in = parsed.expires_in.as_ref().and_then(lifetime);
    Ok(Grant {
        value: session_wire::token_header("Bearer", parsed.access_token)?,
        expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_TYPE;
    use http::HeaderMap;

    use crate::client::test_answer as answer;

    #[test]
    fn request_is_form_encoded_with_credentials_in_the_body() {
        let uri: Uri = "https://api.infobip.com/auth/1/oauth2/token"
            .parse()
            .unwrap();
        let request = token_request(&uri, "my id", "s&cr=t");
        assert_eq!(request.uri(), &uri);
        assert!(request.uri().query().is_none());
        assert!(request.headers().get("authorization").is_none());
        assert_eq!(
            request.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            &request.body()[..],
            b"client_id=my+id&client_secret=s%26cr%3Dt&grant_type=client_credentials"
        );
    }

    #[test]
    fn grant_carries_bearer_and_lifetime() {
        let mut answer = answer(
            200,
            br#"{"access_token":"abc.def","expires_in":7200,"token_type":"Bearer"}"#,
        );
        let grant = token_grant(&mut answer).unwrap();
        assert_eq!(grant.value, "Bearer abc.def");
        assert!(grant.value.is_sensitive());
        assert_eq!(grant.expires_in, Some(Duration::from_secs(7200)));
        // The answer held the token: wiped once read.
        assert!(answer.body.iter().all(|&b| b == 0));
    }

    #[test]
    fn expires_in_of_any_shape_is_read_and_clamped() {
        let year = crate::source::session::MAX_LIFETIME;
        for (raw, expected) in [
            ("3599.5", Some(Duration::from_millis(3_599_500))),
            ("\"7200\"", Some(Duration::from_secs(7200))),
            ("-5", Some(Duration::ZERO)),
            ("18446744073709551615", Some(year)),
            ("1e300", Some(year)),
            ("\"NaN\"", None),
            ("null", None),
        ] {
            let body = format!(r#"{{"access_token":"abc","expires_in":{raw}}}"#);
            let mut answer = Answer::new(StatusCode::OK, HeaderMap::new(), body.as_bytes());
            let grant = token_grant(&mut answer).unwrap();
            assert_eq!(grant.expires_in, expected, "{raw}");
        }
    }

    #[test]
    fn malformed_and_failed_answers_are_typed() {
        for body in [&b"{}"[..], b"nope", br#"{"access_token":"a b"}"#] {
            let error = token_grant(&mut Answer::new(StatusCode::OK, HeaderMap::new(), body))
                .err()
                .unwrap();
            assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        }
        assert!(
            token_grant(&mut answer(401, b"")).err().unwrap().kind() == ErrorKind::BadCredentials
        );
    }
}
