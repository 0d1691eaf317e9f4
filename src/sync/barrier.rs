//! A reusable barrier, shaped as `std::sync::Barrier`: `n` callers of `wait` meet, one of
//! them is the leader, and the barrier starts over for the next generation.
//!
//! The arrival count and the queue of early arrivals live under one short std lock. The n-th
//! arrival is the leader: it resets the count and grants every queued waiter in the same
//! critical section, so the next generation starts empty however slowly the released waiters
//! get to run, and each waiter's own token (not a shared generation number) says it was
//! released.
//!
//! Cancellation: a waiter unwinding with `Cancelled` before its generation completed takes its
//! arrival back (the barrier then waits for another caller instead of releasing early); one
//! already released has nothing to undo.

use super::waitq::{self, OnUnwind, Token, WaitQueue};
use crate::sched::park::{WaitReason, Waiter};
use std::fmt;
use std::sync::Mutex as StdMutex;

/// Token value: the generation completed.
const RELEASED: usize = 1;

struct Inner {
    /// Arrivals in the current generation.
    count: usize,
    queue: WaitQueue,
}

/// Makes `n` goroutines or threads wait for each other, generation after generation.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// gort::run(|| {
///     let b = Arc::new(gort::sync::Barrier::new(4));
///     let leaders = Arc::new(AtomicUsize::new(0));
///     let hs: Vec<_> = (0..4)
///         .map(|_| {
///             let (b, leaders) = (b.clone(), leaders.clone());
///             gort::go(move || {
///                 if b.wait().is_leader() {
///                     leaders.fetch_add(1, SeqCst);
///                 }
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert_eq!(leaders.load(SeqCst), 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    inner: StdMutex<Inner>,
}

/// What [`Barrier::wait`] returns: whether this caller was the generation's leader.
///
/// ```
/// let b = gort::sync::Barrier::new(1);
/// assert!(b.wait().is_leader());
/// ```
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one caller per generation (the last to arrive).
    ///
    /// ```
    /// assert!(gort::sync::Barrier::new(1).wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` callers (0 behaves as 1, as `std`'s does: every call returns at
    /// once as the leader).
    ///
    /// ```
    /// static B: gort::sync::Barrier = gort::sync::Barrier::new(1);
    /// assert!(B.wait().is_leader());
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n: if n == 0 { 1 } else { n },
            inner: StdMutex::new(Inner {
                count: 0,
                queue: WaitQueue::new(),
            }),
        }
    }

    /// Waits until `n` callers have called `wait` in this generation: the first `n - 1` park
    /// (or block), the `n`-th releases them all and is the leader.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let b = Arc::new(gort::sync::Barrier::new(2));
    /// let b2 = b.clone();
    /// let t = std::thread::spawn(move || b2.wait().is_leader());
    /// let me = b.wait().is_leader();
    /// assert!(me ^ t.join().unwrap());
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        let mut s = waitq::lock(&self.inner);
        s.count += 1;
        if s.count >= self.n {
            s.count = 0;
            let ws = s.queue.grant_all(RELEASED);
            drop(s);
            waitq::wake_all(ws);
            return BarrierWaitResult(true);
        }
        let token = Token::new();
        let w = Waiter::current(WaitReason::Barrier);
        let is_g = w.is_goroutine();
        s.queue.push_back(&token, w, ());
        let cancel = OnUnwind::new(|| {
            let mut s = waitq::lock(&self.inner);
            if s.queue.remove(&token).is_some() {
                s.count -= 1;
            }
        });
        waitq::wait(&self.inner, s, &token, is_g, |s| &mut s.queue);
        cancel.disarm();
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("waiting", &waitq::lock(&self.inner).count)
            .finish()
    }
}

impl fmt::Debug for BarrierWaitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWaitResult")
            .field("is_leader", &self.0)
            .finish()
    }
}
