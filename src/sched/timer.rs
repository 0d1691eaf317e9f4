//! Timers: run a short function at a given instant (Go 1.14's per-P timer heaps).
//!
//! This is the runtime's internal timer interface; `crate::time` (sleep, Timer, Ticker) and
//! every timed wait (`Waiter::block_until`: `recv_timeout`, `Condvar::wait_timeout`, `select`
//! with a timeout) are built on it.
//!
//! # Contract
//! - [`add`] arms a timer; its function runs once, at or after `when`, unless [`cancel`]
//!   removed it first. `cancel` returns true exactly when it removed the timer before its
//!   function started. ([`prepare`] + [`Unarmed::arm`] split `add` in two, for a park's unlock
//!   closure: see `Waiter::block_until`.)
//! - Timer functions run on a runtime thread (an M's scheduler stack g0, or the fallback timer
//!   thread) with no lock held: they must not block, park or panic (a panic is fatal); they
//!   wake someone (`Sched::ready`, a `try_send`) and return. They may arm other timers.
//!
//! # Where timers live
//! - Armed on a thread that runs an M holding a P (a goroutine, or g0 itself: a timer
//!   function re-arming), a timer goes on that P's [`Timers`]: a 4-ary min-heap under a
//!   per-P mutex (so that other Ms can run and move its timers) plus `when0`, an atomic copy of
//!   the earliest deadline for lock-free checks (Go's `timer0When`).
//! - Armed on a plain thread, it goes to one process-wide fallback thread (`gort-timer`) with
//!   its own `Timers` and a condvar.
//!
//! # Who runs them
//! - Every `find_runnable` first runs its own P's due timers (Go's `checkTimers`); the readied
//!   goroutines land on that P. A yield does not skip that check (`M::yield_to_self`).
//! - An M that found no work runs every P's due timers before giving up its P (stealing the
//!   timers of a P whose M is busy or which is idle).
//! - An M going idle may become *the timer sleeper* (`Locked::timer_m`, one per runtime): it
//!   sleeps on its note only until the earliest `when0` of all Ps ([`Sched::timer_sleeper`]),
//!   whose value it publishes in `Sched::poll_until`; the other idle Ms sleep without a
//!   deadline. On timeout it takes an idle P and runs the due timers ([`Sched::timer_timeout`]).
//! - Arming a timer that becomes its P's earliest calls [`Sched::timer_added`] (Go's
//!   `wakeNetPoller`): if the timer sleeper would wake later, it is handed an idle P at once and
//!   recomputes its deadline; if there is no timer sleeper, `wakep` starts an M, which becomes
//!   one when it finds nothing to do.
//!
//! No lost deadline: the arming side stores `when0` and then loads `poll_until` (both SeqCst);
//! the sleeper stores `poll_until = NONE` ("a sleeper is computing") and then loads every
//! `when0` (SeqCst). In the single order of SeqCst operations one of them comes first, so
//! either the sleeper sees the new timer or the armer sees a `poll_until` later than the timer
//! and wakes it (under `Sched::lock`, re-checked there).
//!
//! # Cancellation is lazy (as in Go)
//! `cancel` only flips the entry's state (`PENDING -> CANCELLED`, a CAS that races with the
//! runner's `PENDING -> RUNNING`) and drops the function at once; the dead entry stays in its
//! heap until it reaches the top (and is discarded) or the heap is compacted. A push compacts
//! the heap when it has doubled since the last compaction, so a loop of `add` + `cancel` keeps
//! at most about twice the live timers (plus 64) in memory, at O(1) amortised per push.
//!
//! # Moving and dropping
//! A P retired by `set_gomaxprocs` hands its timers to P0 ([`Sched::retire_p_timers`]). The
//! timer sleeper scans Ps from the highest id down, and a move publishes the timers on P0
//! before it clears the source's `when0`, so a concurrent scan sees them on one side or the
//! other. At shutdown every P's timers are dropped unrun ([`Timers::clear`]).
//!
//! # Locks
//! A heap lock is a leaf: nothing else is locked while one is held (it may be taken under
//! `Sched::lock`), and timer functions run after it is released.

