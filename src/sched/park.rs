//! The goroutine side of a switch: parking, yielding, exiting, and the waiter records that
//! blocking primitives keep in their queues.
//!
//! Everything here runs on a goroutine stack, except the `Action::Park` unlock closure, which
//! the M runs on g0 (see `m.rs`). After any switch the goroutine may be on another M: code here
//! re-reads the current M through `current_m()` and never reuses a pointer to M or P state
//! obtained before the switch.
//!
//! # The park protocol (Go's `gopark`)
//! 1. The goroutine makes a [`Waiter`] (which bumps its park sequence number) and publishes it in
//!    a wait queue, under that queue's lock.
//! 2. It calls [`park`] with a closure that releases the lock, and switches to g0.
//! 3. On g0 the M marks the G `WAITING`, then runs the closure.
//! 4. A waker takes the `Waiter` out of the queue (under the lock) and calls [`Waiter::wake`],
//!    whose CAS `WAITING -> RUNNABLE` on the right sequence number succeeds at most once; the
//!    winner queues the G.
//!
//! Because step 3 marks the G waiting before the lock is released, a waker can never see a G
//! that is still on its stack; and because the CAS names the sequence number, a waiter record
//! left behind (cancellation, a `select` that completed elsewhere) can never wake a later park.

use super::direct::Handoff;
use super::g::{Entry, G};
use super::m::{current_m, Action, M};
use super::preempt;
use super::timer;
use super::Sched;
use crate::arch;
pub use crate::diag::WaitReason;
use crate::runtime::Cancelled;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::Thread;
use std::time::Instant;

/// The current goroutine's M and G, or None on a plain thread (or on g0).
#[inline]
pub fn current() -> Option<(*const M, *const G)> {
    let m = current_m();
    if m.is_null() {
        return None;
    }
    // SAFETY: our own M; a read of its current G, not held.
    let g = unsafe { (*m).local().curg.as_ref().map(Arc::as_ptr) }?;
    Some((m, g))
}

/// The current goroutine's G, or None on a plain thread.
#[inline]
pub fn current_g() -> Option<&'static G> {
    // SAFETY: a running G stays alive while it runs (its M holds a count); the 'static is a
    // lie callers must not act on beyond the current goroutine's own lifetime.
    current().map(|(_, g)| unsafe { &*g })
}

/// `std::thread::panicking`, kept out of line so that the panic-count TLS address is computed
/// afresh on whatever thread we are on (see "TLS" in m.rs).
#[inline(never)]
pub fn panicking() -> bool {
    std::thread::panicking()
}

#[inline(never)]
pub(crate) fn current_thread() -> Thread {
    std::thread::current()
}

/// Switches from the running G to its M's g0 with `action`; with `direct`, a park may switch
/// straight to the P's next G instead (see `direct.rs`).
///
/// # Safety
/// Must run on a goroutine, and `m` must be the M it runs on (from `current_m()` since the
/// last switch). For `Action::Park` and `Action::Call`, the closure must stay alive until the
/// G is resumed; for a direct park it must also be small (it may run on another goroutine's
/// stack).
// Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
// "one frame per park").
#[inline(always)]
unsafe fn switch_to_g0(m: *const M, action: Action, direct: bool) {
    // SAFETY: we run on m as its current G; accesses go through raw pointers and none is used
    // after the switch, since we may resume on another M.
    unsafe {
        // From here until we run again, the runtime uses the P (see `preempt.rs`).
        let prev = preempt::before_switch(&*m);
        if direct {
            let switched = match action {
                Action::Park(unlock, no_cancel) => (*m).switch_direct(|g| Handoff::Park {
                    g,
                    unlock,
                    no_cancel,
                }),
                Action::Yield => {
                    if (*m).yield_to_self(&*(*m).sched_ptr()) {
                        // Nothing else would run: the yield is over without a switch.
                        preempt::after_switch(&*m, prev);
                        return;
                    }
                    (*m).switch_direct(Handoff::Yield)
                }
                Action::Exit => (*m).switch_direct(Handoff::Exit),
                _ => false,
            };
            if switched {
                resumed(prev);
                return;
            }
        }
        let ml = (*m).local.get();
        (*ml).action = action;
        let Some(g) = (*ml).curg.as_ref().map(Arc::as_ptr) else {
            crate::fatal("runtime: switch_to_g0 without a current G")
        };
        let g0 = (*ml).g0_sp;
        arch::switch(&mut (*(*g).ctx.get()).sp, g0, 0);
        resumed(prev);
    }
}

