//! may versions of the workloads. See bench/README.md.
//! Runtime: default config (workers = number of CPUs, stack 0x1000 words =
//! 32 KiB per coroutine). The workload body runs inside a coroutine
//! (like Go's main goroutine). Exceptions: `hog` runs with one worker
//! (`may::config().set_workers(1)`); `serve-http <addr>` serves until killed.
//!
//! Note: may maps each coroutine stack separately (stack + guard page), so
//! with the default vm.max_map_count (65530) it cannot hold much more than
//! ~32k live coroutines; bench/compare.sh runs `memory` at 30,000 for may.

#[path = "../../../common/common.rs"]
mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use may::go;
use may::net::{TcpListener, TcpStream};
use may::sync::{mpmc, mpsc, Semphore, SyncFlag};

/// A WaitGroup-like countdown: `done()` by the last of `n` fires the flag.
struct Countdown {
    left: AtomicUsize,
    zero: SyncFlag,
}

impl Countdown {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Countdown {
            left: AtomicUsize::new(n),
            zero: SyncFlag::new(),
        })
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

// may 0.3 has only unbounded channels (`may::sync::{mpsc, mpmc, spsc}`::channel): the
// "unbuffered" channels below are `mpsc::channel()`, and prodcons bounds its `mpmc` channel
// to 128 values in flight with a `Semphore` (see bench/README.md).

/// pingpong: the workload coroutine and an echo coroutine, two channels.
fn pingpong(n: usize) -> f64 {
    let (ping_tx, ping_rx) = mpsc::channel::<usize>();
    let (pong_tx, pong_rx) = mpsc::channel::<usize>();
    let echo = go!(move || {
        for v in ping_rx.iter() {
            pong_tx.send(v + 1).unwrap();
        }
        // pong_tx is dropped here: that closes pong.
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping_tx.send(i).unwrap();
        check("pingpong answer", pong_rx.recv().ok(), Some(i + 1));
    }
    let elapsed = t0.elapsed();
    drop(ping_tx);
    check("pong after close", pong_rx.recv().is_err(), true);
    echo.join().unwrap();
    ns_per(elapsed, n)
}

/// skynet: a leaf sends its number; an inner node starts 10 children, sums what they send on
/// its own channel and sends the sum up.
fn skynet_node(up: mpsc::Sender<u64>, num: u64, size: u64) {
    if size == 1 {
        up.send(num).unwrap();
        return;
    }
    let (tx, rx) = mpsc::channel();
    let step = size / 10;
    for i in 0..10 {
        let tx = tx.clone();
        go!(move || skynet_node(tx, num + i * step, step));
    }
    let mut sum = 0;
    for _ in 0..10 {
        sum += rx.recv().unwrap();
    }
    up.send(sum).unwrap();
}

fn skynet(leaves: u64) -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    go!(move || skynet_node(tx, 0, leaves));
    let sum = rx.recv().unwrap();
    let elapsed = t0.elapsed();
    check("skynet sum", sum, sum_below(leaves));
    ms(elapsed)
}

