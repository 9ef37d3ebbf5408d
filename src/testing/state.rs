//! What [`FakeInfobip`](super::FakeInfobip) knows: accounts, sessions, tokens, knobs set and
//! counts kept, behind one lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use tokio::time::Instant;

/// How long an unused session lives on the fake server, as on Infobip.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// How long an OAuth access token lives by default (`expires_in`).
pub const OAUTH_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

pub(super) const UNAUTHORIZED_JSON: &str = r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#;
pub(super) const FORBIDDEN_JSON: &str =
    r#"{"requestError":{"serviceException":{"messageId":"FORBIDDEN","text":"Forbidden"}}}"#;

/// One request the authenticated endpoint accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The request path.
    pub path: String,
    /// The `x-request-id` header, if any.
    pub request_id: Option<String>,
    /// The scheme of the credential (`App`, `Basic`, `IBSSO`).
    pub scheme: String,
    /// The whole body as received.
    pub body: Bytes,
}

pub(super) struct State {
    pub(super) api_keys: Vec<String>,
    pub(super) users: HashMap<String, String>,
    pub(super) sessions: HashMap<String, Instant>,
    /// OAuth access tokens and when each expires.
    pub(super) oauth_tokens: HashMap<String, Instant>,
    pub(super) oauth_lifetime: Duration,
    pub(super) issued: Vec<String>,
    pub(super) next_token: u64,
    pub(super) idle_timeout: Duration,
    // knobs
    pub(super) fail_logins: Vec<StatusCode>,
    pub(super) login_latency: Duration,
    pub(super) early_401: Vec<usize>,
    pub(super) forbid: usize,
    pub(super) drop_next: usize,
    pub(super) fail_every: Option<(usize, StatusCode)>,
    pub(super) redirects: HashMap<String, String>,
    /// How logins past a rate are answered 429.
    pub(super) login_throttle: Option<Throttle>,
    /// The `Retry-After` a throttled or failed-429 login carries.
    pub(super) retry_after: HeaderValue,
    // counters
    pub(super) throttled: usize,
    pub(super) logins: usize,
    pub(super) failed_logins: usize,
    pub(super) logouts: usize,
    pub(super) rejected: usize,
    pub(super) accepted: Vec<Accepted>,
    pub(super) authorizations: Vec<Option<HeaderValue>>,
    pub(super) dropped: usize,
    pub(super) attempts: HashMap<String, usize>,
    pub(super) connections: usize,
    /// Keys made through `/settings/2/api-keys`.
    pub(super) managed: super::keys::Keys,
}

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// One account: `api_key`, and `username` with `password`.
    pub(super) fn new(api_key: &str, username: &str, password: &str) -> Self {
        Self {
            api_keys: vec![api_key.to_owned()],
            users: HashMap::from([(username.to_owned(), password.to_owned())]),
            sessions: HashMap::new(),
            oauth_tokens: HashMap::new(),
            oauth_lifetime: OAUTH_TOKEN_LIFETIME,
            issued: Vec::new(),
            managed: Default::default(),
            next_token: 0,
            idle_timeout: SESSION_IDLE_TIMEOUT,
            fail_logins: Vec::new(),
            login_latency: Duration::ZERO,
            early_401: Vec::new(),
            forbid: 0,
            drop_next: 0,
            fail_every: None,
            redirects: HashMap::new(),
            login_throttle: None,
            retry_after: HeaderValue::from_static("1"),
            throttled: 0,
            dropped: 0,
            attempts: HashMap::new(),
            connections: 0,
            logins: 0,
            failed_logins: 0,
            logouts: 0,
            rejected: 0,
            accepted: Vec::new(),
            authorizations: Vec::new(),
        }
    }
}

/// A login limiter of one of the kinds servers run.
pub(super) enum Throttle {
    /// A bucket of `rate` tokens, refilled at that rate.
    Bucket {
        rate: f64,
        tokens: f64,
        refilled: Instant,
    },
    /// At most `limit` logins in any second.
    Sliding {
        limit: usize,
        arrivals: std::collections::VecDeque<Instant>,
    },
}

impl Throttle {
    /// Whether a login arriving now is let through.
    pub(super) fn admit(&mut self) -> bool {
        let now = Instant::now();
        match self {
            Self::Bucket {
                rate,
                tokens,
                refilled,
            } => {
                *tokens = (*tokens + *rate * (now - *refilled).as_secs_f64()).min(*rate);
                *refilled = now;
                let admitted = *tokens >= 1.0;
                if admitted {
                    *tokens -= 1.0;
                }
                admitted
            }
            Self::Sliding { limit, arrivals } => {
                while arrivals
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
                {
                    arrivals.pop_front();
                }
                let admitted = arrivals.len() < *limit;
                if admitted {
                    arrivals.push_back(now);
                }
                admitted
            }
        }
    }
}

impl State {
    pub(super) fn expire_sessions(&mut self) {
        let now = Instant::now();
        let idle = self.idle_timeout;
        self.sessions
            .retain(|_, last| now.saturating_duration_since(*last) < idle);
    }

    /// Whether `value` is a credential this server accepts; slides the
    /// session's idle clock when it is a session.
    pub(super) fn authorize(&mut self, value: Option<&HeaderValue>) -> Option<String> {
        let value = value?.to_str().ok()?;
        let (scheme, credential) = value.split_once(' ')?;
        let ok = match scheme {
            "App" => {
                self.api_keys.iter().any(|k| k == credential)
                    || self
                        .managed
                        .keys
                        .iter()
                        .any(|k| k.secret == credential && k.works())
            }
            "Basic" => STANDARD
                .decode(credential)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|pair| {
                    let (user, pass) = pair.split_once(':')?;
                    Some(self.users.get(user).is_some_and(|p| p == pass))
                })
                .unwrap_or(false),
            "Bearer" => {
                let now = Instant::now();
                self.oauth_tokens.retain(|_, expires| now < *expires);
                self.oauth_tokens.contains_key(credential)
            }
            "IBSSO" => {
                self.expire_sessions();
                match self.sessions.get_mut(credential) {
                    Some(last) => {
                        *last = Instant::now();
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        ok.then(|| scheme.to_owned())
    }
}
