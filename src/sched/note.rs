//! A one-shot wake-up flag an M sleeps on: Go's `note` (runtime/lock_futex.go).
//!
//! `sleep` returns once `wakeup` has been called since the last `clear`; a `wakeup` that comes
//! first is remembered, so the sleeper can never miss it. Only the M that owns the note sleeps
//! and clears it; anyone may wake it, at most once per `clear` (debug-checked).
//!
//! `sleep_until` is `sleep` with a deadline (the idle M that waits for the earliest timer): it
//! returns false if the deadline passed first, leaving the note armed; a `wakeup` may still
//! come later, and the owner must then either make sure none can (take itself off the list
//! wakers find it on, under their lock) or `sleep` again to consume it (`M::stopm`).
//!
//! Ordering: `wakeup`'s `swap(Release)` pairs with `sleep`'s `load(Acquire)`: whatever the waker
//! wrote before (the P it hands over, in `M::nextp`) is visible to the woken M.

use crate::loom::sync::atomic::{AtomicU32, Ordering::*};

pub struct Note {
    key: AtomicU32,
    /// Under loom: the futex's wait queue (see `futex_wait` at the end of the file).
    #[cfg(loom)]
    futex: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

impl Note {
    pub fn new() -> Note {
        Note {
            key: AtomicU32::new(0),
            #[cfg(loom)]
            futex: (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
        }
    }

    /// Re-arms the note. Owner only, and only when no wakeup can be in flight.
    pub fn clear(&self) {
        self.key.store(0, Relaxed);
    }

    /// Whether `wakeup` was called since the last `clear` (Acquire, as `sleep`): for an M that
    /// waits for its note in `epoll_wait` rather than on the futex (`netpoll::block`).
    pub fn is_set(&self) -> bool {
        self.key.load(Acquire) != 0
    }

    /// Blocks the calling OS thread until `wakeup`.
    pub fn sleep(&self) {
        while self.key.load(Acquire) == 0 {
            futex_wait(self, 0);
        }
    }

    /// Blocks the calling OS thread until `wakeup` (true) or until `deadline` (false).
    #[cfg(not(loom))]
    pub fn sleep_until(&self, deadline: std::time::Instant) -> bool {
        loop {
            // Acquire: as in `sleep`.
            if self.key.load(Acquire) != 0 {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            futex_wait_timeout(self, 0, deadline - now);
        }
    }

    /// Under loom the deadline may pass at any moment: the model sees the note as it is now
    /// (an early timeout is a legal outcome of a timed sleep).
    #[cfg(loom)]
    pub fn sleep_until(&self, _deadline: std::time::Instant) -> bool {
        self.key.load(Acquire) != 0
    }

    /// Wakes the sleeper (or lets its next `sleep` return at once).
    pub fn wakeup(&self) {
        let old = self.key.swap(1, Release);
        if cfg!(any(debug_assertions, loom)) {
            assert_eq!(old, 0, "runtime: double wakeup of a note");
        }
        futex_wake(self);
    }
}

#[cfg(not(loom))]
fn futex_wait(note: &Note, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `key`, which lives for the call; a changed
    // value or a signal just makes it return early, and the caller loops.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            note.key.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(not(loom))]
fn futex_wait_timeout(note: &Note, expected: u32, d: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    };
    // SAFETY: as in `futex_wait`; the timeout is relative (CLOCK_MONOTONIC, as `Instant`) and
    // `ts` lives for the call. A timeout, a wake-up or a signal all just return.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            note.key.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

#[cfg(not(loom))]
fn futex_wake(note: &Note) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            note.key.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

// Under loom there is no futex: a mutex and condvar stand in for the kernel's wait queue. As with
// the futex, the value check and the decision to block are atomic with respect to a wake (both
// hold the queue's lock), so a sleeper whose wake-up never comes blocks for good, and loom
// reports the model as deadlocked: exactly the lost wake-up the model checks for. (Spinning on
// `yield_now` instead would show up only as "exceeded maximum number of branches".)
#[cfg(loom)]
fn futex_wait(note: &Note, expected: u32) {
    let (lock, queue) = &note.futex;
    let guard = lock.lock().unwrap();
    if note.key.load(Relaxed) == expected {
        drop(queue.wait(guard).unwrap());
    }
}

#[cfg(loom)]
fn futex_wake(note: &Note) {
    let (lock, queue) = &note.futex;
    let _guard = lock.lock().unwrap();
    queue.notify_one();
}
