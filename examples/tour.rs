//! A tour of gort: goroutines at work, with timings.
//!
//! Run it with `cargo run --release --example tour`.

use gort::sync::WaitGroup;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    gort::run(|| {
        println!(
            "gort: {} Ps (GOMAXPROCS), main is goroutine {}\n",
            gort::runtime::gomaxprocs(),
            gort::runtime::goid()
        );

        // 1. Spawning is cheap: a million goroutines, started and joined by a WaitGroup.
        let n = 1_000_000;
        let wg = Arc::new(WaitGroup::new());
        let t = Instant::now();
        wg.add(n as isize);
        for _ in 0..n {
            let wg = wg.clone();
            gort::go(move || wg.done());
        }
        wg.wait();
        let dt = t.elapsed();
        println!(
            "1. spawned and finished {n} goroutines in {dt:.2?} ({:.0} ns each)",
            ns(dt, n)
        );

        // 2. Parked goroutines are cheap too: 100,000 of them blocked at once.
        let n = 100_000;
        let gate = Arc::new(WaitGroup::new());
        let parked = Arc::new(WaitGroup::new());
        gate.add(1);
        parked.add(n as isize);
        let before = rss_kib();
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (gate, parked) = (gate.clone(), parked.clone());
                gort::go(move || {
                    parked.done();
                    gate.wait(); // parks this goroutine, not its thread
                    i as u64
                })
            })
            .collect();
        parked.wait();
        let grown = rss_kib().saturating_sub(before);
        println!(
            "2. {n} goroutines parked at once after {:.2?}: {} bytes of RSS each, {} kernel mappings in all",
            t.elapsed(),
            grown * 1024 / n as u64,
            maps()
        );
        gate.done();
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (n as u64 - 1) * n as u64 / 2);

        // 3. Blocking-style code, no async: a tree of goroutines summing 0..2^20 in parallel.
        let t = Instant::now();
        let total = tree_sum(0, 1 << 20);
        println!(
            "3. tree of goroutines summed 0..2^20 = {total} in {:.2?}",
            t.elapsed()
        );

        // 4. Scoped goroutines borrow from the caller's stack, like std::thread::scope.
        let data: Vec<u64> = (1..=1_000_000).collect();
        let t = Instant::now();
        let acc = AtomicU64::new(0);
        gort::scope(|s| {
            for chunk in data.chunks(10_000) {
                let acc = &acc;
                s.go(move || acc.fetch_add(chunk.iter().sum::<u64>(), Ordering::Relaxed));
            }
        });
        println!(
            "4. 100 scoped goroutines summed a borrowed Vec: {} in {:.2?}",
            acc.load(Ordering::Relaxed),
            t.elapsed()
        );

        // 5. A panicking goroutine does not take the others down: join returns its panic.
        let h = gort::Goroutine::new()
            .name("doomed")
            .spawn(|| -> u32 { panic!("this goroutine panics on purpose") })
            .unwrap();
        let err = h.join().unwrap_err();
        println!(
            "5. join returned the panic: {:?}",
            err.downcast_ref::<&str>().unwrap()
        );
    });
}

fn tree_sum(lo: u64, hi: u64) -> u64 {
    if hi - lo <= 4096 {
        return (lo..hi).sum();
    }
    let mid = lo + (hi - lo) / 2;
    let left = gort::go(move || tree_sum(lo, mid));
    let right = tree_sum(mid, hi);
    left.join().unwrap() + right
}

fn ns(d: std::time::Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("VmRSS:") || l.starts_with("VmPTE:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |s| s.lines().count())
}
