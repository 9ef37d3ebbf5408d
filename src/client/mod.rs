//! How the crate talks to Infobip, for every part that does: the session
//! engine, [`UserSession`](crate::UserSession) and key management. A
//! transport over any tower service, the answers it reads, Infobip's error
//! bodies, and the login rate every login of the process waits for.

pub(crate) mod login_rate;
mod transport;
pub(crate) mod wire;

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use self::login_rate::{Caller, LoginLimit};
use crate::error::{AuthError, ErrorKind};

#[cfg(test)]
pub(crate) use transport::test_answer;
pub use transport::HttpClient;
pub(crate) use transport::{Answer, ServiceTransport, Transport};
#[cfg(feature = "reqwest")]
pub(crate) use transport::{AnsweredElsewhere, CredentialBearing};

/// Waits for a turn at the login rate, then sends the request `send`
/// builds; both within `timeout`. No turn within it is
/// [`Throttled`](ErrorKind::Throttled), no answer [`Timeout`](ErrorKind::Timeout).
pub(crate) async fn send_login<F>(
    limit: &LoginLimit,
    caller: Caller,
    timeout: Duration,
    send: F,
) -> Result<Answer, AuthError>
where
    F: FnOnce() -> Result<BoxFuture<'static, Result<Answer, AuthError>>, AuthError>,
{
    // Bounded: builders clamp login timeouts to MAX_LOGIN_TIMEOUT.
    let deadline = Instant::now() + timeout;
    tokio::time::timeout_at(deadline, limit.acquire(caller))
        .await
        .map_err(|_| {
            AuthError::new(
                ErrorKind::Throttled,
                format!(
                    "no turn at the login rate within the login timeout ({} ms)",
                    timeout.as_millis()
                ),
            )
        })?;
    tokio::time::timeout_at(deadline, send()?)
        .await
        .map_err(|_| {
            AuthError::new(
                ErrorKind::Timeout,
                format!("login did not finish within {} ms", timeout.as_millis()),
            )
        })?
}
