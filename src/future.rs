//! [`ResponseFuture`]: the response of [`AuthService`](crate::AuthService),
//! with the renew-and-replay path for 401 answers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{ready, Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use crate::error::{AuthError, BoxError, ErrorKind};
use crate::protocol::{self, Common, Drain};
use crate::replay::ReplaySkipped;
use crate::source::{Credential, CredentialSource, KeepsBody};

/// What is needed to send a request a second time: a copy of its head
/// (method, URI, version, headers, extensions, as tower-http's
/// `FollowRedirect` keeps it), the credential it was stamped with, and the
/// body's second copy, if it has one.
pub(crate) struct Replay<S, C, B> {
    common: Arc<Common<S, C>>,
    stamped: Credential,
    head: Request<()>,
    body: Option<B>,
}

impl<S, C, B> Replay<S, C, B> {
    /// Keeps a copy of `request`'s head for a replay with `body`.
    pub(crate) fn new(
        common: Arc<Common<S, C>>,
        stamped: Credential,
        request: &Request<B>,
        body: Option<B>,
    ) -> Self {
        let mut head = Request::new(());
        *head.method_mut() = request.method().clone();
        *head.uri_mut() = request.uri().clone();
        *head.version_mut() = request.version();
        *head.headers_mut() = request.headers().clone();
        *head.extensions_mut() = request.extensions().clone();
        Self {
            common,
            stamped,
            head,
            body,
        }
    }

    /// A request that is not sent before its replay (see
    /// [`ResponseFuture::held`]): kept whole, no copy made.
    pub(crate) fn held(
        common: Arc<Common<S, C>>,
        stamped: Credential,
        request: Request<B>,
    ) -> Self {
        let (parts, body) = request.into_parts();
        Self {
            common,
            stamped,
            head: Request::from_parts(parts, ()),
            body: Some(body),
        }
    }

    /// The request again, stamped with `credential`.
    fn into_request(self, credential: &Credential) -> Option<Request<B>> {
        let (mut parts, ()) = self.head.into_parts();
        parts
            .headers
            .insert(AUTHORIZATION, credential.header_value().clone());
        Some(Request::from_parts(parts, self.body?))
    }
}

pin_project! {
    /// The response future of [`AuthService`](crate::AuthService); `B` is
    /// the request body type.
    pub struct ResponseFuture<S, C, B>
    where
        S: Service<Request<B>>,
        C: CredentialSource,
    {
        #[pin]
        state: State<S, C, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, C, B>
    where
        S: Service<Request<B>>,
        C: CredentialSource,
    {
        Failed { error: Option<AuthError> },
        First { #[pin] future: S::Future, replay: Option<Replay<S, C, B>> },
        // Boxed: the response is large and only a 401's is kept.
        Draining { drain: Pin<Box<Drain<S::Response>>>, replay: Option<Replay<S, C, B>> },
        Renewing { credential: C::Future, replay: Option<Replay<S, C, B>> },
        // Boxed: the inner service (a client) is large, and only a replay
        // needs a copy of it.
        Readying { service: Box<(S, Credential)>, replay: Option<Replay<S, C, B>> },
        // The replay's own 401 is reported too, against its credential.
        Replaying { #[pin] future: S::Future, common: Arc<Common<S, C>>, credential: Credential },
    }
}

type Output<RB> = Result<Response<RB>, AuthError>;

impl<S, C, B, RB> Future for ResponseFuture<S, C, B>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    C: CredentialSource,
    C::Kind: KeepsBody<B>,
    RB: Body,
{
    type Output = Output<RB>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                        AuthError::new(
                            ErrorKind::PolledAfterCompletion,
                            "response future polled after completion",
                        )
                    })))
                }
                StateProj::First { future, replay } => {
                    let response = ready!(future.poll(cx)).map_err(AuthError::inner)?;
                    match replay.take() {
                        Some(replay) if response.status() == StatusCode::UNAUTHORIZED => {
                            match Self::start_renewal(replay, response) {
                                Ok(draining) => draining,
                                Err(response) => return Poll::Ready(Ok(response)),
                            }
                        }
                        _ => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Draining { drain, replay } => {
                    ready!(drain.as_mut().poll(cx));
                    Self::renewing(take(replay))
                }
                StateProj::Renewing { credential, replay } => {
                    let credential = ready!(Pin::new(credential).poll(cx))?;
                    let replay = take(replay);
                    // The replay's service is cloned only now, from the
                    // pristine copy every request shares.
                    let service = (replay.common.replay_service.lock())
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    State::Readying {
                        service: Box::new((service, credential)),
                        replay: Some(replay),
                    }
                }
                StateProj::Readying { service, replay } => {
                    let (service, credential) = &mut **service;
                    // Ready the inner service only now, with the credential
                    // in hand: a login never holds an inner slot.
                    ready!(service.poll_ready(cx)).map_err(AuthError::inner)?;
                    let replay = take(replay);
                    let common = replay.common.clone();
                    let Some(request) = replay.into_request(credential) else {
                        unreachable!("a request is replayed only with its body")
                    };
                    State::Replaying {
                        future: service.call(request),
                        common,
                        credential: credential.clone(),
                    }
                }
                StateProj::Replaying {
                    future,
                    common,
                    credential,
                } => {
                    let response = ready!(future.poll(cx)).map_err(AuthError::inner)?;
                    protocol::replay_answered(&common.source, credential, response.status());
                    return Poll::Ready(Ok(response));
                }
            };
            state.set(next);
        }
    }
}

/// The replay a state holds until it moves on.
fn take<T>(replay: &mut Option<T>) -> T {
    replay
        .take()
        .expect("a state holds its replay until it moves on")
}

impl<S, C, B> ResponseFuture<S, C, B>
where
    S: Service<Request<B>>,
    C: CredentialSource,
{
    pub(crate) fn failed(error: AuthError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }

    pub(crate) fn first(future: S::Future, replay: Option<Replay<S, C, B>>) -> Self {
        Self {
            state: State::First { future, replay },
        }
    }

    /// A request not sent because its credential was already rejected:
    /// it waits for the renewed one, then goes the way a replay goes.
    pub(crate) fn held(replay: Replay<S, C, B>) -> Self {
        Self {
            state: Self::renewing(replay),
        }
    }

    /// Asks the source for the credential `replay` will be sent with.
    fn renewing(replay: Replay<S, C, B>) -> State<S, C, B> {
        State::Renewing {
            credential: replay.common.source.credential(),
            replay: Some(replay),
        }
    }
}

impl<S, C, B, RB> ResponseFuture<S, C, B>
where
    S: Service<Request<B>, Response = Response<RB>>,
    C: CredentialSource,
    C::Kind: KeepsBody<B>,
{
    /// A 401 to a request that may be replayed: reports it to the source
    /// and, if the body can be sent again, moves on to reading the 401's
    /// body. Otherwise the response is handed back, marked.
    fn start_renewal(
        replay: Replay<S, C, B>,
        mut response: Response<RB>,
    ) -> Result<State<S, C, B>, Response<RB>> {
        let replayable = replay.body.as_ref().is_some_and(C::Kind::start_replay);
        protocol::first_unauthorized(&replay.common.source, &replay.stamped, replayable);
        if !replayable {
            response
                .extensions_mut()
                .insert(ReplaySkipped::BodyOverLimit);
            return Err(response);
        }
        Ok(State::Draining {
            drain: Box::pin(Drain::new(response)),
            replay: Some(replay),
        })
    }
}

impl<S, C, B> fmt::Debug for ResponseFuture<S, C, B>
where
    S: Service<Request<B>>,
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