/// Ends a switch on the goroutine that was switched to (resumed, or started with `prev` 0),
/// on whichever M it now runs: completes the park of a goroutine that switched to it directly,
/// then leaves the switch's runtime section.
#[inline]
fn resumed(prev: u32) {
    // SAFETY: the current M is this thread's and alive; we are right after a switch, still
    // inside its runtime section.
    unsafe {
        let m = &*current_m();
        super::direct::after_direct(m);
        preempt::after_switch(m, prev);
    }
}

/// Parks the current goroutine; `unlock` runs on g0 once the G is marked waiting (see
/// [`Action::Park`] for its rules; returning false calls the park off).
///
/// If the goroutine has been cancelled (runtime shutdown), `unlock` runs and the goroutine
/// unwinds with [`Cancelled`] instead of parking (or right after waking). A goroutine that is
/// already unwinding is pinned to its thread while parked (Rust's panic count lives in TLS).
pub fn park(unlock: &mut dyn FnMut() -> bool) {
    park_with(unlock, true)
}

/// [`park`], optionally immune to cancellation: with `cancellable == false` the park neither
/// unwinds nor is woken by a runtime shutdown (for waits that must complete for soundness,
/// such as `scope` waiting for goroutines that borrow its caller's frame).
#[inline]
pub fn park_with(unlock: &mut dyn FnMut() -> bool, cancellable: bool) {
    park_impl(unlock, cancellable, false)
}

