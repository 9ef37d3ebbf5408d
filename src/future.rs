//! [`ResponseFuture`]: the response of [`AuthService`](crate::AuthService),
//! with the renew-and-replay path for 401 answers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;

use crate::error::{AuthError, BoxError};
use crate::head::KeptHead;
use crate::replay::{RecordBodies, ReplayMode, ReplaySkipped};
use crate::service::Shared;
use crate::source::{Credential, CredentialSource};

/// What is needed to send a request a second time. Kept inline in the
/// response future and small: the source and the pristine inner service
/// are one shared reference, the head (with the credential it was stamped
/// with) a pooled buffer (see [`KeptHead`]), so a request that may be
/// replayed allocates nothing for it.
pub(crate) struct Retry<S, C, K> {
    shared: Arc<Shared<S, C>>,
    head: KeptHead,
    /// The body for a replay, in the form the inner service receives.
    body: Option<K>,
}

/// The service a replay goes through, with its new credential. Made only
/// when a replay happens.
struct Replay<S> {
    service: S,
    credential: Credential,
}

impl<S, C, K> Retry<S, C, K> {
    pub(crate) fn new(
        shared: Arc<Shared<S, C>>,
        stamped: Credential,
        parts: &Parts,
        at_base: bool,
        body: Option<K>,
    ) -> Self {
        Self {
            head: KeptHead::keep(parts, stamped, at_base),
            shared,
            body,
        }
    }

    /// For a request that is not sent before its replay (see
    /// [`ResponseFuture::held`]): its head is kept whole.
    pub(crate) fn held(
        shared: Arc<Shared<S, C>>,
        stamped: Credential,
        parts: Parts,
        body: K,
    ) -> Self {
        Self {
            head: KeptHead::whole(parts, stamped),
            shared,
            body: Some(body),
        }
    }

    fn into_request(self, credential: &Credential) -> Result<Request<K>, AuthError> {
        let Some(body) = self.body else {
            unreachable!("a replay has its body")
        };
        self.head
            .rebuild(body, credential, &self.shared.config.base_url)
    }
}

/// The most of a 401 body read before the request is replayed, so that the
/// connection can carry the replay (HTTP/1.1) or needs no stream reset
/// (HTTP/2). A larger body is dropped unread.
const DRAIN_LIMIT: usize = 64 * 1024;

