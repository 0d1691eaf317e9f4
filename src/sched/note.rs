//! A one-shot wake-up flag an M sleeps on: Go's `note` (runtime/lock_futex.go).
//!
//! `sleep` returns once `wakeup` has been called since the last `clear`; a `wakeup` that comes
//! first is remembered, so the sleeper can never miss it. Only the M that owns the note sleeps
//! and clears it; anyone may wake it, at most once per `clear` (debug-checked).
//!
//! Ordering: `wakeup`'s `swap(Release)` pairs with `sleep`'s `load(Acquire)`: whatever the waker
//! wrote before (the P it hands over, in `M::nextp`) is visible to the woken M.

use crate::loom::sync::atomic::{AtomicU32, Ordering::*};

pub struct Note {
    key: AtomicU32,
}

impl Note {
    pub fn new() -> Note {
        Note { key: AtomicU32::new(0) }
    }

    /// Re-arms the note. Owner only, and only when no wakeup can be in flight.
    pub fn clear(&self) {
        self.key.store(0, Relaxed);
    }

    /// Blocks the calling OS thread until `wakeup`.
    pub fn sleep(&self) {
        while self.key.load(Acquire) == 0 {
            futex_wait(&self.key, 0);
        }
    }

    /// Wakes the sleeper (or lets its next `sleep` return at once).
    pub fn wakeup(&self) {
        let old = self.key.swap(1, Release);
        debug_assert_eq!(old, 0, "runtime: double wakeup of a note");
        futex_wake(&self.key);
    }
}

#[cfg(not(loom))]
fn futex_wait(key: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `key`, which lives for the call; a changed
    // value or a signal just makes it return early, and the caller loops.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            key.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(not(loom))]
fn futex_wake(key: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, key.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, 1);
    }
}

// Under loom there is no futex: the sleeper yields to the model until the flag is set, which
// explores the same interleavings of flag and wake-up.
#[cfg(loom)]
fn futex_wait(_key: &AtomicU32, _expected: u32) {
    loom::thread::yield_now();
}

#[cfg(loom)]
fn futex_wake(_key: &AtomicU32) {}