/// [`park_with`], where `direct` allows switching straight to the P's next goroutine, which
/// then runs `unlock` on its own stack (see `direct.rs`): only for small closures.
// Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
// "one frame per park").
#[inline(always)]
fn park_impl(unlock: &mut dyn FnMut() -> bool, cancellable: bool, direct: bool) {
    let (m, g) = current().expect("runtime: park outside a goroutine");
    // SAFETY: the running G is alive while it runs.
    let g = unsafe { &*g };
    if cancellable {
        check_cancel(g, unlock);
    }
    // SAFETY: the 'static is erased only for storage in the M; the closure lives in our frame,
    // which stays intact until we are resumed.
    let unlock: *mut (dyn FnMut() -> bool + 'static) =
        unsafe { std::mem::transmute(unlock as *mut dyn FnMut() -> bool) };
    // SAFETY: we are on a goroutine, on m; the closure outlives the park.
    unsafe { switch_pinned(m, |pin| Action::Park(unlock, pin || !cancellable), direct) };
    // Resumed (maybe on another M: `m` is stale now), but still the same goroutine on the same
    // G, so `g` holds.
    if cancellable {
        check_cancel(g, &mut || true);
    }
}

#[inline]
fn check_cancel(g: &G, unlock: &mut dyn FnMut() -> bool) {
    if g.is_cancelled() && !panicking() {
        unlock();
        panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Records why the current goroutine is about to park, for a park that does not go through
/// [`Waiter::current`] (one Relaxed store; a no-op on a plain thread). The wait word is a
/// dump's hint, written only by the G itself (see `G::wait`).
pub fn set_wait_reason(reason: WaitReason) {
    if let Some(g) = current_g() {
        g.wait.store(crate::diag::wait_word(reason), Relaxed);
    }
}

/// Go's `Gosched`: put the current G at the back of its P's queue and run something else.
pub fn yield_now() {
    let Some((m, g)) = current() else {
        panic!("gort: gort::runtime::gosched called outside a gort runtime; wrap your main in gort::run(|| ...)")
    };
    // SAFETY: the running G is alive while it runs.
    check_cancel(unsafe { &*g }, &mut || true);
    // As in `park`, an unwinding goroutine comes back on the same thread (`switch_pinned`).
    // SAFETY: we are on a goroutine, running on m.
    unsafe { switch_pinned(m, |_| Action::Yield, true) };
    // The same goroutine, so the same G (only `m` is stale).
    // SAFETY: as above.
    check_cancel(unsafe { &*g }, &mut || true);
}

/// Yields the current goroutine to the back of the global run queue, so that it runs again
/// only after everything queued before it, on this P or on the global queue (Go's `Gosched`
/// does this; `yield_now` keeps the G on its P). How a spawner that overflowed its P's run
/// queue lets what it spawned run (see `Sched::spawn`). A no-op on a plain thread or g0.
pub fn yield_global() {
    let Some((m, g)) = current() else { return };
    // SAFETY: the running G is alive while it runs.
    check_cancel(unsafe { &*g }, &mut || true);
    // SAFETY: we are on a goroutine, running on m.
    unsafe { switch_pinned(m, |_| Action::YieldGlobal, false) };
    // SAFETY: the same goroutine, so the same G.
    check_cancel(unsafe { &*g }, &mut || true);
}

/// Leaves this M, which has no P, for whichever M with a P picks the G up: the slow path of
/// returning from `blocking` (see `syscall.rs`). Like a park, a goroutine that is unwinding
/// stays on its thread (pinned, it waits for its M to be handed a P).
pub fn exitsyscall_requeue() {
    // SAFETY: on a goroutine (callers check), on the M current_m() names.
    unsafe { switch_pinned(current_m(), |_| Action::ExitSyscall, false) };
}

/// [`switch_to_g0`] for a switch after which the G may resume on another M: a goroutine that
/// is unwinding a panic is pinned to its thread meanwhile (Rust's panic count is
/// thread-local). `action` is told whether it is pinned.
///
/// # Safety
/// As for [`switch_to_g0`].
// Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
// "one frame per park").
#[inline(always)]
unsafe fn switch_pinned(m: *const M, action: impl FnOnce(bool) -> Action, direct: bool) {
    let pin = panicking();
    if pin {
        crate::runtime::lock_os_thread();
    }
    // SAFETY: forwarded contract (lock_os_thread does not switch: m is still ours).
    unsafe { switch_to_g0(m, action(pin), direct) };
    if pin {
        crate::runtime::unlock_os_thread();
    }
}

/// Runs `f` on the current M's scheduler stack (g0), Go's `systemstack`, and returns its
/// value; on a plain thread, just runs it. `f` must not park, yield or panic (a panic on g0
/// aborts the process).
pub fn on_system_stack<R>(f: impl FnOnce() -> R) -> R {
    if current().is_none() {
        return f();
    }
    let mut f = Some(f);
    let mut out = None;
    let mut call = || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    };
    let call: &mut dyn FnMut() = &mut call;
    // SAFETY: the closure lives in this frame, which stays suspended (not resumed elsewhere)
    // until the M has run it and switched straight back to us.
    unsafe {
        let call: *mut (dyn FnMut() + 'static) = std::mem::transmute(call as *mut dyn FnMut());
        switch_to_g0(current_m(), Action::Call(call), false);
    }
    out.expect("runtime: on_system_stack's function did not run")
}

/// Checks for cancellation at a runtime call that does not park (e.g. `go`).
pub fn poll_cancel() {
    if let Some(g) = current_g() {
        check_cancel(g, &mut || true);
    }
}

/// First code to run on a new goroutine stack (called by the architecture's trampoline).
///
/// # Safety
/// `g` is the address of the G being started, whose M holds a strong count.
pub unsafe extern "sysv64" fn goroutine_main(g: usize) -> ! {
    resumed(0);
    {
        let g = g as *const G;
        // SAFETY: we are this G's holder while it runs.
        let mut entry = unsafe { std::mem::replace(&mut (*(*g).ctx.get()).entry, Entry::empty()) };
        // SAFETY: as above.
        let cancelled = unsafe { (*g).is_cancelled() };
        if !entry.is_empty() {
            // The task catches the user's panics itself (a cancelled one is dropped unrun);
            // this outer catch only guards the runtime.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                if cancelled {
                    drop(std::mem::replace(&mut entry, Entry::empty()));
                } else {
                    entry.run();
                }
            }));
        }
        // Keep the spent task with the G (see `Entry::run`).
        // SAFETY: we are still the G's holder; the current G is `g` (we may be on another M
        // than at the start, but the G is the same).
        unsafe { (*(*g).ctx.get()).entry = entry };
    }
    // SAFETY: on a goroutine, on the M current_m() names; the M frees our stack only after we
    // switched off it.
    unsafe { switch_to_g0(current_m(), Action::Exit, true) };
    crate::fatal("runtime: a dead goroutine was resumed")
}

/// A record of who waits: a parked goroutine (at one park) or a blocked OS thread.
pub enum Waiter {
    G { g: Arc<G>, seq: u64 },
    Thread(Thread),
}

impl Waiter {
    /// A waiter for the caller: a new park of the current goroutine, waiting for `reason`
    /// (shown by goroutine dumps), or the current thread.
    #[inline]
    pub fn current(reason: WaitReason) -> Waiter {
        Waiter::make(Some(reason))
    }

