//! Preemption without asynchronous stack switches: how a P leaves an M whose goroutine runs
//! too long (a hog, or a call nobody marked as blocking), and how it comes back.
//!
//! Go preempts a goroutine from a signal handler by switching it out at an "async safe
//! point" its compiler marked. Rust code has no such points: a goroutine interrupted at an
//! arbitrary instruction may hold malloc's lock or be half-way through an update, and running
//! another goroutine on that thread could deadlock or corrupt memory. So gort never switches
//! stacks from a signal handler. Instead it takes the goroutine's **P** away and lets the
//! goroutine keep its OS thread: the P goes to another M, which runs the P's other goroutines,
//! and the kernel time-slices the hog's thread with the rest (sysmon decides, see
//! `sysmon.rs`).
//!
//! # The P-ownership handshake
//! An M's P ([`M::p`]) is an atomic written only on the M's own thread. Runtime code running on
//! a goroutine stack uses the P only inside a [`Section`] (the runtime's spawn, ready, timer and
//! blocking-call paths), and code on g0 always counts as inside one (`in_rt` is 1 there). To
//! preempt, sysmon records which run of the M it wants to stop (`preempt_seq`) and sends the
//! thread `SIGURG`. The handler runs on that thread, between two instructions of the
//! goroutine:
//! * outside a section, it moves the P into the M's `lost_p` mailbox (sysmon hands it off, or
//!   the M takes it back when its goroutine parks) — the goroutine's code never looks at the P
//!   there, so nothing it holds is disturbed;
//! * inside a section, it does nothing; the request stays, and the section gives the P up the
//!   same way as it ends (the cooperative check).
//!
//! Handler and goroutine share one thread, so a signal fence (`compiler_fence`) on each side of
//! the `in_rt` store is the whole synchronisation: the handler sees either "not in a section",
//! and then the section's first read of the P sees null, or "in a section", and then it leaves
//! the P alone. The handler touches only atomics: it allocates nothing and takes no lock.
//!
//! A goroutine that lost its P goes on without one, as inside `gort::blocking`: `go` and
//! wake-ups use the global queue; a park or a yield simply switches out (and whichever M
//! resumes it has a P). At its next `go` ([`check`]) it takes a P back ([`reacquire`]): its own
//! from the mailbox, an idle one, or it queues itself on the global run queue like a goroutine
//! returning from a blocking call (Go's `exitsyscall`). Channel operations do not check (it
//! cost 3% on ping-pong): a goroutine that keeps sending without ever parking readies its
//! receivers through the global queue until it does.
//!
//! # Blocking calls (Go's `_Psyscall`)
//! `gort::blocking` parks the P in `sys_p` instead of handing it off: a short call takes it
//! back with one swap; sysmon retakes it with a swap of its own once the call has lasted a
//! sysmon tick (see `syscall.rs`).

use super::m::{current_m, M};
use super::p::P;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::atomic::{Ordering::SeqCst as Fence, Ordering::*};
use std::sync::Once;

/// The signal sysmon sends to preempt (Go's choice: rarely used by programs, ignored by
/// default, and not delivered to handlers that expect a crash).
pub const SIGPREEMPT: libc::c_int = libc::SIGURG;

/// An M's preemption state, shared between its thread, its signal handler and sysmon.
pub struct MPreempt {
    /// 1 while runtime code on this thread may use the M's P (on g0, or inside a [`Section`]);
    /// 0 while a goroutine runs its own code. Written only by the M's thread.
    in_rt: AtomicU32,
    /// Bumped each time the M starts or resumes a goroutine: sysmon's "same run since".
    pub run_seq: AtomicU64,
    /// The `run_seq` sysmon asked to preempt (0: none). Written by sysmon, cleared by the M.
    pub preempt_seq: AtomicU64,
    /// A P this M gave up when preempted, for sysmon to hand off (or for the M to take back).
    pub lost_p: AtomicPtr<P>,
    /// The P of this M while it runs `gort::blocking` (Go's `_Psyscall`); taken back by the M
    /// or retaken by sysmon, each with a swap.
    pub sys_p: AtomicPtr<P>,
    /// Bumped at each `gort::blocking` entry: sysmon's "same call since".
    pub sys_seq: AtomicU64,
    /// The thread's `pthread_t`, written once before sysmon can see the M.
    pub thread: AtomicUsize,
}

