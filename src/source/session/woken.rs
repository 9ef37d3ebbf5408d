//! [`PollWhenWoken`]: a future polled through only after it woke.
//!
//! Every request waiting on one login polls the same `Shared` login future,
//! and `Shared` wakes all of them each time the login makes progress. Each
//! of those polls would drive the login itself (its timeout, its transport)
//! although only one wake happened: in a renewal storm, about twice per
//! waiting request. Behind this wrapper it is driven once per wake; the
//! other polls only register the waiter.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Polls the wrapped future on its first poll, and afterwards only once it
/// has woken since the last time it was polled.
pub(crate) struct PollWhenWoken<F> {
    future: F,
    signal: Arc<Signal>,
    /// The waker the wrapped future is polled with: `signal`'s.
    waker: Waker,
}

struct Signal {
    woken: AtomicBool,
    /// The waker of whoever polls the wrapper.
    outer: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.outer.wake();
    }
}

impl<F: Future + Unpin> PollWhenWoken<F> {
    pub(crate) fn new(future: F) -> Self {
        let signal = Arc::new(Signal {
            // Not polled yet: the first poll goes through.
            woken: AtomicBool::new(true),
            outer: AtomicWaker::new(),
        });
        Self {
            future,
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<F: Future + Unpin> Future for PollWhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered before the flag is read: a wake after the read reaches
        // this waker.
        this.signal.outer.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.future).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::FutureExt;
    use tokio::sync::oneshot;

    use super::*;

    /// Counts its polls, and finishes with what `rx` sends.
    fn counted(
        mut rx: oneshot::Receiver<u32>,
        polls: Arc<AtomicUsize>,
    ) -> impl Future<Output = u32> + Unpin {
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            rx.poll_unpin(cx).map(|r| r.unwrap())
        })
    }

    #[test]
    fn polls_through_only_after_a_wake() {
        let (tx, rx) = oneshot::channel();
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = tokio_test::task::spawn(PollWhenWoken::new(counted(rx, polls.clone())));

        assert!(gated.poll().is_pending());
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "the first poll goes through"
        );
        for _ in 0..5 {
            assert!(gated.poll().is_pending());
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "polls without a wake do not reach the wrapped future"
        );

        tx.send(7).unwrap();
        assert!(
            gated.is_woken(),
            "the wrapped future's wake reaches the caller"
        );
        assert_eq!(gated.poll(), Poll::Ready(7));
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    /// A future that wakes itself and yields (as tokio's cooperative
    /// budget makes a timer or a channel do) is polled again.
    #[test]
    fn a_wake_during_its_own_poll_lets_the_next_poll_through() {
        let mut yielded = false;
        let yielding = std::future::poll_fn(move |cx| {
            if yielded {
                return Poll::Ready(3);
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let mut gated = tokio_test::task::spawn(PollWhenWoken::new(yielding));
        assert!(gated.poll().is_pending());
        assert!(gated.is_woken());
        assert_eq!(gated.poll(), Poll::Ready(3));
    }

    #[test]
    fn a_wake_reaches_the_latest_poller() {
        let (tx, rx) = oneshot::channel();
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = PollWhenWoken::new(counted(rx, polls));
        let mut first = tokio_test::task::spawn(());
        let mut second = tokio_test::task::spawn(());
        assert!(first
            .enter(|cx, _| Pin::new(&mut gated).poll(cx))
            .is_pending());
        assert!(second
            .enter(|cx, _| Pin::new(&mut gated).poll(cx))
            .is_pending());

        tx.send(1).unwrap();
        assert!(second.is_woken(), "the latest poller is woken");
        assert_eq!(
            second.enter(|cx, _| Pin::new(&mut gated).poll(cx)),
            Poll::Ready(1)
        );
    }
}
