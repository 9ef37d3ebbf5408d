//! [`ReplayBody`]: the request body the inner service receives, kept so
//! that a request answered 401 can be sent once more.
//!
//! A body already in memory (an exact size within the cap, such as `Full`)
//! is read when the request is stamped: both attempts send the same
//! reference-counted [`Bytes`]. Any other body is kept as it streams: each
//! data chunk is kept (a reference-counted [`Bytes`], not a copy) until the
//! total passes the cap; past it, the kept chunks are dropped and the request
//! can no longer be replayed. A replay sends the kept chunks and then
//! continues with the part of the original body the first attempt never
//! read, so no byte is sent twice or lost, however early the server answered.

use std::any::Any;
use std::fmt;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use crate::error::BoxError;

/// The default cap on bytes kept for a replay: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// Marks a 401 response that was not replayed, as a response extension.
///
/// ```
/// # fn check(response: http::Response<()>) {
/// use infobip_auth::ReplaySkipped;
///
/// if response.extensions().get::<ReplaySkipped>().is_some() {
///     // The credential was renewed, but this request's body was too large to
///     // send again: send it again yourself if that is safe.
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplaySkipped {
    /// The body was larger than the replay limit, so it was not kept.
    BodyOverLimit,
}

/// What [`ReplayBody`] reports when the first attempt reads its body after
/// the replay took it over.
const TAKEN_OVER: &str = "request body was handed over to the replayed request";

/// The request body [`AuthService`](crate::AuthService) hands to the inner
/// service in the default [`ReplayMode`] ([`RecordBodies`]): the caller's
/// body `B`, kept for a replay where the source can renew its credential,
/// passed through otherwise. Either way it sends the same bytes, trailers
/// and errors as `B`; a `Full<Bytes>`, or a body that has ended, is held as
/// its bytes, and any other body in a box.
///
/// It yields [`Bytes`] chunks and boxed errors, which hyper and
/// hyper-util clients accept as they are. It is as large as a [`Bytes`]
/// (32 bytes on 64-bit targets), whatever `B` is, and always `Unpin`.
pub struct ReplayBody<B> {
    kind: Kind<B>,
}

// Two variants only, so that the tag fits in `Bytes`'s niche: a request
// carrying a `ReplayBody` is no larger than one carrying `Full<Bytes>`, and
// clients move requests many times on their way to the socket.
enum Kind<B> {
    /// A body in memory: what is left to send, empty once sent.
    Data(Bytes),
    /// Any other body, boxed.
    Boxed(Pin<Box<Other<B>>>),
}

pin_project! {
    #[project = OtherProj]
    enum Other<B> {
        Plain { #[pin] body: B },
        Recording { shared: Arc<Mutex<Shared<B>>> },
        Replaying { shared: Arc<Mutex<Shared<B>>>, next: usize },
    }
}

pub(crate) struct Shared<B> {
    /// What is left of the caller's body; `None` once it has ended.
    body: Option<Pin<Box<B>>>,
    /// A frame read when the request was stamped, not yet handed to the
    /// first attempt (already recorded if it is data).
    read_ahead: Option<Result<Frame<Bytes>, BoxError>>,
    /// The chunks read so far; most bodies are one chunk, kept inline.
    kept: Kept,
    kept_len: usize,
    cap: usize,
    trailers: Option<HeaderMap>,
    overflowed: bool,
    replaying: bool,
    hint: SizeHint,
}

#[derive(Default)]
struct Kept {
    first: Option<Bytes>,
    rest: Vec<Bytes>,
}

impl Kept {
    fn push(&mut self, chunk: Bytes) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.rest.push(chunk);
        }
    }

    fn get(&self, index: usize) -> Option<&Bytes> {
        match index {
            0 => self.first.as_ref(),
            n => self.rest.get(n - 1),
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bytes of `body` if it is a `Full<Bytes>`, the usual request body,
/// taken out of it: `Full<Bytes>` is `Unpin` and always ready, so it needs
/// neither a box nor a recording. `None` for any other body.
fn full_bytes<B: 'static>(body: &mut B) -> Option<Bytes> {
    let full = (body as &mut dyn Any).downcast_mut::<Full<Bytes>>()?;
    let mut cx = Context::from_waker(Waker::noop());
    Some(match Pin::new(full).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        // Empty: `Full` yields nothing else.
        _ => Bytes::new(),
    })
}

