//! API key management (`/settings/2/api-keys`) and automated rotation.
//!
//! Infobip manages API keys only for a request authenticated some other way
//! (Basic, an IBSSO session or an OAuth2 token), never with a key. So
//! [`ApiKeys`] sends through a service you give it, typically the crate's
//! own stack with [`Basic`](crate::Basic), [`Ibsso`](crate::Ibsso) or
//! [`OAuth2`](crate::OAuth2).
//!
//! [`KeyRotator`] creates a new key, switches a [`Rotating`](crate::Rotating)
//! source to it (every clone of the stack, no rebuild), and disables the old
//! key after a grace period.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), infobip_auth::AuthError> {
//! use std::time::Duration;
//! use infobip_auth::keys::{ApiKeys, NewApiKey};
//! use infobip_auth::{AuthLayer, BaseUrl, Basic};
//! use tower::Layer;
//! # let client = hyper_util::client::legacy::Client::builder(
//! #     hyper_util::rt::TokioExecutor::new(),
//! # ).build::<_, http_body_util::Full<bytes::Bytes>>(
//! #     hyper_util::client::legacy::connect::HttpConnector::new(),
//! # );
//!
//! let base = BaseUrl::new("xyz.api.infobip.com")?;
//! let admin = AuthLayer::new(base.clone(), Basic::new("username", "password")?).layer(client);
//! let keys = ApiKeys::new(base, admin);
//! let created = keys
//!     .create(&NewApiKey::new("sms-service").valid_for(Duration::from_secs(90 * 86_400)))
//!     .await?;
//! println!("created {}", created.info.id); // the secret never prints
//! for key in keys.list().await? {
//!     println!("{} {} enabled={}", key.id, key.name, key.enabled);
//! }
//! # Ok(())
//! # }
//! ```

mod rotate;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::{Deserialize, Serialize};

use crate::base_url::BaseUrl;
use crate::client::wire::infobip_error;
use crate::client::{Answer, HttpClient, ServiceTransport, Transport};
use crate::error::{AuthError, ErrorKind};
use crate::secret::SecretString;
use crate::source::ApiKey;

pub use rotate::{KeyRotator, Rotation};

/// Where keys are managed.
const KEYS_PATH: &str = "/settings/2/api-keys";
/// How long one management request may take.
pub(crate) const DEFAULT_KEYS_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest management response read (a list of many keys).
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// The longest validity [`NewApiKey::valid_for`] and
/// [`KeyRotator::key_lifetime`] give a key: a hundred years.
pub(crate) const MAX_KEY_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The time `lifetime` from now, `lifetime` clamped to
/// a hundred years, which no clock reaches the end of.
fn valid_for(lifetime: Duration) -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(lifetime.min(MAX_KEY_LIFETIME))
        .unwrap_or(now)
}

/// An API key as Infobip describes it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiKeyInfo {
    /// The key's id, used in the management paths.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The IPs it may be used from (empty: any).
    #[serde(default, rename = "allowedIPs")]
    pub allowed_ips: Vec<String>,
    /// When it starts to work.
    #[serde(default, with = "crate::timestamp::optional")]
    pub valid_from: Option<SystemTime>,
    /// When it stops working (Infobip's default: a year after creation).
    #[serde(default, with = "crate::timestamp::optional")]
    pub valid_to: Option<SystemTime>,
    /// Its permissions (for example `PUBLIC_API`).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The ids of its scopes.
    #[serde(default)]
    pub scope_guids: Vec<String>,
    /// Whether it works; a disabled key is answered 401.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// What a new key is to be: from [`NewApiKey::new`], then its setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewApiKey {
    /// Its name.
    pub name: String,
    /// The IPs it may be used from (empty: any).
    #[serde(rename = "allowedIPs", skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
    /// When it starts to work (unset: now).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::optional"
    )]
    pub valid_from: Option<SystemTime>,
    /// When it stops working (unset: Infobip's default).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::optional"
    )]
    pub valid_to: Option<SystemTime>,
    /// Its permissions (unset: Infobip's default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// The ids of its scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope_guids: Vec<String>,
}

