//! may versions of the workloads. See bench/README.md.
//! Runtime: default config (workers = number of CPUs, stack 0x1000 words =
//! 32 KiB per coroutine). The workload body runs inside a coroutine
//! (like Go's main goroutine).
//!
//! Note: may maps each coroutine stack separately (stack + guard page), so
//! with the default vm.max_map_count (65530) it cannot hold much more than
//! ~32k live coroutines; bench/compare.sh runs `memory` at 30,000 for may.

#[path = "../../../common/common.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use may::go;
use may::sync::SyncFlag;

/// A WaitGroup-like countdown: `done()` by the last of `n` fires the flag.
struct Countdown {
    left: AtomicUsize,
    zero: SyncFlag,
}

impl Countdown {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Countdown { left: AtomicUsize::new(n), zero: SyncFlag::new() })
    }
    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.zero.fire();
        }
    }
    fn wait(&self) {
        self.zero.wait();
    }
}

fn spawn(n: usize) -> f64 {
    // As Go's closure does, each task captures a plain reference to the shared counter: no
    // per-spawn reference-count traffic between threads (Go pays none either). Leaked: one
    // small object per run.
    let wg: &'static Countdown = Box::leak(Box::new(Countdown::new(n)));
    let t0 = Instant::now();
    for _ in 0..n {
        go!(move || wg.done());
    }
    wg.wait();
    ns_per(t0.elapsed(), n)
}

fn gosched(n: usize) -> f64 {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            go!(move || {
                for _ in 0..n {
                    may::coroutine::yield_now();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    ns_per(t0.elapsed(), 2 * n)
}

fn memory(n: usize) -> f64 {
    let started = Countdown::new(n);
    let finished = Countdown::new(n);
    let gate = Arc::new(SyncFlag::new());
    let before = rss_pte_kb();
    for _ in 0..n {
        let (started, finished, gate) = (started.clone(), finished.clone(), gate.clone());
        go!(move || {
            started.done();
            gate.wait();
            finished.done();
        });
    }
    started.wait();
    let after = rss_pte_kb();
    gate.fire();
    finished.wait();
    bytes_per(before, after, n)
}

fn main() {
    let a = args();
    let value = go!(move || match a.workload.as_str() {
        "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)),
        "gosched" => gosched(a.n.unwrap_or(N_YIELDS)),
        "memory" => memory(a.n.unwrap_or(N_GOROUTINES)),
        w => not_implemented(w),
    })
    .join();
    match value {
        Ok(v) => report(v),
        Err(_) => {
            eprintln!("may: workload coroutine panicked");
            std::process::exit(1);
        }
    }
}
