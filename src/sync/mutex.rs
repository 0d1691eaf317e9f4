//! Go's `sync.Mutex` (sync/mutex.go): a mutual exclusion lock with normal and starvation modes.
//!
//! # Modes (Go's design, restated)
//! - **Normal mode**: waiters queue FIFO, but a woken waiter does not own the lock: it competes
//!   with goroutines that are arriving right now (and are already on a CPU), and usually loses.
//!   A waiter that loses again goes back to the *front* of the queue. This lets a running
//!   goroutine re-take a lock with no switch at all, which is much faster under contention.
//! - **Starvation mode**: a waiter that has waited more than [`STARVATION`] (1 ms) when it
//!   fails to get the lock switches the mutex to starvation mode. Then `unlock` hands
//!   ownership directly to the front waiter; arriving goroutines do not try to take the lock
//!   (nor spin) and queue at the back. The mode ends when the waiter that receives the lock is
//!   the last one, or has waited less than 1 ms.
//!
//! # State
//! One `AtomicU32`: [`LOCKED`], [`WOKEN`] (a woken waiter or a spinner is about to try, so
//! `unlock` need not wake another), [`STARVING`], and the number of queued waiters in the bits
//! from [`WAITER`] up. The queue itself is a [`WaitQueue`] under a short std lock; each entry
//! remembers when its goroutine first started waiting.
//!
//! Differences from Go, and why:
//! - The waiter count changes only under the queue lock, together with the queue, so that
//!   **the count equals the queue length whenever the lock is free** (Go's count may run ahead
//!   of its semaphore queue). A waiter that re-checks the state under the lock and finds the
//!   mutex free does not queue, so no semaphore token is ever needed.
//! - In starvation mode the *unlocker* completes the hand-off under the queue lock (sets
//!   [`LOCKED`], takes one waiter off the count, and decides whether starvation mode ends from
//!   the receiving waiter's start time); Go has the woken waiter do it. So a waiter granted the
//!   lock owns it completely, and if it is cancelled before it runs it simply unlocks: the
//!   lock passes on, never lost.
//! - `unlock` does not yield after a hand-off (Go's `goyield`): a guard's drop is no
//!   cancellation point. The new owner is readied into the unlocker's `runnext`, which an idle
//!   P steals.
//!
//! Between an unlock's `fetch_sub` and its hand-off, the state may show `STARVING` without
//! `LOCKED`: arrivals treat that as locked, so nobody barges in.

use super::waitq::{self, OnUnwind, Token, WaitQueue};
use crate::sched::park::{WaitReason, Waiter};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

/// The lock is held.
const LOCKED: u32 = 1;
/// A goroutine (woken waiter or spinner) will try to take the lock: `unlock` wakes nobody.
const WOKEN: u32 = 2;
/// Starvation mode: `unlock` hands the lock to the front waiter.
const STARVING: u32 = 4;
/// One queued waiter.
const WAITER: u32 = 8;

/// A waiter that waited longer than this switches the mutex to starvation mode (Go's
/// `starvationThresholdNs`).
const STARVATION: Duration = Duration::from_millis(1);

/// Token values: woken to compete (normal mode), or handed ownership (starvation mode).
const WOKE: usize = 1;
const HANDOFF: usize = 2;

/// A mutual exclusion lock protecting a `T`, with Go's `sync.Mutex` semantics: blocking parks
/// the goroutine (or blocks a plain thread), and a waiter starved for more than 1 ms gets the
/// lock handed to it directly. No poisoning: a panic while locked just unlocks.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Mutex, WaitGroup};
/// let n = gort::run(|| {
///     let m = Arc::new(Mutex::new(0));
///     let wg = Arc::new(WaitGroup::new());
///     for _ in 0..10 {
///         wg.add(1);
///         let (m, wg) = (m.clone(), wg.clone());
///         gort::go(move || {
///             *m.lock() += 1;
///             wg.done();
///         });
///     }
///     wg.wait();
///     let n = *m.lock();
///     n
/// });
/// assert_eq!(n, 10);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    queue: StdMutex<WaitQueue<Instant>>,
    data: UnsafeCell<T>,
}