use super::m::{current_m, M};
use super::p::P;
use super::{Locked, Sched, MAX_PROCS};
use std::cell::UnsafeCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A timer's function.
pub type TimerFn = Box<dyn FnOnce() + Send>;

/// `when0` of an empty heap, and `poll_until` of a timer sleeper that has no deadline.
pub const NONE: u64 = u64::MAX;

/// Heap sizes below this are never compacted.
const COMPACT_MIN: usize = 64;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;
const DROPPED: u8 = 3;

/// One timer. The heap and every [`TimerId`] share it.
struct Entry {
    /// Deadline in nanoseconds since [`epoch`].
    when: u64,
    /// `PENDING` until exactly one of run (`RUNNING`), `cancel` (`CANCELLED`) or shutdown
    /// (`DROPPED`) wins the CAS; the winner owns `f`.
    state: AtomicU8,
    f: UnsafeCell<Option<TimerFn>>,
}

// SAFETY: `f` is touched only by the thread whose CAS moved `state` out of `PENDING` (one
// winner), or before the entry is shared; the function itself is `Send`.
unsafe impl Sync for Entry {}

impl Entry {
    /// Moves `PENDING -> to` and returns the function to the winner.
    fn take(&self, to: u8) -> Option<TimerFn> {
        // AcqRel: the winner's Acquire pairs with the Release of the `Arc` hand-over that
        // published the entry (the function was written before it was shared).
        self.state
            .compare_exchange(PENDING, to, AcqRel, Relaxed)
            .ok()?;
        // SAFETY: we won the CAS out of PENDING, so nobody else reads or writes `f` again.
        unsafe { (*self.f.get()).take() }
    }

    fn pending(&self) -> bool {
        self.state.load(Relaxed) == PENDING
    }
}

/// An armed timer, for [`cancel`]. Clones name the same timer; dropping one does nothing.
#[derive(Clone)]
pub struct TimerId(Arc<Entry>);

impl PartialEq for TimerId {
    fn eq(&self, other: &TimerId) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for TimerId {}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerId")
            .field("when", &self.0.when)
            .field("state", &self.0.state.load(Relaxed))
            .finish()
    }
}

/// A timer made by [`prepare`] that is not armed yet.
pub struct Unarmed(Arc<Entry>);

/// The process-wide origin of timer deadlines.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `t` as nanoseconds since [`epoch`] (instants before it count as 0: already due).
pub fn nanos(t: Instant) -> u64 {
    let d = t.saturating_duration_since(epoch()).as_nanos();
    u64::try_from(d).unwrap_or(NONE - 1).min(NONE - 1)
}

/// The instant `n` nanoseconds after [`epoch`].
pub fn instant(n: u64) -> Instant {
    epoch() + Duration::from_nanos(n)
}

fn now() -> u64 {
    nanos(Instant::now())
}

/// Runs a timer's function; a panic there is a broken contract, reported as fatal.
fn run_fn(f: TimerFn) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        crate::fatal("runtime: a timer function panicked");
    }
}

/// A 4-ary min-heap of `(when, entry)`.
struct Heap {
    items: Vec<(u64, Arc<Entry>)>,
    /// Bumped by every push and every function run; with `running`, what deadlock detection
    /// reads of the fallback thread (`deadlock.rs`).
    version: u64,
    /// Functions taken from this heap that are running now.
    running: u32,
    /// Compact (drop cancelled entries) when `items` reaches this length.
    compact_at: usize,
}

impl Heap {
    fn peek(&self) -> u64 {
        self.items.first().map_or(NONE, |e| e.0)
    }

