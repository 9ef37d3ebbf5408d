//! [`ApiKeys`]: the typed client for `/settings/2/api-keys`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::Serialize;

use super::model::{ApiKeyInfo, ApiKeyUpdate, CreatedApiKey, CreatedId, CreatedWire, NewApiKey};
use crate::base_url::BaseUrl;
use crate::client::wire::infobip_error;
use crate::client::{Answer, HttpClient, ServiceTransport, Transport};
use crate::error::{AuthError, ErrorKind};

/// Where keys are managed.
const KEYS_PATH: &str = "/settings/2/api-keys";
/// How long one management request may take.
pub(crate) const DEFAULT_KEYS_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest management response read (a list of many keys).
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// A typed client for `/settings/2/api-keys` over an authenticated service.
/// Clones share the service.
///
/// # Errors
///
/// Every method fails with
/// - [`KeyLimitReached`](ErrorKind::KeyLimitReached): the account's daily
///   limit on creating and updating keys (40) is reached; try tomorrow;
/// - [`Forbidden`](ErrorKind::Forbidden): HTTP 403, the credential may not
///   manage keys (an API key never may) or lacks the permission;
/// - [`BadCredentials`](ErrorKind::BadCredentials): HTTP 401;
/// - [`NotFound`](ErrorKind::NotFound): HTTP 404, no such key;
/// - [`Rejected`](ErrorKind::Rejected): another error status (400 for a
///   request Infobip refuses, 5xx);
/// - [`InvalidConfig`](ErrorKind::InvalidConfig): a key id that cannot be
///   a path segment (`.` and `..` among them); nothing is sent;
/// - [`Timeout`](ErrorKind::Timeout), [`Transport`](ErrorKind::Transport),
///   [`InvalidResponse`](ErrorKind::InvalidResponse) as for a login.
///
/// Infobip's own code and text, when its body has them, are in the message.
/// A key's secret is never in an error.
#[derive(Clone)]
pub struct ApiKeys {
    base_url: BaseUrl,
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl ApiKeys {
    /// Manages the keys of the account at `base_url` through `service`: a
    /// tower service that authenticates with Basic, a session or a token
    /// (an `AuthLayer` stack), taking `http::Request<RB>`.
    pub fn new<T, RB>(base_url: BaseUrl, service: T) -> Self
    where
        T: HttpClient<RB>,
        RB: From<Bytes> + Send + 'static,
    {
        Self {
            base_url,
            transport: Arc::new(ServiceTransport::<T, RB>::new(service)),
            timeout: DEFAULT_KEYS_TIMEOUT,
        }
    }

    /// How long one request may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Creates a key (`POST /settings/2/api-keys`).
    ///
    /// # Errors
    ///
    /// See [`Errors`](ApiKeys#errors). If Infobip's answer cannot be read
    /// after the key was made, its secret is lost: the key is disabled, and
    /// the error ([`InvalidResponse`](ErrorKind::InvalidResponse)) names it
    /// and says whether disabling it worked.
    pub async fn create(&self, key: &NewApiKey) -> Result<CreatedApiKey, AuthError> {
        let mut answer = self
            .send(Method::POST, KEYS_PATH.to_owned(), json(key)?)
            .await?;
        let parsed = serde_json::from_slice::<CreatedWire>(&answer.body);
        let wire = match parsed {
            Ok(wire) => wire,
            Err(error) => {
                // The key exists, but its secret is lost with this answer.
                let id = serde_json::from_slice::<CreatedId>(&answer.body);
                answer.wipe();
                let error = invalid("create", &error);
                return Err(match id {
                    Ok(CreatedId { id }) => self.abandon(&id, error).await,
                    Err(_) => error,
                });
            }
        };
        answer.wipe();
        let created = CreatedApiKey::from(wire);
        let info = &created.info;
        tracing::info!(key = %info.id, name = %info.name, "created an API key");
        Ok(created)
    }

    /// The error for key `id`, created but of no use (its secret unread or
    /// invalid): `error`, naming the key and whether it was disabled.
    pub(crate) async fn abandon(&self, id: &str, error: AuthError) -> AuthError {
        if key_path(id).is_err() {
            return AuthError::new(
                error.kind(),
                format!(
                    "an API key was created under an id that cannot be a path segment, and \
                     cannot be used: disable it in the Infobip portal: {error}"
                ),
            );
        }
        let outcome = match self.disable(id).await {
            Ok(_) => "it was disabled".to_owned(),
            Err(disabling) => format!("disabling it failed ({disabling}): disable it yourself"),
        };
        tracing::error!(key = %id, %error, %outcome, "created an API key that cannot be used");
        AuthError::new(
            error.kind(),
            format!("API key {id} was created but cannot be used, and {outcome}: {error}"),
        )
    }

    /// Every key of the account (`GET /settings/2/api-keys`).
    ///
    /// # Errors
    ///
    /// See [`Errors`](ApiKeys#errors).
    pub async fn list(&self) -> Result<Vec<ApiKeyInfo>, AuthError> {
        let answer = self.send(Method::GET, KEYS_PATH.to_owned(), None).await?;
        // A bare array, or an object holding one.
        let value: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| invalid("list", &e))?;
        let list = match value {
            serde_json::Value::Array(_) => value,
            serde_json::Value::Object(fields) => fields
                .into_iter()
                .map(|(_, v)| v)
                .find(serde_json::Value::is_array)
                .unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        serde_json::from_value(list).map_err(|e| invalid("list", &e))
    }

    /// One key (`GET /settings/2/api-keys/{id}`).
    ///
    /// # Errors
    ///
    /// See [`Errors`](ApiKeys#errors).
    pub async fn get(&self, id: &str) -> Result<ApiKeyInfo, AuthError> {
        let answer = self.send(Method::GET, key_path(id)?, None).await?;
        serde_json::from_slice(&answer.body).map_err(|e| invalid("get", &e))
    }

    /// Changes a key (`PUT /settings/2/api-keys/{id}`); returns it as it is
    /// now.
    ///
    /// # Errors
    ///
    /// See [`Errors`](ApiKeys#errors).
    pub async fn update(&self, id: &str, update: &ApiKeyUpdate) -> Result<ApiKeyInfo, AuthError> {
        let answer = self.send(Method::PUT, key_path(id)?, json(update)?).await?;
        let info = serde_json::from_slice(&answer.body).map_err(|e| invalid("update", &e))?;
        tracing::info!(key = %id, "updated an API key");
        Ok(info)
    }

    /// Disables a key: Infobip has no DELETE, a disabled key is answered
    /// 401 from then on.
    ///
    /// # Errors
    ///
    /// See [`Errors`](ApiKeys#errors).
    pub async fn disable(&self, id: &str) -> Result<ApiKeyInfo, AuthError> {
        self.update(id, &ApiKeyUpdate::new().enabled(false)).await
    }

    async fn send(
        &self,
        method: Method,
        path: String,
        body: Option<Bytes>,
    ) -> Result<Answer, AuthError> {
        let has_body = body.is_some();
        let mut request = Request::new(body.unwrap_or_default());
        *request.method_mut() = method;
        *request.uri_mut() = self.base_url.join(&path)?;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let send = self.transport.send(request, MAX_ANSWER);
        let answer = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| {
                AuthError::new(
                    ErrorKind::Timeout,
                    format!(
                        "key management request did not finish within {} ms",
                        self.timeout.as_millis()
                    ),
                )
            })??;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(failure(&answer))
        }
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn json<T: Serialize>(value: &T) -> Result<Option<Bytes>, AuthError> {
    serde_json::to_vec(value)
        .map(|body| Some(Bytes::from(body)))
        .map_err(|e| {
            AuthError::new(
                ErrorKind::Request,
                format!("could not write the request: {e}"),
            )
        })
}

fn key_path(id: &str) -> Result<String, AuthError> {
    // Dots alone are a path's `.` and `..`: a normalising proxy would send
    // the request to another resource.
    let valid = id.len() <= 200
        && id.bytes().any(|b| b != b'.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if !valid {
        return Err(AuthError::new(
            ErrorKind::InvalidConfig,
            "an API key id must be letters, digits, '-', '_', '.' or '~', and not dots alone",
        ));
    }
    Ok(format!("{KEYS_PATH}/{id}"))
}

/// Where the answer went wrong, never what it held: serde's own messages
/// quote the values they reject, and a create answer holds a secret.
fn invalid(what: &str, error: &serde_json::Error) -> AuthError {
    AuthError::new(
        ErrorKind::InvalidResponse,
        format!(
            "Infobip's answer to the key {what} request was not as expected ({:?} error at line {}, column {})",
            error.classify(),
            error.line(),
            error.column()
        ),
    )
}

/// The error an answer other than 2xx means.
fn failure(answer: &Answer) -> AuthError {
    let said = infobip_error(&answer.body)
        .map(|said| format!(", {said}"))
        .unwrap_or_default();
    let code = answer.status.as_u16();
    let (kind, what) = match answer.status {
        StatusCode::TOO_MANY_REQUESTS => (
            ErrorKind::KeyLimitReached,
            "the daily limit on creating and updating API keys is reached",
        ),
        StatusCode::FORBIDDEN => (
            ErrorKind::Forbidden,
            "this credential may not manage API keys (an API key never may)",
        ),
        StatusCode::UNAUTHORIZED => (
            ErrorKind::BadCredentials,
            "Infobip rejected the credentials",
        ),
        StatusCode::NOT_FOUND => (ErrorKind::NotFound, "no such API key"),
        _ => (
            ErrorKind::Rejected,
            "Infobip refused the key management request",
        ),
    };
    let error = AuthError::new(kind, format!("{what} (HTTP {code}{said})"));
    match answer.status {
        StatusCode::TOO_MANY_REQUESTS => {
            error.with_retry_after(crate::client::wire::retry_after(answer))
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_create_answer_never_quotes_the_secret() {
        for body in [
            &br#"{"id":"key-1","apiKeySecret":4711471147114711}"#[..],
            br#"{"id":"key-1","enabled":"4711471147114711"}"#,
            br#"{"id":["4711471147114711"]}"#,
        ] {
            let error = serde_json::from_slice::<CreatedWire>(body).err().unwrap();
            let message = invalid("create", &error).to_string();
            assert!(!message.contains("4711"), "{message}");
            assert!(message.contains("line 1"), "{message}");
        }
    }
}
