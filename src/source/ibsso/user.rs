//! [`UserSession`]: an IBSSO session logged in with a user's own username and
//! password, keeping only the token.

use std::fmt;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use zeroize::Zeroizing;

use super::{end_session, wire};
use crate::base_url::BaseUrl;
use crate::client::login_rate::{Caller, LoginLimit};
use crate::client::send_login;
use crate::client::{HttpClient, ServiceTransport, Transport};
use crate::error::{AuthError, ErrorKind};
use crate::source::session::validate_pair;
use crate::source::session::{DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
use crate::source::{Credential, CredentialSource, Renewing};

/// An IBSSO session of one of your application's users, the use Infobip
/// describes for IBSSO: the user types their Infobip credentials, your
/// application logs them in once, and keeps the session, never the
/// password.
///
/// - [`login`](Self::login) sends the username and password once; they are
///   zeroized as soon as the login answer has arrived. The value keeps the
///   token (in a zeroized buffer) and what it needs to log out.
/// - It stamps `Authorization: IBSSO <token>` and never logs in again: a
///   401 ends it, and that request (and every later one) fails with
///   [`ErrorKind::ReauthenticationRequired`]: ask your user to log in again.
///   No login is attempted.
/// - [`logout`](Self::logout) ends it on the server.
///
/// As a [`CredentialSource`] it is of kind [`Renewing`], so that a 401
/// reaches it; request bodies must therefore be
/// [`ReplayableBody`](crate::ReplayableBody), as with [`Ibsso`](crate::Ibsso).
/// A body over the replay limit gets its 401 back marked
/// [`ReplaySkipped`](crate::ReplaySkipped) instead of the error.
///
/// Clones share the session.
///
/// # Example
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// use infobip_auth::{AuthLayer, BaseUrl, UserSession};
/// use tower::Layer;
///
/// # async fn run(username: String, password: String) -> Result<(), infobip_auth::AuthError> {
/// let base = BaseUrl::new("xyz.api.infobip.com")?;
/// let client: Client<HttpConnector, Full<Bytes>> =
///     Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
/// // The credentials the user typed, used once.
/// let session = UserSession::login(base.clone(), username, password, client.clone()).await?;
/// let for_this_user = AuthLayer::new(base, session).layer(client);
/// # let _ = for_this_user;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UserSession {
    inner: Arc<Inner>,
}

struct Inner {
    credential: Credential,
    base_url: BaseUrl,
    transport: Box<dyn Transport>,
    /// Answered 401 or logged out: every later request fails.
    ended: AtomicBool,
}

impl UserSession {
    /// Logs the user in at `base_url` (`POST /auth/1/session`) through
    /// `transport` (any tower service taking `http::Request<RB>`, as for
    /// [`IbssoBuilder::build`](crate::IbssoBuilder::build)). The username
    /// and password are zeroized once the answer has arrived, whatever it
    /// is. The session is bound to the client's IP address.
    ///
    /// # Errors
    ///
    /// [`InvalidCredential`](ErrorKind::InvalidCredential) for an empty
    /// username or password; otherwise what a failed [`Ibsso`](crate::Ibsso)
    /// login gives: [`BadCredentials`](ErrorKind::BadCredentials) when
    /// Infobip refuses them, [`Throttled`](ErrorKind::Throttled),
    /// [`Timeout`](ErrorKind::Timeout) (after
    /// 10 s), ...
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver (the login is timed).
    pub async fn login<T, RB>(
        base_url: BaseUrl,
        username: impl Into<String>,
        password: impl Into<String>,
        transport: T,
    ) -> Result<Self, AuthError>
    where
        T: HttpClient<RB>,
        RB: From<Bytes> + Send + 'static,
    {
        let (username, password) = (
            Zeroizing::new(username.into()),
            Zeroizing::new(password.into()),
        );
        validate_pair("IBSSO username and password", &username, &password)?;
        let uri = base_url.join(wire::SESSION_PATH)?;
        let transport: Box<dyn Transport> = Box::new(ServiceTransport::<T, RB>::new(transport));
        let limit = LoginLimit::for_base_url(&base_url, None);
        let answer = send_login(&limit, Caller::User, DEFAULT_LOGIN_TIMEOUT, || {
            let request = wire::login_request(&uri, &username, &password, false)?;
            Ok(transport.send(request, DEFAULT_MAX_RESPONSE_BYTES))
        })
        .await;
        drop((username, password));
        let mut answer = answer?;
        let credential = Credential::from_header_value(wire::login_result(&mut answer)?);
        tracing::debug!(base_url = %base_url, "a user logged in to Infobip");
        Ok(Self {
            inner: Arc::new(Inner {
                credential,
                base_url,
                transport,
                ended: AtomicBool::new(false),
            }),
        })
    }

    /// Ends the session on the server (`DELETE /auth/1/session`); later
    /// requests fail with
    /// [`ReauthenticationRequired`](ErrorKind::ReauthenticationRequired).
    /// Does nothing if it has ended already.
    ///
    /// # Errors
    ///
    /// As [`Ibsso::logout`](crate::Ibsso::logout). The session counts as
    /// ended either way.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime with its time driver (the logout is timed).
    pub async fn logout(&self) -> Result<(), AuthError> {
        if self.inner.ended.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let inner = &self.inner;
        end_session(
            &*inner.transport,
            &inner.base_url,
            &inner.credential,
            DEFAULT_LOGIN_TIMEOUT,
            DEFAULT_MAX_RESPONSE_BYTES,
        )
        .await
    }

    /// The base URL the user logged in at.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base_url
    }

    /// Whether the session can still be used: not answered 401, not logged
    /// out. (Infobip also ends it after 60 idle minutes; the next request
    /// then fails with `ReauthenticationRequired`.)
    pub fn is_active(&self) -> bool {
        !self.inner.ended.load(Ordering::Relaxed)
    }
}

fn reauthenticate() -> AuthError {
    AuthError::new(
        ErrorKind::ReauthenticationRequired,
        "the user's Infobip session has ended: ask the user to log in again",
    )
}

impl CredentialSource for UserSession {
    type Future = Ready<Result<Credential, AuthError>>;
    type Kind = Renewing;

    fn credential(&self) -> Self::Future {
        ready(match self.is_active() {
            true => Ok(self.inner.credential.clone()),
            false => Err(reauthenticate()),
        })
    }

    fn on_unauthorized(&self, _: &Credential) {
        if !self.inner.ended.swap(true, Ordering::Relaxed) {
            tracing::debug!("a user's session was answered 401: it has ended");
        }
    }

    fn is_rejected(&self, _: &Credential) -> bool {
        !self.is_active()
    }

    fn base_url(&self) -> Option<&BaseUrl> {
        Some(&self.inner.base_url)
    }
}

impl fmt::Debug for UserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSession")
            .field("base_url", &self.inner.base_url)
            .field("token", &crate::secret::REDACTED)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}
