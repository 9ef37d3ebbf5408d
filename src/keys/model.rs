//! What Infobip says an API key is, and what is asked of a new or changed
//! one.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::AuthError;
use crate::secret::SecretString;
use crate::source::ApiKey;

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
    /// [`InvalidCredential`](crate::ErrorKind::InvalidCredential) if Infobip's
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
pub(super) struct CreatedWire {
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
pub(super) struct CreatedId {
    pub(super) id: String,
}

impl<'de> Deserialize<'de> for ApiKeySecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The string moves into the wiped buffer: no other copy is kept.
        String::deserialize(d).map(|s| Self(SecretString::new(s)))
    }
}

impl From<CreatedWire> for CreatedApiKey {
    fn from(wire: CreatedWire) -> Self {
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
        Self {
            info,
            secret: wire.api_key_secret,
        }
    }
}
