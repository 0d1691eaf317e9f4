//! Scheduler statistics ([`Stats`], `runtime::stats`) and Go's scheduler trace
//! (`GORT_DEBUG=schedtrace=N,scheddetail=1`, printed by sysmon).
//!
//! Hot-path counters are per P and written only by the P's holder with a load and a store
//! (`P::bump`: no read-modify-write, no shared cache line): `spawned`, `runs`, `parks`,
//! `steals`. A reader sums them over every P; each sum may lag a concurrent update by a few
//! counts, which is all a statistic needs. Rare events (hand-offs, preemptions, netpoll
//! wake-ups, spawns from plain threads) are shared atomics of the runtime.

use super::{g, Sched, MAX_PROCS};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Instant;

/// A snapshot of one runtime's scheduler: gauges at the moment of the call and counters since
/// the runtime was built. Taken without stopping the scheduler, so the fields are each
/// current but not mutually consistent.
///
/// ```
/// gort::run(|| {
///     let before = gort::runtime::stats();
///     let hs: Vec<_> = (0..100).map(|i| gort::go(move || i)).collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     let after = gort::runtime::stats();
///     assert!(after.spawned >= before.spawned + 100);
///     assert!(after.context_switches >= before.context_switches + 100);
///     assert!(after.goroutines >= 1); // main
///     assert_eq!(after.gomaxprocs, gort::runtime::gomaxprocs());
/// });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live goroutines, main included (`runtime::num_goroutine`).
    pub goroutines: usize,
    /// Ps (`gomaxprocs`).
    pub gomaxprocs: usize,
    /// Ps on the idle list.
    pub idle_procs: usize,
    /// OS threads running the scheduler (Ms), idle ones included; sysmon is not counted.
    pub threads: usize,
    /// Ms asleep on the idle list.
    pub idle_threads: usize,
    /// Ms holding a P and looking for work.
    pub spinning_threads: usize,
    /// Goroutines in the global run queue.
    pub global_runqueue: usize,
    /// Goroutines started so far.
    pub spawned: u64,
    /// Context switches: times an M switched to a goroutine to run it.
    pub context_switches: u64,
    /// Parks: times a goroutine blocked (channel, lock, sleep, I/O, join, ...), counted on the
    /// P it parked on (a park inside `gort::blocking`, without a P, is not counted).
    pub parks: u64,
    /// Successful steals of run-queue work from another P.
    pub steals: u64,
    /// Ps handed to another M outside the schedule loop (retaken from blocking calls or from
    /// preempted goroutines, released by locked goroutines).
    pub handoffs: u64,
    /// Preemption requests sysmon sent to goroutines that ran for 10 ms.
    pub preemptions: u64,
    /// Goroutines readied by the netpoller.
    pub netpoll_wakeups: u64,
}

/// The runtime-wide (shared, rare) counters and the trace settings.
pub struct Counters {
    pub handoffs: AtomicU64,
    pub preemptions: AtomicU64,
    /// When the runtime was built: trace times count from here.
    pub started: Instant,
    /// `schedtrace` period in ms (0: off) and `scheddetail`.
    pub trace_ms: AtomicU64,
    pub trace_detail: AtomicBool,
}

