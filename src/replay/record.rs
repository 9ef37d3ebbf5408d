//! [`ReplayBody`]: a streaming body kept as it is sent, so that a request
//! answered 401 can be sent once more.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::ReplayableBody;
use crate::error::BoxError;

/// What the first attempt reads once the replay has taken the body over.
const TAKEN_OVER: &str = "request body was handed over to the replayed request";

/// Makes any request body replayable with a renewing source: the bytes the
/// first attempt sends are kept (reference-counted chunks, not copies) up to
/// the replay limit, never buffered up front.
///
/// A replay sends the kept chunks, then the part of the body the first
/// attempt never read, so no byte is sent twice or lost however early the
/// server answered; trailers are kept too. Past the limit the kept chunks
/// are dropped and a 401 reaches the caller marked
/// [`ReplaySkipped`](crate::ReplaySkipped).
///
/// It yields [`Bytes`] chunks and boxed errors, which hyper and hyper-util
/// clients accept, and is always `Unpin` (the body is boxed).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, StreamBody};
/// use http_body::Frame;
/// use infobip_auth::ReplayBody;
///
/// let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(Bytes::from("{}")))]);
/// // With a renewing source the client is `Client<_, ReplayBody<StreamBody<..>>>`.
/// let body = ReplayBody::new(StreamBody::new(chunks));
/// # let _ = body;
/// ```
pub struct ReplayBody<B> {
    state: State<B>,
}

enum State<B> {
    /// Bytes in memory, from `From<Bytes>` (a login request, for example).
    Data(Bytes),
    /// Not kept for a replay: the body as it is.
    Plain(Pin<Box<B>>),
    /// The first attempt: reads the body and keeps what it reads.
    Recording(Arc<Mutex<Kept<B>>>),
    /// The replay: the kept chunks from `next` on, then the rest.
    Replaying {
        kept: Arc<Mutex<Kept<B>>>,
        next: usize,
    },
}

/// What both attempts of one request share.
struct Kept<B> {
    /// What is left of the body; `None` once it has ended.
    body: Option<Pin<Box<B>>>,
    chunks: Vec<Bytes>,
    len: usize,
    limit: usize,
    trailers: Option<HeaderMap>,
    /// Over the limit, or the body failed: no replay.
    spoiled: bool,
    /// The replay has taken the body over from the first attempt.
    replaying: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_bytes<D: Buf>(mut data: D) -> Bytes {
    // Zero-copy when `D` is already `Bytes`.
    data.copy_to_bytes(data.remaining())
}

type PollFrame = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

impl<B> ReplayBody<B> {
    /// Wraps `body` (in a box). Nothing is kept until the request is
    /// stamped by a renewing source.
    pub fn new(body: B) -> Self {
        Self {
            state: State::Plain(Box::pin(body)),
        }
    }
}

impl<B: Body> Kept<B>
where
    B::Error: Into<BoxError>,
{
    fn record(&mut self, frame: &Frame<Bytes>) {
        if self.spoiled {
            return;
        }
        if let Some(data) = frame.data_ref() {
            if data.is_empty() {
                return;
            }
            self.len += data.len();
            if self.len > self.limit {
                self.spoiled = true;
                self.chunks = Vec::new();
            } else {
                self.chunks.push(data.clone());
            }
        } else if let Some(trailers) = frame.trailers_ref() {
            self.trailers = Some(trailers.clone());
        }
    }

    /// The next frame of what is left of the body; `None` at its end.
    fn poll_rest(&mut self, cx: &mut Context<'_>) -> PollFrame {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(body.as_mut().poll_frame(cx));
        if frame.is_none() {
            self.body = None;
        }
        Poll::Ready(frame.map(|f| f.map(|f| f.map_data(to_bytes)).map_err(Into::into)))
    }

    fn rest_is_end(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn rest_size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B> ReplayableBody for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Starts keeping the body as it is sent; `None` if its size hint says
    /// it is over `limit`, or if it is kept already.
    fn replay_copy(&mut self, limit: usize) -> Option<Self> {
        match &self.state {
            State::Data(data) => return Some(Self::from(data.clone())),
            State::Plain(body) if body.size_hint().lower() <= limit as u64 => {}
            _ => return None,
        }
        let kept = Arc::new(Mutex::new(Kept {
            body: None,
            chunks: Vec::new(),
            len: 0,
            limit,
            trailers: None,
            spoiled: false,
            replaying: false,
        }));
        if let State::Plain(body) =
            std::mem::replace(&mut self.state, State::Recording(kept.clone()))
        {
            lock(&kept).body = Some(body);
        }
        Some(Self {
            state: State::Replaying { kept, next: 0 },
        })
    }

    /// Claims the body from the first attempt, unless more than the limit
    /// was read; the first attempt then fails if it reads on.
    fn start_replay(&self) -> bool {
        let State::Replaying { kept, .. } = &self.state else {
            return matches!(self.state, State::Data(_));
        };
        let mut kept = lock(kept);
        kept.replaying = !kept.spoiled;
        kept.replaying
    }
}

impl<B> From<Bytes> for ReplayBody<B> {
    fn from(data: Bytes) -> Self {
        Self {
            state: State::Data(data),
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> PollFrame {
        match &mut self.get_mut().state {
            State::Data(data) if data.is_empty() => Poll::Ready(None),
            State::Data(data) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(data))))),
            State::Plain(body) => body
                .as_mut()
                .poll_frame(cx)
                .map_ok(|frame| frame.map_data(to_bytes))
                .map_err(Into::into),
            State::Recording(kept) => {
                let mut kept = lock(kept);
                if kept.replaying {
                    return Poll::Ready(Some(Err(TAKEN_OVER.into())));
                }
                let frame = ready!(kept.poll_rest(cx));
                match &frame {
                    Some(Ok(frame)) => kept.record(frame),
                    Some(Err(_)) => kept.spoiled = true,
                    None => {}
                }
                Poll::Ready(frame)
            }
            State::Replaying { kept, next } => {
                let mut kept = lock(kept);
                if let Some(chunk) = kept.chunks.get(*next) {
                    *next += 1;
                    return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
                }
                match ready!(kept.poll_rest(cx)) {
                    // Trailers the first attempt read end the replay too.
                    None => Poll::Ready(kept.trailers.take().map(|t| Ok(Frame::trailers(t)))),
                    frame => Poll::Ready(frame),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Data(data) => data.is_empty(),
            State::Plain(body) => body.is_end_stream(),
            State::Recording(kept) => lock(kept).rest_is_end(),
            State::Replaying { kept, next } => {
                let kept = lock(kept);
                *next >= kept.chunks.len() && kept.rest_is_end() && kept.trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Data(data) => SizeHint::with_exact(data.len() as u64),
            State::Plain(body) => body.size_hint(),
            State::Recording(kept) => lock(kept).rest_size_hint(),
            State::Replaying { kept, next } => {
                let kept = lock(kept);
                let unsent: usize = kept.chunks.iter().skip(*next).map(Bytes::len).sum();
                let rest = kept.rest_size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + unsent as u64);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + unsent as u64);
                }
                hint
            }
        }
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Data(_) => "in memory",
            State::Plain(_) => "plain",
            State::Recording(_) => "recording",
            State::Replaying { .. } => "replaying",
        };
        f.debug_struct("ReplayBody").field("state", &state).finish()
    }
}
