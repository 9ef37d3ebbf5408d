//! The request protocol every front end drives: [`AuthService`]'s future,
//! [`AuthMiddleware`] and the accounts layer. Which requests are stamped,
//! the stamp, and the 401 path: tell the source, hold a request whose
//! credential is already rejected, drain the 401 within bounds, replay
//! once, report a replay's 401.
//!
//! [`AuthService`]: crate::AuthService
//! [`AuthMiddleware`]: crate::reqwest::AuthMiddleware

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::base_url::BaseUrl;
use crate::error::{AuthError, ErrorKind};
use crate::replay::DEFAULT_REPLAY_LIMIT;
use crate::source::{Credential, CredentialSource};

/// What a front end was configured with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) base_url: BaseUrl,
    pub(crate) override_existing: bool,
    pub(crate) replay_limit: usize,
    /// The source logs in at another base URL: what every request that
    /// would be stamped fails with.
    pub(crate) mismatch: Option<AuthError>,
}

impl Config {
    /// Stamps from `source` on requests to `base_url`, with the defaults.
    pub(crate) fn new<C: CredentialSource>(base_url: BaseUrl, source: &C) -> Self {
        let mismatch = source
            .base_url()
            .filter(|theirs| **theirs != base_url)
            .map(|theirs| {
                AuthError::invalid_base_url(format!(
                    "the credential source logs in at {theirs} but the layer stamps requests \
                     to {base_url}: build both from the same BaseUrl"
                ))
            });
        Self {
            base_url,
            override_existing: false,
            replay_limit: DEFAULT_REPLAY_LIMIT,
            mismatch,
        }
    }

    /// Whether a request to our origin with `headers` is left as the
    /// caller made it: it carries its own `Authorization`, which is kept.
    pub(crate) fn callers_own(&self, headers: &HeaderMap) -> bool {
        !self.override_existing && headers.contains_key(AUTHORIZATION)
    }
}

/// What the clones of one stamping service, and the requests they may
/// replay, share: one reference count to take per request that may be
/// replayed. The accounts layer keeps one per account.
pub(crate) struct Common<S, C> {
    pub(crate) source: C,
    pub(crate) config: Config,
    /// A pristine clone of the inner service: a replay clones it then,
    /// instead of every request cloning the inner service up front.
    pub(crate) replay_service: Mutex<S>,
}

/// Sets `Authorization` to `value`.
pub(crate) fn stamp(headers: &mut HeaderMap, value: HeaderValue) -> Result<(), AuthError> {
    // `HeaderMap` holds at most 32,768 fields.
    headers.try_insert(AUTHORIZATION, value).map_err(|_| {
        AuthError::new(
            ErrorKind::Request,
            "the request has too many headers to add Authorization",
        )
    })?;
    Ok(())
}

/// Whether a request stamped with `credential` is to be held rather than
/// sent: the credential was rejected (another request's 401, a logout)
/// since it was handed out. A held request is sent once, with the renewed
/// credential, and never replayed.
pub(crate) fn must_hold<C: CredentialSource>(source: &C, credential: &Credential) -> bool {
    source.can_renew() && source.is_rejected(credential)
}

/// A first attempt stamped with `stamped` was answered 401: tells the
/// source, and whether the request is replayed (`replayed`: its body's copy
/// can still be sent whole).
pub(crate) fn first_unauthorized<C: CredentialSource>(
    source: &C,
    stamped: &Credential,
    replayed: bool,
) {
    source.on_unauthorized(stamped);
    source.on_replay(replayed);
}

/// A replay (or held request) sent with `credential` was answered
/// `status`: a 401 ends the request there, and is reported, so that the
/// next request logs in instead of being sent with a dead credential.
pub(crate) fn replay_answered<C: CredentialSource>(
    source: &C,
    credential: &Credential,
    status: StatusCode,
) {
    if status == StatusCode::UNAUTHORIZED {
        source.on_unauthorized(credential);
    }
}

/// The most of a 401 body read before the request is replayed, so that the
/// connection can carry the replay (HTTP/1.1) or needs no stream reset
/// (HTTP/2). Every frame counts as at least one byte, so a stream of empty
/// frames ends too. The rest of a larger body is dropped unread.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The longest a 401 body is read for: a server that stalls or trickles
/// cannot hold the request (or its connection) longer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

pin_project! {
    /// Reads a 401's body within [`DRAIN_LIMIT`] and [`DRAIN_TIMEOUT`], then
    /// drops it.
    pub(crate) struct Drain<B> {
        #[pin]
        body: B,
        #[pin]
        deadline: Sleep,
        drained: usize,
    }
}

impl<B> Drain<B> {
    pub(crate) fn new(body: B) -> Self {
        Self {
            body,
            deadline: tokio::time::sleep(DRAIN_TIMEOUT),
            drained: 0,
        }
    }
}

impl<B: Body> Future for Drain<B> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        while *this.drained <= DRAIN_LIMIT && !this.body.is_end_stream() {
            let Poll::Ready(frame) = this.body.as_mut().poll_frame(cx) else {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    break;
                }
                return Poll::Pending;
            };
            match frame {
                Some(Ok(frame)) => {
                    *this.drained += frame.data_ref().map_or(0, Buf::remaining).max(1);
                }
                // An error or the end: nothing more to read.
                _ => break,
            }
        }
        Poll::Ready(())
    }
}