impl Counters {
    pub fn new() -> Counters {
        Counters {
            handoffs: AtomicU64::new(0),
            preemptions: AtomicU64::new(0),
            started: Instant::now(),
            trace_ms: AtomicU64::new(0),
            trace_detail: AtomicBool::new(false),
        }
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

impl super::m::M {
    /// The id of the P this M holds, read from another thread (a hint, for traces).
    pub fn p_id(&self) -> Option<usize> {
        let p = self.p.load(Relaxed);
        // SAFETY: Ps live as long as their Sched, which outlives its Ms; only the id is read.
        (!p.is_null()).then(|| unsafe { (*p).id })
    }
}

impl Sched {
    /// The [`Stats`] of this runtime.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            goroutines: self.num_goroutine(),
            gomaxprocs: self.gomaxprocs.load(Relaxed),
            idle_procs: self.npidle.load(Relaxed),
            spinning_threads: self.nmspinning.load(Relaxed),
            global_runqueue: self.runqsize.load(Relaxed),
            handoffs: self.counters.handoffs.load(Relaxed),
            preemptions: self.counters.preemptions.load(Relaxed),
            netpoll_wakeups: self.netpoll.get().map_or(0, |p| p.woken.load(Relaxed)),
            spawned: self.ext_spawned.load(Relaxed),
            ..Stats::default()
        };
        {
            let l = self.lock();
            s.threads = l.mcount;
            s.idle_threads = l.midle.len();
        }
        for p in (0..MAX_PROCS).map_while(|i| self.p(i)) {
            // Acquire: pairs with the Release store of `P::bump`.
            s.spawned += p.spawned.load(Acquire);
            s.context_switches += p.runs.load(Acquire);
            s.parks += p.parks.load(Acquire);
            s.steals += p.steals.load(Acquire);
        }
        s
    }

    /// Go's `schedtrace` line (and, with `detail`, the per-P, per-M and per-G lines), for
    /// sysmon. Reads hints only (no P state the holder owns).
    pub fn sched_trace(&self, detail: bool) -> String {
        let s = self.stats();
        let ms = self.counters.started.elapsed().as_millis();
        let mut out = format!(
            "SCHED {ms}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} \
             idlethreads={} runqueue={} [",
            s.gomaxprocs,
            s.idle_procs,
            s.threads,
            s.spinning_threads,
            s.idle_threads,
            s.global_runqueue
        );
        let procs: Vec<_> = (0..s.gomaxprocs).filter_map(|i| self.p(i)).collect();
        for (i, p) in procs.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(out, "{sep}{}", p.runq.len());
        }
        out.push_str("]\n");
        if !detail {
            return out;
        }
        // Which M holds which P, and which Ms are idle.
        // (M id, P id held, goroutine id run), and the ids of idle Ms.
        type Ms = Vec<(u64, Option<usize>, u64)>;
        let (ms, idle): (Ms, Vec<u64>) = {
            let all = self.sysmon.allm.lock().unwrap_or_else(|e| e.into_inner());
            let ms = all
                .iter()
                .map(|m| (m.id, m.p_id(), m.curg_id.load(Relaxed)))
                .collect();
            let l = self.lock();
            // SAFETY: Ms on the idle list are alive while we hold the lock; only ids are read.
            let idle = l.midle.iter().map(|&m| unsafe { (*m).id }).collect();
            (ms, idle)
        };
        for p in &procs {
            let holder = ms.iter().find(|m| m.1 == Some(p.id));
            let _ = writeln!(
                out,
                "  P{}: status={} schedtick={} m={} runqsize={} timerslen={}",
                p.id,
                u8::from(holder.is_some()),
                p.runs.load(Relaxed),
                holder.map_or(-1, |m| m.0 as i64),
                p.runq.len(),
                p.timers.len()
            );
        }
        for (id, p, curg) in &ms {
            let _ = writeln!(
                out,
                "  M{id}: p={} curg={} blocked={}",
                p.map_or(-1, |p| p as i64),
                if *curg == 0 { -1 } else { *curg as i64 },
                idle.contains(id)
            );
        }
        self.for_each_g(|gp| {
            let (code, name) = match gp.state() {
                g::RUNNABLE => (1, "runnable"),
                g::RUNNING => (2, "running"),
                g::WAITING => (4, "waiting"),
                _ => return,
            };
            let id = gp.id();
            let m = ms.iter().find(|m| m.2 == id).map_or(-1, |m| m.0 as i64);
            let _ = writeln!(out, "  G{id}: status={code}({name}) m={m}");
        });
        out
    }
}
