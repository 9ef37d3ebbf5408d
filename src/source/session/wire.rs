//! What every login answer has in common: how a failure status reads, and
//! how a token becomes a header value.

use std::borrow::Cow;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use zeroize::{Zeroize, Zeroizing};

use super::transport::Answer;
use crate::error::{AuthError, ErrorKind};
use crate::secret::{is_visible_ascii, sensitive_header, zeroizing_bytes};

/// A login `POST` to `uri` carrying `body` (which holds secrets: it is
/// zeroized once the request is done), asking for JSON, with no
/// `Authorization` header.
pub(crate) fn login_post(
    uri: &Uri,
    content_type: &'static str,
    body: Zeroizing<Vec<u8>>,
) -> Request<bytes::Bytes> {
    let mut request = Request::new(zeroizing_bytes(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    request
}

/// The error a login answer other than success means.
pub(crate) fn failure(answer: &Answer) -> AuthError {
    let status = answer.status;
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AuthError::new(
            ErrorKind::BadCredentials,
            format!(
                "Infobip rejected the credentials (HTTP {}); check them before trying again",
                status.as_u16()
            ),
        ),
        StatusCode::TOO_MANY_REQUESTS => AuthError::new(
            ErrorKind::Throttled,
            "Infobip throttled the login (HTTP 429)",
        )
        .with_retry_after(retry_after(answer)),
        StatusCode::BAD_REQUEST => AuthError::new(
            ErrorKind::LoginFailed,
            "Infobip refused the login request as malformed (HTTP 400)",
        ),
        _ => AuthError::new(
            ErrorKind::LoginFailed,
            format!("Infobip's login failed with HTTP {}", status.as_u16()),
        ),
    }
}

/// `"<scheme> <token>"` as a sensitive header value; the token must be
/// visible ASCII. An owned (unescaped) copy of the token is wiped.
pub(crate) fn token_header(
    scheme: &str,
    mut token: Cow<'_, str>,
) -> Result<HeaderValue, AuthError> {
    let header = if is_visible_ascii(token.as_bytes()) {
        sensitive_header(scheme, token.as_bytes())
    } else {
        None
    };
    if let Cow::Owned(owned) = &mut token {
        owned.zeroize();
    }
    header.ok_or_else(|| {
        AuthError::new(
            ErrorKind::InvalidResponse,
            "login response token is empty or has characters a header cannot carry",
        )
    })
}

/// `Retry-After` in seconds; HTTP dates are not honoured (the backoff applies).
fn retry_after(answer: &Answer) -> Option<Duration> {
    let value = answer.headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
