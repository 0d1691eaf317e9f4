//! M: an OS thread running the scheduler loop.
//!
//! Each M runs [`M::schedule`] on its thread's own native stack, which plays the role of Go's g0:
//! scheduler code never runs on a goroutine stack, so a goroutine's stack only needs room for its
//! own frames. To run a G the M switches to the G's stack; the G comes back by switching to the
//! M's saved g0 context after writing an [`Action`] saying why (yield, park, exit), which the M
//! then carries out on g0.
//!
//! # TLS
//! The thread-local pointer to the current M is read only through [`current_m`], which is
//! `#[inline(never)]`: a goroutine can resume on a different M after any switch, and LLVM may
//! otherwise keep a thread-local's address in a register across the call that switched
//! (rust-lang/rust#33368, llvm/llvm-project#98479). No runtime code holds a reference to M
//! state across a switch; it calls `current_m()` again.
//!
//! # Ownership
//! [`MLocal`] belongs to the thread running the M. Other threads touch an M only through
//! `nextp`/`spin_on_wake` followed by `park.wakeup()` ([`M::hand_p`]), and only while the M is
//! asleep on its note with no P: on the idle list (under the scheduler lock) or in
//! `stop_locked` waiting for its locked G.

use super::g::{self, G};
use super::note::Note;
use super::p::{self, P};
use super::preempt;
use super::{runq, Sched};
use crate::arch;
use std::cell::{Cell, UnsafeCell};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::*};
use std::sync::Arc;

/// How long a spinning M that found nothing keeps polling before it gives up its P.
pub const SPIN_WAIT: std::time::Duration = std::time::Duration::from_micros(50);

