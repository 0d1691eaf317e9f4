//! Go's `time` package: [`sleep`] (and, with channels, `after`, `tick`, `Timer`, `Ticker`).
//!
//! On a goroutine these park only the goroutine: a timer on its P's heap readies it (see
//! `sched/timer.rs`), and an idle runtime sleeps in the kernel until the earliest timer. On a
//! plain thread they block the thread (`std::thread::sleep`, a timer thread).
//!
//! Deadlines are never early: a sleep of `d` returns no sooner than `d` after the call. They
//! may be late by scheduling delays (a busy P runs its due timers at its next schedule; a
//! goroutine that never yields delays the timers of its own P until it does).

use crate::sched::park::{self, Waiter};
use std::time::{Duration, Instant};

/// Pauses the current goroutine (or thread) for at least `d`; `Duration::ZERO` returns at once.
///
/// On a goroutine only the goroutine waits; its thread runs other goroutines meanwhile. A
/// sleeping goroutine is a cancellation point: at runtime shutdown it unwinds from `sleep`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let start = Instant::now();
///     let h = gort::go(|| gort::time::sleep(Duration::from_millis(20)));
///     gort::time::sleep(Duration::from_millis(10));
///     h.join().unwrap();
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// // From a plain thread it blocks the thread.
/// gort::time::sleep(Duration::from_millis(1));
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    if park::current().is_none() {
        std::thread::sleep(d);
        return;
    }
    let Some(deadline) = Instant::now().checked_add(d) else {
        // Too far to represent: sleep forever (until cancelled).
        loop {
            Waiter::block(true, ());
        }
    };
    while Instant::now() < deadline {
        let w = Waiter::current();
        Waiter::block_until(w.alarm(), (), deadline);
    }
}