    fn push(&mut self, when: u64, e: Arc<Entry>) {
        if self.items.len() >= self.compact_at {
            self.compact();
        }
        self.items.push((when, e));
        self.sift_up(self.items.len() - 1);
    }

    fn pop(&mut self) -> Option<Arc<Entry>> {
        if self.items.is_empty() {
            return None;
        }
        let top = self.items.swap_remove(0).1;
        if !self.items.is_empty() {
            self.sift_down(0);
        }
        Some(top)
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.items[parent].0 <= self.items[i].0 {
                break;
            }
            self.items.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.items.len();
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let last = (first + 4).min(n);
            let c = (first..last)
                .min_by_key(|&c| self.items[c].0)
                .unwrap_or(first);
            if self.items[i].0 <= self.items[c].0 {
                break;
            }
            self.items.swap(i, c);
            i = c;
        }
    }

    /// Drops cancelled entries and rebuilds the heap (Go's `clearDeletedTimers`).
    fn compact(&mut self) {
        self.items.retain(|(_, e)| e.pending());
        for i in (0..self.items.len()).rev() {
            self.sift_down(i);
        }
        self.compact_at = COMPACT_MIN.max(2 * self.items.len());
    }
}

/// A heap of timers: one per P, and one for the fallback thread.
pub struct Timers {
    heap: Mutex<Heap>,
    /// The heap's earliest `when` ([`NONE`] if empty), for lock-free checks. Written under the
    /// heap lock; lowered with SeqCst by a push (see "No lost deadline" above), otherwise a
    /// hint re-checked under the lock. A cancelled entry at the top keeps it low until it is
    /// discarded: at worst a spurious wake-up.
    when0: AtomicU64,
}

