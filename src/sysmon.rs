//! sysmon: one monitor thread per runtime, running without a P (Go's `sysmon`).
//!
//! Every tick it looks at each M of its runtime (the `allm` registry) and:
//! * hands off a P that a preempted M gave up (`lost_p`), unless the M took it back first;
//! * retakes the P of an M inside `gort::blocking` (`sys_p`) once the call has lasted at
//!   least one tick and the P has work waiting (or every other P is busy), or after 10 ms
//!   regardless — Go's `retake` for `_Psyscall`;
//! * asks an M whose goroutine has run for [`FORCE_PREEMPT`] (10 ms) without a switch to give
//!   its P up (`preempt::request`): a hog, or a goroutine stuck in a call nobody marked
//!   (`std::thread::sleep`, `std::fs`, a C library). The goroutine keeps its thread; its P's
//!   other goroutines move on with another M. See `sched/preempt.rs` for why this is sound.
//!
//! Each tick also polls the network if goroutines wait on I/O and nobody polled for 10 ms
//! (every M busy running goroutines), as Go's sysmon does.
//!
//! Its cadence is Go's: it sleeps 20 µs between ticks, doubling the sleep after 1 ms in which
//! it found nothing to do, up to 10 ms. It touches no goroutine and no P it does not own at
//! the moment: Ps come to it only through atomic swaps (`lost_p`, `sys_p`).
//!
//! The registry lock is held while it signals a thread, and an M takes that lock to leave the
//! registry before its thread ends, so `pthread_kill` never names a thread that has exited.

use crate::sched::m::M;
use crate::sched::note::Note;
use crate::sched::p::P;
use crate::sched::{preempt, Sched};
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a goroutine may run before sysmon takes its P (Go's `forcePreemptNS`).
pub const FORCE_PREEMPT: Duration = Duration::from_millis(10);
/// Shortest and longest sleep between ticks (Go's 20 µs and 10 ms).
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);
/// Ticks with nothing to do before the sleep starts doubling (about 1 ms of 20 µs ticks).
const IDLE_TICKS: u32 = 50;

/// A runtime's sysmon: its thread and the note that wakes it for shutdown.
pub struct Sysmon {
    note: Note,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Every live M of the runtime; an M joins as it starts and leaves before its thread ends.
    pub(crate) allm: Mutex<Vec<Arc<M>>>,
}

impl Sysmon {
    pub fn new() -> Sysmon {
        Sysmon {
            note: Note::new(),
            thread: Mutex::new(None),
            allm: Mutex::new(Vec::new()),
        }
    }

    /// Adds a starting M to the registry (on the M's own thread).
    pub fn register(&self, m: Arc<M>) {
        self.allm.lock().unwrap_or_else(|e| e.into_inner()).push(m);
    }