/// What a G asks its M to do after switching to g0.
pub enum Action {
    None,
    /// Put the G at the tail of the local run queue.
    Yield,
    /// Put the G at the tail of the global run queue, behind everything queued before it on
    /// any P (Go's `goschedImpl`): see `park::yield_global`.
    YieldGlobal,
    /// Mark the G waiting, then run this function (which publishes the G's waiter record, or
    /// releases the lock guarding the queue it is in). It runs on g0, must not panic or park,
    /// and must not touch the G's stack once the record is visible: from then on a waker may
    /// resume the G on another M. Returning false calls the park off (the condition the G
    /// waits for already holds): the G is resumed at once, as Go's `unlockf` returning false.
    /// The flag says cancellation must not wake this park: the G is unwinding a panic already
    /// (it cannot unwind twice, and its waker would see a wake-up without its condition), or
    /// the wait must complete for soundness (`scope`).
    Park(*mut (dyn FnMut() -> bool + 'static), bool),
    /// The G has finished.
    Exit,
    /// The G returns from `blocking` and found no idle P for its M: queue it for any M with a
    /// P (or for its locked M), and let this M, which has no P, go idle (Go's `exitsyscall0`).
    ExitSyscall,
    /// Run this function on g0, then resume the same G on the same M at once (Go's
    /// `systemstack`): for work that needs more stack than a goroutine may have. The function
    /// must not park or panic.
    Call(*mut (dyn FnMut() + 'static)),
}

pub struct M {
    /// Thread number (the OS thread is named `gort-m<id>`).
    pub id: u64,
    /// Id of the goroutine this M runs (0: none), for scheduler traces only (a hint).
    pub curg_id: std::sync::atomic::AtomicU64,
    sched: *const Sched,
    pub park: Note,
    pub(super) nextp: AtomicPtr<P>,
    pub(super) spin_on_wake: AtomicBool,
    /// The P this M holds (null: none). Written only on the M's own thread: by its code, and
    /// by the preemption signal handler, which takes it only outside runtime sections (see
    /// `preempt.rs`). Other threads read it as a hint (sysmon).
    pub(super) p: AtomicPtr<P>,
    /// Preemption and blocking-call state, shared with sysmon (see `preempt.rs`).
    pub(crate) pre: super::preempt::MPreempt,
    pub(crate) local: UnsafeCell<MLocal>,
}

// SAFETY: `local` (with its raw pointers and the G's action) is touched only by the M's own
// thread (see "Ownership" above); `sched` points to a Sched the M keeps alive; everything else
// is atomics or a Note. Sysmon reads only the atomics of a registered M.
unsafe impl Send for M {}
// SAFETY: as above.
unsafe impl Sync for M {}

/// State owned by the M's own thread.
pub struct MLocal {
    /// Saved g0 stack pointer while a G runs.
    pub g0_sp: *mut u8,
    /// The G running on this M (the M holds one strong count while it runs).
    pub curg: Option<Arc<G>>,
    pub spinning: bool,
    pub action: Action,
    /// The G locked to this thread by `lock_os_thread`, if any.
    pub locked_g: Option<Arc<G>>,
    /// Set when a locked G exits: the thread ends too (as in Go).
    pub exit_thread: bool,
    /// Set while this M's goroutine runs a `gort::blocking` call without a P on purpose;
    /// cleared when the call returns or the goroutine switches out (see `preempt::check`).
    pub in_blocking: bool,
    /// Set while this M runs timer functions: the Gs they ready go to the tail of the P's
    /// ring instead of `runnext`, so Gs whose timers fire together run in deadline order.
    pub ready_fifo: bool,
    /// Set while this M readies the goroutines a poll of the netpoller returned (see
    /// [`M::ready_polled`]): `enqueue_readied` counts them in `held` instead of waking a P.
    pub hold_wakep: bool,
    pub held: u32,
    /// A park the previous goroutine began before switching straight to the current one, for
    /// it to complete (see `direct.rs`). Set only between those two points.
    pub handoff: Option<super::direct::Handoff>,
}

thread_local! {
    static CURRENT_M: Cell<*const M> = const { Cell::new(ptr::null()) };
}

/// The M running on this thread, or null on a plain thread. Never inlined; see "TLS" above.
#[inline(never)]
pub fn current_m() -> *const M {
    CURRENT_M.with(|c| c.get())
}

#[inline(never)]
fn set_current_m(m: *const M) {
    CURRENT_M.with(|c| c.set(m))
}

impl M {
    /// The scheduler this M belongs to.
    #[inline]
    pub fn sched_ptr(&self) -> *const Sched {
        self.sched
    }

    /// # Safety
    /// Only the M's own thread may call this, and must not hold the reference across a switch.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub unsafe fn local(&self) -> &mut MLocal {
        // SAFETY: forwarded contract.
        unsafe { &mut *self.local.get() }
    }

    /// The P held by this M (null if none). Own thread only; on a goroutine stack, only inside
    /// a runtime section (`preempt::Section`), since outside one a preemption may take it.
    #[inline]
    pub fn p(&self) -> *const P {
        self.p.load(Relaxed)
    }

    /// Whether this M holds a P, read from another thread (a hint: it may change at once).
    pub fn p_hint(&self) -> bool {
        !self.p.load(Relaxed).is_null()
    }

    /// Sets the P held by this M. Own thread only, on g0 or inside a runtime section.
    #[inline]
    pub fn set_p(&self, p: *const P) {
        self.p.store(p as *mut P, Relaxed);
    }

    /// Takes the P held by this M (null if none), as [`M::set_p`].
    pub fn take_p(&self) -> *const P {
        self.p.swap(ptr::null_mut(), Relaxed)
    }

    /// Hands a P (or null, meaning "exit") to this sleeping M and wakes it.
    ///
    /// # Safety
    /// The M must be asleep on (or about to sleep on) its note with no P, and removed from any
    /// list through which someone else could hand it a P too.
    pub unsafe fn hand_p(&self, p: *const P, spinning: bool) {
        // Read before the wake-up: once woken, the M may exit and be freed (told to exit at
        // shutdown), so nothing of `self` may be touched after it.
        let (sched, me) = (self.sched, self as *const M);
        self.nextp.store(p as *mut P, Relaxed);
        self.spin_on_wake.store(spinning, Relaxed);
        self.park.wakeup(); // Release: publishes nextp and spin_on_wake
                            // The M may wait in epoll_wait rather than on the note's futex (`netpoll::block`);
                            // break it out after setting the note, which it checks before each wait.
                            // SAFETY: every caller holds the Sched alive (it runs on one of its Ms, or is the
                            // Sched's own method); `me` is only compared, never dereferenced.
        crate::netpoll::break_poll(unsafe { &*sched }, me);
    }
}

/// Thread entry of a new M.
pub fn mstart(sched: Arc<Sched>, id: u64, p: *const P, spinning: bool) {
    let m = Arc::new(M {
        id,
        curg_id: std::sync::atomic::AtomicU64::new(0),
        sched: Arc::as_ptr(&sched),
        park: Note::new(),
        nextp: AtomicPtr::new(ptr::null_mut()),
        spin_on_wake: AtomicBool::new(false),
        p: AtomicPtr::new(p as *mut P),
        pre: super::preempt::MPreempt::new(),
        local: UnsafeCell::new(MLocal {
            g0_sp: ptr::null_mut(),
            curg: None,
            spinning,
            action: Action::None,
            locked_g: None,
            exit_thread: false,
            in_blocking: false,
            ready_fifo: false,
            hold_wakep: false,
            held: 0,
            handoff: None,
        }),
    });
    let _internal = super::deadlock::Internal::enter();
    crate::signal::init_thread();
    super::preempt::init_thread();
    set_current_m(&*m);
    sched.sysmon.register(m.clone());
    // SAFETY: we are m's thread.
    unsafe { m.schedule(&sched) };
    sched.sysmon.unregister(&m);
    set_current_m(ptr::null());
    // Whatever P we still hold or left for sysmon goes back to the idle list.
    for p in [m.take_p(), super::preempt::reclaim(&m)] {
        if !p.is_null() {
            let mut l = sched.lock();
            sched.pidleput(&mut l, p);
        }
    }
    sched.m_exited();
}

impl M {
    /// The scheduler loop (Go's `schedule`), on g0. Returns when the M should exit.
    ///
    /// # Safety
    /// Must run on this M's own thread, on its native stack.
    unsafe fn schedule(&self, sched: &Sched) {
        loop {
            // SAFETY (whole loop): we are the M's thread, on g0; references into our local
            // state are not held across `execute`.
            let ml = unsafe { self.local() };
            if ml.exit_thread {
                return;
            }
            if let Some(lg) = ml.locked_g.clone() {
                if lg.state() != g::RUNNING {
                    // Our locked G is parked or queued: give the P away and wait until
                    // someone hands us the G (see `start_locked`).
                    // SAFETY: our own thread, on g0 (the loop's contract).
                    if !unsafe { self.stop_locked(sched) } {
                        return;
                    }
                    // SAFETY: as above; stop_locked handed us a P and we hold our locked G.
                    unsafe { self.execute(sched, lg, false) };
                    continue;
                }
            }
            // SAFETY: our own thread, on g0.
            let Some((g, inherit)) = (unsafe { self.find_runnable(sched) }) else {
                return;
            };
            // SAFETY: our own state, not held across a switch.
            let ml = unsafe { self.local() };
            if ml.spinning {
                self.reset_spinning(sched);
            }
            // SAFETY: we dequeued g, so we are its holder.
            let lm = unsafe { g.ctx() }.locked_m;
            if !lm.is_null() && !ptr::eq(lm, self) {
                unsafe { self.start_locked(sched, lm) };
                continue;
            }
            // SAFETY: on g0 holding a P; we dequeued g, so we are its holder.
            unsafe { self.execute(sched, g, inherit) };
        }
    }

    /// Makes `g` this M's next run: counts the schedule, gives a G that never ran a stack and
    /// a fresh frame, and marks it running. Returns the stack pointer to switch to; the caller
    /// then makes `g` the current G and switches (on g0: [`M::execute`]; on a parking
    /// goroutine's stack: `direct.rs`).
    ///
    /// # Safety
    /// Own thread, holding a P, on g0 or inside a runtime section; we must be g's holder.
    #[inline(always)]
    pub(super) unsafe fn start_run(&self, sched: &Sched, g: &Arc<G>, inherit: bool) -> *mut u8 {
        let p = self.p();
        // SAFETY: we hold p.
        let pl = unsafe { (*p).local() };
        if !inherit {
            pl.schedtick = pl.schedtick.wrapping_add(1);
        }
        // SAFETY: we are g's holder.
        let ctx = unsafe { g.ctx() };
        if ctx.sp.is_null() {
            Self::first_stack(sched, pl, g);
        }
        // SAFETY: we hold p.
        P::bump(unsafe { &(*p).runs });
        self.curg_id.store(g.id(), Relaxed);
        g.set_state(g::RUNNING);
        self.pre.new_run();
        ctx.sp
    }

    /// Gives a G that never ran a stack (from the P's cache if it has the default size) and a
    /// fresh frame that enters `goroutine_main`. Out of line: the switch paths that inline
    /// [`M::start_run`] mostly resume parked goroutines.
    #[cold]
    #[inline(never)]
    fn first_stack(sched: &Sched, pl: &mut p::PLocal, g: &Arc<G>) {
        // SAFETY: the caller (start_run) is g's holder.
        let ctx = unsafe { g.ctx() };
        let size = ctx.stack_size as usize;
        let stack = if size == sched.default_stack {
            pl.stacks.pop()
        } else {
            None
        };
        let stack = match stack.map(Ok).unwrap_or_else(|| sched.stacks.alloc(size)) {
            Ok(s) => s,
            Err(e) => crate::fatal(&format!(
                "cannot allocate a stack for goroutine {}: {e}",
                g.id()
            )),
        };
        // SAFETY: the stack is ours, its top is 16-aligned with room for the frame, and
        // goroutine_main never returns.
        ctx.sp = unsafe {
            arch::init_stack(
                stack.top(),
                super::park::goroutine_main,
                Arc::as_ptr(g) as usize,
            )
        };
        ctx.stack = Some(stack);
    }

    /// Runs `g` until it switches back, then carries out its [`Action`].
    ///
    /// # Safety
    /// Own thread, on g0, holding a P; we must be g's holder.
    unsafe fn execute(&self, sched: &Sched, g: Arc<G>, inherit: bool) {
        // SAFETY: forwarded contract (on g0, holding a P, g's holder).
        let sp = unsafe { self.start_run(sched, &g, inherit) };
        let ml = self.local.get();
        // SAFETY: own state; no reference is held across the switch (raw pointer accesses).
        unsafe {
            (*ml).curg = Some(g);
            let mut sp = sp;
            loop {
                arch::switch(&mut (*ml).g0_sp, sp, 0);
                // Back on g0: the G saved its context and told us why.
                match std::mem::replace(&mut (*ml).action, Action::None) {
                    Action::Call(f) => {
                        // The G is suspended in `on_system_stack`, which keeps `f` alive. A
                        // panic must not unwind through the scheduler loop.
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (*f)()));
                        if ran.is_err() {
                            crate::fatal("runtime: a function run on the system stack panicked");
                        }
                        let Some(g) = (*ml).curg.as_ref() else {
                            crate::fatal("runtime: lost the current G")
                        };
                        sp = (*g.ctx.get()).sp;
                    }
                    action => {
                        (*ml).in_blocking = false;
                        self.curg_id.store(0, Relaxed);
                        let Some(g) = (*ml).curg.take() else {
                            crate::fatal("runtime: lost the current G")
                        };
                        self.finish(sched, g, action);
                        return;
                    }
                }
            }
        }
    }

    /// Whether a yielding G may simply go on: it would be the next G picked anyway, since this
    /// P has no other G (ring and `runnext` empty), the global queue is empty and this is not
    /// a 61st tick (when the global queue would be looked at first). Counts the schedule.
    /// Locked Ms, retiring Ps and a stopping runtime take the ordinary path. Checked by
    /// `park::switch_to_g0` before it switches (a yield that reaches g0 already failed it).
    ///
    /// # Safety
    /// Own thread, holding a P, on the yielding G inside the runtime section of its switch.
    pub(super) unsafe fn yield_to_self(&self, sched: &Sched) -> bool {
        // A yield inside `blocking` (no P) takes the ordinary path.
        // SAFETY: own state; a non-null P is ours.
        let Some(p) = (unsafe { self.p().as_ref() }) else {
            return false;
        };
        // SAFETY: own state.
        let ml = unsafe { self.local() };
        // SAFETY: as above.
        let pl = unsafe { p.local() };
        let tick = pl.schedtick.wrapping_add(1);
        if tick % 61 == 0
            || ml.locked_g.is_some()
            || !p.runq.is_empty()
            || sched.runqsize.load(Relaxed) > 0
            || p.timers.due()
            || sched.stopping.load(Relaxed)
            || p.id >= sched.gomaxprocs.load(Relaxed)
        {
            return false;
        }
        pl.schedtick = tick;
        P::bump(&p.runs);
        self.pre.new_run();
        pl.inherit_streak = 0;
        true
    }

    /// Carries out what a G asked for when it switched to g0.
    ///
    /// # Safety
    /// Own thread, on g0, right after `g` switched out; holding a P, except after a park, a
    /// yield or `ExitSyscall` inside `blocking` (those handle a null P).
    unsafe fn finish(&self, sched: &Sched, g: Arc<G>, action: Action) {
        let p = self.p();
        match action {
            // SAFETY: a non-null p is ours; the G just switched out of its yield.
            Action::Yield => unsafe { super::direct::complete_yield(sched, p, g) },
            Action::YieldGlobal => {
                g.set_state(g::RUNNABLE);
                sched.ready_global(g);
            }
            Action::ExitSyscall => {
                // Go's `exitsyscall0`: under the scheduler lock, either an idle P appeared
                // since the G looked (then it runs here, next), or the G goes to the global
                // queue; an M releasing its P checks that queue under the same lock, so the G
                // cannot be missed. This M, without a P, then goes idle.
                g.set_state(g::RUNNABLE);
                let mut l = sched.lock();
                if let Some(np) = sched.pidleget(&mut l) {
                    drop(l);
                    // SAFETY: own state; the P came off the idle list, so it is ours.
                    self.set_p(np);
                    // SAFETY: as above.
                    sched.runqput(unsafe { &*np }, g, true);
                } else {
                    l.runq.push_back(g);
                    sched.runqsize.store(l.runq.len(), SeqCst);
                    drop(l);
                    sched.wakep();
                }
            }
            // SAFETY: a non-null p is ours; the G just switched out of this park.
            Action::Park(unlock, no_cancel) => unsafe {
                super::direct::complete_park(sched, p, g, unlock, no_cancel)
            },
            Action::Exit => {
                // SAFETY: we are the holder of the dead G.
                let ctx = unsafe { g.ctx() };
                // SAFETY: own state, on g0.
                let ml = unsafe { self.local() };
                if ctx.lock_count > 0 || ml.locked_g.as_ref().is_some_and(|lg| Arc::ptr_eq(lg, &g))
                {
                    // A goroutine that exits locked takes its thread with it (as in Go):
                    // whatever it did to the thread's state dies with the thread.
                    ctx.lock_count = 0;
                    ctx.locked_m = ptr::null();
                    ml.locked_g = None;
                    ml.exit_thread = true;
                }
                // SAFETY: a non-null p is ours; the dead G switched out for good.
                unsafe { super::direct::complete_exit(self, sched, p, g) };
                if ml.exit_thread {
                    let p = self.take_p();
                    if !p.is_null() {
                        sched.handoffp(p);
                    }
                }
            }
            Action::None | Action::Call(_) => {
                crate::fatal("runtime: a goroutine switched to g0 without an action")
            }
        }
    }

    /// Keeps a dead G and its stack in `p`'s caches (half of a full cache moves to the
    /// runtime-wide lists).
    pub(super) fn free_g(
        &self,
        sched: &Sched,
        p: &P,
        g: Arc<G>,
        stack: Option<crate::stack::Stack>,
    ) {
        // SAFETY: we hold p (on g0).
        let pl = unsafe { p.local() };
        if let Some(s) = stack {
            if s.size() == sched.default_stack && pl.stacks.len() < p::STACK_CACHE_MAX {
                pl.stacks.push(s);
            } else if s.size() == sched.default_stack {
                let mut batch = pl.stacks.split_off(p::STACK_CACHE_MAX / 2);
                batch.push(s);
                sched.stacks.free_batch(batch);
            } else {
                sched.stacks.free_batch(vec![s]);
            }
        }
        P::bump(&p.exited);
        g.set_state(g::IDLE);
        pl.gfree.push(g);
        if pl.gfree.len() > p::GFREE_MAX {
            let batch = pl.gfree.split_off(p::GFREE_MAX / 2);
            let mut l = sched.lock();
            l.gfree.extend(batch);
            sched.ngfree.store(l.gfree.len(), Relaxed);
        }
    }

    /// Go's `findRunnable`: local queue, global queue, stealing; otherwise give up the P and
    /// sleep until handed one. Returns None when the runtime is stopping.
    ///
    /// # Safety
    /// Own thread, on g0.
    unsafe fn find_runnable(&self, sched: &Sched) -> Option<(Arc<G>, bool)> {
        'top: loop {
            if sched.stopping.load(Relaxed) {
                // SAFETY: own state.
                let ml = unsafe { self.local() };
                if ml.spinning {
                    ml.spinning = false;
                    sched.nmspinning.fetch_sub(1, SeqCst);
                }
                return None;
            }
            let p_ptr = self.p();
            if p_ptr.is_null() {
                // Our goroutine left a P we gave up (a preemption, a blocking call) and
                // nobody took it yet: keep running it.
                let p = preempt::reclaim(self);
                if !p.is_null() {
                    self.set_p(p);
                    continue;
                }
                // SAFETY: our own thread, on g0, holding no P.
                if !unsafe { self.stopm(sched) } {
                    return None;
                }
                continue;
            }
            // SAFETY: we hold p.
            let p = unsafe { &*p_ptr };
            if p.id >= sched.gomaxprocs.load(Relaxed) {
                unsafe { self.retire_p(sched) };
                continue;
            }
            // Go's `checkTimers`: this P's due timers first; they ready Gs onto this P.
            self.run_timers(|| p.timers.run_due_now());
            // SAFETY: we hold p.
            let (pl, local) = unsafe { (p.local(), p.runq_local()) };
            // Every 61st schedule, look at the global queue first so it cannot starve; and
            // end long runnext chains (see `PLocal::inherit_streak`).
            let chain_over = pl.inherit_streak >= p::INHERIT_MAX;
            if (pl.schedtick % 61 == 0 || chain_over) && sched.runqsize.load(Relaxed) > 0 {
                let mut l = sched.lock();
                if let Some(g) = sched.globrunqget(p, &mut l, 1) {
                    pl.inherit_streak = 0;
                    return Some((g, false));
                }
            }
            if chain_over {
                pl.inherit_streak = 0;
                if let Some(g) = local.pop_ring() {
                    return Some((g, false));
                }
            }
            if let Some((g, inherit)) = local.pop() {
                pl.inherit_streak = if inherit { pl.inherit_streak + 1 } else { 0 };
                return Some((g, inherit));
            }
            if sched.runqsize.load(Relaxed) > 0 {
                let mut l = sched.lock();
                if let Some(g) = sched.globrunqget(p, &mut l, 0) {
                    return Some((g, false));
                }
            }
            // Go's non-blocking netpoll before stealing: goroutines whose fds are ready land
            // on this P (FIFO, as timers' do).
            if self.ready_polled(sched, || crate::netpoll::poll_ready(sched)) {
                continue 'top;
            }
            // Due timers of any P (an idle one, or one whose M is busy): run them here (Go
            // steals timers in `stealWork`). They ready Gs onto this P.
            if self.run_timers(|| sched.run_all_timers()) {
                continue 'top;
            }
            // Steal, unless enough Ms already spin.
            let procs = sched.gomaxprocs.load(Relaxed);
            // SAFETY: our own state, not held across a switch.
            let ml = unsafe { self.local() };
            if ml.spinning
                || 2 * sched.nmspinning.load(SeqCst)
                    < procs.saturating_sub(sched.npidle.load(SeqCst))
            {
                if !ml.spinning {
                    ml.spinning = true;
                    sched.nmspinning.fetch_add(1, SeqCst);
                }
                for round in 0..4 {
                    let start = pl.fastrand() as usize;
                    for i in 0..procs {
                        let vid = (start + i) % procs;
                        if vid == p.id {
                            continue;
                        }
                        let Some(victim) = sched.p(vid) else { continue };
                        if let Some(g) = local.steal_from(runq::Steal(&victim.runq), round == 3) {
                            P::bump(&p.steals);
                            return Some((g, false));
                        }
                    }
                }
                // Keep watching for work a little longer before giving the P up. A producer
                // that spawns goroutines one at a time (each parking at once) would otherwise
                // pay a futex wake-up and a sleep per goroutine; spinning costs at most
                // SPIN_WAIT of one CPU per idle transition, and only for spinning Ms (at most
                // half the Ps). Not while goroutines wait on I/O: their work arrives through
                // the poller, which the spin does not watch, and an I/O-bound program would
                // only burn the CPU its peers (and the kernel's network stack) need.
                if !crate::netpoll::has_waiters(sched) && self.spin_for_work(sched, procs) {
                    continue 'top;
                }
            }
            // Nothing: give up the P (rule 3 of "Worker thread parking/unparking").
            let mut l = sched.lock();
            if let Some(g) = sched.globrunqget(p, &mut l, 0) {
                return Some((g, false));
            }
            // SAFETY: as above.
            let ml = unsafe { self.local() };
            self.set_p(ptr::null());
            sched.pidleput(&mut l, p_ptr);
            drop(l);
            let was_spinning = ml.spinning;
            if was_spinning {
                ml.spinning = false;
                sched.nmspinning.fetch_sub(1, SeqCst); // full barrier before the re-check
            }
            // Re-check every queue, the global one included: a producer without a P (a plain
            // thread, or a G readied from another runtime) pushes there and then calls wakep,
            // which may have seen our spinning count before the decrement above.
            let global = sched.runqsize.load(SeqCst) > 0;
            for vid in 0..procs {
                let Some(victim) = sched.p(vid) else { continue };
                if global || !victim.runq.is_empty() {
                    let mut l = sched.lock();
                    if let Some(pp) = sched.pidleget(&mut l) {
                        drop(l);
                        self.set_p(pp);
                        if was_spinning {
                            ml.spinning = true;
                            sched.nmspinning.fetch_add(1, SeqCst);
                        }
                        continue 'top;
                    }
                    break;
                }
            }
            // SAFETY: our own thread, on g0; we just gave our P up.
            if !unsafe { self.stopm(sched) } {
                return None;
            }
        }
    }

