//! Go's `sync.WaitGroup`: wait for a collection of goroutines to finish.
//!
//! The counter is an atomic, so `add`/`done` cost one atomic add unless they bring the count to
//! zero. Waiters queue under a mutex. The zero-crossing `add` takes the same mutex before waking
//! them, and `wait` re-checks the counter under that mutex before parking, so a wake-up cannot
//! fall between a waiter's check and its park.

use crate::sched::park::{WaitReason, Waiter};
use std::fmt;
use std::sync::atomic::{AtomicIsize, Ordering::*};
use std::sync::Mutex;

/// Waits for a collection of goroutines (or threads) to finish.
///
/// ```
/// use std::sync::Arc;
/// gort::run(|| {
///     let wg = Arc::new(gort::sync::WaitGroup::new());
///     for _ in 0..10 {
///         wg.add(1);
///         let wg = wg.clone();
///         gort::go(move || wg.done());
///     }
///     wg.wait();
/// });
/// ```
pub struct WaitGroup {
    count: AtomicIsize,
    waiters: Mutex<Vec<Waiter>>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitGroup {
    /// A wait group with a zero counter.
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.wait(); // zero: returns at once, even on a plain thread
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            count: AtomicIsize::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Adds `delta` (which may be negative) to the counter; at zero, every waiter is released.
    ///
    /// # Panics
    /// If the counter goes negative (as in Go: `sync: negative WaitGroup counter`).
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-2);
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: isize) {
        let v = self.count.fetch_add(delta, AcqRel) + delta;
        if v < 0 {
            self.count.fetch_sub(delta, AcqRel);
            panic!("sync: negative WaitGroup counter");
        }
        if v == 0 && delta != 0 {
            let ws = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
            for w in ws {
                w.wake();
            }
        }
    }

    /// Decrements the counter by one.
    ///
    /// ```
    /// let wg = gort::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// wg.wait();
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// Waits until the counter is zero: parks a goroutine, blocks a plain thread.
    ///
    /// ```
    /// use std::sync::Arc;
    /// gort::run(|| {
    ///     let wg = Arc::new(gort::sync::WaitGroup::new());
    ///     wg.add(1);
    ///     let w2 = wg.clone();
    ///     gort::go(move || w2.done());
    ///     wg.wait();
    /// });
    /// ```
    pub fn wait(&self) {
        loop {
            if self.count.load(Acquire) == 0 {
                return;
            }
            let mut ws = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if self.count.load(Acquire) == 0 {
                return;
            }
            let w = Waiter::current(WaitReason::Semacquire);
            let g = w.is_goroutine();
            ws.push(w);
            Waiter::block(g, ws);
        }
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count.load(Relaxed))
            .finish()
    }
}