    /// Removes an M from the registry before its thread ends (on that thread).
    pub fn unregister(&self, m: &M) {
        let mut all = self.allm.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|x| !ptr::eq(&**x, m));
    }

    /// Starts the monitor thread (once, when the runtime starts its first M).
    pub fn start(&self, sched: &Arc<Sched>) {
        let mut t = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_some() {
            return;
        }
        preempt::install();
        let s = sched.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gort-sysmon{}", sched.id))
            .spawn(move || run(&s));
        match spawned {
            Ok(h) => *t = Some(h),
            Err(e) => crate::fatal(&format!("cannot create the sysmon thread: {e}")),
        }
    }

    /// Stops the monitor thread and waits for it (runtime shutdown, after `stopping` is set).
    pub fn stop(&self) {
        self.note.wakeup();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Default for Sysmon {
    fn default() -> Self {
        Sysmon::new()
    }
}

/// What sysmon last saw of one M.
#[derive(Default)]
struct Seen {
    run_seq: u64,
    run_since: Option<Instant>,
    sys_seq: u64,
    sys_since: Option<Instant>,
}

fn run(sched: &Sched) {
    let _internal = crate::sched::deadlock::Internal::enter();
    let mon = &sched.sysmon;
    let mut seen: HashMap<u64, Seen> = HashMap::new();
    let mut delay = MIN_DELAY;
    let mut idle = 0u32;
    let mut reported = None;
    let trace = Duration::from_millis(sched.counters.trace_ms.load(Relaxed));
    let mut next_trace = sched.counters.started + trace;
    loop {
        if idle == 0 {
            delay = MIN_DELAY;
        } else if idle > IDLE_TICKS {
            delay = (delay * 2).min(MAX_DELAY);
        }
        let mut wake = Instant::now() + delay;
        if !trace.is_zero() {
            wake = wake.min(next_trace);
        }
        mon.note.sleep_until(wake);
        if sched.stopping.load(SeqCst) {
            return;
        }
        crate::diag::tick_clock(); // the coarse clock of wait reasons
        if !trace.is_zero() && Instant::now() >= next_trace {
            // Go's `schedtrace`, one write so that lines of several runtimes do not mix.
            let detail = sched.counters.trace_detail.load(Relaxed);
            let text = sched.sched_trace(detail);
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            next_trace += trace;
            let now = Instant::now();
            if next_trace < now {
                next_trace = now + trace; // we fell behind: do not print a burst
            }
        }
        let mut did = tick(sched, &mut seen, Instant::now());
        // Go's sysmon polls the network if nobody did for 10 ms (all Ms busy running Gs).
        did |= crate::netpoll::poll_if_stale(sched) > 0;
        if did {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            if idle > IDLE_TICKS {
                checkdead(sched, &mut reported);
            }
        }
    }
}

/// Go's `checkdead`, from an idle tick (see `sched/deadlock.rs`). A deadlock is reported
/// once (`Deadlock::Panic` leaves the runtime as it is).
fn checkdead(sched: &Sched, reported: &mut Option<u64>) {
    if let Some((report, fingerprint)) = crate::sched::deadlock::check(sched) {
        if *reported != Some(fingerprint) {
            *reported = Some(fingerprint);
            sched.report_deadlock(report);
        }
    }
}

/// One look at every M; true if sysmon did something (then it looks again soon).
fn tick(sched: &Sched, seen: &mut HashMap<u64, Seen>, now: Instant) -> bool {
    let mut handoff: Vec<*const P> = Vec::new();
    let mut did = false;
    {
        let all = sched.sysmon.allm.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 2 * all.len() + 16 {
            seen.retain(|id, _| all.iter().any(|m| m.id == *id));
        }
        for m in all.iter() {
            let pre = &m.pre;
            let s = seen.entry(m.id).or_default();
            // A P a preempted M gave up.
            let p = pre.lost_p.swap(ptr::null_mut(), Acquire);
            if !p.is_null() {
                handoff.push(p);
            }
            // A blocking call.
            let sys = pre.sys_seq.load(Relaxed);
            let sp = pre.sys_p.load(Relaxed);
            if sp.is_null() || s.sys_seq != sys {
                s.sys_seq = sys;
                s.sys_since = (!sp.is_null()).then_some(now);
            } else if let Some(since) = s.sys_since {
                // Seen in this call at an earlier tick.
                // SAFETY: Ps live as long as their Sched; only atomics are read.
                let busy = !unsafe { &*sp }.runq.is_empty()
                    || sched.nmspinning.load(SeqCst) + sched.npidle.load(SeqCst) == 0;
                if busy || now - since >= FORCE_PREEMPT {
                    let p = pre.sys_p.swap(ptr::null_mut(), Acquire);
                    if !p.is_null() {
                        handoff.push(p);
                    }
                }
            }
            // A goroutine running too long.
            let run = pre.run_seq.load(Relaxed);
            if s.run_seq != run || s.run_since.is_none() {
                s.run_seq = run;
                s.run_since = Some(now);
            } else if m.p_hint() && !pre.in_runtime() {
                if s.run_since.is_some_and(|t| now - t >= FORCE_PREEMPT) {
                    // SAFETY: the M is in the registry, whose lock we hold: its thread lives.
                    unsafe { preempt::request(m, run) };
                    sched.counters.preemptions.fetch_add(1, Relaxed);
                    did = true;
                }
            } else {
                s.run_since = Some(now); // on g0, or without a P: not running a goroutine
            }
        }
    }
    did |= !handoff.is_empty();
    for p in handoff {
        sched.handoffp(p);
    }
    did
}
