//! A miniature of `Sched` (mod.rs) and `M` (m.rs): the same steps on the same kinds of state,
//! with loom's atomics and mutex, the real `Note` and the real `RunQueue`. Left out: gomaxprocs
//! changes (`retire_p`), locked Ms (`stop_locked`, `handoffp`), the G free lists, and the
//! random start of the steal loop (with at most two Ps it makes no difference).
//!
//! Keep it in step with m.rs / mod.rs: each function names the one it mirrors.

use crate::sched::note::Note;
use crate::sched::runq::{Hint, RunQueue, Steal, CAPACITY};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::{Condvar, Mutex, MutexGuard};
use loom::thread;
use std::collections::VecDeque;
use std::sync::Arc;

/// Loom treats SeqCst loads and stores as AcqRel (loom's README, "Unsupported features";
/// tokio-rs/loom#180), so it would report Dekker-style false alarms for the store-then-load
/// pairs this protocol relies on (e.g. `globrunqput`'s `runqsize` store, then `wakep`'s
/// `nmspinning` load, against `find_runnable`'s `nmspinning` decrement, then its re-check).
/// Hence every SeqCst store or read-modify-write here is followed by `fence(SeqCst)`, which
/// loom does model: that is also what they compile to on x86-64, the only target (a locked
/// instruction, or `xchg`, is a full barrier). Plain loads, stores and the run queue's own
/// Acquire/Release accesses are left as they are.
fn sc() {
    loom::sync::atomic::fence(SeqCst);
}