fn to_bytes<D: Buf>(mut data: D) -> Bytes {
    // Zero-copy when `D` is already `Bytes`.
    data.copy_to_bytes(data.remaining())
}

impl<B> ReplayBody<B> {
    /// Wraps `body` without recording it (in a box).
    pub fn new(body: B) -> Self {
        Self::boxed(Other::Plain { body })
    }

    /// Wraps `body` without recording it. Nothing is boxed for a body that
    /// has ended already (it is dropped) or for `Full<Bytes>` (its bytes
    /// are taken out).
    #[inline]
    pub(crate) fn pass(mut body: B) -> Self
    where
        B: Body + 'static,
    {
        if body.is_end_stream() {
            return Self::data(Bytes::new());
        }
        match full_bytes(&mut body) {
            Some(data) => Self::data(data),
            None => Self::new(body),
        }
    }

    #[inline]
    fn data(data: Bytes) -> Self {
        Self {
            kind: Kind::Data(data),
        }
    }

    fn boxed(other: Other<B>) -> Self {
        Self {
            kind: Kind::Boxed(Box::pin(other)),
        }
    }
}

impl<B> ReplayBody<B>
where
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    /// Splits `body` into the body for the first attempt and, if the request
    /// may be replayed at all, the body for the replay, which sends nothing
    /// until [`start_replay`](Self::start_replay) claims it.
    ///
    /// A body whose exact size is known and within the cap (`Full`, the usual
    /// JSON request) is read here: if it hands over all its bytes at once,
    /// both attempts send those bytes and nothing is shared between them.
    /// `Full<Bytes>` is taken apart as it is; any other such body is polled
    /// once, in a box. Any other body is recorded as the first attempt
    /// streams it.
    pub(crate) fn recorded(mut body: B, cap: usize) -> (Self, Option<Self>) {
        if body.is_end_stream() {
            return Self::ended();
        }
        let hint = body.size_hint();
        if hint.lower() > cap as u64 {
            return (Self::pass(body), None);
        }
        if let Some(data) = full_bytes(&mut body) {
            // Its size hint is exact: within the cap.
            return (Self::data(data.clone()), Some(Self::data(data)));
        }
        let mut body = Box::pin(body);
        let mut read_ahead = None;
        if hint.exact().is_some() {
            // A noop waker is enough: a body that is not ready is polled
            // again, with the caller's waker, by the first attempt.
            let mut cx = Context::from_waker(Waker::noop());
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Pending => {}
                Poll::Ready(None) => return Self::ended(),
                Poll::Ready(Some(Ok(frame))) => match frame.map_data(to_bytes).into_data() {
                    Ok(data) if body.is_end_stream() => {
                        let replay = (data.len() <= cap).then(|| Self::data(data.clone()));
                        return (Self::data(data), replay);
                    }
                    Ok(data) => read_ahead = Some(Ok(Frame::data(data))),
                    Err(frame) => read_ahead = Some(Ok(frame)),
                },
                Poll::Ready(Some(Err(error))) => read_ahead = Some(Err(error.into())),
            }
        }
        let mut shared = Shared {
            body: Some(body),
            read_ahead: None,
            kept: Kept::default(),
            kept_len: 0,
            cap,
            trailers: None,
            overflowed: false,
            replaying: false,
            hint,
        };
        if let Some(Ok(frame)) = &read_ahead {
            shared.record(frame);
        }
        shared.read_ahead = read_ahead;
        let shared = Arc::new(Mutex::new(shared));
        let first = Self::boxed(Other::Recording {
            shared: shared.clone(),
        });
        let replay = Self::boxed(Other::Replaying { shared, next: 0 });
        (first, Some(replay))
    }

    /// Both attempts of a body that has ended: nothing to send.
    fn ended() -> (Self, Option<Self>) {
        (Self::data(Bytes::new()), Some(Self::data(Bytes::new())))
    }
}

