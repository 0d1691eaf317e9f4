//! The scheduler: Go's G/M/P model.
//!
//! * **G** ([`g::G`]): a goroutine: its stack, saved context and state.
//! * **M** ([`m::M`]): an OS thread. It runs the scheduler loop on its own native stack (Go's
//!   g0) and switches to a G's stack to run it; the G switches back to g0 to park, yield or exit.
//! * **P** ([`p::P`]): a logical processor. An M needs one to run Gs. A P has a 256-slot local
//!   run queue plus `runnext`, a cache of free Gs and stacks, and a batch of goroutine ids.
//!
//! This file holds the runtime-wide state ([`Sched`]: the global run queue, idle P and M lists,
//! spinning count, goroutine registry) and the operations every path uses: spawning, readying a
//! parked G, waking an idle M ([`Sched::wakep`]) and shutting down. The M's scheduling loop is in
//! `m.rs`; what runs on the goroutine side of a switch (park, yield, exit) is in `park.rs`.
//!
//! # Worker thread parking/unparking
//! (Go's essay of the same name in runtime/proc.go, applied here.) We must not leave a P idle
//! while there is runnable work, and must not wake Ms needlessly. An M is *spinning* when it
//! holds a P, has no work, and is looking for some (global queue, stealing). The rules:
//! 1. Whoever makes a G runnable (spawn, ready) calls [`Sched::wakep`] afterwards, which starts
//!    (or unparks) one spinning M only if there is an idle P and no M is spinning already.
//! 2. A spinning M that finds work stops spinning and, if it was the last spinner, calls `wakep`
//!    so that another M looks for the rest of the work.
//! 3. An M that finds nothing puts its P on the idle list, stops spinning (decrementing
//!    `nmspinning` with a full barrier) and only then re-checks every P's run queue and the
//!    global queue; if it sees work it takes an idle P back and continues.
//!
//! Rule 3's decrement-then-recheck against rule 1's publish-then-check makes a lost wake-up
//! impossible for the global queue (both sides hold the lock). For local queues, a producer's
//! check may race with the last spinner going idle; the G is then still on the producer's own P,
//! whose M runs it at its next schedule, so work is delayed, never lost (Go accepts the same).
//!
//! At most `gomaxprocs / 2` Ms spin at once (more would burn CPU for nothing).

pub mod deadlock;
pub(crate) mod direct;
pub mod g;
mod handoff;
mod idle;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod m;
pub mod note;
pub mod p;
pub mod park;
pub mod preempt;
pub mod runq;
pub mod stats;
pub mod syscall;
pub mod timer;

use self::g::{Entry, G, RUNNABLE};
use self::m::M;
use self::p::{GOID_BATCH, P};
use crate::stack::StackPool;
use std::collections::VecDeque;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Largest `gomaxprocs` accepted.
pub const MAX_PROCS: usize = 1024;
/// Threads a runtime may create (Go's `maxmcount`).
const MAX_MS: usize = 10_000;

static NEXT_SCHED_ID: AtomicU64 = AtomicU64::new(1);

/// A runtime's scheduler state.
pub struct Sched {
    pub id: u64,
    me: Weak<Sched>,
    /// All Ps ever created, indexed by id; entries are never freed before the Sched.
    allp: Box<[AtomicPtr<P>]>,
    pub gomaxprocs: AtomicUsize,
    /// Idle Ps (`npidle` mirrors the list's length for lock-free checks).
    pub npidle: AtomicUsize,
    /// Spinning Ms.
    pub nmspinning: AtomicUsize,
    /// Length of the global run queue, readable without the lock.
    pub runqsize: AtomicUsize,
    /// Length of the global free-G list (a hint read without the lock).
    pub ngfree: AtomicUsize,
    /// The deadline the timer sleeper (`Locked::timer_m`) sleeps until, in `timer::nanos`;
    /// `timer::NONE` while it computes it or has none; 0 when there is no timer sleeper.
    /// Written under the lock, read without it by `timer_added` (see `timer.rs`).
    pub poll_until: AtomicU64,
    lock: Mutex<Locked>,
    next_goid: AtomicU64,
    /// Goroutines spawned from outside any P (main goroutines), and ended without one
    /// (preempted as they exited).
    pub(crate) ext_spawned: AtomicU64,
    ext_exited: AtomicU64,
    /// Every G ever allocated (they are reused, never freed before the Sched).
    allgs: Mutex<Vec<Arc<G>>>,
    pub stacks: StackPool,
    pub default_stack: usize,
    /// The monitor thread and the registry of live Ms (see `sysmon.rs`).
    pub sysmon: crate::sysmon::Sysmon,
    /// Set once shutdown has cancelled the goroutines: Ms exit instead of scheduling.
    pub stopping: AtomicBool,
    /// New goroutines are born cancelled (they never run) once this is set.
    pub cancelling: AtomicBool,
    /// Live Ms, for shutdown to wait on.
    live_ms: Mutex<usize>,
    ms_gone: Condvar,
    next_mid: AtomicU64,
    /// The netpoller, created when a goroutine first waits on an fd (`crate::netpoll`).
    pub netpoll: crate::netpoll::Slot,
    /// Bumped under the lock whenever an M leaves `midle` or is created (see `deadlock.rs`).
    pub wake_epoch: AtomicU64,
    /// What to do on a deadlock (`Builder::on_deadlock`).
    pub on_deadlock: Mutex<deadlock::Deadlock>,
    /// Deadlock reports for `Runtime::run` (`Deadlock::Panic`).
    pub deadlock: Mutex<deadlock::Reports>,
    /// Rare-event counters and trace settings (`stats.rs`).
    pub counters: stats::Counters,
}