    /// Runs timer functions (on g0) with [`MLocal::ready_fifo`] set.
    pub(super) fn run_timers(&self, f: impl FnOnce() -> bool) -> bool {
        // SAFETY: own state, not held across the call (timer functions never switch).
        unsafe { self.local() }.ready_fifo = true;
        let ran = f();
        // SAFETY: as above.
        unsafe { self.local() }.ready_fifo = false;
        ran
    }

    /// Runs `f`, which readies the goroutines whose I/O a poll found ready onto our P (in
    /// order, as [`M::run_timers`] does), holding back the wake-up each would make. This M
    /// runs the first of them itself, so an idle P is worth waking only for a second one: then
    /// one `wakep`, and the spinning chain (rule 2) wakes more as they find work. This is Go's
    /// `findRunnable`, which keeps one G of `netpoll`'s list and `injectglist`s the rest. A
    /// wake-up per G cost a futex wake, a spin and a futex sleep per request in the HTTP
    /// benchmark.
    pub(super) fn ready_polled(&self, sched: &Sched, f: impl FnOnce() -> bool) -> bool {
        // SAFETY: own state, not held across the call (readying never switches).
        let ml = unsafe { self.local() };
        ml.hold_wakep = true;
        ml.held = 0;
        let any = self.run_timers(f);
        // SAFETY: as above.
        let ml = unsafe { self.local() };
        ml.hold_wakep = false;
        if ml.held > 1 {
            sched.wakep();
        }
        any
    }

    /// Go's `resetspinning` (rule 2).
    fn reset_spinning(&self, sched: &Sched) {
        // SAFETY: own state.
        unsafe { self.local() }.spinning = false;
        if sched.nmspinning.fetch_sub(1, SeqCst) == 1 {
            sched.wakep();
        }
    }
}
