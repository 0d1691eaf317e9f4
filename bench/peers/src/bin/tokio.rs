//! tokio versions of the workloads. See bench/README.md.
//! Runtime: multi-threaded, default worker count (= number of CPUs).
//! The workload body runs inside a spawned task (like Go's main goroutine),
//! not on the block_on thread. Exceptions: `hog` runs on a current-thread
//! runtime (one thread, like GOMAXPROCS=1); `serve-http <addr>` serves until killed.

#[path = "../../../common/common.rs"]
mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

/// A WaitGroup-like countdown: `done()` by the last of `n` wakes `wait()`.
struct Countdown {
    left: AtomicUsize,
    zero: Notify,
}

impl Countdown {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Countdown {
            left: AtomicUsize::new(n),
            zero: Notify::new(),
        })
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

// tokio has no rendezvous channel: the "unbuffered" channels below are
// `mpsc::channel(1)`, the closest equivalent (a sender can run one value ahead).

/// pingpong: the workload task and an echo task, two channels of capacity 1.
async fn pingpong(n: usize) -> f64 {
    let (ping_tx, mut ping_rx) = mpsc::channel::<usize>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<usize>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            pong_tx.send(v + 1).await.unwrap();
        }
        // pong_tx is dropped here: that closes pong.
    });
    let t0 = Instant::now();
    for i in 0..n {
        ping_tx.send(i).await.unwrap();
        check("pingpong answer", pong_rx.recv().await, Some(i + 1));
    }
    let elapsed = t0.elapsed();
    drop(ping_tx);
    check("pong after close", pong_rx.recv().await, None);
    echo.await.unwrap();
    ns_per(elapsed, n)
}

/// skynet: a leaf sends its number; an inner node spawns 10 children, sums what they send on
/// its own channel and sends the sum up. Boxed because the future is recursive.
fn skynet_node(
    up: mpsc::Sender<u64>,
    num: u64,
    size: u64,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            up.send(num).await.unwrap();
            return;
        }
        let (tx, mut rx) = mpsc::channel(1);
        let step = size / 10;
        for i in 0..10 {
            tokio::spawn(skynet_node(tx.clone(), num + i * step, step));
        }
        let mut sum = 0;
        for _ in 0..10 {
            sum += rx.recv().await.unwrap();
        }
        up.send(sum).await.unwrap();
    })
}

async fn skynet(leaves: u64) -> f64 {
    let t0 = Instant::now();
    let (tx, mut rx) = mpsc::channel(1);
    tokio::spawn(skynet_node(tx, 0, leaves));
    let sum = rx.recv().await.unwrap();
    let elapsed = t0.elapsed();
    check("skynet sum", sum, sum_below(leaves));
    ms(elapsed)
}

/// threadring: task i receives on ring[i] and sends the token minus one on ring[i+1]. The one
/// that receives 0 reports its index and returns, dropping (closing) its outgoing channel;
/// every other one returns when its incoming channel is closed, so all of them end.
async fn threadring(hops: usize) -> f64 {
    let (txs, rxs): (Vec<mpsc::Sender<usize>>, Vec<mpsc::Receiver<usize>>) =
        (0..N_RING).map(|_| mpsc::channel(1)).unzip();
    let (winner_tx, mut winner_rx) = mpsc::channel(1);
    let mut txs = txs.into_iter();
    let first = txs.next().unwrap();
    // Task i sends on channel i+1; the last one sends on channel 0.
    let outs = txs.chain(std::iter::once(first.clone()));
    let hs: Vec<_> = rxs
        .into_iter()
        .zip(outs)
        .enumerate()
        .map(|(i, (mut rx, out))| {
            let winner_tx = winner_tx.clone();
            tokio::spawn(async move {
                while let Some(t) = rx.recv().await {
                    if t == 0 {
                        winner_tx.send(i).await.unwrap();
                        return;
                    }
                    out.send(t - 1).await.unwrap();
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    first.send(hops).await.unwrap();
    drop(first);
    let w = winner_rx.recv().await.unwrap();
    let elapsed = t0.elapsed();
    for h in hs {
        h.await.unwrap();
    }
    check("threadring winner", w, hops % N_RING);
    ns_per(elapsed, hops)
}

/// prodcons: producer p sends p, p+4, p+8, ... below n into one MPMC channel of capacity 128
/// (`async_channel::bounded`: tokio's own channels have a single receiver); consumers sum what
/// they receive. The channel closes when the last producer drops its sender.
async fn prodcons(n: usize) -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = async_channel::bounded::<u64>(PRODCONS_CAP);
    let consumers: Vec<_> = (0..N_CONSUMERS)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut sum = 0;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            })
        })
        .collect();
    drop(rx);
    for p in 0..N_PRODUCERS {
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in (p..n).step_by(N_PRODUCERS) {
                tx.send(i as u64).await.unwrap();
            }
        });
    }
    drop(tx);
    let mut total = 0;
    for h in consumers {
        total += h.await.unwrap();
    }
    let elapsed = t0.elapsed();
    check("prodcons total", total, sum_below(n as u64));
    ns_per(elapsed, n)
}