impl MPreempt {
    pub fn new() -> MPreempt {
        MPreempt {
            in_rt: AtomicU32::new(1), // an M starts on g0
            run_seq: AtomicU64::new(0),
            preempt_seq: AtomicU64::new(0),
            lost_p: AtomicPtr::new(ptr::null_mut()),
            sys_p: AtomicPtr::new(ptr::null_mut()),
            sys_seq: AtomicU64::new(0),
            // SAFETY: pthread_self has no preconditions.
            thread: AtomicUsize::new(unsafe { libc::pthread_self() } as usize),
        }
    }

    /// Whether runtime code is using the P (a hint when read from another thread).
    pub fn in_runtime(&self) -> bool {
        self.in_rt.load(Relaxed) != 0
    }

    /// Marks the start of a goroutine run on this M (own thread, on g0).
    #[inline]
    pub fn new_run(&self) {
        self.run_seq.store(self.run_seq.load(Relaxed) + 1, Relaxed);
    }
}

impl Default for MPreempt {
    fn default() -> Self {
        MPreempt::new()
    }
}

/// Runtime code on a goroutine stack that uses the M's P. While one is alive, a preemption
/// leaves the P alone; as the outermost one ends it honours a pending request. Sections do not
/// switch (no park or yield inside one; `on_system_stack` is fine).
pub struct Section {
    m: *const M,
    prev: u32,
}

impl Section {
    /// Enters a section on `m`, the calling thread's M (null: a plain thread, a no-op).
    #[inline]
    pub fn enter(m: *const M) -> Section {
        // SAFETY: a non-null m is the calling thread's M, alive while the thread runs it.
        let prev = match unsafe { m.as_ref() } {
            Some(m) => {
                let prev = m.pre.in_rt.load(Relaxed);
                m.pre.in_rt.store(1, Relaxed);
                compiler_fence(Fence);
                prev
            }
            None => 1,
        };
        Section { m, prev }
    }
}

impl Drop for Section {
    #[inline]
    fn drop(&mut self) {
        if self.prev != 0 {
            return;
        }
        // SAFETY: as in `enter`; no switch happened inside the section.
        let m = unsafe { &*self.m };
        compiler_fence(Fence);
        m.pre.in_rt.store(0, Relaxed);
        compiler_fence(Fence);
        if m.pre.preempt_seq.load(Relaxed) != 0 {
            give_up_p(m);
        }
    }
}

/// Marks the current thread as in the runtime for a switch to g0; returns what to restore with
/// [`after_switch`]. Goroutine side of `switch_to_g0`.
#[inline]
pub fn before_switch(m: &M) -> u32 {
    let prev = m.pre.in_rt.load(Relaxed);
    m.pre.in_rt.store(1, Relaxed);
    compiler_fence(Fence);
    prev
}

/// Ends the runtime part of a switch on the M the goroutine resumed on (maybe another one).
#[inline]
pub fn after_switch(m: &M, prev: u32) {
    compiler_fence(Fence);
    m.pre.in_rt.store(prev, Relaxed);
    compiler_fence(Fence);
}

/// Honours a preemption request for the current run: moves the P to `lost_p`. Runs on the M's
/// own thread outside any section (the signal handler, or a section's end), so nothing on this
/// thread is using the P.
fn give_up_p(m: &M) {
    let req = m.pre.preempt_seq.swap(0, Relaxed);
    if req == 0 || req != m.pre.run_seq.load(Relaxed) {
        return; // none, or stale (that run already ended)
    }
    let p = m.take_p();
    if !p.is_null() {
        // Release: sysmon's swap (Acquire) sees everything this thread did with the P.
        m.pre.lost_p.store(p as *mut P, Release);
    }
}

/// The `SIGURG` handler. Async-signal-safe: atomics only.
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let m = current_m();
    // SAFETY: a non-null current M is this thread's and alive while the thread runs it.
    match unsafe { m.as_ref() } {
        Some(m) if m.pre.preempt_seq.load(Relaxed) != 0 => {
            compiler_fence(Fence);
            if m.pre.in_rt.load(Relaxed) == 0 {
                give_up_p(m);
            }
        }
        // Not a request of ours: pass it on to the program's own handler, if any.
        // SAFETY: PREV was written before our handler was installed, and is only read.
        _ => unsafe { forward(sig, info, ctx) },
    }
}

