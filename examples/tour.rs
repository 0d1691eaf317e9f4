//! A tour of gort: goroutines at work, with timings.
//!
//! Run it with `cargo run --release --example tour`.

use gort::chan;
use gort::sync::WaitGroup;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

        // 6. Channels: two goroutines bat a value over unbuffered channels (rendezvous).
        let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
        gort::go(move || {
            for v in ping_rx {
                pong_tx.send(v + 1).unwrap();
            }
        });
        let n = 200_000;
        let t = Instant::now();
        let mut v = 0;
        for _ in 0..n {
            ping_tx.send(v).unwrap();
            v = pong_rx.recv().unwrap();
        }
        let dt = t.elapsed();
        println!(
            "6. {n} ping-pong round trips over unbuffered channels in {dt:.2?} ({:.0} ns each)",
            ns(dt, n)
        );

        // 7. A pipeline: Go's concurrent prime sieve, one goroutine per prime.
        let t = Instant::now();
        let primes = sieve(1000);
        println!(
            "7. the prime sieve's 1000th prime is {} ({} goroutines in a chain), {:.2?}",
            primes.last().unwrap(),
            primes.len() + 1,
            t.elapsed()
        );

        // 8. select: wait on several channels at once, with a timeout.
        let (tx, rx) = chan::bounded::<&str>(0);
        gort::go(move || {
            gort::chan::Receiver::<()>::recv_timeout(&chan::never(), Duration::from_millis(20))
                .ok();
            tx.send("done").unwrap();
        });
        let t = Instant::now();
        let mut timeouts = 0;
        loop {
            gort::select! {
                recv(rx) -> msg => {
                    println!(
                        "8. select got {:?} after {:.0?}, with {timeouts} 5 ms timeouts before it",
                        msg.unwrap(),
                        t.elapsed()
                    );
                    break;
                }
                default(Duration::from_millis(5)) => timeouts += 1,
            }
        }
    });
}

/// Go's concurrent prime sieve: a generator and a chain of filters, each a goroutine.
fn sieve(n: usize) -> Vec<u64> {
    let (tx, mut rx) = chan::bounded::<u64>(0);
    gort::go(move || {
        for i in 2.. {
            if tx.send(i).is_err() {
                return; // the sieve is done: the last filter dropped its receiver
            }
        }
    });
    let mut primes = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = rx.recv().unwrap();
        primes.push(prime);
        let (next_tx, next_rx) = chan::bounded(0);
        let input = std::mem::replace(&mut rx, next_rx);
        gort::go(move || {
            for v in input {
                if v % prime != 0 && next_tx.send(v).is_err() {
                    return;
                }
            }
        });
    }
    primes
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