impl Timers {
    pub fn new() -> Timers {
        Timers {
            heap: Mutex::new(Heap {
                items: Vec::new(),
                version: 0,
                running: 0,
                compact_at: COMPACT_MIN,
            }),
            when0: AtomicU64::new(NONE),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The earliest deadline ([`NONE`] if there are no timers). SeqCst: see the module docs.
    pub fn when0(&self) -> u64 {
        self.when0.load(SeqCst)
    }

    /// Whether a timer is due now (lock-free; reads the clock only if there are timers).
    #[inline]
    pub fn due(&self) -> bool {
        let w = self.when0.load(Relaxed);
        w != NONE && w <= now()
    }

    /// Adds an entry; true if it became the earliest.
    fn push(&self, e: Arc<Entry>) -> bool {
        let when = e.when;
        let mut h = self.lock();
        let old = h.peek();
        h.version += 1;
        h.push(when, e);
        // SeqCst: the store half of the store-load pattern with `Sched::timer_sleeper`.
        self.when0.store(h.peek(), SeqCst);
        when < old
    }

    /// Runs the timers due at `now`, one at a time without the lock (Go's `runtimer`). True if
    /// any function ran.
    pub fn run_due(&self, now: u64) -> bool {
        if self.when0.load(Relaxed) > now {
            return false; // a hint: a timer moved here meanwhile is seen next time
        }
        let mut ran = false;
        let mut h = self.lock();
        while h.peek() <= now {
            let Some(e) = h.pop() else { break };
            if let Some(f) = e.take(RUNNING) {
                self.when0.store(h.peek(), Relaxed);
                h.running += 1;
                drop(h);
                run_fn(f);
                ran = true;
                h = self.lock();
                h.running -= 1;
                h.version += 1;
            }
        }
        self.when0.store(h.peek(), Relaxed);
        ran
    }

    /// [`Timers::run_due`] at the current time, if anything might be due.
    pub fn run_due_now(&self) -> bool {
        self.when0.load(Relaxed) != NONE && self.run_due(now())
    }

    /// Moves every live timer to `dest` (a retiring P's timers to P0). `dest`'s `when0` is
    /// lowered before ours is raised (see "Moving and dropping").
    pub fn move_to(&self, dest: &Timers) {
        let items = {
            let mut h = self.lock();
            let items = std::mem::take(&mut h.items);
            h.compact_at = COMPACT_MIN;
            items
        };
        if !items.is_empty() {
            let mut d = dest.lock();
            for (when, e) in items {
                if e.pending() {
                    d.push(when, e);
                }
            }
            dest.when0.store(d.peek(), SeqCst);
        }
        let h = self.lock();
        self.when0.store(h.peek(), SeqCst);
    }

    /// Drops every timer unrun (runtime shutdown): their functions are dropped here, and a
    /// later `cancel` returns false.
    pub fn clear(&self) {
        let items = {
            let mut h = self.lock();
            self.when0.store(NONE, Relaxed);
            h.compact_at = COMPACT_MIN;
            std::mem::take(&mut h.items)
        };
        // Drop the functions outside the lock: their destructors may do anything.
        for (_, e) in items {
            drop(e.take(DROPPED));
        }
    }

    /// Whether a timer in the heap may still run (cancelled entries do not count).
    pub fn has_pending(&self) -> bool {
        if self.when0.load(Relaxed) == NONE {
            return false; // empty (a push lowers `when0` under the lock we would take)
        }
        self.lock().items.iter().any(|(_, e)| e.pending())
    }

    /// The heap's version if it holds no pending timer and runs none (see [`Heap::version`]).
    fn quiescent(&self) -> Option<u64> {
        let h = self.lock();
        (h.running == 0 && !h.items.iter().any(|(_, e)| e.pending())).then_some(h.version)
    }

    /// Entries in the heap, cancelled ones included (tests, scheduler traces).
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }
}

/// Makes a timer that runs `f` at or after `when`, without arming it yet.
pub fn prepare(when: Instant, f: TimerFn) -> (TimerId, Unarmed) {
    let e = Arc::new(Entry {
        when: nanos(when),
        state: AtomicU8::new(PENDING),
        f: UnsafeCell::new(Some(f)),
    });
    (TimerId(e.clone()), Unarmed(e))
}

impl Unarmed {
    /// Arms the timer: on the current P's heap if this thread is an M holding a P, else on the
    /// fallback thread. Does not park; may take `Sched::lock` (to wake the timer sleeper).
    pub fn arm(self) {
        let e = self.0;
        let m = current_m();
        let _s = super::preempt::Section::enter(m);
        if !m.is_null() {
            // SAFETY: a non-null current M is this thread's; we read its P and scheduler
            // without holding the reference past this call (no switch happens here), and a P
            // lives as long as its Sched, which the M keeps alive.
            unsafe {
                let p = (*m).p();
                if !p.is_null() {
                    let when = e.when;
                    if (*p).timers.push(e) {
                        (*(*m).sched_ptr()).timer_added(when);
                    }
                    return;
                }
            }
        }
        let t = timer_thread();
        if t.timers.push(e) {
            t.cv.notify_one();
        }
    }
}

/// Arms a timer that runs `f` at or after `when` (see the module docs for what `f` may do).
pub fn add(when: Instant, f: TimerFn) -> TimerId {
    let (id, unarmed) = prepare(when, f);
    unarmed.arm();
    id
}

/// Disarms a timer: true if it was removed before its function started. The function is
/// dropped here; its heap entry is discarded later (see "Cancellation is lazy").
pub fn cancel(id: TimerId) -> bool {
    match id.0.take(CANCELLED) {
        Some(f) => {
            drop(f);
            true
        }
        None => false,
    }
}

/// The fallback for timers armed on plain threads.
struct TimerThread {
    timers: Timers,
    cv: Condvar,
}

static FALLBACK: OnceLock<&'static TimerThread> = OnceLock::new();

/// For deadlock detection: None if the fallback thread was never started; else its heap's
/// version if it holds no pending timer and runs none (`Some(None)`: it is busy).
pub fn fallback_quiescent() -> Option<Option<u64>> {
    FALLBACK.get().map(|t| t.timers.quiescent())
}

fn timer_thread() -> &'static TimerThread {
    FALLBACK.get_or_init(|| {
        let t: &'static TimerThread = Box::leak(Box::new(TimerThread {
            timers: Timers::new(),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("gort-timer".into())
            .spawn(move || t.run())
            .unwrap_or_else(|e| {
                crate::fatal(&format!("runtime: cannot start the timer thread: {e}"))
            });
        t
    })
}