pin_project! {
    /// The response future of [`AuthService`](crate::AuthService); `B` is
    /// the caller's request body, `RB` the inner service's response body,
    /// `M` the [`ReplayMode`].
    pub struct ResponseFuture<S, C, B, RB, M = RecordBodies>
    where
        M: ReplayMode<B>,
        S: Service<Request<M::Body>, Response = Response<RB>>,
        C: CredentialSource,
    {
        #[pin]
        state: State<S, C, B, RB, M>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, C, B, RB, M>
    where
        M: ReplayMode<B>,
        S: Service<Request<M::Body>, Response = Response<RB>>,
        C: CredentialSource,
    {
        Failed { error: Option<AuthError> },
        First { #[pin] future: S::Future, retry: Option<Retry<S, C, M::Body>> },
        // The rare states box what is large, so the future every request
        // carries stays small (it is moved a few times on its way).
        Draining { body: Pin<Box<RB>>, drained: usize, retry: Option<Retry<S, C, M::Body>> },
        Renewing { credential: Box<C::Future>, retry: Option<Retry<S, C, M::Body>> },
        Readying { replay: Box<Replay<S>>, retry: Option<Retry<S, C, M::Body>> },
        Replaying { #[pin] future: S::Future },
    }
}

impl<S, C, B, RB, M> Future for ResponseFuture<S, C, B, RB, M>
where
    M: ReplayMode<B>,
    S: Service<Request<M::Body>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    C: CredentialSource,
    RB: http_body::Body,
{
    type Output = Result<Response<RB>, AuthError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        // The first attempt's answer, and nearly always the last: kept
        // apart from the renewal, which is rare and much larger.
        let StateProj::First { future, retry } = state.as_mut().project() else {
            return Self::poll_renewal(state, cx);
        };
        let response = match ready!(future.poll(cx)) {
            Ok(response) => response,
            Err(error) => return Poll::Ready(Err(AuthError::inner(error))),
        };
        if response.status() != StatusCode::UNAUTHORIZED {
            return Poll::Ready(Ok(response));
        }
        let Some(retry) = retry.take() else {
            return Poll::Ready(Ok(response));
        };
        match Self::start_renewal(retry, response) {
            Ok(draining) => {
                state.set(draining);
                Self::poll_renewal(state, cx)
            }
            Err(response) => Poll::Ready(Ok(response)),
        }
    }
}

type Output<RB> = Result<Response<RB>, AuthError>;

impl<S, C, B, RB, M> ResponseFuture<S, C, B, RB, M>
where
    M: ReplayMode<B>,
    S: Service<Request<M::Body>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    C: CredentialSource,
    RB: http_body::Body,
{
    pub(crate) fn failed(error: AuthError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }

    pub(crate) fn first(future: S::Future, retry: Option<Retry<S, C, M::Body>>) -> Self {
        Self {
            state: State::First { future, retry },
        }
    }

    /// A request not sent because its credential was already rejected:
    /// it waits for the renewed one, then goes the way a replay goes.
    pub(crate) fn held(retry: Retry<S, C, M::Body>) -> Self {
        Self {
            state: Self::renewing(retry),
        }
    }

    /// Asks the source for the credential `retry` will be sent with.
    fn renewing(retry: Retry<S, C, M::Body>) -> State<S, C, B, RB, M> {
        State::Renewing {
            credential: Box::new(retry.shared.source.credential()),
            retry: Some(retry),
        }
    }

    /// A 401 to a request that may be replayed: reports it to the source
    /// and, if the body can be sent again, moves on to reading the 401's
    /// body. Otherwise the response is handed back, marked.
    #[cold]
    #[inline(never)]
    fn start_renewal(
        retry: Retry<S, C, M::Body>,
        mut response: Response<RB>,
    ) -> Result<State<S, C, B, RB, M>, Response<RB>> {
        let source = &retry.shared.source;
        if let Some(stamped) = retry.head.stamped() {
            source.on_unauthorized(stamped);
        }
        let replayed = retry.body.as_ref().is_some_and(M::start_replay);
        source.on_replay(replayed);
        if !replayed {
            response
                .extensions_mut()
                .insert(ReplaySkipped::BodyOverLimit);
            return Err(response);
        }
        Ok(State::Draining {
            body: Box::pin(response.into_body()),
            drained: 0,
            retry: Some(retry),
        })
    }

    /// Every state after the first attempt's: drain the 401, renew, ready
    /// a service, replay; or a failure known before anything was sent.
    #[inline(never)]
    fn poll_renewal(
        mut state: Pin<&mut State<S, C, B, RB, M>>,
        cx: &mut Context<'_>,
    ) -> Poll<Output<RB>> {
        loop {
            match state.as_mut().project() {
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                        AuthError::source_failed("response future polled after completion", None)
                    })))
                }
                StateProj::First { .. } => {
                    unreachable!("the first attempt is polled by `poll` alone")
                }
                StateProj::Draining {
                    body,
                    drained,
                    retry,
                } => {
                    while *drained <= DRAIN_LIMIT && !body.is_end_stream() {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                *drained += frame.data_ref().map_or(0, Buf::remaining);
                            }
                            // An error or the end: nothing more to read.
                            _ => break,
                        }
                    }
                    let Some(retry) = retry.take() else {
                        unreachable!("Draining holds its retry until it moves on")
                    };
                    state.set(Self::renewing(retry));
                }
                StateProj::Renewing { credential, retry } => {
                    let credential = ready!(Pin::new(&mut **credential).poll(cx))?;
                    let Some(retry) = retry.take() else {
                        unreachable!("Renewing holds its retry until it moves on")
                    };
                    // The replay's service is cloned only now, from the
                    // pristine copy every request shares.
                    let service = retry
                        .shared
                        .replay_service
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    state.set(State::Readying {
                        replay: Box::new(Replay {
                            service,
                            credential,
                        }),
                        retry: Some(retry),
                    });
                }
                StateProj::Readying { replay, retry } => {
                    // Ready the inner service only now, with the credential
                    // in hand: a login never holds an inner slot.
                    ready!(replay.service.poll_ready(cx)).map_err(AuthError::inner)?;
                    let Some(retry) = retry.take() else {
                        unreachable!("Readying holds its retry until it moves on")
                    };
                    let request = retry.into_request(&replay.credential)?;
                    let future = replay.service.call(request);
                    state.set(State::Replaying { future });
                }
                StateProj::Replaying { future } => {
                    return future.poll(cx).map_err(AuthError::inner);
                }
            }
        }
    }
}

impl<S, C, B, RB, M> fmt::Debug for ResponseFuture<S, C, B, RB, M>
where
    M: ReplayMode<B>,
    S: Service<Request<M::Body>, Response = Response<RB>>,
    C: CredentialSource,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Failed { .. } => "failed",
            State::First { .. } => "first",
            State::Draining { .. } => "draining",
            State::Renewing { .. } => "renewing",
            State::Readying { .. } => "readying",
            State::Replaying { .. } => "replaying",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