impl<B> ReplayBody<B> {
    /// Claims a replay's body (from [`recorded`](Self::recorded)) for
    /// sending. Returns `false` if the first attempt read more than the cap,
    /// so the request cannot be sent again whole; a body of another kind
    /// cannot be replayed either. After this the first attempt's recorded
    /// body yields an error if it is polled again.
    pub(crate) fn start_replay(&self) -> bool {
        let shared = match &self.kind {
            Kind::Data(_) => return true,
            Kind::Boxed(other) => match &**other {
                Other::Plain { .. } | Other::Recording { .. } => return false,
                Other::Replaying { shared, .. } => shared,
            },
        };
        let mut shared = lock(shared);
        if shared.overflowed {
            return false;
        }
        shared.replaying = true;
        // A frame read ahead is recorded already, unless it is an error,
        // which the replay yields first.
        if matches!(shared.read_ahead, Some(Ok(_))) {
            shared.read_ahead = None;
        }
        true
    }
}

/// How a request body is kept so that the request can be replayed after a
/// 401, and so which body type the inner service receives. Chosen on the
/// layer: [`RecordBodies`] (the default) or [`CloneBodies`]
/// ([`AuthLayer::clone_bodies`](crate::AuthLayer::clone_bodies)).
///
/// This trait is sealed: only those two implement it.
pub trait ReplayMode<B>: sealed::Sealed {
    /// The body type the inner service receives.
    type Body;

    #[doc(hidden)]
    fn pass(body: B) -> Self::Body;

    #[doc(hidden)]
    fn keep(body: B, cap: usize) -> (Self::Body, Option<Self::Body>);

    #[doc(hidden)]
    fn start_replay(kept: &Self::Body) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::RecordBodies {}
    impl Sealed for super::CloneBodies {}
}

/// The default [`ReplayMode`]: the inner service receives
/// [`ReplayBody<B>`](ReplayBody), which works for any `'static` body. A body
/// already in memory (an exact size within the replay limit, such as `Full`)
/// is read when the request is stamped and shared by both attempts (a
/// `Full<Bytes>` costs no allocation for it); any other is kept as it
/// streams, up to the replay limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordBodies;

/// A [`ReplayMode`] for bodies that are `Clone` (such as `Full<Bytes>`): the
/// inner service receives the caller's body type `B` itself, and a replay
/// sends a clone of the body, made when the request is stamped.
///
/// Nothing wraps the body, so a client keeps its own body type
/// (`Client<_, Full<Bytes>>`). The clone should be cheap,
/// which it is for bodies over [`Bytes`] (a reference count). A body whose
/// size hint says it is over the replay limit is not cloned and not
/// replayed, as in the default mode. Bodies that are not `Clone` (streams,
/// hyper's `Incoming`, `BoxBody`) need the default mode.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneBodies;

impl<B> ReplayMode<B> for RecordBodies
where
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    type Body = ReplayBody<B>;

    #[inline]
    fn pass(body: B) -> ReplayBody<B> {
        ReplayBody::pass(body)
    }

    #[inline]
    fn keep(body: B, cap: usize) -> (ReplayBody<B>, Option<ReplayBody<B>>) {
        ReplayBody::recorded(body, cap)
    }

    #[inline]
    fn start_replay(kept: &ReplayBody<B>) -> bool {
        kept.start_replay()
    }
}

impl<B> ReplayMode<B> for CloneBodies
where
    B: Body + Clone,
{
    type Body = B;

    #[inline]
    fn pass(body: B) -> B {
        body
    }

    #[inline]
    fn keep(body: B, cap: usize) -> (B, Option<B>) {
        if body.size_hint().lower() > cap as u64 {
            return (body, None);
        }
        (body.clone(), Some(body))
    }

    #[inline]
    fn start_replay(_: &B) -> bool {
        true
    }
}

