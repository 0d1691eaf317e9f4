//! The channel lock: a small futex mutex, Go's runtime `lock` (lock_futex.go).
//!
//! Held only for a channel operation's bookkeeping (never across a park: a parking goroutine
//! hands the unlock to its M, which runs it on g0 once the goroutine is off its stack). It
//! spins briefly before sleeping in the kernel, because the holder is almost always running on
//! another core and about to let go. `select` holds several at once, always in address order.
//!
//! States: 0 unlocked, 1 locked, 2 locked and someone may sleep on it (Drepper, "Futexes Are
//! Tricky", mutex 2).

use std::sync::atomic::{AtomicU32, Ordering::*};

pub struct RawLock {
    state: AtomicU32,
}

/// Unlocks on drop.
pub struct LockGuard<'a>(&'a RawLock);

/// Busy-wait rounds before yielding, and pauses per round (Go's `active_spin` and
/// `active_spin_cnt`).
const SPIN_ROUNDS: u32 = 4;
const SPIN_BURST: u32 = 30;

impl RawLock {
    pub const fn new() -> RawLock {
        RawLock {
            state: AtomicU32::new(0),
        }
    }

    #[inline]
    pub fn lock(&self) -> LockGuard<'_> {
        if self.state.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            self.lock_slow();
        }
        LockGuard(self)
    }

    #[cold]
    fn lock_slow(&self) {
        // Go's `lock2`: a few rounds of busy-waiting in bursts (checking the word only between
        // bursts keeps the cache line from bouncing while the holder works), one yield of the
        // CPU, then sleep in the kernel.
        for _ in 0..SPIN_ROUNDS {
            for _ in 0..SPIN_BURST {
                std::hint::spin_loop();
            }
            if self.state.load(Relaxed) == 0
                && self.state.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
            {
                return;
            }
        }
        std::thread::yield_now();
        // Announce a sleeper (state 2) and sleep while the lock stays taken.
        while self.state.swap(2, Acquire) != 0 {
            futex(&self.state, libc::FUTEX_WAIT, 2);
        }
    }

    /// # Safety
    /// The caller holds the lock (took it with [`RawLock::lock`] and forgot the guard).
    #[inline]
    pub unsafe fn unlock(&self) {
        if self.state.swap(0, Release) == 2 {
            futex(&self.state, libc::FUTEX_WAKE, 1);
        }
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a guard exists only while its lock is held.
        unsafe { self.0.unlock() }
    }
}

fn futex(word: &AtomicU32, op: i32, val: u32) {
    // SAFETY: FUTEX_WAIT/WAKE on an aligned u32 that outlives the call; a wait returns early on
    // a changed value or a signal, and every caller loops.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}