// SAFETY: shared access hands out exclusive `&mut T`s, one holder at a time, possibly on
// different threads: exactly what `T: Send` permits; the rest is atomics and a std mutex.
// (`Send` is automatic: `UnsafeCell<T>` is `Send` when `T` is.)
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Proof of holding a [`Mutex`]: dereferences to the data, unlocks when dropped.
///
/// ```
/// let m = gort::sync::Mutex::new(vec![1]);
/// let mut g = m.lock();
/// g.push(2);
/// assert_eq!(*g, [1, 2]);
/// ```
#[must_use = "the mutex unlocks at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) mutex: &'a Mutex<T>,
    /// Send and Sync as `&mut T` is (and no more).
    _marker: PhantomData<&'a mut T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `t`.
    ///
    /// ```
    /// static COUNT: gort::sync::Mutex<u32> = gort::sync::Mutex::new(0);
    /// *COUNT.lock() += 1;
    /// assert_eq!(*COUNT.lock(), 1);
    /// ```
    pub const fn new(t: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            queue: StdMutex::new(WaitQueue::new()),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the mutex and returns its data.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(String::from("x"));
    /// assert_eq!(m.into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting as long as it takes: a goroutine parks, a plain thread blocks.
    /// Uncontended, this is one compare-and-swap.
    ///
    /// Locking a mutex the caller already holds deadlocks (as in Go).
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.lock_waiting_as(WaitReason::Mutex)
    }

    /// [`Mutex::lock`] whose waiters show `reason` in goroutine dumps (a `Once` is a mutex
    /// inside, but its waiters wait for `sync.Once`).
    #[inline]
    pub(crate) fn lock_waiting_as(&self, reason: WaitReason) -> MutexGuard<'_, T> {
        // Acquire pairs with the Release of the previous holder's unlock.
        if self
            .state
            .compare_exchange(0, LOCKED, Acquire, Relaxed)
            .is_err()
        {
            self.lock_slow(reason);
        }
        MutexGuard {
            mutex: self,
            _marker: PhantomData,
        }
    }

    /// Locks the mutex if that needs no waiting; None if it is held (or is being handed to a
    /// starved waiter).
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut old = self.state.load(Relaxed);
        loop {
            if old & (LOCKED | STARVING) != 0 {
                return None;
            }
            // Acquire pairs with the Release of the previous holder's unlock.
            match self
                .state
                .compare_exchange_weak(old, old | LOCKED, Acquire, Relaxed)
            {
                Ok(_) => {
                    return Some(MutexGuard {
                        mutex: self,
                        _marker: PhantomData,
                    })
                }
                Err(s) => old = s,
            }
        }
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut m = gort::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Go's `lockSlow`. `awoke` means this goroutine owns the `WOKEN` bit (it set it while
    /// spinning, or an unlocker set it when waking it) and must clear it in its next update.
    fn lock_slow(&self, reason: WaitReason) {
        let mut started: Option<Instant> = None;
        let mut starving = false;
        let mut awoke = false;
        let mut spins = 0;
        let mut old = self.state.load(Relaxed);
        loop {
            // Spin briefly while the holder runs elsewhere (never in starvation mode, where
            // the lock goes to the queue's front anyway).
            if old & (LOCKED | STARVING) == LOCKED && can_spin(spins) {
                // Tell unlock not to wake a waiter: we are here to take the lock.
                if !awoke
                    && old & WOKEN == 0
                    && old >= WAITER
                    && self
                        .state
                        .compare_exchange(old, old | WOKEN, Relaxed, Relaxed)
                        .is_ok()
                {
                    awoke = true;
                }
                for _ in 0..30 {
                    std::hint::spin_loop();
                }
                spins += 1;
                old = self.state.load(Relaxed);
                continue;
            }
            if old & (LOCKED | STARVING) == 0 {
                // Free, normal mode: take it (barging past the queue is the point).
                let new = (old | LOCKED) & if awoke { !WOKEN } else { !0 };
                // Acquire pairs with the Release of the previous holder's unlock.
                match self.state.compare_exchange(old, new, Acquire, Relaxed) {
                    Ok(_) => return,
                    Err(s) => {
                        old = s;
                        continue;
                    }
                }
            }
            // Held (or starving): queue, counting ourselves under the queue lock.
            let mut q = waitq::lock(&self.queue);
            old = self.state.load(Relaxed);
            let queued = loop {
                if old & (LOCKED | STARVING) == 0 {
                    break false;
                }
                let mut new = old + WAITER;
                if starving && old & LOCKED != 0 {
                    new |= STARVING;
                }
                if awoke {
                    debug_assert!(new & WOKEN != 0, "sync: inconsistent mutex state");
                    new &= !WOKEN;
                }
                match self.state.compare_exchange(old, new, Relaxed, Relaxed) {
                    Ok(_) => break true,
                    Err(s) => old = s,
                }
            };
            if !queued {
                drop(q);
                continue; // it was released meanwhile: try to take it
            }
            // (Our CAS gave up WOKEN if we had it; after the wait we either own the lock or
            // own WOKEN again.)
            let requeue = started.is_some();
            let t0 = *started.get_or_insert_with(Instant::now);
            let token = Token::new();
            let w = Waiter::current(reason);
            let is_g = w.is_goroutine();
            // A waiter that already waited goes back to the front (Go's lifo requeue).
            if requeue {
                q.push_front(&token, w, t0);
            } else {
                q.push_back(&token, w, t0);
            }
            let cancel = OnUnwind::new(|| self.abandon(&token));
            let got = waitq::wait(&self.queue, q, &token, is_g, |q| q);
            cancel.disarm();
            if got == HANDOFF {
                // The unlocker set LOCKED for us and settled the mode: we hold the lock.
                return;
            }
            // Woken in normal mode: we own WOKEN; compete again.
            awoke = true;
            spins = 0;
            starving = starving || t0.elapsed() > STARVATION;
            old = self.state.load(Relaxed);
        }
    }

    /// Releases the lock (the guard's drop). Go's `Unlock`.
    fn unlock(&self) {
        // Release pairs with the Acquire of the next locker's CAS (or, after a hand-off, with
        // the Acquire load of the receiving waiter's token, which the hand-off orders after).
        let new = self.state.fetch_sub(LOCKED, Release) - LOCKED;
        if new == 0 {
            return;
        }
        // Normal mode with nobody to wake, or somebody already awake: done (Go's quick
        // exit; re-checked under the lock in `wake_next` otherwise).
        if new & STARVING == 0 && (new < WAITER || new & (LOCKED | WOKEN) != 0) {
            return;
        }
        self.wake_next();
    }

    /// Under the queue lock: in starvation mode, hand the lock to the front waiter (or end
    /// the mode if nobody waits); in normal mode, wake the front waiter if the lock is free
    /// and nobody is awake to take it.
    fn wake_next(&self) {
        let mut q = waitq::lock(&self.queue);
        let mut old = self.state.load(Relaxed);
        let waiter = loop {
            debug_assert_eq!(
                (old / WAITER) as usize,
                q.len(),
                "sync: mutex waiter count differs from its queue"
            );
            let (new, grant) = if old & STARVING != 0 {
                if old & LOCKED != 0 {
                    return; // already owned
                }
                match q.front() {
                    Some(t0) => {
                        let mut new = old - WAITER + LOCKED;
                        // Go: leave starvation mode if this waiter is the last one, or did
                        // not wait long (so it is not starving).
                        if new < WAITER || t0.elapsed() < STARVATION {
                            new &= !STARVING;
                        }
                        (new, HANDOFF)
                    }
                    None => (old & !STARVING, 0),
                }
            } else {
                if old < WAITER || old & (LOCKED | WOKEN) != 0 {
                    return;
                }
                ((old - WAITER) | WOKEN, WOKE)
            };
            match self.state.compare_exchange(old, new, Relaxed, Relaxed) {
                Ok(_) if grant == 0 => return,
                Ok(_) => break q.grant_front(grant),
                Err(s) => old = s,
            }
        };
        drop(q);
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Cancellation clean-up for a waiter unwinding out of its wait.
    fn abandon(&self, token: &Token) {
        let mut q = waitq::lock(&self.queue);
        if q.remove(token).is_some() {
            // Still queued: uncount ourselves. If we were the last waiter in starvation
            // mode, the pending (or next) unlock's `wake_next` ends the mode.
            self.state.fetch_sub(WAITER, Relaxed);
            return;
        }
        drop(q);
        match token.get() {
            // We own the lock: pass it on.
            HANDOFF => self.unlock(),
            // We own WOKEN: give it up and wake someone else if the lock is free.
            _ => {
                self.state.fetch_and(!WOKEN, Relaxed);
                self.wake_next();
            }
        }
    }
}

