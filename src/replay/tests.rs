use bytes::Bytes;
use futures_util::stream;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full, StreamBody};

use super::{ReplayBody, ReplayableBody};
use crate::error::BoxError;

type Frames = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

/// A streaming body (no exact size) of `parts`, then `trailers` if given.
fn frames(parts: &[&'static [u8]], trailers: Option<HeaderMap>) -> Frames {
    let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
        .iter()
        .map(|p| Ok(Frame::data(Bytes::from_static(p))))
        .collect();
    frames.extend(trailers.map(|t| Ok(Frame::trailers(t))));
    StreamBody::new(stream::iter(frames))
}

fn recorded(parts: &[&'static [u8]], limit: usize) -> (ReplayBody<Frames>, ReplayBody<Frames>) {
    let mut first = ReplayBody::new(frames(parts, None));
    let replay = first.replay_copy(limit).expect("no size hint: kept");
    (first, replay)
}

async fn read_n(body: &mut ReplayBody<Frames>, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        let frame = body.frame().await.expect("a frame").expect("no error");
        out.extend_from_slice(&frame.into_data().unwrap());
    }
    out
}

fn trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-check", "1".parse().unwrap());
    trailers
}

#[tokio::test]
async fn replay_after_partial_read_sends_prefix_then_rest() {
    let (mut first, replay) = recorded(&[b"ab", b"cd", b"ef"], 1024);
    assert_eq!(read_n(&mut first, 1).await, b"ab");
    assert!(replay.start_replay());
    // The first attempt can no longer read.
    assert!(first.frame().await.unwrap().is_err());
    assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abcdef");
}

#[tokio::test]
async fn replay_after_full_read_sends_everything_once() {
    let (first, replay) = recorded(&[b"ab", b"cd"], 1024);
    assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcd");
    assert!(replay.start_replay());
    assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abcd");
}

#[tokio::test]
async fn replay_when_the_first_attempt_never_read_sends_the_whole_body() {
    let (first, replay) = recorded(&[b"ab", b"cd"], 1024);
    drop(first);
    assert!(replay.start_replay());
    assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abcd");
}

#[tokio::test]
async fn over_the_limit_refuses_replay() {
    let (first, replay) = recorded(&[b"abc", b"def"], 4);
    assert_eq!(&first.collect().await.unwrap().to_bytes()[..], b"abcdef");
    assert!(!replay.start_replay());
}

#[tokio::test]
async fn a_body_that_failed_is_not_replayed() {
    let failing: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Err("reset".into()),
    ];
    let mut first = ReplayBody::new(StreamBody::new(stream::iter(failing)));
    let replay = first.replay_copy(1024).unwrap();
    assert!(first.frame().await.unwrap().is_ok());
    assert!(first.frame().await.unwrap().is_err());
    assert!(!replay.start_replay());
}

#[tokio::test]
async fn empty_chunks_are_not_kept() {
    let empties: Vec<&'static [u8]> = vec![b""; 1000];
    let (first, replay) = recorded(&empties, 0);
    assert!(first.collect().await.unwrap().to_bytes().is_empty());
    assert!(replay.start_replay(), "nothing was kept, nothing went over");
}

#[test]
fn a_body_whose_size_hint_is_over_the_limit_is_not_kept() {
    let boxed = Full::new(Bytes::from_static(b"abcdef"))
        .map_err(BoxError::from)
        .boxed();
    assert!(ReplayBody::new(boxed).replay_copy(4).is_none());
    assert!(Full::new(Bytes::from_static(b"abcdef"))
        .replay_copy(4)
        .is_none());
    assert!(String::from("abcdef").replay_copy(4).is_none());
    assert!(String::from("abcd").replay_copy(4).is_some());
}

#[test]
fn a_body_is_kept_once() {
    let (mut first, _replay) = recorded(&[b"ab"], 1024);
    assert!(first.replay_copy(1024).is_none());
}