std::thread_local! {
    /// The current execution's protocol steps, printed if it fails (a model's loom threads
    /// all run on the test's OS thread, so this is per test).
    static TRACE: std::cell::RefCell<Vec<(usize, &'static str, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

loom::thread_local! {
    /// Who the current loom thread is: an M's slot, or `MAIN` (the test's main thread).
    static WHO: std::cell::Cell<usize> = std::cell::Cell::new(MAIN);
}

const MAIN: usize = usize::MAX;

/// Records a step of the current execution (`what` with the value `v`).
fn ev(what: &'static str, v: usize) {
    let who = WHO.with(|w| w.get());
    TRACE.with(|t| t.borrow_mut().push((who, what, v)));
}

pub fn clear_trace() {
    TRACE.with(|t| t.borrow_mut().clear());
}

pub fn print_trace() {
    TRACE.with(|t| {
        let t = t.borrow();
        if t.is_empty() {
            return;
        }
        eprintln!("protocol steps of the failing execution:");
        for &(who, what, v) in t.iter() {
            let who = if who == MAIN {
                "main".to_string()
            } else {
                format!("M{who}")
            };
            eprintln!("  {who:>4}: {what} {v}");
        }
    });
}

/// A goroutine is just its number. Running G 0 spawns `g0_spawns` more (see `execute`).
pub type G = usize;

/// The model's Gs are plain numbers: nothing to fetch ahead.
impl Hint for G {
    fn prefetch_deps(_: *const G) {}
}

pub struct Sched {
    procs: usize,
    /// Re-check the global queue after dropping the P and `nmspinning`, as m.rs does since
    /// commit 7fbd9c5 (and Go). False models the protocol before that fix.
    recheck_global: bool,
    g0_spawns: usize,
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    runqsize: AtomicUsize,
    stopping: AtomicBool,
    lock: Mutex<Locked>,
    ps: Vec<P>,
    /// M slots; `Locked::mcount` of them are started.
    ms: Vec<M>,
    live_ms: Mutex<usize>,
    ms_gone: Condvar,
    /// The Gs run so far, for the test's main thread.
    ran: Mutex<Vec<G>>,
    ran_cv: Condvar,
}

/// `Locked` (mod.rs); Ps and Ms are indices into `Sched::ps` / `Sched::ms`.
struct Locked {
    pidle: Vec<usize>,
    midle: Vec<usize>,
    runq: VecDeque<Arc<G>>,
    mcount: usize,
}

/// `P` (p.rs): the run queue, and the part of `PLocal` the scheduling loop uses (holder
/// only: loom checks that handing a P over orders the new holder after the old one).
struct P {
    runq: RunQueue<G>,
    local: UnsafeCell<PLocal>,
}

/// The part of `PLocal` (p.rs) that the scheduling loop uses.
#[derive(Default)]
struct PLocal {
    schedtick: u32,
    inherit_streak: u32,
}

// SAFETY: `local` is only touched by the M holding the P (checked by loom).
unsafe impl Sync for P {}

impl P {
    /// `P::local` (p.rs): the holder's state. Loom checks that the holders of a P are
    /// ordered one after the other (by the scheduler lock or the note that handed it over).
    fn with_local<R>(&self, f: impl FnOnce(&mut PLocal) -> R) -> R {
        // SAFETY: only the M holding the P calls this, and holds no reference past `f`.
        self.local.with_mut(|pl| f(unsafe { &mut *pl }))
    }
}

/// `M` (m.rs): what other threads touch.
struct M {
    park: Note,
    /// `M::nextp`: P index + 1, 0 for none.
    nextp: AtomicUsize,
    spin_on_wake: AtomicBool,
}

/// `MLocal` (m.rs): the M thread's own state.
struct MLocal {
    /// Our slot in `Sched::ms`.
    me: usize,
    p: Option<usize>,
    spinning: bool,
}

pub struct Config {
    pub procs: usize,
    /// Ps held by the Ms the test starts (the others start idle).
    pub held: Vec<usize>,
    /// Gs in each P's run queue at the start (`(p, g)`), and in the global queue.
    pub local_gs: Vec<(usize, G)>,
    pub global_gs: Vec<G>,
    /// Gs that G 0 spawns on its P when it runs.
    pub g0_spawns: usize,
    /// M slots (loom allows 5 threads in all, the test's main thread included).
    pub max_ms: usize,
    /// See `Sched::recheck_global`.
    pub recheck_global: bool,
}

impl Sched {
    pub fn new(c: Config) -> Arc<Sched> {
        let pidle: Vec<usize> = (0..c.procs).filter(|p| !c.held.contains(p)).collect();
        let s = Sched {
            procs: c.procs,
            recheck_global: c.recheck_global,
            g0_spawns: c.g0_spawns,
            npidle: AtomicUsize::new(pidle.len()),
            nmspinning: AtomicUsize::new(0),
            runqsize: AtomicUsize::new(c.global_gs.len()),
            stopping: AtomicBool::new(false),
            lock: Mutex::new(Locked {
                pidle,
                midle: Vec::new(),
                runq: c.global_gs.into_iter().map(Arc::new).collect(),
                mcount: 0,
            }),
            ps: (0..c.procs)
                .map(|_| P {
                    runq: RunQueue::new(),
                    local: UnsafeCell::new(PLocal::default()),
                })
                .collect(),
            ms: (0..c.max_ms)
                .map(|_| M {
                    park: Note::new(),
                    nextp: AtomicUsize::new(0),
                    spin_on_wake: AtomicBool::new(false),
                })
                .collect(),
            live_ms: Mutex::new(0),
            ms_gone: Condvar::new(),
            ran: Mutex::new(Vec::new()),
            ran_cv: Condvar::new(),
        };
        for (p, g) in c.local_gs {
            // SAFETY: nobody runs yet.
            assert!(unsafe { s.ps[p].runq.local() }
                .push(Arc::new(g), false)
                .is_none());
        }
        Arc::new(s)
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.lock.lock().unwrap()
    }

    /// `Sched::runqput` (mod.rs). Caller holds `p`.
    fn runqput(&self, p: usize, g: Arc<G>, next: bool) {
        // SAFETY: the caller holds p.
        if let Some(batch) = unsafe { self.ps[p].runq.local() }.push(g, next) {
            self.globrunqput(batch);
        }
    }

    /// `Sched::globrunqput` (mod.rs).
    pub fn globrunqput(&self, gs: Vec<Arc<G>>) {
        let mut l = self.lock();
        l.runq.extend(gs);
        self.runqsize.store(l.runq.len(), SeqCst);
        sc();
        ev("globrunqput: global queue length now", l.runq.len());
    }

    /// `Sched::globrunqget` (mod.rs).
    fn globrunqget(&self, p: usize, l: &mut Locked, max: usize) -> Option<Arc<G>> {
        let len = l.runq.len();
        if len == 0 {
            return None;
        }
        let mut n = len.min(len / self.procs + 1).min(CAPACITY / 2);
        if max > 0 {
            n = n.min(max);
        }
        let g = l.runq.pop_front();
        for _ in 1..n {
            let Some(g2) = l.runq.pop_front() else { break };
            // SAFETY: callers hold p.
            if let Some(batch) = unsafe { self.ps[p].runq.local() }.push(g2, false) {
                l.runq.extend(batch);
            }
        }
        self.runqsize.store(l.runq.len(), SeqCst);
        sc();
        g
    }

    /// `Sched::wakep` (mod.rs): rule 1.
    pub fn wakep(self: &Arc<Self>) {
        let npidle = self.npidle.load(SeqCst);
        ev("wakep: reads npidle", npidle);
        if npidle == 0 {
            return;
        }
        let nmspinning = self.nmspinning.load(SeqCst);
        ev("wakep: reads nmspinning", nmspinning);
        if nmspinning != 0 {
            ev("wakep: someone spins; returns", 0);
            return;
        }
        let won = self
            .nmspinning
            .compare_exchange(0, 1, SeqCst, SeqCst)
            .is_ok();
        sc();
        ev("wakep: CAS nmspinning 0->1 won", won as usize);
        if !won {
            return;
        }
        self.startm(None, true);
    }

    /// `Sched::startm` (mod.rs). A new M is a new loom thread running `mstart`.
    pub fn startm(self: &Arc<Self>, p: Option<usize>, spinning: bool) {
        let mut l = self.lock();
        let p = match p.or_else(|| self.pidleget(&mut l)) {
            Some(p) => p,
            None => {
                drop(l);
                if spinning {
                    self.nmspinning.fetch_sub(1, SeqCst);
                    sc();
                }
                return;
            }
        };
        if self.stopping.load(SeqCst) {
            self.pidleput(&mut l, p);
            drop(l);
            if spinning {
                self.nmspinning.fetch_sub(1, SeqCst);
                sc();
            }
            return;
        }
        if let Some(m) = l.midle.pop() {
            drop(l);
            ev("startm: hands its P to idle M", m);
            self.hand_p(m, Some(p), spinning);
            return;
        }
        assert!(
            l.mcount < self.ms.len(),
            "model: more Ms started than the test allows"
        );
        let id = l.mcount;
        l.mcount += 1;
        drop(l);
        ev("startm: no idle M, starts M", id);
        *self.live_ms.lock().unwrap() += 1;
        let s = self.clone();
        thread::spawn(move || mstart(s, id, Some(p), spinning));
    }

    /// `Sched::pidleget` (mod.rs).
    fn pidleget(&self, l: &mut Locked) -> Option<usize> {
        let p = l.pidle.pop()?;
        self.npidle.store(l.pidle.len(), SeqCst);
        sc();
        Some(p)
    }

    /// `Sched::pidleput` (mod.rs) (`procs` never changes here).
    fn pidleput(&self, l: &mut Locked, p: usize) {
        l.pidle.push(p);
        self.npidle.store(l.pidle.len(), SeqCst);
        sc();
    }

    /// `M::hand_p` (m.rs).
    fn hand_p(&self, m: usize, p: Option<usize>, spinning: bool) {
        let m = &self.ms[m];
        m.nextp.store(p.map_or(0, |p| p + 1), Relaxed);
        m.spin_on_wake.store(spinning, Relaxed);
        m.park.wakeup();
    }

    /// `Sched::m_exited` (mod.rs).
    fn m_exited(&self) {
        let mut n = self.live_ms.lock().unwrap();
        *n -= 1;
        self.ms_gone.notify_all();
    }

    /// The test's main thread: waits until `n` Gs have run (forever if one was lost), then
    /// shuts down as `Sched::shutdown` (mod.rs) does once every goroutine is done, and
    /// returns the Gs run, in order.
    pub fn wait_and_shutdown(&self, n: usize) -> Vec<G> {
        let mut ran = self.ran.lock().unwrap();
        while ran.len() < n {
            ran = self.ran_cv.wait(ran).unwrap();
        }
        let ran = std::mem::take(&mut *ran);
        ev("all Gs ran; shuts down", 0);
        self.stopping.store(true, SeqCst);
        sc();
        let idle: Vec<usize> = std::mem::take(&mut self.lock().midle);
        for m in idle {
            self.hand_p(m, None, false);
        }
        let mut live = self.live_ms.lock().unwrap();
        while *live > 0 {
            live = self.ms_gone.wait(live).unwrap();
        }
        ran
    }

    /// Starts an M holding `p` (as the new-thread branch of `startm`), or, with `None`, an
    /// M that is already idle: on the idle list and about to sleep on its note, as if it had
    /// been through `stopm` (that path is modelled by the Ms that go idle in the model).
    pub fn start_m(self: &Arc<Self>, p: Option<usize>) {
        let id = {
            let mut l = self.lock();
            let id = l.mcount;
            l.mcount += 1;
            if p.is_none() {
                l.midle.push(id);
            }
            id
        };
        *self.live_ms.lock().unwrap() += 1;
        let s = self.clone();
        thread::spawn(move || mstart(s, id, p, false));
    }

    /// `M::schedule` (m.rs), without locked Gs.
    fn schedule(self: &Arc<Self>, ml: &mut MLocal) {
        loop {
            let Some((g, inherit)) = self.find_runnable(ml) else {
                return;
            };
            if ml.spinning {
                self.reset_spinning(ml);
            }
            self.execute(ml, g, inherit);
        }
    }

    /// `M::execute` + `M::finish` (m.rs): bump schedtick, run the G. G 0 is a spawner: it
    /// makes `g0_spawns` Gs runnable as `Sched::spawn` (mod.rs) does on an M with a P:
    /// `runqput(p, g, true)`, then `wakep`.
    fn execute(self: &Arc<Self>, ml: &MLocal, g: Arc<G>, inherit: bool) {
        let p = ml.p.expect("execute without a P");
        if !inherit {
            self.ps[p].with_local(|pl| pl.schedtick = pl.schedtick.wrapping_add(1));
        }
        ev("runs G", *g);
        if *g == 0 {
            for id in 1..=self.g0_spawns {
                self.runqput(p, Arc::new(id), true);
                self.wakep();
            }
        }
        let mut ran = self.ran.lock().unwrap();
        ran.push(*g);
        self.ran_cv.notify_all();
    }

    /// `M::find_runnable` (m.rs), step for step. `spin_for_work` is one poll (the model has
    /// no clock: `SPIN_WAIT` may run out at any time).
    fn find_runnable(self: &Arc<Self>, ml: &mut MLocal) -> Option<(Arc<G>, bool)> {
        'top: loop {
            if self.stopping.load(Relaxed) {
                if ml.spinning {
                    ml.spinning = false;
                    self.nmspinning.fetch_sub(1, SeqCst);
                    sc();
                }
                return None;
            }
            let Some(p) = ml.p else {
                if !self.stopm(ml) {
                    return None;
                }
                continue;
            };
            ev("find_runnable: top, holding P", p);
            // (`retire_p`: gomaxprocs never changes here.)
            let pp = &self.ps[p];
            // SAFETY: we hold p.
            let local = unsafe { pp.runq.local() };
            // Every 61st schedule, look at the global queue first; end long runnext chains.
            let (schedtick, chain_over) = pp.with_local(|pl| {
                (
                    pl.schedtick,
                    pl.inherit_streak >= super::super::p::INHERIT_MAX,
                )
            });
            if (schedtick % 61 == 0 || chain_over) && self.runqsize.load(Relaxed) > 0 {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(p, &mut l, 1) {
                    pp.with_local(|pl| pl.inherit_streak = 0);
                    return Some((g, false));
                }
            }
            if chain_over {
                pp.with_local(|pl| pl.inherit_streak = 0);
                if let Some(g) = local.pop_ring() {
                    return Some((g, false));
                }
            }
            if let Some((g, inherit)) = local.pop() {
                pp.with_local(|pl| {
                    pl.inherit_streak = if inherit { pl.inherit_streak + 1 } else { 0 }
                });
                return Some((g, inherit));
            }
            ev("find_runnable: local queue empty; P", p);
            if self.runqsize.load(Relaxed) > 0 {
                let mut l = self.lock();
                if let Some(g) = self.globrunqget(p, &mut l, 0) {
                    return Some((g, false));
                }
            }
            // Steal, unless enough Ms already spin.
            let procs = self.procs;
            if ml.spinning
                || 2 * self.nmspinning.load(SeqCst) < procs.saturating_sub(self.npidle.load(SeqCst))
            {
                if !ml.spinning {
                    ml.spinning = true;
                    let n = self.nmspinning.fetch_add(1, SeqCst);
                    sc();
                    ev("find_runnable: starts spinning, nmspinning now", n + 1);
                }
                for round in 0..4 {
                    for vid in 0..procs {
                        if vid == p {
                            continue;
                        }
                        if let Some(g) = local.steal_from(Steal(&self.ps[vid].runq), round == 3) {
                            return Some((g, false));
                        }
                    }
                }
                if self.spin_for_work() {
                    ev("find_runnable: spin_for_work saw work", 0);
                    continue 'top;
                }
            }
            // Nothing: give up the P (rule 3).
            let mut l = self.lock();
            if let Some(g) = self.globrunqget(p, &mut l, 0) {
                return Some((g, false));
            }
            ml.p = None;
            self.pidleput(&mut l, p);
            ev(
                "find_runnable: global queue empty (under lock); P to idle list, npidle now",
                l.pidle.len(),
            );
            drop(l);
            let was_spinning = ml.spinning;
            if was_spinning {
                ml.spinning = false;
                let n = self.nmspinning.fetch_sub(1, SeqCst); // full barrier before the re-check
                sc();
                ev("find_runnable: stops spinning, nmspinning now", n - 1);
            }
            // Re-check every queue, the global one included.
            let global = self.recheck_global && self.runqsize.load(SeqCst) > 0;
            if self.recheck_global {
                ev(
                    "find_runnable: re-check, global queue non-empty",
                    global as usize,
                );
            }
            for vid in 0..procs {
                let empty = self.ps[vid].runq.is_empty();
                ev(
                    "find_runnable: re-check, P's run queue is empty",
                    empty as usize,
                );
                if global || !empty {
                    let mut l = self.lock();
                    if let Some(pp) = self.pidleget(&mut l) {
                        drop(l);
                        ev("find_runnable: re-check found work, retakes idle P", pp);
                        ml.p = Some(pp);
                        if was_spinning {
                            ml.spinning = true;
                            self.nmspinning.fetch_add(1, SeqCst);
                            sc();
                        }
                        continue 'top;
                    }
                    break;
                }
            }
            if !self.stopm(ml) {
                return None;
            }
        }
    }

    /// `M::spin_for_work` (m.rs), one poll: true if some queue holds work (or we stop).
    fn spin_for_work(&self) -> bool {
        if self.runqsize.load(Relaxed) > 0 || self.stopping.load(Relaxed) {
            return true;
        }
        (0..self.procs).any(|vid| !self.ps[vid].runq.is_empty())
    }

    /// `M::stopm` (m.rs).
    fn stopm(&self, ml: &mut MLocal) -> bool {
        let me = ml.me;
        {
            let mut l = self.lock();
            if self.stopping.load(SeqCst) {
                return false;
            }
            l.midle.push(me);
        }
        self.sleep_until_handed(ml)
    }

    /// The second half of `M::stopm` (m.rs): on the idle list, sleep until handed a P.
    fn sleep_until_handed(&self, ml: &mut MLocal) -> bool {
        ev("stopm: on the idle M list, sleeps on its note", 0);
        let m = &self.ms[ml.me];
        m.park.sleep();
        m.park.clear();
        let p = m.nextp.swap(0, Relaxed);
        ev("stopm: woken, nextp (P + 1, 0 = exit)", p);
        if p == 0 {
            return false;
        }
        ml.p = Some(p - 1);
        ml.spinning = m.spin_on_wake.load(Relaxed);
        true
    }

    /// `M::reset_spinning` (m.rs): rule 2.
    fn reset_spinning(self: &Arc<Self>, ml: &mut MLocal) {
        ml.spinning = false;
        let last = self.nmspinning.fetch_sub(1, SeqCst) == 1;
        sc();
        if last {
            self.wakep();
        }
    }
}

/// `mstart` (m.rs).
fn mstart(s: Arc<Sched>, id: usize, p: Option<usize>, spinning: bool) {
    WHO.with(|w| w.set(id));
    let mut ml = MLocal {
        me: id,
        p,
        spinning,
    };
    if p.is_some() || s.sleep_until_handed(&mut ml) {
        s.schedule(&mut ml);
    }
    if let Some(p) = ml.p {
        let mut l = s.lock();
        s.pidleput(&mut l, p);
    }
    s.m_exited();
}
