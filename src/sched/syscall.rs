//! Blocking calls that release their P: Go's `entersyscallblock` and `exitsyscall`.
//!
//! [`blocking`] hands the thread's P to another M before it runs `f` (so the P's other
//! goroutines keep running while `f` blocks the thread in the kernel or in a C library), then
//! takes a P back: an idle one if there is one; otherwise the goroutine goes to the global run
//! queue and this M goes idle, and the goroutine continues on whichever M picks it up (its own
//! M, if it is locked to its thread).
//!
//! Go keeps the P attached for a moment (`_Psyscall`) and lets sysmon retake it after 20 µs,
//! which makes short calls cheaper. gort has no sysmon yet, so the P is handed off at once
//! (`entersyscallblock`): a call costs a wake-up of another M (a few microseconds), which is
//! cheap beside a call that blocks.
//!
//! While `f` runs, the M has no P. gort calls inside `f` work as on a plain thread: `go` and
//! wake-ups queue on the global queue, timers go to the timer thread. A park or yield inside
//! `f` parks the goroutine as usual (its M then goes idle), and when it resumes on an M with a
//! P, the rest of `f` runs there with that P.

use super::m::current_m;
use super::park;

/// Runs `f`, a call that may block its thread for long (a blocking syscall, `std::fs`, a C
/// library), without stopping the other goroutines of this goroutine's P: the P is handed to
/// another thread while `f` runs, and taken back afterwards (Go's `entersyscall`/`exitsyscall`).
/// Outside a goroutine, just runs `f`. A panic in `f` propagates (the P is taken back first).
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::Builder::new().procs(1).build().unwrap().run(|| {
///     let t = Instant::now();
///     let sleeper = gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(200))));
///     // With one P, this goroutine still runs while the other blocks its thread.
///     let quick = gort::go(move || t.elapsed());
///     assert!(quick.join().unwrap() < Duration::from_millis(200));
///     sleeper.join().unwrap();
/// });
/// ```
pub fn blocking<F: FnOnce() -> T, T>(f: F) -> T {
    if !enter() {
        return f();
    }
    let _exit = Exit;
    f()
}

/// Hands the current M's P off; false if there is none (a plain thread, or a nested call).
fn enter() -> bool {
    let m = current_m();
    if park::current().is_none() {
        return false;
    }
    // SAFETY: our own M, running us; its P field is ours to change while we run on it.
    let p = unsafe { std::mem::replace(&mut (*m).local().p, std::ptr::null()) };
    if p.is_null() {
        return false;
    }
    // SAFETY: an M's scheduler outlives the M.
    let sched = unsafe { &*(*m).sched_ptr() };
    // `handoffp` may start a thread: give it the scheduler stack.
    park::on_system_stack(|| sched.handoffp(p));
    true
}

/// Takes a P back when `blocking` returns or unwinds.
struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        let m = current_m();
        // SAFETY: our own M (we may be on another one than at `enter` if `f` parked).
        if !unsafe { (*m).p() }.is_null() {
            return; // `f` parked and we resumed on an M with a P
        }
        // SAFETY: an M's scheduler outlives the M.
        let sched = unsafe { &*(*m).sched_ptr() };
        let p = {
            let mut l = sched.lock();
            sched.pidleget(&mut l)
        };
        match p {
            // SAFETY: our own M; the P came off the idle list, so it is ours now.
            Some(p) => unsafe { (*m).local().p = p },
            None => park::exitsyscall_requeue(),
        }
    }
}