#[tokio::test]
async fn in_memory_bodies_are_cloned_whole() {
    let data = Bytes::from(vec![b'x'; 100]);
    let mut full = Full::new(data.clone());
    let copy = full.replay_copy(1024).unwrap();
    // Both attempts send the caller's bytes themselves, not a copy.
    let sent = full.collect().await.unwrap().to_bytes();
    assert_eq!(sent.as_ptr(), data.as_ptr());
    assert_eq!(
        copy.collect().await.unwrap().to_bytes().as_ptr(),
        data.as_ptr()
    );

    let copy = Empty::<Bytes>::new().replay_copy(0).unwrap();
    assert!(copy.is_end_stream());
}

#[tokio::test]
async fn bytes_in_memory_are_replayed_by_the_wrapper() {
    let mut body = ReplayBody::<Empty<Bytes>>::from(Bytes::from_static(b"{}"));
    let copy = body.replay_copy(0).unwrap();
    assert!(copy.start_replay());
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"{}");
    assert_eq!(&copy.collect().await.unwrap().to_bytes()[..], b"{}");
}

#[tokio::test]
async fn replay_keeps_trailers_read_by_the_first_attempt() {
    let mut first = ReplayBody::new(frames(&[b"xy"], Some(trailers())));
    let replay = first.replay_copy(64).unwrap();
    let collected = first.collect().await.unwrap();
    assert_eq!(collected.trailers(), Some(&trailers()));
    assert!(replay.start_replay());
    assert!(!replay.is_end_stream(), "the trailers are still to send");
    let again = replay.collect().await.unwrap();
    assert_eq!(again.trailers(), Some(&trailers()));
    assert_eq!(&again.to_bytes()[..], b"xy");
}

#[tokio::test]
async fn replay_sends_trailers_the_first_attempt_never_read() {
    let mut first = ReplayBody::new(frames(&[b"ab", b"cd"], Some(trailers())));
    let replay = first.replay_copy(64).unwrap();
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ab");
    assert!(replay.start_replay());
    let again = replay.collect().await.unwrap();
    assert_eq!(again.trailers(), Some(&trailers()));
    assert_eq!(&again.to_bytes()[..], b"abcd");
}

#[tokio::test]
async fn size_hint_and_end_follow_what_is_left() {
    let mut first = ReplayBody::new(Full::new(Bytes::from_static(b"abcdef")));
    let replay = first.replay_copy(64).unwrap();
    assert_eq!(first.size_hint().exact(), Some(6));
    assert_eq!(replay.size_hint().exact(), Some(6));
    first.frame().await.unwrap().unwrap();
    assert!(first.is_end_stream());
    assert_eq!(first.size_hint().exact(), Some(0));
    // The replay still has everything to send.
    assert!(!replay.is_end_stream());
    assert_eq!(replay.size_hint().exact(), Some(6));
    assert!(replay.start_replay());
    assert_eq!(&replay.collect().await.unwrap().to_bytes()[..], b"abcdef");
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// The first attempt reads `read_first` frames, then the server answers
    /// 401 and the replay claims the body.
    fn run(chunks: Vec<Vec<u8>>, limit: usize, read_first: usize) -> Result<(), TestCaseError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let original: Vec<u8> = chunks.concat();
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from(c))))
            .collect();
        runtime.block_on(async move {
            let mut first = ReplayBody::new(StreamBody::new(stream::iter(frames)));
            let replay = first.replay_copy(limit).expect("no size hint: kept");
            let mut seen = Vec::new();
            for _ in 0..read_first {
                match first.frame().await {
                    Some(Ok(frame)) => seen.extend_from_slice(&frame.into_data().unwrap()),
                    _ => break,
                }
            }
            prop_assert!(original.starts_with(&seen));
            if replay.start_replay() {
                prop_assert!(seen.len() <= limit, "kept more than the limit");
                prop_assert!(first.frame().await.is_some_and(|f| f.is_err()));
                let again = replay.collect().await.unwrap().to_bytes();
                prop_assert_eq!(&again[..], &original[..], "exact bytes, once");
            } else {
                prop_assert!(seen.len() > limit, "refused although within the limit");
            }
            Ok(())
        })
    }

    proptest! {
        #[test]
        fn replays_exactly_the_original_bytes_or_refuses(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..12),
            limit in 0usize..512,
            read_first in 0usize..14,
        ) {
            run(chunks, limit, read_first)?;
        }
    }
}
