//! gort versions of the workloads. See bench/README.md.
//! Runtime: `gort::run` with its defaults (workers = number of CPUs); the
//! workload body is the main goroutine. Exception: `hog` runs on a runtime with
//! one P (`Builder::new().procs(1)`).

#[path = "../../common/common.rs"]
mod common;
mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use gort::chan::{self, Receiver, Sender};
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

/// pingpong: the main goroutine and an echo goroutine, two unbuffered channels.
fn pingpong(n: usize) -> f64 {
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    let echo = gort::go(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v + 1).unwrap();
        }
        // pong_tx is dropped here: that closes pong.
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping_tx.send(i).unwrap();
        check("pingpong answer", pong_rx.recv(), Ok(i + 1));
    }
    let elapsed = t0.elapsed();
    drop(ping_tx);
    check("pong after close", pong_rx.recv().is_err(), true);
    echo.join().unwrap();
    ns_per(elapsed, n)
}

/// skynet: a leaf sends its number; an inner node starts 10 children, sums what they send on
/// its own unbuffered channel and sends the sum up.
fn skynet_node(up: Sender<u64>, num: u64, size: u64) {
    if size == 1 {
        up.send(num).unwrap();
        return;
    }
    let (tx, rx) = chan::bounded(0);
    let step = size / 10;
    for i in 0..10 {
        let tx = tx.clone();
        gort::go(move || skynet_node(tx, num + i * step, step));
    }
    let mut sum = 0;
    for _ in 0..10 {
        sum += rx.recv().unwrap();
    }
    up.send(sum).unwrap();
}

fn skynet(leaves: u64) -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = chan::bounded(0);
    gort::go(move || skynet_node(tx, 0, leaves));
    let sum = rx.recv().unwrap();
    let elapsed = t0.elapsed();
    check("skynet sum", sum, sum_below(leaves));
    ms(elapsed)
}

/// threadring: goroutine i receives on ring[i] and sends the token minus one on ring[i+1]. The
/// one that receives 0 reports its index and returns, dropping (closing) its outgoing channel;
/// every other one returns when its incoming channel is closed, so all of them end.
fn threadring(hops: usize) -> f64 {
    let (txs, rxs): (Vec<Sender<usize>>, Vec<Receiver<usize>>) =
        (0..N_RING).map(|_| chan::bounded(0)).unzip();
    let (winner_tx, winner_rx) = chan::bounded(1);
    let mut txs = txs.into_iter();
    let first = txs.next().unwrap();
    // Goroutine i sends on channel i+1; the last one sends on channel 0.
    let outs = txs.chain(std::iter::once(first.clone()));
    let hs: Vec<_> = rxs
        .into_iter()
        .zip(outs)
        .enumerate()
        .map(|(i, (rx, out))| {
            let winner_tx = winner_tx.clone();
            gort::go(move || {
                for t in rx.iter() {
                    if t == 0 {
                        winner_tx.send(i).unwrap();
                        return;
                    }
                    out.send(t - 1).unwrap();
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    first.send(hops).unwrap();
    drop(first);
    let w = winner_rx.recv().unwrap();
    let elapsed = t0.elapsed();
    for h in hs {
        h.join().unwrap();
    }
    check("threadring winner", w, hops % N_RING);
    ns_per(elapsed, hops)
}

/// prodcons: producer p sends p, p+4, p+8, ... below n into one channel of capacity 128;
/// consumers sum what they receive. The channel closes when the last producer drops its
/// sender.
fn prodcons(n: usize) -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = chan::bounded::<u64>(PRODCONS_CAP);
    let consumers: Vec<_> = (0..N_CONSUMERS)
        .map(|_| {
            let rx = rx.clone();
            gort::go(move || rx.iter().sum::<u64>())
        })
        .collect();
    drop(rx);
    for p in 0..N_PRODUCERS {
        let tx = tx.clone();
        gort::go(move || {
            for i in (p..n).step_by(N_PRODUCERS) {
                tx.send(i as u64).unwrap();
            }
        });
    }
    drop(tx);
    let total: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = t0.elapsed();
    check("prodcons total", total, sum_below(n as u64));
    ns_per(elapsed, n)
}

/// hog: at one P, one goroutine spins without runtime calls (it only loads a stop flag) while
/// the main goroutine sleeps HOG_SLEEPS times for HOG_SLEEP; returns the worst lateness in ms.
/// A plain OS thread raises the flag after HOG_CAP so a starved run still ends.
fn hog() -> f64 {
    let rt = gort::Builder::new().procs(1).build().unwrap();
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    std::thread::spawn(move || {
        std::thread::sleep(HOG_CAP);
        stop.store(true, Ordering::Relaxed);
    });
    rt.run(move || {
        let spinner = gort::go(move || {
            let mut spins = 0u64;
            while !stop.load(Ordering::Relaxed) {
                spins += 1;
            }
            spins
        });
        let mut worst = 0f64;
        for _ in 0..HOG_SLEEPS {
            let t0 = Instant::now();
            gort::time::sleep(HOG_SLEEP);
            worst = worst.max(ms(t0.elapsed()) - ms(HOG_SLEEP));
        }
        stop.store(true, Ordering::Relaxed);
        check("hog spinner ran", spinner.join().unwrap() > 0, true);
        worst
    })
}

fn main() {
    let a = args();
    if a.workload == "hog" {
        report(hog());
        return;
    }
    let value = gort::run(move || match a.workload.as_str() {
        "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)),
        "gosched" => gosched(a.n.unwrap_or(N_YIELDS)),
        "memory" => memory(a.n.unwrap_or(N_GOROUTINES)),
        "pingpong" => pingpong(a.n.unwrap_or(N_ROUND_TRIPS)),
        "skynet" => skynet(skynet_leaves(a.n)),
        "threadring" => threadring(a.n.unwrap_or(N_HOPS)),
        "prodcons" => prodcons(a.n.unwrap_or(N_ITEMS)),
        "serve-http" => http::serve(a.addr.clone().expect("serve-http needs an address")),
        w => not_implemented(w),
    });
    report(value);
}