static INSTALL: Once = Once::new();
static mut PREV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();

/// Passes a signal that was not ours to the handler installed before ours.
///
/// # Safety
/// Called from our handler with its arguments, after `install`.
unsafe fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: PREV is initialised by `install` before our handler can run.
    let prev = unsafe { &*(&raw const PREV).cast::<libc::sigaction>() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return; // SIGURG's default action is to ignore it
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this handler for siginfo-style calls.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed this handler for plain calls.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// Installs the preemption signal handler once per process (on the alternate signal stack,
/// restarting interrupted system calls where the kernel can).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with valid arguments; PREV is filled before our handler is
        // installed, and only read afterwards.
        unsafe {
            libc::sigaction(SIGPREEMPT, ptr::null(), (&raw mut PREV).cast());
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(SIGPREEMPT, &sa, ptr::null_mut());
        }
    });
}

/// Makes sure the calling M's thread receives the preemption signal (it inherits its creator's
/// signal mask, which a program may have set to block `SIGURG`).
pub fn init_thread() {
    // SAFETY: building a signal set and changing this thread's mask with valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SIGPREEMPT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, ptr::null_mut());
    }
}

/// Asks `m` to give up its P if it is still in run `seq`: records the request and signals the
/// thread. Called by sysmon.
///
/// # Safety
/// `m`'s thread must not have exited (sysmon holds the registry lock its exit takes).
pub unsafe fn request(m: &M, seq: u64) {
    m.pre.preempt_seq.store(seq, Relaxed);
    let t = m.pre.thread.load(Relaxed) as libc::pthread_t;
    // SAFETY: the thread is alive (contract); a failure only means no preemption this tick.
    unsafe { libc::pthread_kill(t, SIGPREEMPT) };
}

/// Takes back a P this M gave up and nobody handed off yet (on g0, as its goroutine left).
pub fn reclaim(m: &M) -> *const P {
    let p = m.pre.lost_p.swap(ptr::null_mut(), Acquire);
    if !p.is_null() {
        return p;
    }
    m.pre.sys_p.swap(ptr::null_mut(), Acquire)
}

/// A runtime call at which the current goroutine may be switched out: if its M lost its P to a
/// preemption, get one back first (or queue the goroutine for one).
#[inline]
pub fn check() {
    let m = current_m();
    // SAFETY: a non-null current M is this thread's. Outside a section the P is only a hint,
    // but null stays null: only this thread gives it back.
    if !m.is_null() && unsafe { (*m).p() }.is_null() {
        check_slow(m);
    }
}

#[cold]
fn check_slow(m: *const M) {
    // SAFETY: our own M; reads of its own state, not held.
    let ml = unsafe { (*m).local() };
    if ml.curg.is_none() || ml.in_blocking {
        // On g0 (a timer function), or a call inside `gort::blocking`, which runs without a
        // P on purpose.
        return;
    }
    reacquire();
}

/// Gets the current goroutine a P again after its M gave it up (a preemption, or a blocking
/// call: also its fast path, taking the P back from `sys_p`): its own P if still unclaimed,
/// else an idle one, else the goroutine goes to the global run queue and resumes on whichever
/// M takes it (Go's `exitsyscall`). Nothing to do if the M has a P.
pub fn reacquire() {
    let m = current_m();
    {
        let _s = Section::enter(m);
        // SAFETY: our own M (callers run on a goroutine).
        let m = unsafe { &*m };
        if !m.p().is_null() {
            return;
        }
        let mut p = reclaim(m);
        if p.is_null() {
            // SAFETY: an M's scheduler outlives the M.
            let sched = unsafe { &*m.sched_ptr() };
            let mut l = sched.lock();
            p = sched.pidleget(&mut l).unwrap_or(ptr::null());
        }
        if !p.is_null() {
            m.set_p(p);
            return;
        }
    }
    super::park::exitsyscall_requeue();
}