    /// [`Waiter::current`] for another park of the same wait (a re-armed queue entry): the
    /// reason and start recorded by the first park stay.
    pub fn again() -> Waiter {
        Waiter::make(None)
    }

    #[inline]
    fn make(reason: Option<WaitReason>) -> Waiter {
        let m = current_m();
        if !m.is_null() {
            // SAFETY: our own M, not held across a switch.
            if let Some(g) = unsafe { (*m).local().curg.clone() } {
                let seq = g.prepare_park();
                if let Some(r) = reason {
                    g.wait.store(crate::diag::wait_word(r), Relaxed);
                }
                return Waiter::G { g, seq };
            }
        }
        Waiter::Thread(current_thread())
    }

    /// Wakes the waiter (a no-op for a goroutine park that has already ended).
    // Always inlined: the waker's side of a hop stays in its caller's frame (ARCHITECTURE.md,
    // "one frame per park").
    #[inline(always)]
    pub fn wake(self) {
        match self {
            Waiter::G { g, seq } => Sched::ready(g, seq),
            Waiter::Thread(t) => super::deadlock::unpark_thread(&t),
        }
    }

    /// Blocks until woken: parks the goroutine (releasing `guard` once it is marked waiting)
    /// or, on a plain thread, releases `guard` and parks the thread. Callers re-check their
    /// condition in a loop: a thread may wake spuriously.
    pub fn block<T>(is_goroutine: bool, guard: T) {
        Waiter::block_with(is_goroutine, guard, true)
    }

    /// [`Waiter::block`], optionally immune to cancellation (see [`park_with`]).
    // Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
    // "one frame per park").
    #[inline(always)]
    pub fn block_with<T>(is_goroutine: bool, guard: T, cancellable: bool) {
        if is_goroutine {
            let mut guard = Some(guard);
            // Dropping a guard is small enough to run on the next goroutine's stack.
            park_impl(
                &mut || {
                    drop(guard.take());
                    true
                },
                cancellable,
                true,
            );
        } else {
            drop(guard);
            super::deadlock::park_thread();
        }
    }

    #[inline]
    pub fn is_goroutine(&self) -> bool {
        matches!(self, Waiter::G { .. })
    }

    /// What [`Waiter::block_until`] needs to end the wait at its deadline; taken before the
    /// waiter is moved into a queue.
    pub fn alarm(&self) -> Alarm {
        match self {
            Waiter::G { g, seq } => Alarm::G {
                g: g.clone(),
                seq: *seq,
            },
            Waiter::Thread(_) => Alarm::Thread,
        }
    }

    /// [`Waiter::block`] that also returns at `deadline`: a timer readies the goroutine (a
    /// no-op if it was woken first), or the thread parks with a timeout. Callers re-check
    /// their condition and the clock in a loop, and must take themselves out of the wait
    /// queue if they give up.
    ///
    /// The timer is armed by the park's unlock closure, once the G is marked waiting: armed
    /// earlier, it could fire (on another M, or at once for a deadline already past) while the
    /// G still runs, and its wake-up would be lost. It is cancelled when the wait ends, also
    /// when the park unwinds (cancellation).
    pub fn block_until<T>(alarm: Alarm, guard: T, deadline: Instant) {
        match alarm {
            Alarm::G { g, seq } => {
                let (timer, unarmed) =
                    timer::prepare(deadline, Box::new(move || Sched::ready(g, seq)));
                let _cancel = CancelTimer(Some(timer));
                let mut unarmed = Some(unarmed);
                let mut guard = Some(guard);
                park(&mut || {
                    // Move both onto g0 first: once either is published, the G may resume
                    // elsewhere and this closure's captures (on its stack) may be gone.
                    let (unarmed, guard) = (unarmed.take(), guard.take());
                    if let Some(t) = unarmed {
                        t.arm();
                    }
                    drop(guard);
                    true
                });
            }
            Alarm::Thread => {
                drop(guard);
                std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()));
            }
        }
    }
}

/// Cancels a timer when dropped (a timed park that returns or unwinds).
struct CancelTimer(Option<timer::TimerId>);

impl Drop for CancelTimer {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            timer::cancel(t);
        }
    }
}

/// See [`Waiter::alarm`].
pub enum Alarm {
    G { g: Arc<G>, seq: u64 },
    Thread,
}
