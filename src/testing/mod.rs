//! [`FakeInfobip`]: a real HTTP/1.1 (and HTTP/2 prior-knowledge) server on 127.0.0.1 that speaks
//! Infobip's authentication endpoints, for tests, benchmarks and demos that
//! must run offline. Enabled by the `test-util` feature.
//!
//! It serves:
//!
//! - `POST /auth/1/session`: JSON `{"username", "password", "unsafe"}` →
//!   `{"token": ...}`, or Infobip-shaped 401 JSON for a wrong pair;
//! - `DELETE /auth/1/session` with `Authorization: IBSSO <token>` → 204;
//! - `POST /auth/1/oauth2/token`: form `client_id`, `client_secret`,
//!   `grant_type=client_credentials` → `{"access_token", "expires_in",
//!   "token_type"}` (credentials in the query string are refused);
//! - `/settings/2/api-keys` (GET, POST) and `/settings/2/api-keys/{id}`
//!   (GET, PUT): API keys in memory, managed with Basic, a session or a
//!   token (an `App` key gets 403), at most 40 creations and updates; a
//!   disabled or expired key gets 401 elsewhere;
//! - any other path: an authenticated endpoint (e.g. `POST
//!   /sms/2/text/advanced`) that accepts a valid `App`, `Basic`, `IBSSO` or
//!   `Bearer` credential, reads the whole body and answers 200, or answers 401 JSON.
//!
//! Sessions expire after [`SESSION_IDLE_TIMEOUT`] without use, on tokio's
//! clock. Knobs inject faults; counters tell what happened.
//!
//! # Example
//!
//! ```
//! use infobip_auth::testing::FakeInfobip;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let fake = FakeInfobip::start().await?;
//! assert_eq!(fake.base_url().host(), "127.0.0.1");
//! assert_eq!(fake.logins(), 0);
//! # Ok(())
//! # }
//! ```

mod handlers;
mod keys;
mod knobs;
mod redis;
mod server;
mod state;

pub use redis::RedisServer;
pub use server::FakeInfobip;
pub use state::{Accepted, OAUTH_TOKEN_LIFETIME, SESSION_IDLE_TIMEOUT};

/// Interprets a login answer (`status` and `body`) exactly as [`Ibsso`]
/// does: the `IBSSO <token>` header value it would stamp, or the error it
/// would report. For fuzzing and property tests.
///
/// [`Ibsso`]: crate::Ibsso
///
/// # Errors
///
/// The [`AuthError`](crate::AuthError) a login with this answer fails with.
pub fn parse_login_answer(status: u16, body: &[u8]) -> Result<http::HeaderValue, crate::AuthError> {
    let status = http::StatusCode::from_u16(status).map_err(|_| {
        crate::AuthError::new(crate::ErrorKind::InvalidResponse, "not an HTTP status code")
    })?;
    crate::source::ibsso::wire::login_result(&mut crate::client::Answer::new(
        status,
        http::HeaderMap::new(),
        body,
    ))
}
