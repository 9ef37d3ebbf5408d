//! The login transport, type-erased: any tower service that takes an
//! `http::Request`, so `Ibsso` does not depend on one HTTP client.

use std::marker::PhantomData;
use std::pin::pin;

use bytes::{Buf, Bytes};
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Service, ServiceExt};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{AuthError, BoxError, ErrorKind};

/// A login or logout response, its body read in full (up to a cap) into a
/// buffer of the crate's own, which the parsers wipe once they have read
/// it (it holds the token) and which is zeroized when dropped.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl Answer {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: &[u8]) -> Self {
        let mut answer = Self {
            status,
            headers,
            body: Zeroizing::new(Vec::new()),
        };
        answer.push(body);
        answer
    }

    /// Appends `bytes`. The buffer grows by moving to a larger one, so that
    /// the one left behind is zeroized, not freed with the token in it.
    fn push(&mut self, bytes: &[u8]) {
        let needed = self.body.len() + bytes.len();
        if needed > self.body.capacity() {
            let mut larger =
                Zeroizing::new(Vec::with_capacity(needed.max(2 * self.body.capacity())));
            larger.extend_from_slice(&self.body);
            self.body = larger;
        }
        self.body.extend_from_slice(bytes);
    }

    /// Zeroes the body once it has been read.
    pub(crate) fn wipe(&mut self) {
        self.body.as_mut_slice().zeroize();
    }
}

/// An answer with no headers, for the wire formats' unit tests.
#[cfg(test)]
pub(crate) fn test_answer(status: u16, body: &'static [u8]) -> Answer {
    Answer::new(
        StatusCode::from_u16(status).unwrap(),
        HeaderMap::new(),
        body,
    )
}

/// Any tower service that sends an `http::Request<RB>` and answers with an
/// `http::Response` whose body it can read: a hyper-util client,
/// [`ReqwestClient`](crate::reqwest::ReqwestClient), or a transport of your
/// own. The session sources log in through one, and key management sends
/// through one. Implemented for every such service: a name for the bounds,
/// never implemented by hand.
pub trait HttpClient<RB>:
    Service<
        Request<RB>,
        Response = Response<Self::ResponseBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body.
    type ResponseBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<T, RB, ResB> HttpClient<RB> for T
where
    T: Service<Request<RB>, Response = Response<ResB>> + Clone + Send + Sync + 'static,
    T::Future: Send + 'static,
    T::Error: Into<BoxError>,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    type ResponseBody = ResB;
}

/// Marks a request that carries secrets (a login, logout or key-management
/// call): a client of the crate's own that could follow a redirect sends
/// its body so that it cannot be sent again ([`ReqwestClient`] does).
///
/// [`ReqwestClient`]: crate::reqwest::ReqwestClient
#[derive(Debug, Clone, Copy)]
pub(crate) struct CredentialBearing;

/// Set on a response whose answer came from another URL than the one asked
/// for: the client followed a redirect.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) struct AnsweredElsewhere;

fn redirected(status: StatusCode) -> AuthError {
    AuthError::new(
        ErrorKind::Redirected,
        format!(
            "Infobip answered a call that carries credentials with a redirect (HTTP {}); \
             it was not followed: check the base URL",
            status.as_u16()
        ),
    )
}

pub(crate) trait Transport: Send + Sync {
    fn send(
        &self,
        request: Request<Bytes>,
        max_body: usize,
    ) -> BoxFuture<'static, Result<Answer, AuthError>>;
}

pub(crate) struct ServiceTransport<T, RB> {
    service: T,
    _body: PhantomData<fn(Bytes) -> RB>,
}

impl<T, RB> ServiceTransport<T, RB> {
    pub(crate) fn new(service: T) -> Self {
        Self {
            service,
            _body: PhantomData,
        }
    }
}

impl<T, RB> Transport for ServiceTransport<T, RB>
where
    T: HttpClient<RB>,
    RB: From<Bytes> + Send + 'static,
{
    fn send(
        &self,
        request: Request<Bytes>,
        max_body: usize,
    ) -> BoxFuture<'static, Result<Answer, AuthError>> {
        let mut request = request.map(RB::from);
        request.extensions_mut().insert(CredentialBearing);
        let call = self.service.clone().oneshot(request);
        Box::pin(async move {
            let response = call.await.map_err(|e| {
                AuthError::new(
                    ErrorKind::Transport,
                    "could not send the request to Infobip",
                )
                .with_source(e)
            })?;
            let (parts, body) = response.into_parts();
            // Whatever the client's redirect policy: a 3xx is never read,
            // and an answer from elsewhere is never believed.
            if parts.status.is_redirection()
                || parts.extensions.get::<AnsweredElsewhere>().is_some()
            {
                return Err(redirected(parts.status));
            }
            let mut answer = Answer::new(parts.status, parts.headers, &[]);
            let mut body = pin!(Limited::new(body, max_body));
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        AuthError::new(
                            ErrorKind::InvalidResponse,
                            format!("response body is larger than {max_body} bytes"),
                        )
                    } else {
                        AuthError::new(ErrorKind::Transport, "could not read the response")
                            .with_source(e)
                    }
                })?;
                if let Ok(mut data) = frame.into_data() {
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        answer.push(chunk);
                        let read = chunk.len();
                        data.advance(read);
                    }
                }
            }
            Ok(answer)
        })
    }
}