/// threadring: coroutine i receives on ring[i] and sends the token minus one on ring[i+1]. The
/// one that receives 0 reports its index and returns, dropping (closing) its outgoing channel;
/// every other one returns when its incoming channel is closed, so all of them end.
fn threadring(hops: usize) -> f64 {
    let (txs, rxs): (Vec<mpsc::Sender<usize>>, Vec<mpsc::Receiver<usize>>) =
        (0..N_RING).map(|_| mpsc::channel()).unzip();
    let (winner_tx, winner_rx) = mpsc::channel();
    let mut txs = txs.into_iter();
    let first = txs.next().unwrap();
    // Coroutine i sends on channel i+1; the last one sends on channel 0.
    let outs = txs.chain(std::iter::once(first.clone()));
    let hs: Vec<_> = rxs
        .into_iter()
        .zip(outs)
        .enumerate()
        .map(|(i, (rx, out))| {
            let winner_tx = winner_tx.clone();
            go!(move || {
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

/// prodcons: producer p sends p, p+4, p+8, ... below n into one `mpmc` channel; consumers sum
/// what they receive. may's channels are unbounded, so a `Semphore` of 128 permits makes it a
/// channel of capacity 128: a producer takes a permit before each send, a consumer returns
/// one after each receive. The channel closes when the last producer drops its sender.
fn prodcons(n: usize) -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = mpmc::channel::<u64>();
    let room = Arc::new(Semphore::new(PRODCONS_CAP));
    let consumers: Vec<_> = (0..N_CONSUMERS)
        .map(|_| {
            let (rx, room) = (rx.clone(), room.clone());
            go!(move || {
                let mut sum = 0;
                while let Ok(v) = rx.recv() {
                    room.post();
                    sum += v;
                }
                sum
            })
        })
        .collect();
    drop(rx);
    for p in 0..N_PRODUCERS {
        let (tx, room) = (tx.clone(), room.clone());
        go!(move || {
            for i in (p..n).step_by(N_PRODUCERS) {
                room.wait();
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

/// http: one coroutine per connection; see `http_take_requests` in common.rs.
fn http_conn(mut s: TcpStream) {
    let mut buf = vec![0u8; HTTP_BUF];
    let mut len = 0;
    let mut out = Vec::with_capacity(HTTP_BUF);
    loop {
        let n = match s.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        len += n;
        http_take_requests(&mut buf, &mut len, &mut out);
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if len == buf.len() {
            return; // a request head larger than the buffer
        }
    }
}

fn serve_http(addr: String) -> f64 {
    let l = TcpListener::bind(&addr).expect("bind");
    loop {
        let (s, _) = match l.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        s.set_nodelay(true).unwrap();
        go!(move || http_conn(s));
    }
}

/// hog: with one worker, one coroutine spins without runtime calls (it only loads a stop
/// flag) while the workload coroutine sleeps HOG_SLEEPS times for HOG_SLEEP; returns the worst
/// lateness in ms. A plain thread raises the flag after HOG_CAP so a starved run still ends.
fn hog() -> f64 {
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    std::thread::spawn(move || {
        std::thread::sleep(HOG_CAP);
        stop.store(true, Ordering::Relaxed);
    });
    let spinner = go!(move || {
        let mut spins = 0u64;
        while !stop.load(Ordering::Relaxed) {
            spins += 1;
        }
        spins
    });
    let mut worst = 0f64;
    for _ in 0..HOG_SLEEPS {
        let t0 = Instant::now();
        may::coroutine::sleep(HOG_SLEEP);
        worst = worst.max(ms(t0.elapsed()) - ms(HOG_SLEEP));
    }
    stop.store(true, Ordering::Relaxed);
    check("hog spinner ran", spinner.join().unwrap() > 0, true);
    worst
}

fn main() {
    // A panic in any coroutine (e.g. may failing to allocate a stack) ends the process with a
    // failure instead of leaving the coroutine that waits for it blocked forever.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook(info);
        std::process::exit(1);
    }));
    let a = args();
    if a.workload == "hog" {
        may::config().set_workers(1);
    }
    let value = go!(move || match a.workload.as_str() {
        "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)),
        "gosched" => gosched(a.n.unwrap_or(N_YIELDS)),
        "memory" => memory(a.n.unwrap_or(N_GOROUTINES)),
        "pingpong" => pingpong(a.n.unwrap_or(N_ROUND_TRIPS)),
        "skynet" => skynet(skynet_leaves(a.n)),
        "threadring" => threadring(a.n.unwrap_or(N_HOPS)),
        "prodcons" => prodcons(a.n.unwrap_or(N_ITEMS)),
        "hog" => hog(),
        "serve-http" => serve_http(a.addr.unwrap()),
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
