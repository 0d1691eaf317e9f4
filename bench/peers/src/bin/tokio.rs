//! tokio versions of the workloads. See bench/README.md.
//! Runtime: multi-threaded, default worker count (= number of CPUs).
//! The workload body runs inside a spawned task (like Go's main goroutine),
//! not on the block_on thread.

#[path = "../../../common/common.rs"]
mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use tokio::sync::Notify;

/// A WaitGroup-like countdown: `done()` by the last of `n` wakes `wait()`.
struct Countdown {
    left: AtomicUsize,
    zero: Notify,
}

impl Countdown {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Countdown { left: AtomicUsize::new(n), zero: Notify::new() })
    }
    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // notify_one stores a permit if nobody waits yet: no lost wakeup.
            self.zero.notify_one();
        }
    }
    async fn wait(&self) {
        if self.left.load(Ordering::Acquire) == 0 {
            return;
        }
        self.zero.notified().await;
    }
}

async fn spawn(n: usize) -> f64 {
    // As Go's closure does, each task captures a plain reference to the shared counter: no
    // per-spawn reference-count traffic between threads (Go pays none either). Leaked: one
    // small object per run.
    let wg: &'static Countdown = Box::leak(Box::new(Countdown::new(n)));
    let t0 = Instant::now();
    for _ in 0..n {
        tokio::spawn(async move { wg.done() });
    }
    wg.wait().await;
    ns_per(t0.elapsed(), n)
}

async fn gosched(n: usize) -> f64 {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    ns_per(t0.elapsed(), 2 * n)
}

async fn memory(n: usize) -> f64 {
    let started = Countdown::new(n);
    let finished = Countdown::new(n);
    let gate = Arc::new(Notify::new());
    let before = rss_pte_kb();
    for _ in 0..n {
        let (started, finished, gate) = (started.clone(), finished.clone(), gate.clone());
        tokio::spawn(async move {
            let mut parked = pin!(gate.notified());
            // Register as a waiter before reporting "started", so the
            // notify_waiters() below cannot be missed.
            parked.as_mut().enable();
            started.done();
            parked.await;
            finished.done();
        });
    }
    started.wait().await;
    let after = rss_pte_kb();
    gate.notify_waiters();
    finished.wait().await;
    bytes_per(before, after, n)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let value = rt.block_on(async move {
        tokio::spawn(async move {
            match a.workload.as_str() {
                "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)).await,
                "gosched" => gosched(a.n.unwrap_or(N_YIELDS)).await,
                "memory" => memory(a.n.unwrap_or(N_GOROUTINES)).await,
                w => not_implemented(w),
            }
        })
        .await
        .unwrap()
    });
    report(value);
}
