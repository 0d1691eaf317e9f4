//! Moving Ps between Ms outside the scheduling loop: a P beyond `gomaxprocs` retiring, an M
//! locked to its goroutine stopping and starting (Go's `stoplockedm`/`startlockedm`), and
//! [`Sched::handoffp`], which finds an M for a P its holder gave up (a blocking call, a
//! preempted hog, a locked M going to sleep).
//!
//! All of it runs on g0 or on a thread that is not an M (sysmon), never on a goroutine stack.

use super::m::M;
use super::p::P;
use super::timer;
use super::Sched;
use std::ptr;
use std::sync::atomic::Ordering::*;

impl M {
    /// Our P is beyond `gomaxprocs`: move its work to the global queue and let it go.
    ///
    /// # Safety
    /// Own thread, on g0, holding the P.
    pub(super) unsafe fn retire_p(&self, sched: &Sched) {
        // SAFETY: our own thread on g0 (contract).
        let ml = unsafe { self.local() };
        let p_ptr = self.p();
        // SAFETY: we hold this live P (contract), so we own its queue and local state.
        let (p, local, pl) = unsafe { (&*p_ptr, (*p_ptr).runq_local(), (*p_ptr).local()) };
        let mut gs = Vec::new();
        while let Some((g, _)) = local.pop() {
            gs.push(g);
        }
        let stacks = std::mem::take(&mut pl.stacks);
        sched.stacks.free_batch(stacks);
        let mut l = sched.lock();
        l.gfree.append(&mut pl.gfree);
        sched.ngfree.store(l.gfree.len(), Relaxed);
        l.runq.extend(gs);
        sched.runqsize.store(l.runq.len(), SeqCst);
        // Decide under the lock, where `set_gomaxprocs` changes the count: if it grew back
        // meanwhile we keep the P; otherwise `pidleput` marks it retired.
        if p.id >= sched.gomaxprocs.load(Relaxed) {
            self.set_p(ptr::null());
            sched.pidleput(&mut l, p_ptr);
        }
        drop(l);
        if self.p().is_null() && ml.spinning {
            ml.spinning = false;
            sched.nmspinning.fetch_sub(1, SeqCst);
        }
        sched.wakep();
    }

    /// Go's `stoplockedm`: our locked G is not running; hand off our P and sleep until someone
    /// gives us a P to run it with. False if told to exit.
    ///
    /// # Safety
    /// Own thread, on g0.
    pub(super) unsafe fn stop_locked(&self, sched: &Sched) -> bool {
        // SAFETY: our own state (contract: own thread, on g0).
        let ml = unsafe { self.local() };
        let p = self.take_p();
        if ml.spinning {
            ml.spinning = false;
            sched.nmspinning.fetch_sub(1, SeqCst);
        }
        if !p.is_null() {
            sched.handoffp(p);
        }
        self.park.sleep();
        self.park.clear();
        let p = self.nextp.swap(ptr::null_mut(), Relaxed);
        if p.is_null() {
            return false;
        }
        // SAFETY: our own state.
        self.set_p(p);
        true
    }

    /// Go's `startlockedm`: the G we dequeued is locked to `lm`; give it our P and go idle.
    ///
    /// # Safety
    /// Own thread, on g0, holding a P; `lm` is asleep in `stop_locked`.
    pub(super) unsafe fn start_locked(&self, _sched: &Sched, lm: *const M) {
        let p = self.take_p();
        // SAFETY: a locked M waiting for its G sleeps in stop_locked with no P and is on no
        // idle list, so only the M that dequeued its G (us) hands it one.
        unsafe { (*lm).hand_p(p, false) };
    }
}

impl Sched {
    /// Go's `handoffp`: find someone to run `p`, or put it on the idle list.
    pub fn handoffp(&self, p: *const P) {
        self.counters.handoffs.fetch_add(1, Relaxed);
        // SAFETY: p is a live P its former holder just released.
        let pr = unsafe { &*p };
        if !pr.runq.is_empty() || self.runqsize.load(SeqCst) > 0 {
            self.startm(Some(p), false);
            return;
        }
        if self.nmspinning.load(SeqCst) + self.npidle.load(SeqCst) == 0
            && self
                .nmspinning
                .compare_exchange(0, 1, SeqCst, SeqCst)
                .is_ok()
        {
            self.startm(Some(p), true);
            return;
        }
        let mut l = self.lock();
        if !l.runq.is_empty() {
            drop(l);
            self.startm(Some(p), false);
            return;
        }
        self.pidleput(&mut l, p);
        drop(l);
        // Its timers now sit on an idle P: make sure an idle M wakes for them (Go does the
        // same in `handoffp`).
        let when = pr.timers.when0();
        if when != timer::NONE {
            self.timer_added(when);
        }
    }
}
