//! gort versions of the workloads. See bench/README.md.
//! Runtime: `gort::run` with its defaults (workers = number of CPUs); the
//! workload body is the main goroutine.

#[path = "../../common/common.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use gort::sync::WaitGroup;

fn spawn(n: usize) -> f64 {
    // As Go's closure does, each task captures a plain reference to the shared counter: no
    // per-spawn reference-count traffic between threads (Go pays none either). Leaked: one
    // small object per run.
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let t0 = Instant::now();
    wg.add(n as isize);
    for _ in 0..n {
        // The JoinHandle is dropped: the goroutine is detached, as in Go.
        gort::go(move || wg.done());
    }
    wg.wait();
    ns_per(t0.elapsed(), n)
}

fn gosched(n: usize) -> f64 {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            gort::go(move || {
                for _ in 0..n {
                    gort::runtime::gosched();
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
    let started = Arc::new(WaitGroup::new());
    let finished = Arc::new(WaitGroup::new());
    let gate = Arc::new(WaitGroup::new());
    gate.add(1);
    started.add(n as isize);
    finished.add(n as isize);
    let before = rss_pte_kb();
    for _ in 0..n {
        let (started, finished, gate) = (started.clone(), finished.clone(), gate.clone());
        gort::go(move || {
            started.done();
            gate.wait();
            finished.done();
        });
    }
    started.wait();
    let after = rss_pte_kb();
    gate.done();
    finished.wait();
    bytes_per(before, after, n)
}

fn main() {
    let a = args();
    let value = gort::run(move || match a.workload.as_str() {
        "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)),
        "gosched" => gosched(a.n.unwrap_or(N_YIELDS)),
        "memory" => memory(a.n.unwrap_or(N_GOROUTINES)),
        w => not_implemented(w),
    });
    report(value);
}
