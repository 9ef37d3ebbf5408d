//! The login transport, type-erased: any tower service that takes an
//! `http::Request`, so `Ibsso` does not depend on one HTTP client.

use std::marker::PhantomData;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower::{Service, ServiceExt};

use crate::error::{AuthError, BoxError, ErrorKind};

/// A login or logout response, its body read in full (up to a cap).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// An answer with no headers, for the wire formats' unit tests.
#[cfg(test)]
pub(crate) fn test_answer(status: u16, body: &'static [u8]) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: HeaderMap::new(),
        body: Bytes::from_static(body),
    }
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

impl<T, RB, ResB> Transport for ServiceTransport<T, RB>
where
    T: Service<Request<RB>, Response = Response<ResB>> + Clone + Send + Sync + 'static,
    T::Future: Send + 'static,
    T::Error: Into<BoxError>,
    RB: From<Bytes> + Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Into<BoxError>,
{
    fn send(
        &self,
        request: Request<Bytes>,
        max_body: usize,
    ) -> BoxFuture<'static, Result<Answer, AuthError>> {
        let call = self.service.clone().oneshot(request.map(RB::from));
        Box::pin(async move {
            let response = call.await.map_err(|e| {
                AuthError::new(
                    ErrorKind::Transport,
                    "could not send the session request to Infobip",
                )
                .with_source(e)
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    AuthError::new(
                        ErrorKind::InvalidResponse,
                        format!("session response body is larger than {max_body} bytes"),
                    )
                } else {
                    AuthError::new(ErrorKind::Transport, "could not read the session response")
                        .with_source(e)
                }
            })?;
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        })
    }
}