impl<B: Default> Default for ReplayBody<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> From<Bytes> for ReplayBody<B> {
    fn from(bytes: Bytes) -> Self {
        Self::data(bytes)
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let other = match &mut self.get_mut().kind {
            Kind::Data(data) if data.is_empty() => return Poll::Ready(None),
            Kind::Data(data) => return Poll::Ready(Some(Ok(Frame::data(mem::take(data))))),
            Kind::Boxed(other) => other.as_mut(),
        };
        match other.project() {
            OtherProj::Plain { body } => body
                .poll_frame(cx)
                .map_ok(|frame| frame.map_data(to_bytes))
                .map_err(Into::into),
            OtherProj::Recording { shared } => {
                let mut shared = lock(shared);
                if shared.replaying {
                    return Poll::Ready(Some(Err(TAKEN_OVER.into())));
                }
                shared.poll_recording(cx)
            }
            OtherProj::Replaying { shared, next } => {
                let mut shared = lock(shared);
                if let Some(chunk) = shared.kept.get(*next) {
                    *next += 1;
                    return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
                }
                shared.poll_rest(cx)
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        let other = match &self.kind {
            Kind::Data(data) => return data.is_empty(),
            Kind::Boxed(other) => &**other,
        };
        match other {
            Other::Plain { body } => body.is_end_stream(),
            Other::Recording { shared } => lock(shared).rest_is_end(),
            Other::Replaying { shared, next } => {
                let shared = lock(shared);
                // Kept trailers are still to be sent by the replay.
                *next >= shared.kept.len() && shared.rest_is_end() && shared.trailers.is_none()
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        let other = match &self.kind {
            Kind::Data(data) => return SizeHint::with_exact(data.len() as u64),
            Kind::Boxed(other) => &**other,
        };
        match other {
            Other::Plain { body } => body.size_hint(),
            Other::Recording { shared } => lock(shared).rest_size_hint(),
            // The replay sends the whole body again.
            Other::Replaying { shared, .. } => lock(shared).hint,
        }
    }
}

impl<B> Shared<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn poll_recording(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.read_ahead.take() {
            return Poll::Ready(Some(frame));
        }
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match std::task::ready!(body.as_mut().poll_frame(cx)) {
            None => {
                self.body = None;
                return Poll::Ready(None);
            }
            Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
            Some(Ok(frame)) => frame.map_data(to_bytes),
        };
        self.record(&frame);
        Poll::Ready(Some(Ok(frame)))
    }

    /// Keeps a frame the first attempt reads, for the replay.
    fn record(&mut self, frame: &Frame<Bytes>) {
        if self.overflowed {
            return;
        }
        if let Some(data) = frame.data_ref() {
            if self.kept_len + data.len() > self.cap {
                self.overflowed = true;
                self.kept = Kept::default();
            } else {
                self.kept_len += data.len();
                self.kept.push(data.clone());
            }
        } else if let Some(trailers) = frame.trailers_ref() {
            self.trailers = Some(trailers.clone());
        }
    }

    fn poll_rest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.read_ahead.take() {
            return Poll::Ready(Some(frame));
        }
        if let Some(body) = self.body.as_mut() {
            match std::task::ready!(body.as_mut().poll_frame(cx)) {
                Some(frame) => {
                    return Poll::Ready(Some(
                        frame.map(|f| f.map_data(to_bytes)).map_err(Into::into),
                    ))
                }
                None => self.body = None,
            }
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

impl<B: Body> Shared<B> {
    /// Whether nothing is left of the caller's body (or read ahead of it).
    fn rest_is_end(&self) -> bool {
        self.read_ahead.is_none() && self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    /// What the first attempt has left to read.
    fn rest_size_hint(&self) -> SizeHint {
        let ahead = match &self.read_ahead {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        let rest = self
            .body
            .as_ref()
            .map_or(SizeHint::with_exact(0), |body| body.size_hint());
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(ahead));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(ahead));
        }
        hint
    }
}

impl<B> ReplayBody<B> {
    fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Data(_) => "in memory",
            Kind::Boxed(other) => match &**other {
                Other::Plain { .. } => "plain",
                Other::Recording { .. } => "recording",
                Other::Replaying { .. } => "replaying",
            },
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody")
            .field("kind", &self.kind_name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::{BodyExt, Full, StreamBody};

    type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

    fn chunks(parts: &[&'static [u8]]) -> Chunks {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(stream::iter(frames))
    }

    async fn read_n<B>(body: &mut ReplayBody<B>, n: usize) -> Vec<u8>
    where
        B: Body + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut out = Vec::new();
        for _ in 0..n {
            match body.frame().await {
                Some(Ok(frame)) => out.extend_from_slice(&frame.into_data().unwrap()),
                other => panic!("unexpected {:?}", other.map(|r| r.is_ok())),
            }
        }
        out
    }

    #[tokio::test]
    async fn replay_after_partial_read_sends_prefix_then_rest() {
        let (mut first, replay) = ReplayBody::recorded(chunks(&[b"ab", b"cd", b"ef"]), 1024);
        assert_eq!(read_n(&mut first, 1).await, b"ab");
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        // The first attempt can no longer read.
        assert!(first.frame().await.unwrap().is_err());
        let all = replay.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcdef");
    }

    #[tokio::test]
    async fn replay_after_full_read_sends_everything_once() {
        let (first, replay) = ReplayBody::recorded(chunks(&[b"ab", b"cd"]), 1024);
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcd");
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abcd");
    }

    #[tokio::test]
    async fn over_the_cap_refuses_replay() {
        let (first, replay) = ReplayBody::recorded(chunks(&[b"abc", b"def"]), 4);
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcdef");
        assert!(!replay.unwrap().start_replay());
    }

    #[test]
    fn a_request_with_a_replay_body_is_no_larger_than_with_full() {
        use std::mem::size_of;
        assert_eq!(size_of::<ReplayBody<Full<Bytes>>>(), size_of::<Bytes>());
        assert_eq!(
            size_of::<http::Request<ReplayBody<Full<Bytes>>>>(),
            size_of::<http::Request<Full<Bytes>>>()
        );
    }

    #[tokio::test]
    async fn exact_size_over_cap_is_not_recorded() {
        let boxed = Full::new(Bytes::from_static(b"abcdef"))
            .map_err(BoxError::from)
            .boxed();
        let (first, replay) = ReplayBody::recorded(boxed, 4);
        assert!(replay.is_none());
        assert_eq!(first.kind_name(), "plain");
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcdef");

        // `Full<Bytes>` is taken apart, and still not kept for a replay.
        let (first, replay) = ReplayBody::recorded(Full::new(Bytes::from_static(b"abcdef")), 4);
        assert!(replay.is_none());
        assert_eq!(first.kind_name(), "in memory");
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcdef");
    }

    #[tokio::test]
    async fn full_bytes_is_held_as_its_bytes() {
        let data = Bytes::from(vec![b'x'; 100]);
        // Recognised by its type, and only it: an equal body of another
        // type takes the generic path. (`tests/allocations.rs` asserts that
        // a stamped `Full<Bytes>` costs no allocation.)
        let taken = full_bytes(&mut Full::new(data.clone())).unwrap();
        assert_eq!(taken.as_ptr(), data.as_ptr());
        let mut boxed = Full::new(data.clone()).map_err(BoxError::from).boxed();
        assert!(full_bytes(&mut boxed).is_none());
        assert_eq!(full_bytes(&mut Full::new(Bytes::new())), Some(Bytes::new()));

        let (first, replay) = ReplayBody::recorded(Full::new(data.clone()), 1024);
        let replay = replay.unwrap();
        assert_eq!(first.kind_name(), "in memory");
        assert_eq!(replay.kind_name(), "in memory");
        // Both attempts send the caller's bytes themselves, not a copy.
        let sent = first.collect().await.unwrap().to_bytes();
        assert_eq!(sent.as_ptr(), data.as_ptr());
        assert!(replay.start_replay());
        assert_eq!(replay.collect().await.unwrap().to_bytes(), data);

        let passed = <RecordBodies as ReplayMode<_>>::pass(Full::new(data.clone()));
        assert_eq!(passed.kind_name(), "in memory");
        assert_eq!(passed.collect().await.unwrap().to_bytes(), data);
        let empty = <RecordBodies as ReplayMode<_>>::pass(Full::new(Bytes::new()));
        assert!(empty.is_end_stream());
    }

    #[tokio::test]
    async fn recording_reports_end_and_size_as_it_is_read() {
        let (mut first, _replay) = ReplayBody::recorded(chunks(&[b"ab", b"cd"]), 1024);
        assert!(!first.is_end_stream());
        assert_eq!(read_n(&mut first, 2).await, b"abcd");
        // The stream body only knows it has ended once polled past the end.
        assert!(first.frame().await.is_none());
        assert!(first.is_end_stream());
        assert_eq!(first.size_hint().exact(), Some(0));

        let (mut first, _replay) =
            ReplayBody::recorded(Full::new(Bytes::from_static(b"abcdef")), 1024);
        assert!(!first.is_end_stream());
        assert_eq!(first.size_hint().exact(), Some(6));
        assert_eq!(read_n(&mut first, 1).await, b"abcdef");
        assert!(first.is_end_stream());
        assert_eq!(first.size_hint().exact(), Some(0));
    }

    /// An exact-size body that is not ready when the request is stamped.
    struct LateFull {
        data: Option<Bytes>,
        polls: usize,
    }

    impl Body for LateFull {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.polls += 1;
            if self.polls == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
        }

        fn is_end_stream(&self) -> bool {
            self.data.is_none()
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
        }
    }

    #[tokio::test]
    async fn in_memory_body_is_read_when_stamped_and_sent_by_both_attempts() {
        let (first, replay) = ReplayBody::recorded(Full::new(Bytes::from_static(b"{}")), 1024);
        assert_eq!(first.kind_name(), "in memory");
        let replay = replay.unwrap();
        assert_eq!(replay.kind_name(), "in memory");
        assert_eq!(first.size_hint().exact(), Some(2));
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"{}");
        assert!(replay.start_replay());
        assert_eq!(replay.size_hint().exact(), Some(2));
        assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"{}");
    }

    #[tokio::test]
    async fn in_memory_body_replays_although_the_first_attempt_never_read_it() {
        let (_first, replay) = ReplayBody::recorded(Full::new(Bytes::from_static(b"abc")), 3);
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abc");
    }

    #[tokio::test]
    async fn exact_size_body_not_ready_when_stamped_is_recorded_as_it_streams() {
        let body = LateFull {
            data: Some(Bytes::from_static(b"late")),
            polls: 0,
        };
        let (first, replay) = ReplayBody::recorded(body, 1024);
        assert_eq!(first.kind_name(), "recording");
        assert!(!first.is_end_stream());
        assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"late");
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"late");
    }

