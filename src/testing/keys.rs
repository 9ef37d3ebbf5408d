//! The fake server's API keys: `/settings/2/api-keys`, in memory.

use std::time::SystemTime;

use http::StatusCode;
use serde_json::{json, Value};

use crate::timestamp;

/// Creations and updates a day, as Infobip allows.
pub(super) const DAILY_KEY_CHANGES: usize = 40;

const LIMIT_JSON: &str = r#"{"requestError":{"serviceException":{"messageId":"TOO_MANY_REQUESTS","text":"Daily limit of API key changes reached"}}}"#;
const NOT_FOUND_JSON: &str =
    r#"{"requestError":{"serviceException":{"messageId":"NOT_FOUND","text":"API key not found"}}}"#;
const BAD_REQUEST_JSON: &str = r#"{"requestError":{"serviceException":{"messageId":"BAD_REQUEST","text":"Invalid request body"}}}"#;

pub(super) struct ManagedKey {
    id: String,
    pub(super) secret: String,
    name: String,
    allowed_ips: Vec<String>,
    valid_from: SystemTime,
    valid_to: Option<SystemTime>,
    permissions: Vec<String>,
    scope_guids: Vec<String>,
    enabled: bool,
}

impl ManagedKey {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "allowedIPs": self.allowed_ips,
            "validFrom": timestamp::format(self.valid_from),
            "validTo": self.valid_to.map(timestamp::format),
            "permissions": self.permissions,
            "scopeGuids": self.scope_guids,
            "enabled": self.enabled,
        })
    }

    /// Whether a request may use it now.
    pub(super) fn works(&self) -> bool {
        let now = SystemTime::now();
        self.enabled && self.valid_from <= now && self.valid_to.is_none_or(|to| now < to)
    }
}

#[derive(Default)]
pub(super) struct Keys {
    pub(super) keys: Vec<ManagedKey>,
    pub(super) changes: usize,
    pub(super) limit: Option<usize>,
    pub(super) fail_changes: Vec<StatusCode>,
    pub(super) fail_updates: Vec<StatusCode>,
    /// What the next create answers give as `apiKeySecret`.
    pub(super) created_secrets: Vec<Value>,
    next: u64,
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn time(value: Option<&Value>) -> Result<Option<SystemTime>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_str().and_then(timestamp::parse).map(Some).ok_or(()),
    }
}

impl Keys {
    /// The answer to a management request already authenticated with
    /// something other than an API key.
    pub(super) fn handle(
        &mut self,
        method: &http::Method,
        id: Option<&str>,
        body: &[u8],
    ) -> (StatusCode, String) {
        use http::Method;
        let changes = matches!(*method, Method::POST | Method::PUT);
        if changes {
            let queue = match *method {
                Method::PUT if self.fail_changes.is_empty() => &mut self.fail_updates,
                _ => &mut self.fail_changes,
            };
            if !queue.is_empty() {
                let status = queue.remove(0);
                return (status, r#"{"requestError":{"serviceException":{"messageId":"GENERAL_ERROR","text":"Something went wrong"}}}"#.to_owned());
            }
            if self.changes >= self.limit.unwrap_or(DAILY_KEY_CHANGES) {
                return (StatusCode::TOO_MANY_REQUESTS, LIMIT_JSON.to_owned());
            }
        }
        let bad = || (StatusCode::BAD_REQUEST, BAD_REQUEST_JSON.to_owned());
        let body: Value = match (changes, serde_json::from_slice(body)) {
            (false, _) => Value::Null,
            (true, Ok(body @ Value::Object(_))) => body,
            (true, _) => return bad(),
        };
        match (method.clone(), id) {
            (Method::GET, None) => {
                let list: Vec<Value> = self.keys.iter().map(ManagedKey::to_json).collect();
                (StatusCode::OK, Value::Array(list).to_string())
            }
            (Method::POST, None) => {
                let Some(name) = body.get("name").and_then(Value::as_str) else {
                    return bad();
                };
                let (Ok(valid_from), Ok(valid_to)) =
                    (time(body.get("validFrom")), time(body.get("validTo")))
                else {
                    return bad();
                };
                self.next += 1;
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos();
                let key = ManagedKey {
                    id: format!("key-{}", self.next),
                    secret: format!("managed-{}-{nanos:09}", self.next),
                    name: name.to_owned(),
                    allowed_ips: strings(body.get("allowedIPs")).unwrap_or_default(),
                    valid_from: valid_from.unwrap_or_else(SystemTime::now),
                    valid_to: Some(valid_to.unwrap_or_else(|| {
                        // Bounded: a constant year.
                        SystemTime::now() + std::time::Duration::from_secs(365 * 86_400)
                    })),
                    permissions: strings(body.get("permissions"))
                        .unwrap_or_else(|| vec!["PUBLIC_API".to_owned()]),
                    scope_guids: strings(body.get("scopeGuids")).unwrap_or_default(),
                    enabled: true,
                };
                self.changes += 1;
                let mut answer = key.to_json();
                answer["apiKeySecret"] = if self.created_secrets.is_empty() {
                    Value::String(key.secret.clone())
                } else {
                    self.created_secrets.remove(0)
                };
                self.keys.push(key);
                (StatusCode::OK, answer.to_string())
            }
            (method, Some(id)) => {
                let Some(key) = self.keys.iter_mut().find(|k| k.id == id) else {
                    return (StatusCode::NOT_FOUND, NOT_FOUND_JSON.to_owned());
                };
                match method {
                    Method::GET => (StatusCode::OK, key.to_json().to_string()),
                    Method::PUT => {
                        let Ok(valid_to) = time(body.get("validTo")) else {
                            return bad();
                        };
                        if let Some(name) = body.get("name").and_then(Value::as_str) {
                            key.name = name.to_owned();
                        }
                        if let Some(enabled) = body.get("enabled").and_then(Value::as_bool) {
                            key.enabled = enabled;
                        }
                        if let Some(ips) = strings(body.get("allowedIPs")) {
                            key.allowed_ips = ips;
                        }
                        if valid_to.is_some() {
                            key.valid_to = valid_to;
                        }
                        self.changes += 1;
                        (StatusCode::OK, key.to_json().to_string())
                    }
                    _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
                }
            }
            _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
        }
    }
}
