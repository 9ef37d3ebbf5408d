//! [`SessionFuture`], and the `CredentialSource` glue of the session
//! sources.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, Shared};

use crate::error::{AuthError, ErrorKind};
use crate::source::Credential;

/// A login every request that needs it awaits: a task on the runtime, so
/// it runs to its end (within the login timeout) whoever waits for it.
pub(crate) type LoginFuture = Shared<BoxFuture<'static, Result<Credential, AuthError>>>;

/// The future a session source hands out: ready at once while a session is
/// held, otherwise shared with every other request waiting on the same login.
pub struct SessionFuture {
    state: FutureState,
}

enum FutureState {
    Ready(Option<Result<Credential, AuthError>>),
    Login(LoginFuture),
}

impl SessionFuture {
    pub(crate) fn ready(result: Result<Credential, AuthError>) -> Self {
        Self {
            state: FutureState::Ready(Some(result)),
        }
    }

    pub(crate) fn login(login: LoginFuture) -> Self {
        Self {
            state: FutureState::Login(login),
        }
    }
}

impl Future for SessionFuture {
    type Output = Result<Credential, AuthError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutureState::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(AuthError::new(
                    ErrorKind::PolledAfterCompletion,
                    "credential future polled after completion",
                ))
            })),
            FutureState::Login(login) => Pin::new(login).poll(cx),
        }
    }
}

impl fmt::Debug for SessionFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            FutureState::Ready(_) => "ready",
            FutureState::Login(_) => "waiting for login",
        };
        f.debug_struct("SessionFuture")
            .field("state", &state)
            .finish()
    }
}

/// `CredentialSource` and a redacted `Debug` for a session source type whose
/// `engine` field does the work.
macro_rules! engine_backed_source {
    ($source:ty, $name:literal) => {
        impl crate::source::CredentialSource for $source {
            type Future = crate::source::session::SessionFuture;
            type Kind = crate::source::Renewing;

            fn credential(&self) -> Self::Future {
                self.engine.credential()
            }

            fn on_unauthorized(&self, rejected: &crate::source::Credential) {
                self.engine.on_unauthorized(rejected)
            }

            fn is_rejected(&self, credential: &crate::source::Credential) -> bool {
                self.engine.is_rejected(credential)
            }

            fn on_replay(&self, replayed: bool) {
                self.engine.on_replay(replayed)
            }

            fn base_url(&self) -> Option<&crate::BaseUrl> {
                Some(&self.engine.base_url)
            }
        }

        impl std::fmt::Debug for $source {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct($name);
                self.engine.debug_fields(&mut d);
                d.finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use engine_backed_source;