    /// An exact-size body of several frames, all ready at once.
    struct Frames {
        frames: std::collections::VecDeque<Frame<Bytes>>,
    }

    impl Frames {
        fn new(parts: &[&'static [u8]], trailers: Option<HeaderMap>) -> Self {
            let parts = parts.iter().map(|p| Bytes::from_static(p));
            Self::from_chunks(parts, trailers)
        }

        fn from_chunks(parts: impl Iterator<Item = Bytes>, trailers: Option<HeaderMap>) -> Self {
            let mut frames: std::collections::VecDeque<_> = parts.map(Frame::data).collect();
            frames.extend(trailers.map(Frame::trailers));
            Self { frames }
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.frames.pop_front().map(Ok))
        }

        fn is_end_stream(&self) -> bool {
            self.frames.is_empty()
        }

        fn size_hint(&self) -> SizeHint {
            let data = self.frames.iter().filter_map(Frame::data_ref);
            SizeHint::with_exact(data.map(|d| d.len() as u64).sum())
        }
    }

    #[tokio::test]
    async fn exact_size_body_of_several_frames_keeps_the_frame_read_ahead() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-check", "1".parse().unwrap());
        let (mut first, replay) =
            ReplayBody::recorded(Frames::new(&[b"ab", b"cd"], Some(trailers.clone())), 1024);
        assert_eq!(first.kind_name(), "recording");
        // The frame read ahead still counts as unread.
        assert!(!first.is_end_stream());
        assert_eq!(first.size_hint().exact(), Some(4));
        assert_eq!(read_n(&mut first, 1).await, b"ab");
        assert_eq!(first.size_hint().exact(), Some(2));
        let collected = first.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(&collected.to_bytes()[..], b"cd");