/// http: one task per connection; see `http_take_requests` in common.rs.
async fn http_conn(mut s: TcpStream) {
    let mut buf = vec![0u8; HTTP_BUF];
    let mut len = 0;
    let mut out = Vec::with_capacity(HTTP_BUF);
    loop {
        let n = match s.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        len += n;
        http_take_requests(&mut buf, &mut len, &mut out);
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if len == buf.len() {
            return; // a request head larger than the buffer
        }
    }
}

async fn serve_http(addr: String) -> f64 {
    let l = TcpListener::bind(&addr).await.expect("bind");
    loop {
        let (s, _) = match l.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        s.set_nodelay(true).unwrap();
        tokio::spawn(http_conn(s));
    }
}

/// hog: on a current-thread runtime, one task spins without awaiting (it only loads a stop
/// flag) while the workload task sleeps HOG_SLEEPS times for HOG_SLEEP; returns the worst
/// lateness in ms. A plain thread raises the flag after HOG_CAP so a starved run still ends.
fn hog() -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    std::thread::spawn(move || {
        std::thread::sleep(HOG_CAP);
        stop.store(true, Ordering::Relaxed);
    });
    rt.block_on(async move {
        tokio::spawn(async move {
            let spinner = tokio::spawn(async move {
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spins += 1;
                }
                spins
            });
            let mut worst = 0f64;
            for _ in 0..HOG_SLEEPS {
                let t0 = Instant::now();
                tokio::time::sleep(HOG_SLEEP).await;
                worst = worst.max(ms(t0.elapsed()) - ms(HOG_SLEEP));
            }
            stop.store(true, Ordering::Relaxed);
            check("hog spinner ran", spinner.await.unwrap() > 0, true);
            worst
        })
        .await
        .unwrap()
    })
}

fn main() {
    let a = args();
    if a.workload == "hog" {
        report(hog());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = rt.block_on(async move {
        tokio::spawn(async move {
            match a.workload.as_str() {
                "spawn" => spawn(a.n.unwrap_or(N_GOROUTINES)).await,
                "gosched" => gosched(a.n.unwrap_or(N_YIELDS)).await,
                "memory" => memory(a.n.unwrap_or(N_GOROUTINES)).await,
                "pingpong" => pingpong(a.n.unwrap_or(N_ROUND_TRIPS)).await,
                "skynet" => skynet(skynet_leaves(a.n)).await,
                "threadring" => threadring(a.n.unwrap_or(N_HOPS)).await,
                "prodcons" => prodcons(a.n.unwrap_or(N_ITEMS)).await,
                "serve-http" => serve_http(a.addr.unwrap()).await,
                w => not_implemented(w),
            }
        })
        .await
        .unwrap()
    });
    report(value);
}
