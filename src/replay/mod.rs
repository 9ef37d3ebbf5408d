//! Replaying a request after a 401: which bodies can be sent twice.
//!
//! With a renewing source ([`Ibsso`](crate::Ibsso), [`OAuth2`](crate::OAuth2))
//! a request answered 401 is sent once more with the renewed credential, so
//! its body must be available twice. The inner service still receives the
//! caller's body type; each request body provides its second copy through
//! [`ReplayableBody`]:
//!
//! - bodies in memory (`Full`, `Empty`, `String`) are cloned when the request
//!   is stamped; `Full<Bytes>` is a reference count;
//! - any other body (a stream, hyper's `Incoming`, a boxed body) is wrapped
//!   in [`ReplayBody`], which keeps the bytes the first attempt streams, up to
//!   the replay limit, and never buffers the body up front.
//!
//! A body beyond the replay limit
//! ([`AuthLayer::replay_limit`](crate::AuthLayer::replay_limit)) is not
//! kept: its 401 reaches the caller marked [`ReplaySkipped`]. Static sources
//! never replay and ask nothing of the body.

mod record;
#[cfg(test)]
mod tests;

use bytes::{Buf, Bytes};
use http_body::Body;
use http_body_util::{Empty, Full};

pub use record::ReplayBody;

/// The default cap on the bytes of a body kept for a replay: 64 KiB.
pub(crate) const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// Marks a 401 response that was not replayed, as a response extension.
///
/// The source has been told of the 401 (the next request gets a renewed
/// credential); only this request was not sent again.
///
/// ```
/// # fn check(response: http::Response<()>) {
/// use infobip_auth::ReplaySkipped;
///
/// if response.extensions().get::<ReplaySkipped>().is_some() {
///     // The credential was renewed, but this request's body could not be
///     // sent again: send it again yourself if that is safe.
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplaySkipped {
    /// The body was larger than the replay limit, so it was not kept.
    BodyOverLimit,
}

/// A request body that a renewing source can send a second time, after a
/// 401.
///
/// Implemented for bodies in memory (`Full`, `Empty`, `String`, and `Bytes`
/// and `Vec<u8>` for transports that take bytes), which are cloned, and for [`ReplayBody`], which records a streaming body as it is
/// sent. Implement it for a body type of your own that is cheap to copy.
/// Static sources never replay and ask nothing of the body.
///
/// A body that is neither is refused at compile time with a renewing source,
/// with a note saying what to do:
///
/// ```compile_fail
/// # use bytes::Bytes;
/// # use http_body_util::combinators::BoxBody;
/// # use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// # use infobip_auth::{AuthLayer, BaseUrl, BoxError, Ibsso};
/// # use tower::{Layer, ServiceExt};
/// # async fn run(base: BaseUrl, session: Ibsso, request: http::Request<BoxBody<Bytes, BoxError>>) {
/// let client: Client<HttpConnector, BoxBody<Bytes, BoxError>> =
///     Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
/// let service = AuthLayer::new(base, session).layer(client);
/// // error: `BoxBody<Bytes, BoxError>` cannot be sent again after a 401 ...
/// let _ = service.oneshot(request).await;
/// # }
/// ```
///
/// Wrapped in [`ReplayBody`], it is kept as it streams:
///
/// ```
/// # use bytes::Bytes;
/// # use http_body_util::combinators::BoxBody;
/// # use hyper_util::client::legacy::{connect::HttpConnector, Client};
/// # use infobip_auth::{AuthLayer, BaseUrl, BoxError, Ibsso, ReplayBody};
/// # use tower::{Layer, ServiceExt};
/// # async fn run(base: BaseUrl, session: Ibsso, request: http::Request<BoxBody<Bytes, BoxError>>) {
/// let client: Client<HttpConnector, ReplayBody<BoxBody<Bytes, BoxError>>> =
///     Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
/// let service = AuthLayer::new(base, session).layer(client);
/// let _ = service.oneshot(request.map(ReplayBody::new)).await;
/// # }
/// ```
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use infobip_auth::ReplayableBody;
///
/// let mut body = Full::new(Bytes::from_static(b"{}"));
/// assert!(body.replay_copy(1024).is_some());
/// assert!(body.replay_copy(1).is_none(), "over the limit");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent again after a 401, which a renewing source (Ibsso, OAuth2) needs",
    label = "this body type cannot be replayed",
    note = "wrap a streaming body in `infobip_auth::ReplayBody::new(body)` (it keeps the bytes as they are sent, up to the replay limit), or send a body in memory such as `Full<Bytes>`"
)]
pub trait ReplayableBody: Sized {
    /// A second copy of the body, made when the request is stamped, to send
    /// if the request is replayed; `None` if the body is over `limit` bytes
    /// and so is not kept.
    fn replay_copy(&mut self, limit: usize) -> Option<Self>;

    /// Called on the copy when the replay is about to be sent: whether it
    /// can still send the whole body. The default, `true`, suits copies
    /// made in full up front.
    fn start_replay(&self) -> bool {
        true
    }
}

/// Whether a body of `size_hint` is within `limit`.
fn within(body: &impl Body, limit: usize) -> bool {
    body.size_hint().lower() <= limit as u64
}

impl<D: Buf + Clone> ReplayableBody for Full<D> {
    fn replay_copy(&mut self, limit: usize) -> Option<Self> {
        within(self, limit).then(|| self.clone())
    }
}

impl<D: Buf> ReplayableBody for Empty<D> {
    fn replay_copy(&mut self, _: usize) -> Option<Self> {
        Some(Empty::new())
    }
}

/// Bodies whose length is their size: cloned within the limit. `Bytes` and
/// `Vec<u8>` are for transports that take bytes (the reqwest adapter);
/// a `Bytes` clone is a reference count.
macro_rules! cloned_within_limit {
    ($($body:ty),*) => {
        $(impl ReplayableBody for $body {
            fn replay_copy(&mut self, limit: usize) -> Option<Self> {
                (self.len() <= limit).then(|| self.clone())
            }
        })*
    };
}

cloned_within_limit!(String, Bytes, Vec<u8>);
