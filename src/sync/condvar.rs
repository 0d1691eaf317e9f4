//! Go's `sync.Cond`: wait for a condition under a [`Mutex`], woken by `notify_one`/`notify_all`.
//!
//! Like Go's `notifyList`, and unlike `std::sync::Condvar`:
//! - **No spurious wake-ups**: `wait` returns only after a notification (and `wait_timeout`
//!   only after a notification or its deadline). Callers still re-check their condition in a
//!   loop, because another goroutine may change it between the notification and the relock.
//! - **FIFO**: `notify_one` wakes the longest waiter.
//!
//! A waiter queues itself under the condvar's queue lock *before* it unlocks the user's mutex
//! (and parks before the queue lock is released), so a notification sent by anyone who locked
//! the mutex after the waiter decided to wait always finds it. Lock order: the condvar's queue
//! lock, then the mutex's (`wait` unlocks the mutex while holding the queue lock); the mutex
//! never takes the condvar's lock.
//!
//! Cancellation: a waiter unwinding with `Cancelled` leaves the queue; if a `notify_one` had
//! already picked it, the notification passes on to the next waiter, so it is not lost.

use super::mutex::MutexGuard;
use super::waitq::{self, OnUnwind, Token, WaitQueue};
use crate::sched::park::{WaitReason, Waiter};
use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

/// Token values: which notification woke the waiter.
const ONE: usize = 1;
const ALL: usize = 2;

/// A condition variable for gort's [`Mutex`](super::Mutex), with Go's `sync.Cond` semantics:
/// no spurious wake-ups, and `notify_one` wakes the longest waiter.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Condvar, Mutex};
/// gort::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     gort::go(move || {
///         *p2.0.lock() = true;
///         p2.1.notify_one();
///     });
///     let (m, cv) = &*pair;
///     let mut ready = m.lock();
///     while !*ready {
///         ready = cv.wait(ready);
///     }
/// });
/// ```
pub struct Condvar {
    queue: StdMutex<WaitQueue>,
}

impl Condvar {
    /// A condition variable with no waiters.
    ///
    /// ```
    /// static CV: gort::sync::Condvar = gort::sync::Condvar::new();
    /// CV.notify_all(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            queue: StdMutex::new(WaitQueue::new()),
        }
    }

    /// Unlocks `guard`'s mutex, waits for a notification, and locks the mutex again before
    /// returning its new guard. A goroutine parks, a plain thread blocks.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Condvar, Mutex};
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p2 = pair.clone();
    /// let t = std::thread::spawn(move || {
    ///     *p2.0.lock() = 1;
    ///     p2.1.notify_all();
    /// });
    /// let mut g = pair.0.lock();
    /// while *g == 0 {
    ///     g = pair.1.wait(g);
    /// }
    /// t.join().unwrap();
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        let token = Token::new();
        let w = Waiter::current(WaitReason::CondWait);
        let is_g = w.is_goroutine();
        let mut q = waitq::lock(&self.queue);
        q.push_back(&token, w, ());
        // Unlock under the queue lock: a notifier that locks the mutex next finds us queued.
        // (The unlock never parks, so our waiter stays current.)
        drop(guard);
        let cancel = OnUnwind::new(|| self.abandon(&token));
        waitq::wait(&self.queue, q, &token, is_g, |q| q);
        cancel.disarm();
        mutex.lock()
    }

    /// [`wait`](Condvar::wait) for at most `dur`. Returns the relocked guard and whether the
    /// wait timed out; a notification that races with the deadline counts (then `false`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = gort::sync::Mutex::new(());
    /// let cv = gort::sync::Condvar::new();
    /// let (_g, timed_out) = cv.wait_timeout(m.lock(), Duration::from_millis(10));
    /// assert!(timed_out);
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let Some(deadline) = Instant::now().checked_add(dur) else {
            return (self.wait(guard), false); // beyond any clock: no timeout
        };
        let mutex = guard.mutex;
        let token = Token::new();
        let w = Waiter::current(WaitReason::CondWait);
        let alarm = w.alarm();
        let mut q = waitq::lock(&self.queue);
        q.push_back(&token, w, ());
        drop(guard);
        let cancel = OnUnwind::new(|| self.abandon(&token));
        let got = waitq::wait_until(&self.queue, q, &token, alarm, deadline, |q| q);
        cancel.disarm();
        (mutex.lock(), got.is_none())
    }

    /// Wakes the longest-waiting waiter, if any.
    ///
    /// ```
    /// gort::sync::Condvar::new().notify_one();
    /// ```
    pub fn notify_one(&self) {
        let w = waitq::lock(&self.queue).grant_front(ONE);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Wakes every current waiter (not those that start waiting later).
    ///
    /// ```
    /// gort::sync::Condvar::new().notify_all();
    /// ```
    pub fn notify_all(&self) {
        let ws = waitq::lock(&self.queue).grant_all(ALL);
        waitq::wake_all(ws);
    }

    /// Cancellation clean-up: leave the queue, or pass a `notify_one` on.
    fn abandon(&self, token: &Token) {
        let removed = waitq::lock(&self.queue).remove(token).is_some();
        if !removed && token.get() == ONE {
            self.notify_one();
        }
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &waitq::lock(&self.queue).len())
            .finish()
    }
}
