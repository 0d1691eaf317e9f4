//! Blocking calls that release their P: Go's `entersyscallblock` and `exitsyscall`.
//!
//! [`blocking`] hands the thread's P to another M before it runs `f` (so the P's other
//! goroutines keep running while `f` blocks the thread in the kernel or in a C library), then
//! takes a P back: an idle one if there is one; otherwise the goroutine goes to the global run
//! queue and this M goes idle, and the goroutine continues on whichever M picks it up (its own
//! M, if it is locked to its thread).
//!
//! As Go's `_Psyscall`, the P stays with the M for a moment: `enter` parks it in the M's
//! `sys_p` slot, a call that returns quickly takes it back with one swap, and sysmon retakes it
//! (hands it to another M) once the call has lasted a sysmon tick (20 µs to 10 ms, see
//! `sysmon.rs`) and the P has work waiting. Without that delay every call, however short,
//! would cost a wake-up of another M.
//!
//! While `f` runs, the M has no P. gort calls inside `f` work as on a plain thread: `go` and
//! wake-ups queue on the global queue, timers go to the timer thread. A park or yield inside
//! `f` parks the goroutine as usual (its M then goes idle), and when it resumes on an M with a
//! P, the rest of `f` runs there with that P.

use super::park::{self, WaitReason};
use super::preempt::{self, Section};
use crate::diag::wait_word;
use std::sync::atomic::Ordering::*;

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

/// Parks the current M's P in its `sys_p` slot for the call; false if there is none (a plain
/// thread, a nested call, or a goroutine whose P was taken by a preemption).
fn enter() -> bool {
    let Some((m, g)) = park::current() else {
        return false;
    };
    let _s = Section::enter(m);
    // SAFETY: our own M, running us (inside a section, so its P is ours to move).
    let m = unsafe { &*m };
    let p = m.take_p();
    if p.is_null() {
        return false;
    }
    // SAFETY: our own M's state, not held.
    unsafe { m.local() }.in_blocking = true;
    // A dump shows `[syscall]` (the G writes its own wait word; see `G::wait`).
    // SAFETY: the running G is alive while it runs.
    unsafe { &*g }
        .wait
        .store(wait_word(WaitReason::Syscall), Relaxed);
    m.pre
        .sys_seq
        .store(m.pre.sys_seq.load(Relaxed) + 1, Relaxed);
    // Release: whoever swaps the P out (sysmon, or us) sees what we did with it.
    m.pre.sys_p.store(p as *mut _, Release);
    true
}

/// Takes a P back when `blocking` returns or unwinds.
struct Exit;

impl Drop for Exit {
    fn drop(&mut self) {
        let Some((m, g)) = park::current() else {
            return;
        };
        // SAFETY: our own M's state, not held.
        unsafe { (*m).local() }.in_blocking = false;
        // SAFETY: the running G is alive while it runs.
        unsafe { &*g }.wait.store(0, Relaxed);
        // Nothing to do if `f` parked and we resumed on an M with a P. Otherwise the fast path
        // takes our own P back from `sys_p` (sysmon did not retake it); failing that, an idle
        // P or the global queue (`reacquire` does all three).
        preempt::reacquire();
    }
}
