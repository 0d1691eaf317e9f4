//! Direct switches: a goroutine that parks hands its M straight to the next goroutine of its
//! P, without a round trip through g0.
//!
//! A park through g0 costs two stack switches and a pass through the scheduler loop
//! (`M::execute`, `M::finish`, `M::find_runnable`). In the common case that loop only takes the
//! P's next G, usually the one the parking goroutine just readied into `runnext` (a channel
//! hand-off). [`M::park_direct`] does that on the parking goroutine's own stack instead, inside
//! the runtime section of the switch (so a preemption leaves the P alone), and switches once.
//!
//! # Who completes the park
//! Go's rule holds: the parked G is marked `WAITING` and its unlock closure runs only after its
//! registers are saved. On the g0 path the M does both on g0 ([`complete_park`], called by
//! `M::finish`). On the direct path nobody is on g0: the parking G leaves a [`Handoff`] in its
//! M's local state, and the goroutine it switched to completes the park as the first thing it
//! does once running: every point where a goroutine resumes or starts (`park::resumed`, from
//! `switch_to_g0` and `goroutine_main`) calls [`after_direct`] before it ends the switch's
//! runtime section.
//!
//! So the unlock closure of a direct park runs on the *next goroutine's* stack. Only parks
//! whose closure is small take this path (`Waiter::block_with`: it drops a lock guard and may
//! wake a waiter); every other park goes through g0, where closures may be deep.
//!
//! # When the direct path is not taken
//! Whenever the scheduler loop could decide differently from "run the P's next local G":
//! no P (inside `gort::blocking`), a thread-locked M or next G, a 61st tick with work in the
//! global queue, a runnext chain at its limit, a due timer, a stopping runtime, a P beyond
//! `gomaxprocs`, or an empty local queue. Then the park goes through g0 as before.

