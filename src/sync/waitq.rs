//! Wait queues: the one blocking protocol behind every `sync` primitive except `WaitGroup`.
//!
//! A primitive keeps its queues (and whatever state must change together with them) under a
//! short `std::sync::Mutex`, as Go's runtime keeps a `semaRoot` or a `notifyList` under a
//! runtime lock. A blocking caller, under that lock:
//! 1. makes a [`Token`] (an `Arc<AtomicUsize>`, zero while it waits) and a [`Waiter`] for
//!    itself, and pushes both with [`WaitQueue::push_back`] (or `push_front`);
//! 2. calls [`wait`] (or [`wait_until`]) with the lock guard, which releases the lock only once
//!    the goroutine is marked waiting (or, on a plain thread, just before `thread::park`).
//!
//! A waker, under the same lock, takes entries out with [`WaitQueue::grant_front`] /
//! [`WaitQueue::grant_all`], which store a non-zero value (what was granted: a notification,
//! a permit, ownership of a lock) in the token, and wakes the returned waiters *after*
//! dropping the lock.
//!
//! # Invariants
//! - Under the lock, an entry is in the queue exactly while its token is zero: tokens are set
//!   only by `grant_*`, which take the entry out in the same critical section. So a waiter that
//!   takes the lock and finds its token zero knows its entry is still queued (and can remove
//!   it on a timeout or on cancellation), and one that finds it non-zero knows it was granted
//!   exactly once.
//! - A return from `Waiter::block` proves nothing (a thread may wake spuriously): [`wait`]
//!   loops until the token is set.
//! - Cancellation: a goroutine park unwinds with `Cancelled` at runtime shutdown. Callers
//!   hold an [`OnUnwind`] guard around [`wait`] whose closure, under the lock, removes the
//!   entry if it is still queued, or else passes on what the token says was granted (a
//!   permit, lock ownership, a `notify_one`), so that nothing granted is ever lost.
//!
//! Token stores are `Release` and token loads `Acquire`: the waiter sees everything the waker
//! did before granting (the waker's own unlock of the protected data included).

use crate::sched::park::{Alarm, Waiter};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard, PoisonError};
use std::time::Instant;

/// Locks one of the primitives' internal locks. They guard only short, non-panicking critical
/// sections, so poisoning is ignored.
pub(crate) fn lock<S>(m: &StdMutex<S>) -> StdGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a waiter was granted: zero while it waits.
pub(crate) struct Token(Arc<AtomicUsize>);

impl Token {
    pub(crate) fn new() -> Token {
        Token(Arc::new(AtomicUsize::new(0)))
    }

    /// The granted value, or 0. Acquire pairs with the Release store in `WaitQueue::grant`.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Acquire)
    }
}

struct Entry<D> {
    token: Arc<AtomicUsize>,
    waiter: Waiter,
    data: D,
}

/// A FIFO of blocked goroutines and threads, each with its [`Token`] and some data `D` the
/// primitive wants to keep per waiter (the mutex keeps the time the wait started).
pub(crate) struct WaitQueue<D = ()> {
    entries: VecDeque<Entry<D>>,
}

impl<D> WaitQueue<D> {
    pub(crate) const fn new() -> WaitQueue<D> {
        WaitQueue {
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a waiter at the back (it is woken last).
    pub(crate) fn push_back(&mut self, token: &Token, waiter: Waiter, data: D) {
        self.entries.push_back(Entry {
            token: token.0.clone(),
            waiter,
            data,
        });
    }

    /// Queues a waiter at the front (Go's `lifo` requeue of a mutex waiter that already
    /// waited).
    pub(crate) fn push_front(&mut self, token: &Token, waiter: Waiter, data: D) {
        self.entries.push_front(Entry {
            token: token.0.clone(),
            waiter,
            data,
        });
    }

    /// The data of the longest waiter.
    pub(crate) fn front(&self) -> Option<&D> {
        self.entries.front().map(|e| &e.data)
    }

    fn grant(e: Entry<D>, value: usize) -> Waiter {
        debug_assert_ne!(value, 0, "runtime: a grant must be non-zero");
        // Release pairs with the Acquire load in `Token::get`.
        e.token.store(value, Release);
        e.waiter
    }

    /// Takes the longest waiter out and grants it `value` (non-zero); wake the returned waiter
    /// after dropping the lock.
    pub(crate) fn grant_front(&mut self, value: usize) -> Option<Waiter> {
        self.entries.pop_front().map(|e| Self::grant(e, value))
    }

    /// Takes every waiter out and grants each `value`; wake them after dropping the lock.
    pub(crate) fn grant_all(&mut self, value: usize) -> Vec<Waiter> {
        self.entries
            .drain(..)
            .map(|e| Self::grant(e, value))
            .collect()
    }

    /// Takes the entry of `token` out (a timeout or a cancellation), if it is still queued.
    pub(crate) fn remove(&mut self, token: &Token) -> Option<D> {
        let i = self
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.token, &token.0))?;
        self.entries.remove(i).map(|e| e.data)
    }