        let replay = replay.unwrap();
        assert!(replay.start_replay());
        let again = replay.collect().await.unwrap();
        assert_eq!(again.trailers(), Some(&trailers));
        assert_eq!(&again.to_bytes()[..], b"abcd");
    }

    #[tokio::test]
    async fn frame_read_ahead_is_replayed_once_when_the_first_attempt_never_read() {
        let (_first, replay) = ReplayBody::recorded(Frames::new(&[b"ab", b"cd"], None), 1024);
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        let again = replay.collect().await.unwrap().to_bytes();
        assert_eq!(&again[..], b"abcd");
    }

    #[tokio::test]
    async fn recording_with_trailers_reports_its_end_once_read() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-check", "1".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"xy"))),
            Ok(Frame::trailers(trailers)),
        ];
        let (mut first, replay) = ReplayBody::recorded(StreamBody::new(stream::iter(frames)), 64);
        while first.frame().await.is_some() {}
        assert!(first.is_end_stream(), "the first attempt read everything");
        // The replay has everything still to send, trailers included.
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        assert!(!replay.is_end_stream());
    }

    #[tokio::test]
    async fn empty_body_is_always_replayable() {
        let (first, replay) = ReplayBody::recorded(http_body_util::Empty::<Bytes>::new(), 0);
        assert!(first.is_end_stream());
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        assert!(replay.is_end_stream());
        assert_eq!(replay.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn replay_keeps_trailers_and_size_hint() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-check", "1".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"xy"))),
            Ok(Frame::trailers(trailers.clone())),
        ];
        let (first, replay) = ReplayBody::recorded(StreamBody::new(stream::iter(frames)), 64);
        let collected = first.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        let replay = replay.unwrap();
        assert!(replay.start_replay());
        let again = replay.collect().await.unwrap();
        assert_eq!(again.trailers(), Some(&trailers));
        assert_eq!(&again.to_bytes()[..], b"xy");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The first attempt reads `read_first` frames, then the server
        /// answers 401. `exact` sends a body that knows its exact size (so
        /// it is read when stamped), otherwise one that streams without one.
        fn run(
            chunks: Vec<Vec<u8>>,
            cap: usize,
            read_first: usize,
            exact: bool,
        ) -> Result<(), TestCaseError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let original: Vec<u8> = chunks.concat();
            let chunks = chunks.into_iter().map(Bytes::from);
            runtime.block_on(async move {
                if exact {
                    let body = Frames::from_chunks(chunks, None);
                    check(body, &original, cap, read_first).await
                } else {
                    let frames: Vec<Result<Frame<Bytes>, BoxError>> =
                        chunks.map(|c| Ok(Frame::data(c))).collect();
                    let body = StreamBody::new(stream::iter(frames));
                    check(body, &original, cap, read_first).await
                }
            })
        }

        async fn check<B>(
            body: B,
            original: &[u8],
            cap: usize,
            read_first: usize,
        ) -> Result<(), TestCaseError>
        where
            B: Body<Data = Bytes, Error = BoxError> + Unpin + 'static,
        {
            let exact = body.size_hint().exact().is_some();
            let (mut first, replay) = ReplayBody::recorded(body, cap);
            let mut seen = Vec::new();
            for _ in 0..read_first {
                match first.frame().await {
                    Some(Ok(frame)) => seen.extend_from_slice(&frame.into_data().unwrap()),
                    _ => break,
                }
            }
            prop_assert!(original.starts_with(&seen));
            let Some(replay) = replay else {
                // Refused up front: only a body known to be over the cap.
                prop_assert!(exact && original.len() > cap, "refused up front");
                return Ok(());
            };
            if replay.start_replay() {
                prop_assert!(seen.len() <= cap, "kept more than the cap");
                let again = replay.collect().await.unwrap().to_bytes();
                prop_assert_eq!(&again[..], original, "exact bytes, once");
            } else {
                prop_assert!(seen.len() > cap, "refused although within the cap");
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn replays_exactly_the_original_bytes_or_refuses(
                chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..12),
                cap in 0usize..512,
                read_first in 0usize..14,
                exact in any::<bool>(),
            ) {
                run(chunks, cap, read_first, exact)?;
            }
        }
    }
}