use super::g::{self, G};
use super::m::M;
use super::p::{self, P};
use super::Sched;
use crate::arch;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What the goroutine that switched directly to the current one left for it to complete
/// (see the module docs): the second half of `M::finish` for its action.
pub enum Handoff {
    /// Mark the G waiting and run its unlock closure ([`complete_park`]).
    Park {
        g: Arc<G>,
        unlock: *mut (dyn FnMut() -> bool + 'static),
        no_cancel: bool,
    },
    /// Put the G at the tail of the run queue ([`complete_yield`]).
    Yield(Arc<G>),
    /// Free the dead G and its stack ([`complete_exit`]).
    Exit(Arc<G>),
}

/// Requeues a G that yielded and has switched out: at the tail of `p`'s queue, or, without a
/// P (a yield inside `blocking`), on the global queue.
///
/// # Safety
/// Own thread, on g0 or inside a runtime section; a non-null `p` is held by this M; `g`
/// switched out of its yield.
#[inline]
pub(super) unsafe fn complete_yield(sched: &Sched, p: *const P, g: Arc<G>) {
    g.set_state(g::RUNNABLE);
    // SAFETY: a non-null p is ours.
    match unsafe { p.as_ref() } {
        Some(p) => sched.runqput(p, g, false),
        None => sched.ready_global(g),
    }
}

/// Buries a G that exited and has switched out for good: marks it dead and keeps it and its
/// stack in `p`'s caches (the runtime-wide ones without a P: it was preempted as it exited).
///
/// # Safety
/// As for [`complete_yield`]; `g` switched out of `goroutine_main` for the last time, and is
/// not locked to a thread (`M::finish` deals with that first).
#[inline]
pub(super) unsafe fn complete_exit(m: &M, sched: &Sched, p: *const P, g: Arc<G>) {
    // SAFETY: we are the holder of the dead G.
    let ctx = unsafe { g.ctx() };
    g.set_state(g::DEAD);
    ctx.sp = std::ptr::null_mut();
    let stack = ctx.stack.take();
    // SAFETY: a non-null p is ours.
    match unsafe { p.as_ref() } {
        Some(p) => m.free_g(sched, p, g, stack),
        None => sched.free_g_global(g, stack),
    }
}

/// Completes the park of `g`, which has just switched out (Go's `park_m` after `mcall`):
/// marks it waiting, then runs its unlock closure (see `Action::Park`).
///
/// # Safety
/// Own thread, on g0 or inside a runtime section; a non-null `p` is held by this M. `g`
/// switched out of this park, and its stack keeps `unlock` alive until it is resumed.
#[inline]
pub(super) unsafe fn complete_park(
    sched: &Sched,
    p: *const P,
    g: Arc<G>,
    unlock: *mut (dyn FnMut() -> bool + 'static),
    no_cancel: bool,
) {
    // SAFETY: a non-null p is ours (a park inside `blocking` has none and is not counted).
    if let Some(p) = unsafe { p.as_ref() } {
        P::bump(&p.parks);
    }
    let seq = g.seq();
    g.set_waiting();
    // SAFETY: the parking G keeps the closure alive on its stack until it is resumed, which
    // cannot happen before the closure publishes its waiter.
    if unsafe { (*unlock)() } {
        // The park is complete: from here on cancellation may wake it too.
        g.parked(seq, no_cancel);
    } else if g.try_ready(seq) {
        // Called off, and nobody else readied it meanwhile: run it next (or, with no P, as a
        // park inside `blocking`, from the global queue).
        // SAFETY: a non-null p is ours.
        match unsafe { p.as_ref() } {
            Some(p) => sched.runqput(p, g, true),
            None => sched.ready_global(g),
        }
    }
}

impl M {
    /// Switches the running goroutine out straight to the next G of this M's P, if the
    /// scheduler loop would pick that G anyway (module docs), leaving `handoff(current G)` for
    /// the next G to complete. Returns false, having changed nothing, if the loop might pick
    /// differently; the caller then switches to g0. Returns true once the goroutine has been
    /// resumed (maybe on another M; never for [`Handoff::Exit`]); the caller then ends the
    /// switch as after any other (`park::resumed`).
    ///
    /// # Safety
    /// On a goroutine running on this M, inside the runtime section of a switch
    /// (`preempt::before_switch`). What the handoff completes must be valid once the
    /// goroutine's registers are saved: a park's `unlock` follows the rules of `Action::Park`,
    /// stays alive until the goroutine is resumed, and is small (it runs on the next
    /// goroutine's stack).
    // Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
    // "one frame per park").
    #[inline(always)]
    pub(super) unsafe fn switch_direct(&self, handoff: impl FnOnce(Arc<G>) -> Handoff) -> bool {
        let p_ptr = self.p();
        if p_ptr.is_null() {
            return false;
        }
        // SAFETY: inside a runtime section our P stays ours; an M's scheduler outlives it.
        let (p, sched) = unsafe { (&*p_ptr, &*self.sched_ptr()) };
        let ml = self.local.get();
        // SAFETY: our own state, read on our own thread.
        if unsafe { (*ml).locked_g.is_some() || (*ml).in_blocking } {
            return false;
        }
        // SAFETY: we hold p.
        let (pl, local) = unsafe { (p.local(), p.runq_local()) };
        // The checks `find_runnable` makes before it looks at the local queue.
        if (pl.schedtick % 61 == 0 && sched.runqsize.load(Relaxed) > 0)
            || pl.inherit_streak >= p::INHERIT_MAX
            || p.timers.due()
            || sched.stopping.load(Relaxed)
            || p.id >= sched.gomaxprocs.load(Relaxed)
        {
            return false;
        }
        let Some((next, inherit)) = local.pop() else {
            return false;
        };
        // SAFETY: we dequeued `next`, so we are its holder.
        if !unsafe { next.ctx() }.locked_m.is_null() {
            // Its thread must run it: put it back where the loop will find it first.
            sched.runqput(p, next, true);
            return false;
        }
        pl.inherit_streak = if inherit { pl.inherit_streak + 1 } else { 0 };
        // SAFETY: holding p, in a runtime section; we are next's holder.
        let sp = unsafe { self.start_run(sched, &next, inherit) };
        // SAFETY: our own state through a raw pointer, not held across the switch. The G's
        // Arc moves into the handoff, which keeps `save` valid until the switch has written it
        // (the next goroutine completes the handoff only after the switch).
        unsafe {
            let Some(g) = (*ml).curg.replace(next) else {
                crate::fatal("runtime: switch_direct without a current G")
            };
            let save = &raw mut (*g.ctx.get()).sp;
            // The slot is empty: `after_direct` took the last handoff right after its switch.
            debug_assert!((*ml).handoff.is_none());
            std::ptr::write(&raw mut (*ml).handoff, Some(handoff(g)));
            arch::switch(save, sp, 0);
        }
        true
    }
}

/// Completes the park of the goroutine that switched directly to the current one, if any.
/// Called by every goroutine right after it resumes or starts (module docs).
///
/// # Safety
/// On a goroutine stack right after a switch to it, before the switch's runtime section ends;
/// `m` is the current M.
#[inline]
pub unsafe fn after_direct(m: &M) {
    // SAFETY: our own state, on our own thread.
    let Some(h) = (unsafe { (*m.local.get()).handoff.take() }) else {
        return;
    };
    // SAFETY: the direct path ran with our P held inside a runtime section that is still
    // open, so p is ours; the handoff's G has switched out (saved its registers), and a
    // park's closure is alive on its stack.
    unsafe {
        let (sched, p) = (&*m.sched_ptr(), m.p());
        match h {
            Handoff::Park {
                g,
                unlock,
                no_cancel,
            } => complete_park(sched, p, g, unlock, no_cancel),
            Handoff::Yield(g) => complete_yield(sched, p, g),
            Handoff::Exit(g) => complete_exit(m, sched, p, g),
        }
    }
}