/// State under the scheduler lock.
pub struct Locked {
    pub pidle: Vec<*const P>,
    pub midle: Vec<*const M>,
    /// The idle M that sleeps until the earliest timer (null: none); it is on `midle`.
    /// Whoever takes it off `midle` clears it (`midleget`, `timer.rs`).
    pub timer_m: *const M,
    pub runq: VecDeque<Arc<G>>,
    pub gfree: Vec<Arc<G>>,
    pub mcount: usize,
}

// SAFETY: the raw P and M pointers in `Locked` are only used under the lock, and point to
// objects that live as long as the Sched (Ps) or until their M leaves the idle list (Ms).
unsafe impl Send for Locked {}

impl Sched {
    pub fn new(procs: usize, default_stack: usize) -> Arc<Sched> {
        let sched = Arc::new_cyclic(|me| Sched {
            id: NEXT_SCHED_ID.fetch_add(1, Relaxed),
            me: me.clone(),
            allp: (0..MAX_PROCS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            gomaxprocs: AtomicUsize::new(0),
            npidle: AtomicUsize::new(0),
            nmspinning: AtomicUsize::new(0),
            runqsize: AtomicUsize::new(0),
            ngfree: AtomicUsize::new(0),
            poll_until: AtomicU64::new(0),
            lock: Mutex::new(Locked {
                pidle: Vec::new(),
                midle: Vec::new(),
                timer_m: ptr::null(),
                runq: VecDeque::new(),
                gfree: Vec::new(),
                mcount: 0,
            }),
            next_goid: AtomicU64::new(1),
            ext_spawned: AtomicU64::new(0),
            ext_exited: AtomicU64::new(0),
            allgs: Mutex::new(Vec::new()),
            stacks: StackPool::new(),
            default_stack,
            sysmon: crate::sysmon::Sysmon::new(),
            stopping: AtomicBool::new(false),
            cancelling: AtomicBool::new(false),
            live_ms: Mutex::new(0),
            ms_gone: Condvar::new(),
            next_mid: AtomicU64::new(1),
            netpoll: crate::netpoll::Slot::new(),
            wake_epoch: AtomicU64::new(0),
            on_deadlock: Mutex::new(deadlock::Deadlock::Exit),
            deadlock: Mutex::new((0, String::new(), Vec::new())),
            counters: stats::Counters::new(),
        });
        sched.set_gomaxprocs(procs);
        deadlock::register(&sched);
        sched
    }

    pub fn lock(&self) -> MutexGuard<'_, Locked> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The P with this id, if it was ever created.
    pub fn p(&self, id: usize) -> Option<&P> {
        let p = self.allp.get(id)?.load(Acquire);
        // SAFETY: Ps are never freed before the Sched (see `allp`).
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// Changes the number of Ps, returning the previous number. New Ps start idle; Ps beyond
    /// the new number retire when their M next schedules (see `M::retire_p`).
    pub fn set_gomaxprocs(&self, n: usize) -> usize {
        let n = n.clamp(1, MAX_PROCS);
        let mut l = self.lock();
        let old = self.gomaxprocs.load(Relaxed);
        for id in 0..n {
            let p = self.allp[id].load(Relaxed);
            if p.is_null() {
                let p = Box::into_raw(Box::new(P::new(id)));
                self.allp[id].store(p, Release);
                l.pidle.push(p);
            } else {
                // SAFETY: non-null entries are live Ps.
                let pr = unsafe { &*p };
                // A retired P comes back idle. One still held by an M that has not noticed
                // it was beyond gomaxprocs simply stays with that M.
                if pr.retired.swap(false, Relaxed) {
                    l.pidle.push(p);
                }
            }
        }
        // Retire idle Ps beyond n; held ones retire when their M next schedules.
        l.pidle.retain(|&p| {
            // SAFETY: pidle holds live Ps; `retired` is written under the lock we hold.
            let pr = unsafe { &*p };
            if pr.id >= n {
                pr.retired.store(true, Relaxed);
                self.retire_p_timers(pr);
            }
            pr.id < n
        });
        self.npidle.store(l.pidle.len(), SeqCst);
        self.gomaxprocs.store(n, SeqCst);
        drop(l);
        // New Ps may take queued work. (At construction, old == 0 and nothing is queued:
        // threads start with the first goroutine.)
        if old > 0 && n > old {
            self.wakep();
        }
        old
    }

    /// Allocates (or reuses) a G for `entry`, and makes it runnable. Returns its id.
    ///
    /// # Safety
    /// `m` must be null or the calling thread's M, with its P held if non-null.
    pub unsafe fn spawn(
        &self,
        m: *const M,
        entry: Entry,
        name: Option<String>,
        stack_size: usize,
        created_by: &'static Location<'static>,
    ) -> u64 {
        // Our P, if we are an M of this runtime holding one (kept until we queue the G).
        let section = preempt::Section::enter(m);
        // SAFETY: forwarded contract: a non-null m is ours, and so is its P (Ps live as long
        // as their Sched).
        let p = unsafe { m.as_ref() }
            .filter(|m| std::ptr::eq(m.sched_ptr(), self))
            .map(|m| m.p())
            .filter(|p| !p.is_null())
            // SAFETY: as above.
            .map(|p| unsafe { &*p });
        let (g, id) = match p {
            Some(p) => {
                // SAFETY: we hold p.
                let pl = unsafe { p.local() };
                let g = pl.gfree.pop().or_else(|| self.gfget_global(pl));
                // The next spawn's G was last written by the core that ran it: start moving
                // it here now, so that its stores below do not stall then.
                if let Some(next) = pl.gfree.last() {
                    runq::prefetch_arc(Arc::as_ptr(next));
                }
                // Ids come from this P's batch, but a spawning goroutine's ids must increase
                // even when it moved here from another P since its last spawn (it parked, or
                // yielded in a spawn storm): a batch below its last id is dropped for a new
                // one (the global counter is past every id handed out).
                // SAFETY: a P is held only through a non-null m, our own M; its current G
                // (None on g0) is the goroutine calling us, whose ctx is ours while it runs.
                let spawner = unsafe { (*m).local().curg.as_deref().map(|g| g.ctx()) };
                let floor = spawner.as_ref().map_or(0, |c| c.last_spawned);
                if pl.goid_next == pl.goid_end || pl.goid_next <= floor {
                    pl.goid_next = self.next_goid.fetch_add(GOID_BATCH, Relaxed);
                    pl.goid_end = pl.goid_next + GOID_BATCH;
                }
                let id = pl.goid_next;
                pl.goid_next += 1;
                if let Some(c) = spawner {
                    c.last_spawned = id;
                }
                P::bump(&p.spawned);
                (g, id)
            }
            None => {
                let mut l = self.lock();
                let g = l.gfree.pop();
                self.ngfree.store(l.gfree.len(), Relaxed);
                drop(l);
                self.ext_spawned.fetch_add(1, SeqCst);
                (g, self.next_goid.fetch_add(1, Relaxed))
            }
        };
        let g = g.unwrap_or_else(|| {
            let g = Arc::new(G::new(self.me.clone()));
            self.allgs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(g.clone());
            g
        });
        g.set_id(id, self.cancelling.load(Relaxed));
        let mut spent;
        g.created_by
            .store(created_by as *const Location<'static> as *mut _, Relaxed);
        {
            // SAFETY: the G is idle and ours until published below.
            let ctx = unsafe { g.ctx() };
            // The previous goroutine's spent task is freed below, on this thread (which is
            // usually the one that allocated it; see `Entry::run`), once no P state is held.
            g.task.store(entry.addr(), Relaxed);
            spent = std::mem::replace(&mut ctx.entry, entry);
            debug_assert!(ctx.stack.is_none(), "runtime: an idle G kept its stack");
            ctx.last_spawned = 0;
            ctx.stack_size = u32::try_from(stack_size).expect("runtime: stack size above 1 GiB");
        }
        if let Some(p) = p {
            // Likewise the spent task: keep it for one spawn, fetching it meanwhile, and free
            // the one kept by the previous spawn.
            // SAFETY: we hold p.
            let pl = unsafe { p.local() };
            spent = std::mem::replace(&mut pl.spent, spent);
            pl.spent.prefetch();
        }
        // SAFETY: we hold the idle G. Names are rare: the lock is taken only when one is set
        // or cleared, so that dumps (which read under it) never see a half-written name.
        unsafe {
            if name.is_some() || g.name().is_some() {
                let _l = self.allgs.lock().unwrap_or_else(|e| e.into_inner());
                g.set_name(name.map(String::into_boxed_str));
            }
        }
        g.set_state(RUNNABLE);
        // Whether this spawn overflowed our P's run queue (half of it went to the global one).
        let overflowed = match p {
            // SAFETY: we hold p.
            Some(p) => match unsafe { p.runq_local() }.push(g, true) {
                Some(batch) => {
                    self.globrunqput(batch);
                    true
                }
                None => false,
            },
            None => {
                self.globrunqput(vec![g]);
                false
            }
        };
        self.wakep();
        drop(section);
        // Last, with no P state held: it may run a result's destructor (user code that could
        // even park) if the result's handle was dropped while its goroutine was finishing.
        drop(spent);
        // A spawner that overflowed its P's run queue lets what it spawned run first
        // (ARCHITECTURE.md, "spawn storms"). Only a goroutine yields: a timer function on g0
        // spawns too (`after_func`), and has nothing to yield.
        if overflowed && park::current().is_some() {
            if self.runqsize.load(Relaxed) > runq::CAPACITY {
                park::yield_global();
            } else {
                park::yield_now();
            }
        }
        id
    }

    /// [`Sched::spawn`] as from a plain thread (onto the global queue, default stack, no
    /// name), which is allowed from any thread: how `Runtime::run` starts its main goroutine
    /// and `Runtime::go_future` its bridge goroutines. Returns the goroutine's id.
    pub fn spawn_external(&self, entry: Entry, created_by: &'static Location<'static>) -> u64 {
        // SAFETY: a null M asks for exactly this: no P is used.
        unsafe {
            self.spawn(
                std::ptr::null(),
                entry,
                None,
                self.default_stack,
                created_by,
            )
        }
    }

    /// Frees a dead G and its stack into the runtime-wide lists (its M had no P).
    pub fn free_g_global(&self, g: Arc<G>, stack: Option<crate::stack::Stack>) {
        if let Some(s) = stack {
            self.stacks.free_batch(vec![s]);
        }
        self.ext_exited.fetch_add(1, SeqCst);
        g.set_state(g::IDLE);
        let mut l = self.lock();
        l.gfree.push(g);
        self.ngfree.store(l.gfree.len(), Relaxed);
    }

    fn gfget_global(&self, pl: &mut p::PLocal) -> Option<Arc<G>> {
        if self.ngfree.load(Relaxed) == 0 {
            return None; // a hint: a G freed meanwhile is simply not reused this time
        }
        let mut l = self.lock();
        let n = l.gfree.len().min(p::GFREE_MAX / 2);
        let start = l.gfree.len() - n;
        pl.gfree.extend(l.gfree.drain(start..));
        self.ngfree.store(l.gfree.len(), Relaxed);
        drop(l);
        pl.gfree.pop()
    }

    /// Puts `g` on `p`'s run queue (overflow goes to the global queue).
    #[inline]
    pub fn runqput(&self, p: &P, g: Arc<G>, next: bool) {
        // SAFETY: callers hold p.
        if let Some(batch) = unsafe { p.runq_local() }.push(g, next) {
            self.globrunqput(batch);
        }
    }

    /// Queues one runnable G on the global queue and gets an M to run it: how a G is queued
    /// by a thread that holds no P of its runtime.
    pub fn ready_global(&self, g: Arc<G>) {
        self.globrunqput(vec![g]);
        self.wakep();
    }

    pub fn globrunqput(&self, gs: Vec<Arc<G>>) {
        let mut l = self.lock();
        l.runq.extend(gs);
        self.runqsize.store(l.runq.len(), SeqCst);
    }

    /// Go's `globrunqget`: takes a fair share of the global queue into `p`'s run queue and
    /// returns one G to run. `max` > 0 caps the share.
    pub fn globrunqget(&self, p: &P, l: &mut Locked, max: usize) -> Option<Arc<G>> {
        let len = l.runq.len();
        if len == 0 {
            return None;
        }
        let procs = self.gomaxprocs.load(Relaxed).max(1);
        let mut n = len.min(len / procs + 1).min(runq::CAPACITY / 2);
        if max > 0 {
            n = n.min(max);
        }
        let g = l.runq.pop_front();
        for _ in 1..n {
            let Some(g2) = l.runq.pop_front() else { break };
            // SAFETY: callers hold p.
            if let Some(batch) = unsafe { p.runq_local() }.push(g2, false) {
                l.runq.extend(batch);
            }
        }
        self.runqsize.store(l.runq.len(), SeqCst);
        g
    }

    /// Makes a parked G runnable again if `seq` is still its current park. Callable from any
    /// thread: a goroutine of this or another runtime, g0, or a plain OS thread.
    // Always inlined: the waker's side of a hop stays in its caller's frame (ARCHITECTURE.md,
    // "one frame per park").
    #[inline(always)]
    pub fn ready(g: Arc<G>, seq: u64) {
        if g.try_ready(seq) {
            Sched::enqueue_readied(g);
        }
    }

    /// Queues a G that this thread just moved to `RUNNABLE`: on our P if it belongs to our
    /// runtime, else on its runtime's global queue.
    #[inline]
    fn enqueue_readied(g: Arc<G>) {
        let m = m::current_m();
        let _s = preempt::Section::enter(m);
        // SAFETY: a non-null current M is this thread's; its P (if any) is held by it.
        unsafe {
            if !m.is_null() {
                let p = (*m).p();
                if !p.is_null() && ptr::eq((*m).sched_ptr(), g.sched.as_ptr()) {
                    let sched = &*(*m).sched_ptr();
                    // Readied by a timer function: FIFO (see `MLocal::ready_fifo`).
                    let ml = (*m).local();
                    let next = !ml.ready_fifo;
                    sched.runqput(&*p, g, next);
                    if ml.hold_wakep {
                        // Readied from a poll: see `M::ready_polled`.
                        ml.held += 1;
                    } else {
                        sched.wakep();
                    }
                    return;
                }
            }
        }
        if let Some(sched) = g.sched.upgrade() {
            sched.ready_global(g);
        }
    }

    /// Go's `wakep`: get one more M spinning if a P is idle and nobody spins yet (rule 1).
    #[inline]
    pub fn wakep(&self) {
        if self.npidle.load(SeqCst) == 0 || self.nmspinning.load(SeqCst) != 0 {
            return;
        }
        if self
            .nmspinning
            .compare_exchange(0, 1, SeqCst, SeqCst)
            .is_err()
        {
            return;
        }
        self.startm(None, true);
    }

    /// Go's `startm`: run `p` (or an idle P) on an idle M, or on a new one.
    pub fn startm(&self, p: Option<*const P>, spinning: bool) {
        let mut l = self.lock();
        let p = match p.or_else(|| self.pidleget(&mut l)) {
            Some(p) => p,
            None => {
                drop(l);
                if spinning {
                    self.nmspinning.fetch_sub(1, SeqCst);
                }
                return;
            }
        };
        if self.stopping.load(SeqCst) {
            self.pidleput(&mut l, p);
            drop(l);
            if spinning {
                self.nmspinning.fetch_sub(1, SeqCst);
            }
            return;
        }
        if let Some(m) = self.midleget(&mut l) {
            drop(l);
            // SAFETY: Ms on the idle list are alive and asleep on their note.
            unsafe { (*m).hand_p(p, spinning) };
            return;
        }
        if l.mcount >= MAX_MS {
            drop(l);
            crate::fatal(&format!(
                "thread limit exhausted: this runtime already has {MAX_MS} threads"
            ));
        }
        l.mcount += 1;
        self.wake_epoch.fetch_add(1, SeqCst);
        drop(l);
        *self.live_ms.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let sched = self
            .me
            .upgrade()
            .expect("runtime: startm on a dropped scheduler");
        sched.sysmon.start(&sched);
        let id = self.next_mid.fetch_add(1, Relaxed);
        let p = SendPtr(p);
        let spawned = std::thread::Builder::new()
            .name(format!("gort-m{id}"))
            .spawn(move || {
                let p = p;
                m::mstart(sched, id, p.0, spinning)
            });
        if let Err(e) = spawned {
            crate::fatal(&format!(
                "cannot create an OS thread for the scheduler: {e}"
            ));
        }
    }

    pub fn pidleget(&self, l: &mut Locked) -> Option<*const P> {
        let p = l.pidle.pop()?;
        self.npidle.store(l.pidle.len(), SeqCst);
        Some(p)
    }

    /// Puts a released P on the idle list, or retires it if it is beyond `gomaxprocs`.
    pub fn pidleput(&self, l: &mut Locked, p: *const P) {
        // SAFETY: p is a live P handed back by its holder; we hold the lock.
        let pr = unsafe { &*p };
        if pr.id < self.gomaxprocs.load(Relaxed) {
            l.pidle.push(p);
            self.npidle.store(l.pidle.len(), SeqCst);
        } else {
            pr.retired.store(true, Relaxed);
            self.retire_p_timers(pr);
        }
    }

    /// Called by an M as it exits its thread.
    pub fn m_exited(&self) {
        self.lock().mcount -= 1;
        let mut n = self.live_ms.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.ms_gone.notify_all();
    }

    /// User goroutines alive in this runtime.
    pub fn num_goroutine(&self) -> usize {
        // Read every `exited` before any `spawned`: a G counted as exited was spawned earlier,
        // so the sum can over-count for an instant but never under-count.
        let procs: Vec<&P> = (0..MAX_PROCS).map_while(|i| self.p(i)).collect();
        let exited: u64 =
            procs.iter().map(|p| p.exited.load(SeqCst)).sum::<u64>() + self.ext_exited.load(SeqCst);
        let spawned: u64 = procs.iter().map(|p| p.spawned.load(SeqCst)).sum::<u64>()
            + self.ext_spawned.load(SeqCst);
        spawned.saturating_sub(exited) as usize
    }

    /// Cancels every goroutine and stops the Ms. See "Shutdown" in ARCHITECTURE.md.
    ///
    /// Parked goroutines are made runnable with their `cancelled` flag set; they unwind from
    /// the park (destructors run). Running ones unwind at their next runtime call; runnable ones
    /// that never started drop their closure without running it. Waits up to `grace` for all of
    /// them, then stops the Ms and waits for them for what is left of `grace`; an M still
    /// running a goroutine that makes no runtime call is abandoned (it keeps the scheduler
    /// alive until it returns).
    pub fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.cancelling.store(true, SeqCst);
        let mut pause = Duration::from_micros(50);
        loop {
            self.cancel_pass();
            if self.num_goroutine() == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        self.stopping.store(true, SeqCst);
        self.sysmon.stop();
        let idle: Vec<*const M> = {
            let mut l = self.lock();
            self.clear_timer_m(&mut l);
            self.wake_epoch.fetch_add(1, SeqCst);
            std::mem::take(&mut l.midle)
        };
        for m in idle {
            // SAFETY: idle Ms are alive and asleep; with no P handed they see `stopping` and exit.
            unsafe { (*m).hand_p(ptr::null(), false) };
        }
        let mut live = self.live_ms.lock().unwrap_or_else(|e| e.into_inner());
        while *live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            live = self
                .ms_gone
                .wait_timeout(live, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(live);
        // Timers left are dropped unrun (an abandoned M may still arm more; those go with the
        // Sched).
        self.drop_timers();
    }

    /// Calls `f` on every G ever allocated (dead and idle ones included).
    pub fn for_each_g(&self, mut f: impl FnMut(&G)) {
        for g in self.allgs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            f(g);
        }
    }

    fn cancel_pass(&self) {
        let gs = self.allgs.lock().unwrap_or_else(|e| e.into_inner());
        for g in gs.iter() {
            if g.state() == g::IDLE || g.state() == g::DEAD {
                continue;
            }
            g.cancel();
            if g.try_ready_cancelled() {
                Sched::enqueue_readied(g.clone());
            }
        }
    }
}

/// A P handed to a new M's thread.
struct SendPtr(*const P);
// SAFETY: the P is handed over: from now on only the new M holds it.
unsafe impl Send for SendPtr {}

impl Drop for Sched {
    fn drop(&mut self) {
        for p in self.allp.iter() {
            let p = p.load(Relaxed);
            if !p.is_null() {
                // SAFETY: Ps were made by Box::into_raw and nobody holds them any more: every M
                // owns an Arc<Sched>, so none is left.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}
