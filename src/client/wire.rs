//! What every login answer has in common: how a failure status reads, and
//! how a token becomes a header value.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use zeroize::{Zeroize, Zeroizing};

use super::Answer;
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

/// The error a login answer other than success means, with Infobip's own
/// code and text when its body has them.
pub(crate) fn failure(answer: &Answer) -> AuthError {
    let status = answer.status;
    let said = infobip_error(&answer.body)
        .map(|said| format!(", {said}"))
        .unwrap_or_default();
    let code = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AuthError::new(
            ErrorKind::BadCredentials,
            format!(
                "Infobip rejected the credentials (HTTP {code}{said}); check them before trying again"
            ),
        ),
        StatusCode::TOO_MANY_REQUESTS => AuthError::new(
            ErrorKind::Throttled,
            format!("Infobip throttled the login (HTTP 429{said})"),
        )
        .with_retry_after(retry_after(answer)),
        StatusCode::BAD_REQUEST => AuthError::new(
            ErrorKind::LoginFailed,
            format!("Infobip refused the login request as malformed (HTTP 400{said})"),
        ),
        _ => AuthError::new(
            ErrorKind::LoginFailed,
            format!("Infobip's login failed (HTTP {code}{said})"),
        ),
    }
}

/// The longest code or text taken from an error body.
const MAX_ERROR_TEXT: usize = 200;

/// `CODE: text` from either of Infobip's error bodies:
/// `{"requestError":{"serviceException":{"messageId","text"}}}` (older
/// endpoints; `policyException` too) or `{"errorCode","description",...}`.
pub(crate) fn infobip_error(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let legacy = ["serviceException", "policyException"]
        .iter()
        .find_map(|kind| json.get("requestError")?.get(kind));
    let (code, text) = match legacy {
        Some(exception) => (exception.get("messageId"), exception.get("text")),
        None => (json.get("errorCode"), json.get("description")),
    };
    let clean = |field: Option<&serde_json::Value>| {
        let text: String = field?
            .as_str()?
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ERROR_TEXT)
            .collect();
        (!text.trim().is_empty()).then_some(text)
    };
    match (clean(code), clean(text)) {
        (Some(code), Some(text)) => Some(format!("{code}: {text}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
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

/// The longest `Retry-After` honoured: a server asking for more is taken
/// to mean an hour, so that no answer can lock a source out for longer.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// `Retry-After`: seconds, or an HTTP date (the time left until it; none
/// if it has passed); at most [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(answer: &Answer) -> Option<Duration> {
    let value = answer.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        // More seconds than a u64 holds: the longest wait.
        Err(_) if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() => MAX_RETRY_AFTER,
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}
