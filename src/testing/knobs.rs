//! [`FakeInfobip`]'s knobs, which inject faults, and its counters, which
//! tell what happened.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use http::{HeaderValue, StatusCode};

use super::server::FakeInfobip;
use super::state::{lock, Accepted, Throttle};

impl FakeInfobip {
    /// Accepts another API key.
    pub fn add_api_key(&self, key: &str) {
        lock(&self.state).api_keys.push(key.to_owned());
    }

    /// Ends every session and OAuth access token now, as if they had all
    /// expired.
    pub fn revoke_sessions(&self) {
        let mut state = lock(&self.state);
        state.sessions.clear();
        state.oauth_tokens.clear();
    }

    /// Sets the lifetime of OAuth access tokens issued from now on (default
    /// [`OAUTH_TOKEN_LIFETIME`](super::OAUTH_TOKEN_LIFETIME)), at most a year.
    pub fn set_oauth_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state).oauth_lifetime = lifetime.min(Duration::from_secs(366 * 86_400));
    }

    /// Answers the next `n` logins with `status` (a 429 carries
    /// `Retry-After: 1`).
    pub fn fail_next_logins(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .fail_logins
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers 429 with `Retry-After: 1` to logins past `per_second`, as
    /// Infobip throttles its login and token endpoints: a bucket of
    /// `per_second` logins, refilled at that rate.
    pub fn throttle_logins(&self, per_second: u32) {
        let rate = f64::from(per_second);
        lock(&self.state).login_throttle = Some(Throttle::Bucket {
            rate,
            tokens: rate,
            refilled: Instant::now(),
        });
    }

    /// Answers 429 to a login when `per_second` logins arrived in the
    /// second before it: a limiter that counts a sliding second, the
    /// strictest reading of "so many a second".
    pub fn throttle_logins_sliding(&self, per_second: u32) {
        lock(&self.state).login_throttle = Some(Throttle::Sliding {
            limit: per_second as usize,
            arrivals: std::collections::VecDeque::new(),
        });
    }

    /// The `Retry-After` value 429 login answers carry from now on
    /// (default `1`), taken as it is: a server's extreme values included.
    pub fn set_login_retry_after(&self, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            lock(&self.state).retry_after = value;
        }
    }

    /// Logins answered 429 by [`throttle_logins`](Self::throttle_logins).
    pub fn throttled_logins(&self) -> usize {
        lock(&self.state).throttled
    }

    /// Sets the daily limit on creating and updating API keys (default 40,
    /// Infobip's); counts changes made so far.
    pub fn set_key_change_limit(&self, limit: usize) {
        lock(&self.state).managed.limit = Some(limit);
    }

    /// Answers the next `n` key creations or updates with `status`.
    pub fn fail_next_key_changes(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .managed
            .fail_changes
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers the next `n` key updates (and so disables) with `status`.
    pub fn fail_next_key_updates(&self, n: usize, status: StatusCode) {
        lock(&self.state)
            .managed
            .fail_updates
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers the next key creation with `secret` as its `apiKeySecret`
    /// (any JSON: a number, `null`, a string no header can carry); the key
    /// is created and enabled all the same.
    pub fn answer_next_creation_with_secret(&self, secret: serde_json::Value) {
        lock(&self.state).managed.created_secrets.push(secret);
    }

    /// Key creations and updates made through `/settings/2/api-keys`.
    pub fn key_changes(&self) -> usize {
        lock(&self.state).managed.changes
    }

    /// Delays every login answer by `latency`.
    pub fn set_login_latency(&self, latency: Duration) {
        lock(&self.state).login_latency = latency;
    }

    /// Sets how long an unused session lives (default [`SESSION_IDLE_TIMEOUT`](super::SESSION_IDLE_TIMEOUT)).
    pub fn set_session_idle_timeout(&self, timeout: Duration) {
        lock(&self.state).idle_timeout = timeout;
    }

    /// Answers the next `n` authenticated requests 401 after reading only
    /// `read_bytes` of their body (whatever their credential).
    pub fn reject_early(&self, n: usize, read_bytes: usize) {
        lock(&self.state)
            .early_401
            .extend(std::iter::repeat_n(read_bytes, n));
    }

    /// Answers the next `n` authenticated requests 403, as Infobip does for a
    /// credential that lacks a permission.
    pub fn forbid_next(&self, n: usize) {
        lock(&self.state).forbid += n;
    }

    /// Answers every request for `path` with `307 Temporary Redirect` to
    /// `location` (recording its `Authorization` first, like any request).
    pub fn redirect(&self, path: &str, location: &str) {
        lock(&self.state)
            .redirects
            .insert(path.to_owned(), location.to_owned());
    }

    /// Closes the connection of the next `n` authenticated requests without
    /// answering or processing them.
    pub fn drop_next(&self, n: usize) {
        lock(&self.state).drop_next += n;
    }

    /// Answers every `n`-th login with `status` from now on (`n` = 0 stops).
    pub fn fail_every_nth_login(&self, n: usize, status: StatusCode) {
        lock(&self.state).fail_every = (n > 0).then_some((n, status));
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// Authenticated requests whose connection was dropped unanswered.
    pub fn dropped(&self) -> usize {
        lock(&self.state).dropped
    }

    /// How many times each `x-request-id` reached the authenticated
    /// endpoint, whatever the outcome.
    pub fn attempts_by_request_id(&self) -> HashMap<String, usize> {
        lock(&self.state).attempts.clone()
    }

    /// Login requests received (`/auth/1/session` and
    /// `/auth/1/oauth2/token`), successful or not.
    pub fn logins(&self) -> usize {
        lock(&self.state).logins
    }

    /// Login requests answered with an error.
    pub fn failed_logins(&self) -> usize {
        lock(&self.state).failed_logins
    }

    /// Sessions ended by `DELETE /auth/1/session`.
    pub fn logouts(&self) -> usize {
        lock(&self.state).logouts
    }

    /// Requests the authenticated endpoint answered 401 or 403.
    pub fn rejected(&self) -> usize {
        lock(&self.state).rejected
    }

    /// Requests the authenticated endpoint accepted.
    pub fn accepted(&self) -> usize {
        lock(&self.state).accepted.len()
    }

    /// Every accepted request, in order, with its body.
    pub fn accepted_requests(&self) -> Vec<Accepted> {
        lock(&self.state).accepted.clone()
    }

    /// The `Authorization` header of every request to the authenticated
    /// endpoint, accepted or not, exactly as received.
    pub fn authorizations(&self) -> Vec<Option<HeaderValue>> {
        lock(&self.state).authorizations.clone()
    }

    /// Every session token issued so far (for tests that check no token
    /// leaks anywhere).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state).issued.clone()
    }

    /// Live sessions.
    pub fn sessions(&self) -> usize {
        let mut state = lock(&self.state);
        state.expire_sessions();
        state.sessions.len()
    }
}
