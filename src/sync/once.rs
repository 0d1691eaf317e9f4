//! Go's `sync.Once`: run a function exactly once, however many goroutines ask.
//!
//! As in Go's once.go: a `done` flag for the fast path, and a [`Mutex`] that the first caller
//! holds while `f` runs, so concurrent callers park on it until `f` has finished. `done` is set
//! by a drop guard *before* the mutex unlocks, even when `f` panics: the Once then counts as
//! done, `f` never runs again, later calls return at once, and the panic propagates to the
//! caller that ran `f` only. (`std::sync::Once` poisons instead.)
//!
//! Calling `call_once` from inside `f` on the same Once deadlocks, as in Go.

use super::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::*};

/// Runs a function once, with Go's `sync.Once` semantics (a panicking function still counts
/// as done).
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// static INIT: gort::sync::Once = gort::sync::Once::new();
/// let runs = Arc::new(AtomicU32::new(0));
/// gort::run({
///     let runs = runs.clone();
///     move || {
///         let hs: Vec<_> = (0..8)
///             .map(|_| {
///                 let runs = runs.clone();
///                 gort::go(move || INIT.call_once(|| { runs.fetch_add(1, Ordering::SeqCst); }))
///             })
///             .collect();
///         hs.into_iter().for_each(|h| h.join().unwrap());
///     }
/// });
/// assert_eq!(runs.load(Ordering::SeqCst), 1);
/// ```
pub struct Once {
    done: AtomicBool,
    m: Mutex<()>,
}

/// Sets `done` when dropped: after `f` returns or while its panic unwinds.
struct SetDone<'a>(&'a AtomicBool);

impl Drop for SetDone<'_> {
    fn drop(&mut self) {
        // Release pairs with the Acquire load in `call_once`/`is_completed`: whoever sees
        // `done` sees what `f` did.
        self.0.store(true, Release);
    }
}

impl Once {
    /// A Once whose function has not run.
    ///
    /// ```
    /// static O: gort::sync::Once = gort::sync::Once::new();
    /// assert!(!O.is_completed());
    /// ```
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            m: Mutex::new(()),
        }
    }

    /// Runs `f` if no call on this Once has run its function yet; otherwise waits until that
    /// function has finished (parking a goroutine, blocking a thread) and returns.
    ///
    /// If `f` panics, the panic propagates to this caller, and the Once still counts as done:
    /// later calls return at once and run nothing.
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     once.call_once(|| panic!("first"));
    /// }));
    /// assert!(r.is_err());
    /// assert!(once.is_completed());
    /// once.call_once(|| unreachable!()); // never runs, does not panic
    /// ```
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Acquire pairs with the Release store in `SetDone::drop`.
        if self.done.load(Acquire) {
            return;
        }
        self.call_slow(f);
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        let _g = self.m.lock_waiting_as(crate::sched::park::WaitReason::Once);
        // Relaxed: the mutex orders this after the store of whoever ran `f`.
        if !self.done.load(Relaxed) {
            let _set = SetDone(&self.done);
            f();
        }
    }

    /// Whether a call's function has finished (returned or panicked).
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        // Acquire pairs with the Release store in `SetDone::drop`.
        self.done.load(Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}