impl NewApiKey {
    /// A key named `name`, with Infobip's defaults for everything else.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            allowed_ips: Vec::new(),
            valid_from: None,
            valid_to: None,
            permissions: Vec::new(),
            scope_guids: Vec::new(),
        }
    }

    /// Only these IPs may use it.
    pub fn allowed_ips(mut self, ips: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_ips = ips.into_iter().map(Into::into).collect();
        self
    }

    /// It stops working at `at`.
    pub fn valid_to(mut self, at: SystemTime) -> Self {
        self.valid_to = Some(at);
        self
    }

    /// It stops working `lifetime` after it is created (measured from
    /// when the request is built). Clamped to at most
    /// a hundred years.
    pub fn valid_for(mut self, lifetime: Duration) -> Self {
        self.valid_to = Some(valid_for(lifetime));
        self
    }

    /// Its permissions.
    pub fn permissions(mut self, permissions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.permissions = permissions.into_iter().map(Into::into).collect();
        self
    }

    /// Its scopes.
    pub fn scope_guids(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scope_guids = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// The changes to a key: only the fields set are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiKeyUpdate {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New allowed IPs.
    #[serde(rename = "allowedIPs", skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    /// A new end of validity.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::optional"
    )]
    pub valid_to: Option<SystemTime>,
    /// New permissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// New scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_guids: Option<Vec<String>>,
    /// Enables or disables the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl ApiKeyUpdate {
    /// No change yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables (`true`) or disables the key.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Renames the key.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Moves the end of the key's validity.
    pub fn valid_to(mut self, at: SystemTime) -> Self {
        self.valid_to = Some(at);
        self
    }
}

/// A key's secret, the value after `App `: wiped from memory when dropped,
/// never shown by `Debug`.
#[derive(Clone)]
pub struct ApiKeySecret(SecretString);

impl ApiKeySecret {
    /// The secret itself, to hand to your secret manager.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The key as a credential source.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](ErrorKind::InvalidCredential) if Infobip's
    /// secret is not a valid key.
    pub fn api_key(&self) -> Result<ApiKey, AuthError> {
        ApiKey::new(self.0.expose())
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKeySecret").field(&self.0).finish()
    }
}

/// A key just created: what it is, and its secret (Infobip shows the secret
/// only in this answer).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreatedApiKey {
    /// The key.
    pub info: ApiKeyInfo,
    /// Its secret.
    pub secret: ApiKeySecret,
}

/// A create answer: the key and its secret, read without a copy of the
/// secret that is not wiped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedWire {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "allowedIPs")]
    allowed_ips: Vec<String>,
    #[serde(default, with = "crate::timestamp::optional")]
    valid_from: Option<SystemTime>,
    #[serde(default, with = "crate::timestamp::optional")]
    valid_to: Option<SystemTime>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    scope_guids: Vec<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    api_key_secret: ApiKeySecret,
}

/// The id of a create answer that could not be read in full.
#[derive(Deserialize)]
struct CreatedId {
    id: String,
}

impl<'de> Deserialize<'de> for ApiKeySecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The string moves into the wiped buffer: no other copy is kept.
        String::deserialize(d).map(|s| Self(SecretString::new(s)))
    }
}

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
        let info = ApiKeyInfo {
            id: wire.id,
            name: wire.name,
            allowed_ips: wire.allowed_ips,
            valid_from: wire.valid_from,
            valid_to: wire.valid_to,
            permissions: wire.permissions,
            scope_guids: wire.scope_guids,
            enabled: wire.enabled,
        };
        let secret = wire.api_key_secret;
        tracing::info!(key = %info.id, name = %info.name, "created an API key");
        Ok(CreatedApiKey { info, secret })
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