impl TimerThread {
    fn run(&self) -> ! {
        let _internal = super::deadlock::Internal::enter();
        loop {
            self.timers.run_due(now());
            let h = self.timers.lock();
            let next = h.peek();
            let now = now();
            if next <= now {
                continue;
            }
            // A push that becomes the earliest notifies under no lock after updating the heap:
            // we re-read `peek` under the lock above, so a notify between is not missed (the
            // pusher holds the lock while pushing).
            drop(if next == NONE {
                self.cv.wait(h).unwrap_or_else(|e| e.into_inner())
            } else {
                self.cv
                    .wait_timeout(h, Duration::from_nanos(next - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            });
        }
    }
}

/// What an M whose timed sleep ran out does next (see [`Sched::timer_timeout`]).
pub enum Timeout {
    /// It took this idle P: run the due timers.
    Run(*const P),
    /// No P is idle (every P's holder runs its own timers): sleep without a deadline.
    NoP,
    /// Someone took it off the idle list and is handing it a P: sleep until the wake-up.
    Handoff,
    /// The runtime is stopping.
    Exit,
}

impl Sched {
    /// The earliest timer of any P ([`NONE`] if none). Scans from the highest id down (see
    /// "Moving and dropping"); SeqCst loads (see "No lost deadline").
    pub fn earliest_timer(&self) -> u64 {
        let n = (0..MAX_PROCS).take_while(|&i| self.p(i).is_some()).count();
        (0..n)
            .rev()
            .filter_map(|i| self.p(i))
            .map(|p| p.timers.when0())
            .min()
            .unwrap_or(NONE)
    }

    /// Runs the due timers of every P (ours included): the readied goroutines land on the
    /// caller's P. True if any function ran.
    pub fn run_all_timers(&self) -> bool {
        let mut now = None;
        let mut ran = false;
        for p in (0..MAX_PROCS).map_while(|i| self.p(i)) {
            let w = p.timers.when0.load(Relaxed);
            if w == NONE {
                continue;
            }
            let t = *now.get_or_insert_with(self::now);
            if w <= t {
                ran |= p.timers.run_due(t);
            }
        }
        ran
    }

    /// Whether any P has a due timer (for `M::spin_for_work`).
    pub fn any_timer_due(&self, now: Instant) -> bool {
        let t = nanos(now);
        (0..MAX_PROCS)
            .map_while(|i| self.p(i))
            .any(|p| p.timers.when0.load(Relaxed) <= t)
    }

    /// Go's `wakeNetPoller`: a timer at `when` became its P's earliest; make sure an idle M
    /// will wake for it.
    pub fn timer_added(&self, when: u64) {
        // SeqCst: the load half of the store-load pattern (module docs, "No lost deadline").
        let until = self.poll_until.load(SeqCst);
        if until == 0 {
            self.wakep(); // no timer sleeper: a spinning M becomes one if it finds nothing
        } else if until > when {
            self.wake_timer_m(when);
        }
    }

    /// Hands the timer sleeper an idle P so that it recomputes its deadline (it would wake
    /// after `when`). Without an idle P nothing is done: every P is held, and each holder runs
    /// its own P's timers at its next schedule.
    fn wake_timer_m(&self, when: u64) {
        let mut l = self.lock();
        let m = l.timer_m;
        if m.is_null() || self.poll_until.load(Relaxed) <= when || self.stopping.load(SeqCst) {
            return;
        }
        let Some(p) = self.pidleget(&mut l) else {
            return;
        };
        let removed = self.midle_remove(&mut l, m);
        drop(l);
        if !removed {
            crate::fatal("runtime: the timer sleeper is not on the idle list");
        }
        // SAFETY: we took m off the idle list under the lock; it sleeps on its note with no P.
        unsafe { (*m).hand_p(p, false) };
    }

    /// Called by `stopm` under the lock after putting `m` on the idle list: if there is no
    /// timer sleeper yet, `m` becomes it, and gets the deadline to sleep until (None: no
    /// deadline, sleep until woken).
    pub fn timer_sleeper(&self, l: &mut Locked, m: *const M) -> Option<Instant> {
        if !l.timer_m.is_null() {
            // There is a sleeper; normally it covers every timer. But a P's holder that armed
            // a timer while no P was idle could not wake it (`wake_timer_m`), counting on
            // running the timer itself, and may be giving that P up now (this M, or a P moved
            // by a preemption). If the sleeper would wake after the earliest timer, this M
            // takes its place; the old one wakes at its old deadline at most once more, finds
            // it is no longer the sleeper, and carries on as an ordinary idle M.
            if self.earliest_timer() >= self.poll_until.load(SeqCst) {
                return None;
            }
            self.clear_timer_m(l);
        }
        l.timer_m = m;
        // SeqCst store, then SeqCst loads of every `when0` (module docs, "No lost deadline").
        self.poll_until.store(NONE, SeqCst);
        let d = self.earliest_timer();
        if d == NONE {
            return None;
        }
        // 0 means "no sleeper"; a deadline at the epoch itself is due anyway.
        self.poll_until.store(d.max(1), SeqCst);
        Some(instant(d))
    }

    /// `m`'s timed sleep ran out: take it off the idle list and give it an idle P.
    pub fn timer_timeout(&self, m: *const M) -> Timeout {
        let mut l = self.lock();
        if !self.midle_remove(&mut l, m) {
            return Timeout::Handoff;
        }
        if self.stopping.load(SeqCst) {
            return Timeout::Exit;
        }
        match self.pidleget(&mut l) {
            Some(p) => Timeout::Run(p),
            None => Timeout::NoP,
        }
    }

    /// Takes an idle M off the list (clearing the timer sleeper if it is that M).
    pub fn midleget(&self, l: &mut Locked) -> Option<*const M> {
        let m = l.midle.pop()?;
        self.wake_epoch.fetch_add(1, SeqCst); // under the lock (see `deadlock.rs`)
        if std::ptr::eq(m, l.timer_m) {
            self.clear_timer_m(l);
        }
        Some(m)
    }

    /// Takes `m` off the idle list; false if it was not on it.
    fn midle_remove(&self, l: &mut Locked, m: *const M) -> bool {
        let Some(i) = l.midle.iter().position(|&x| std::ptr::eq(x, m)) else {
            return false;
        };
        l.midle.swap_remove(i);
        self.wake_epoch.fetch_add(1, SeqCst); // under the lock (see `deadlock.rs`)
        if std::ptr::eq(m, l.timer_m) {
            self.clear_timer_m(l);
        }
        true
    }

    /// No timer sleeper any more (under the lock).
    pub fn clear_timer_m(&self, l: &mut Locked) {
        l.timer_m = std::ptr::null();
        self.poll_until.store(0, SeqCst);
    }

    /// A P is retiring (beyond `gomaxprocs`): its timers go to P0. Under `Sched::lock` or not
    /// (heap locks are leaves); no wake-up is needed (see "Moving and dropping").
    pub fn retire_p_timers(&self, p: &P) {
        if p.id == 0 {
            return;
        }
        if let Some(p0) = self.p(0) {
            p.timers.move_to(&p0.timers);
        }
    }

    /// Shutdown: drops every P's timers unrun.
    pub fn drop_timers(&self) {
        for p in (0..MAX_PROCS).map_while(|i| self.p(i)) {
            p.timers.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn entry(when: u64) -> Arc<Entry> {
        let (id, _) = prepare(instant(when), Box::new(|| ()));
        id.0
    }

    #[test]
    fn heap_pops_in_order() {
        let mut h = Heap {
            items: Vec::new(),
            version: 0,
            running: 0,
            compact_at: usize::MAX,
        };
        let mut x = 12345u64;
        let mut all = Vec::new();
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let w = x % 10_000;
            all.push(w);
            h.push(w, entry(w));
        }
        all.sort_unstable();
        let got: Vec<u64> = std::iter::from_fn(|| h.pop().map(|e| e.when)).collect();
        assert_eq!(got, all);
    }

    #[test]
    fn cancel_wins_once_and_compaction_bounds_the_heap() {
        let t = Timers::new();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let (id, u) = prepare(far, Box::new(|| ()));
            t.push(u.0);
            assert!(cancel(id.clone()));
            assert!(!cancel(id));
        }
        assert!(t.len() <= 2 * COMPACT_MIN, "heap kept {} entries", t.len());
    }

    #[test]
    fn run_due_runs_only_due_timers_and_skips_cancelled() {
        let t = Timers::new();
        let hits = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for w in [30u64, 10, 20, 40] {
            let h = hits.clone();
            let (id, u) = prepare(
                instant(w),
                Box::new(move || {
                    h.fetch_add(w as usize, SeqCst);
                }),
            );
            t.push(u.0);
            ids.push(id);
        }
        assert_eq!(t.when0(), 10);
        assert!(cancel(ids[2].clone())); // the one at 20
        assert!(t.run_due(25));
        assert_eq!(hits.load(SeqCst), 10);
        assert_eq!(t.when0(), 30);
        assert!(!cancel(ids[1].clone())); // already ran
        let dest = Timers::new();
        t.move_to(&dest);
        assert_eq!((t.when0(), dest.when0()), (NONE, 30));
        dest.clear();
        assert!(!cancel(ids[0].clone()));
        assert!(!dest.run_due(100));
        assert_eq!(hits.load(SeqCst), 10);
    }

    /// The timers of the P the calling goroutine runs on.
    fn my_p_len() -> usize {
        let m = current_m();
        let _s = crate::sched::preempt::Section::enter(m);
        // SAFETY: called on a goroutine: its M and P are live; nothing switches meanwhile.
        unsafe { (*(*m).p()).timers.len() }
    }

    #[test]
    fn add_cancel_loop_on_a_goroutine_stays_bounded() {
        let rt = crate::Builder::new().procs(1).build().unwrap();
        let max = rt.run(|| {
            let far = Instant::now() + Duration::from_secs(3600);
            let mut max = 0;
            for i in 0..100_000 {
                let id = add(far, Box::new(|| ()));
                assert!(cancel(id));
                if i % 100 == 0 {
                    max = max.max(my_p_len());
                }
            }
            max
        });
        assert!(max <= 2 * COMPACT_MIN, "a P heap kept {max} entries");
    }

    #[test]
    fn fallback_thread_runs_timers_in_order() {
        let (tx, rx) = std::sync::mpsc::channel();
        let base = Instant::now();
        for ms in [30u64, 10, 20] {
            let tx = tx.clone();
            add(
                base + Duration::from_millis(ms),
                Box::new(move || tx.send((ms, Instant::now())).unwrap()),
            );
        }
        let keep = add(base + Duration::from_secs(3600), Box::new(|| ()));
        for want in [10u64, 20, 30] {
            let (ms, at) = rx.recv().unwrap();
            assert_eq!(ms, want);
            assert!(at >= base + Duration::from_millis(ms));
        }
        assert!(cancel(keep));
    }
}