    /// Replaces the waiter of `token`'s entry with a fresh one for the caller (a new park), and
    /// returns its alarm; None if the entry is not queued.
    fn rearm(&mut self, token: &Token) -> Option<Alarm> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| Arc::ptr_eq(&e.token, &token.0))?;
        e.waiter = Waiter::again();
        Some(e.waiter.alarm())
    }
}

/// Wakes waiters returned by `grant_*` (call it with no lock held).
pub(crate) fn wake_all(ws: Vec<Waiter>) {
    for w in ws {
        w.wake();
    }
}

/// Blocks until `token` is granted and returns the grant.
///
/// `guard` is `lock`'s guard, held since the caller queued its entry (in `queue(&mut *guard)`)
/// with a waiter from `Waiter::current()`, and the caller has not parked since. Unwinds with
/// `Cancelled` if the goroutine is cancelled (see the module docs for the guard callers need).
pub(crate) fn wait<S, D>(
    lock_: &StdMutex<S>,
    guard: StdGuard<'_, S>,
    token: &Token,
    is_goroutine: bool,
    queue: impl Fn(&mut S) -> &mut WaitQueue<D>,
) -> usize {
    Waiter::block(is_goroutine, guard);
    loop {
        let v = token.get();
        if v != 0 {
            return v;
        }
        if !is_goroutine {
            // Our entry holds this thread's handle and `unpark` is sticky: no lost wake-up.
            crate::sched::deadlock::park_thread();
            continue;
        }
        // A goroutine is readied only by its own waiter's wake-up; re-arm anyway rather
        // than trust that.
        let mut g = lock(lock_);
        let v = token.get();
        if v != 0 {
            return v;
        }
        if queue(&mut g).rearm(token).is_none() {
            crate::fatal("runtime: a sync waiter lost its queue entry");
        }
        Waiter::block(true, g);
    }
}

/// [`wait`] with a deadline: `Some(grant)`, or `None` once `deadline` passed without a grant
/// (the entry is then out of the queue). `alarm` is the queued waiter's, taken before it was
/// moved into the queue. A grant that races with the timeout wins: it is returned, exactly once.
pub(crate) fn wait_until<S, D>(
    lock_: &StdMutex<S>,
    guard: StdGuard<'_, S>,
    token: &Token,
    alarm: Alarm,
    deadline: Instant,
    queue: impl Fn(&mut S) -> &mut WaitQueue<D>,
) -> Option<usize> {
    let (mut guard, mut alarm) = (guard, alarm);
    loop {
        Waiter::block_until(alarm, guard, deadline);
        let v = token.get();
        if v != 0 {
            return Some(v);
        }
        let mut g = lock(lock_);
        let v = token.get();
        if v != 0 {
            return Some(v);
        }
        if Instant::now() >= deadline {
            queue(&mut g).remove(token);
            return None;
        }
        // Early: a spurious thread wake-up; park again with a fresh waiter.
        let Some(a) = queue(&mut g).rearm(token) else {
            crate::fatal("runtime: a sync waiter lost its queue entry")
        };
        (guard, alarm) = (g, a);
    }
}

/// Runs a closure when dropped, unless disarmed: the cancellation clean-up around a wait.
pub(crate) struct OnUnwind<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnUnwind<F> {
    pub(crate) fn new(f: F) -> OnUnwind<F> {
        OnUnwind(Some(f))
    }

    /// The wait completed normally: nothing to clean up.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}
