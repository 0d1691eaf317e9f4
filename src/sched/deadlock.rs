//! Deadlock detection (Go's `checkdead`), run by each runtime's sysmon.
//!
//! A runtime is deadlocked when every goroutine of it is parked on gort's primitives and
//! nothing in the process can wake one. Go can decide that from its scheduler alone, since
//! every thread of a Go program is one of its Ms. A gort runtime shares its process with plain
//! threads, other runtimes, the fallback timer thread and threads gort knows nothing about, so
//! the check looks at *all of them* and reports only when the whole process is asleep inside
//! gort. See "Deadlock detection" in ARCHITECTURE.md for the argument; in short:
//!
//! * Every thread of the process (`/proc/self/task`) must be accounted for: a gort-internal
//!   thread ([`Internal`]: Ms of any runtime, sysmon threads, the fallback timer thread, the
//!   SIGQUIT dump thread), or a
//!   plain thread asleep in an untimed gort wait ([`park_thread`]). Any other thread (a test
//!   harness, a thread in `read(2)`, `poll(2)` or `sleep`, a timed wait) may wake a goroutine.
//! * Every runtime in the process must be *quiescent* ([`Sched::quiescent`]): all its Ms idle,
//!   all its Ps idle, empty run queues, no pending timer, no goroutine waiting on the netpoller,
//!   not shutting down. The fallback timer thread must hold no pending timer and run none.
//! * Each of these is read at a different instant, so the check takes the snapshot twice and
//!   compares version numbers that every *wake-up* bumps before it takes effect (an M taken off
//!   the idle list, a registered plain thread unparked or leaving its wait, a timer pushed or
//!   run on the fallback thread). Equal versions and "asleep" in both snapshots mean each part
//!   stayed asleep from its first read to its second, so all were asleep at once in between;
//!   and nothing asleep can wake anything, so the state is final.

use super::g;
use super::Sched;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::{Thread, ThreadId};

/// What a runtime does when it finds its goroutines deadlocked
/// ([`Builder::on_deadlock`](crate::Builder::on_deadlock)).
///
/// ```
/// // A test suite wants a panic it can catch rather than a process exit.
/// let rt = gort::Builder::new().on_deadlock(gort::Deadlock::Panic).build().unwrap();
/// assert_eq!(rt.run(|| 7), 7);
/// assert_eq!(gort::Deadlock::default(), gort::Deadlock::Exit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Deadlock {
    /// Print `fatal error: all goroutines are asleep - deadlock!` and the goroutine dump to
    /// stderr, then exit the process with status 2 (as Go does).
    #[default]
    Exit,
    /// Make [`Runtime::run`](crate::Runtime::run) panic with a `String` payload holding the
    /// same message and dump. The goroutines stay parked; dropping the runtime cancels them.
    Panic,
}

/// The first line of the report.
pub const MESSAGE: &str = "fatal error: all goroutines are asleep - deadlock!";

/// gort-internal threads alive (Ms of every runtime, sysmon threads, the timer thread).
static INTERNAL: AtomicUsize = AtomicUsize::new(0);

/// Counts the current thread as gort-internal while alive (an M, sysmon, the timer thread).
/// Made at the start of the thread's function and dropped at its end: the thread exists a
/// little longer on both sides, which can only make the count too small (no report).
pub struct Internal(());

impl Internal {
    pub fn enter() -> Internal {
        INTERNAL.fetch_add(1, SeqCst);
        Internal(())
    }
}

impl Drop for Internal {
    fn drop(&mut self) {
        INTERNAL.fetch_sub(1, SeqCst);
    }
}

/// Plain threads asleep in an untimed gort wait, and whether someone has woken them since.
struct Sleepers {
    threads: HashMap<ThreadId, bool>,
    /// Bumped by every registration, unregistration and wake-up of a registered thread.
    version: u64,
}

static SLEEPERS: Mutex<Option<Sleepers>> = Mutex::new(None);

fn sleepers() -> MutexGuard<'static, Option<Sleepers>> {
    SLEEPERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_sleepers<R>(f: impl FnOnce(&mut Sleepers) -> R) -> R {
    let mut s = sleepers();
    f(s.get_or_insert_with(|| Sleepers {
        threads: HashMap::new(),
        version: 0,
    }))
}

/// `std::thread::park` for a plain thread in an untimed gort wait (a channel operation, a
/// lock, a join, `Runtime::run`): while parked, the thread counts as asleep for deadlock
/// detection. Callers loop on their condition, as with `std::thread::park`.
pub fn park_thread() {
    let id = std::thread::current().id();
    with_sleepers(|s| {
        s.threads.insert(id, false);
        s.version += 1;
    });
    std::thread::park();
    with_sleepers(|s| {
        s.threads.remove(&id);
        s.version += 1;
    });
}

/// Unparks a thread that may be in [`park_thread`]: it stops counting as asleep *before* the
/// wake-up, so no snapshot can see it asleep once something has been handed to it.
pub fn unpark_thread(t: &Thread) {
    with_sleepers(|s| {
        if let Some(woken) = s.threads.get_mut(&t.id()) {
            *woken = true;
            s.version += 1;
        }
    });
    t.unpark();
}

