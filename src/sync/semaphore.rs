//! A counting semaphore with FIFO fairness (Go's `x/sync/semaphore.Weighted`, one permit per
//! acquire).
//!
//! The permit count and the queue live under one short std lock. A released permit goes
//! straight to the longest waiter (the waker takes the entry out and grants it, so no arriving
//! caller can take it first); `try_acquire` and `acquire` take a free permit only when nobody
//! is queued. So permits are handed out strictly in arrival order.
//!
//! Cancellation: a waiter unwinding with `Cancelled` leaves the queue, or, if a permit had
//! already been granted to it, releases that permit again (to the next waiter, or to the
//! count), so a permit is never lost.

use super::waitq::{self, OnUnwind, Token, WaitQueue};
use crate::sched::park::{WaitReason, Waiter};
use std::fmt;
use std::sync::Mutex as StdMutex;

/// Token value: a permit was handed over.
const GRANTED: usize = 1;

struct Inner {
    permits: usize,
    queue: WaitQueue,
}

/// A counting semaphore: [`acquire`](Semaphore::acquire) waits (FIFO) for one of a number of
/// permits; the permit returns when its [`SemaphorePermit`] drops.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// gort::run(|| {
///     let sem = Arc::new(gort::sync::Semaphore::new(2));
///     let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     let hs: Vec<_> = (0..10)
///         .map(|_| {
///             let (sem, now, max) = (sem.clone(), now.clone(), max.clone());
///             gort::go(move || {
///                 let _p = sem.acquire();
///                 max.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
///                 gort::runtime::gosched();
///                 now.fetch_sub(1, SeqCst);
///             })
///         })
///         .collect();
///     hs.into_iter().for_each(|h| h.join().unwrap());
///     assert!(max.load(SeqCst) <= 2);
/// });
/// ```
pub struct Semaphore {
    inner: StdMutex<Inner>,
}

/// One permit of a [`Semaphore`], released when dropped.
///
/// ```
/// let sem = gort::sync::Semaphore::new(1);
/// let p = sem.acquire();
/// assert!(sem.try_acquire().is_none());
/// drop(p);
/// assert!(sem.try_acquire().is_some());
/// ```
#[must_use = "the permit is released at once if it is not kept"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// ```
    /// static SEM: gort::sync::Semaphore = gort::sync::Semaphore::new(3);
    /// assert_eq!(SEM.available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: StdMutex::new(Inner {
                permits,
                queue: WaitQueue::new(),
            }),
        }
    }

    /// Takes a permit, waiting behind earlier callers until one is free: a goroutine parks, a
    /// plain thread blocks.
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(1);
    /// let p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let mut s = waitq::lock(&self.inner);
        if s.queue.is_empty() && s.permits > 0 {
            s.permits -= 1;
            return SemaphorePermit { sem: self };
        }
        let token = Token::new();
        let w = Waiter::current(WaitReason::Semacquire);
        let is_g = w.is_goroutine();
        s.queue.push_back(&token, w, ());
        let cancel = OnUnwind::new(|| self.abandon(&token));
        waitq::wait(&self.inner, s, &token, is_g, |s| &mut s.queue);
        cancel.disarm();
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free and nobody is waiting for one (so it never jumps the
    /// queue).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(0);
    /// assert!(sem.try_acquire().is_none());
    /// sem.add_permits(1);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut s = waitq::lock(&self.inner);
        if s.queue.is_empty() && s.permits > 0 {
            s.permits -= 1;
            Some(SemaphorePermit { sem: self })
        } else {
            None
        }
    }

    /// Adds `n` permits: they go to the longest waiters first, the rest to the free count.
    ///
    /// # Panics
    /// If the free count would overflow `usize` (nothing is added then).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut s = waitq::lock(&self.inner);
        let granted = n.min(s.queue.len());
        let Some(permits) = s.permits.checked_add(n - granted) else {
            drop(s);
            panic!("gort: Semaphore::add_permits overflows the permit count");
        };
        s.permits = permits;
        let ws: Vec<Waiter> = (0..granted)
            .filter_map(|_| s.queue.grant_front(GRANTED))
            .collect();
        drop(s);
        waitq::wake_all(ws);
    }

    /// The number of free permits right now (a snapshot).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(2);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        waitq::lock(&self.inner).permits
    }

    /// Cancellation clean-up: leave the queue, or give a granted permit back.
    fn abandon(&self, token: &Token) {
        let removed = waitq::lock(&self.inner).queue.remove(token).is_some();
        if !removed {
            debug_assert_eq!(token.get(), GRANTED);
            self.add_permits(1);
        }
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = waitq::lock(&self.inner);
        f.debug_struct("Semaphore")
            .field("permits", &s.permits)
            .field("waiters", &s.queue.len())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