/// Whether a locker should spin a little before queueing: at most four rounds, and only with
/// more than one CPU (the holder can run meanwhile). Go's `sync_runtime_canSpin` also looks at
/// the P's run queue and the idle Ps; a few microseconds of spinning is the whole cost here.
fn can_spin(spins: u32) -> bool {
    static NCPU: AtomicUsize = AtomicUsize::new(0);
    if spins >= 4 {
        return false;
    }
    // Relaxed: a cache of a value any thread computes the same.
    let mut n = NCPU.load(Relaxed);
    if n == 0 {
        n = std::thread::available_parallelism().map_or(1, |n| n.get());
        NCPU.store(n, Relaxed);
    }
    n > 1
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held: no other reference to the data exists
        // (the only other access, `get_mut`, needs `&mut Mutex`).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique among the guard's.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(t: T) -> Mutex<T> {
        Mutex::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The starvation hand-off, step by step on one P (see tests/sync.rs for the user-visible
    /// version): the mode bits are right at each step and the mode ends with the last waiter.
    #[test]
    fn starvation_mode_bits() {
        let rt = crate::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let m = std::sync::Arc::new(Mutex::new(0u32));
            let g = m.lock();
            let m2 = m.clone();
            let h = crate::go(move || *m2.lock() += 1);
            crate::runtime::gosched(); // the goroutine queues
            assert_eq!(m.state.load(Relaxed), LOCKED | WAITER);
            let t = Instant::now();
            while t.elapsed() < STARVATION * 3 {
                std::hint::spin_loop();
            }
            drop(g); // wakes it (normal mode)
            assert_eq!(m.state.load(Relaxed), WOKEN);
            let g = m.lock(); // barges in before it runs
            crate::runtime::gosched(); // it fails, has starved: starvation mode, queue front
            assert_eq!(m.state.load(Relaxed), LOCKED | STARVING | WAITER);
            drop(g); // hand-off; it was the last waiter, so the mode ends
            assert_eq!(m.state.load(Relaxed), LOCKED);
            assert!(m.try_lock().is_none());
            h.join().unwrap();
            assert_eq!(m.state.load(Relaxed), 0);
            assert_eq!(*m.lock(), 1);
        });
    }
}