/// Every runtime alive, for the process-wide check.
static RUNTIMES: Mutex<Vec<Weak<Sched>>> = Mutex::new(Vec::new());

/// Registers a new runtime (from `Sched::new`).
pub fn register(sched: &Arc<Sched>) {
    let mut all = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(sched));
}

/// Threads of this process, or None if `/proc/self/task` cannot be read (then nothing is
/// ever reported).
fn os_threads() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// One look at the whole process: None if anything is awake.
#[derive(PartialEq, Eq, Debug, Hash)]
struct Snapshot {
    threads: usize,
    sleepers_version: u64,
    timer_version: Option<u64>,
    /// `(Sched::id, wake epoch)` of every live runtime.
    runtimes: Vec<(u64, u64)>,
}

fn snapshot() -> Option<Snapshot> {
    let threads = os_threads()?;
    let runtimes: Vec<Arc<Sched>> = RUNTIMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut epochs = Vec::with_capacity(runtimes.len());
    for rt in &runtimes {
        epochs.push((rt.id, rt.quiescent()?));
    }
    let timer_version = match super::timer::fallback_quiescent() {
        Some(None) => return None, // it holds or runs a timer
        Some(Some(v)) => Some(v),
        None => None, // never started
    };
    let (asleep, sleepers_version) = with_sleepers(|s| {
        let all_asleep = s.threads.values().all(|woken| !woken);
        (all_asleep.then_some(s.threads.len()), s.version)
    });
    let accounted = INTERNAL.load(SeqCst) + asleep?;
    if accounted != threads {
        return None;
    }
    Some(Snapshot {
        threads,
        sleepers_version,
        timer_version,
        runtimes: epochs,
    })
}

/// The report for `sched` if the process is deadlocked and `sched` has goroutines (all of
/// them parked), with a fingerprint of the state, else None. Called by sysmon (no lock held).
pub fn check(sched: &Sched) -> Option<(String, u64)> {
    // Cheap hints first: this runs at every idle sysmon tick.
    if sched.npidle.load(SeqCst) != sched.gomaxprocs.load(SeqCst)
        || sched.nmspinning.load(SeqCst) != 0
        || sched.runqsize.load(SeqCst) != 0
        || sched.num_goroutine() == 0
        || sched.quiescent().is_none()
    {
        return None;
    }
    let first = snapshot()?;
    let mut live = 0;
    let mut all_waiting = true;
    sched.for_each_g(|g| match g.state() {
        g::IDLE | g::DEAD => {}
        g::WAITING => live += 1,
        _ => all_waiting = false,
    });
    if !all_waiting || live == 0 {
        return None;
    }
    let mut dump = String::new();
    crate::diag::dump_others(sched, None, &mut dump);
    // The second look: nothing woke in between (see the module docs).
    if snapshot()? != first {
        return None;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    first.hash(&mut h);
    Some((format!("{MESSAGE}\n\n{dump}"), h.finish()))
}

impl Sched {
    /// This runtime's wake epoch if it is quiescent: not stopping, every M idle (on `midle`),
    /// every P idle, no queued G, no pending timer on any P, no goroutine waiting on the
    /// netpoller. None otherwise. Takes the scheduler lock and, under it, the timer heap locks
    /// (leaves).
    pub(crate) fn quiescent(&self) -> Option<u64> {
        let l = self.lock();
        let procs = self.gomaxprocs.load(SeqCst);
        let idle = !self.stopping.load(SeqCst)
            && l.midle.len() == l.mcount
            && l.pidle.len() == procs
            && l.runq.is_empty()
            && self.nmspinning.load(SeqCst) == 0
            && (0..super::MAX_PROCS)
                .map_while(|i| self.p(i))
                .all(|p| p.runq.is_empty() && !p.timers.has_pending())
            && self.netpoll.get().is_none_or(|p| p.nwait.load(SeqCst) == 0);
        // Read under the lock: every M leaving `midle` bumps it under the lock.
        idle.then(|| self.wake_epoch.load(SeqCst))
    }

    /// What sysmon does once it found this runtime deadlocked (see [`Deadlock`]).
    pub(crate) fn report_deadlock(&self, report: String) {
        match *self.on_deadlock.lock().unwrap_or_else(|e| e.into_inner()) {
            Deadlock::Exit => {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{report}");
                let _ = err.flush();
                std::process::exit(2);
            }
            Deadlock::Panic => {
                let mut slot = self.deadlock.lock().unwrap_or_else(|e| e.into_inner());
                slot.0 += 1;
                slot.1 = report;
                let waiters = slot.2.clone();
                drop(slot);
                for t in &waiters {
                    unpark_thread(t);
                }
            }
        }
    }
}

/// A runtime's deadlock report for `Runtime::run` in [`Deadlock::Panic`] mode: the number of
/// reports so far, the last one, and the threads waiting in `run`.
pub(crate) type Reports = (u64, String, Vec<Thread>);
