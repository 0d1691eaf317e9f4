//! Stress tests: a million goroutines spawned, spawned in trees, yielding, and parked at once.
//!
//! The tests in this file run one at a time (a process-wide lock): a million parked goroutines
//! hold a few GiB of stack pages, and timing is more meaningful without the others.
//! Each prints one line of timings (visible with `--nocapture`).

mod common;

use common::*;
use gort::runtime;
use gort::sync::WaitGroup;
use gort::Builder;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MILLION: usize = 1_000_000;
/// Generous upper bound for any single test, on a loaded 2-core machine in debug mode.
const LIMIT_SECS: u64 = 300;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn flags(n: usize) -> Arc<Vec<AtomicU8>> {
    Arc::new((0..n).map(|_| AtomicU8::new(0)).collect())
}

/// Panics unless every flag equals `want`, naming the first few that do not.
fn check_flags(f: &[AtomicU8], want: u8) {
    let bad: Vec<(usize, u8)> = f
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.load(SeqCst)))
        .filter(|&(_, v)| v != want)
        .take(10)
        .collect();
    let nbad = f.iter().filter(|v| v.load(SeqCst) != want).count();
    assert!(
        nbad == 0,
        "{nbad} of {} flags are not {want}; first: {bad:?}",
        f.len()
    );
}

fn rss_mib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        / 1024
}

/// On a goroutine: yields until `cond` holds (or panics after `secs`).
fn gosched_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        runtime::gosched();
    }
}

/// `n` goroutines spawned by main, each marking its own flag once.
fn spawn_flat(procs: usize, n: usize) {
    let _s = serial();
    watchdog(LIMIT_SECS, move || {
        let t = Instant::now();
        let rt = Builder::new().procs(procs).build().unwrap();
        let f = flags(n);
        let f2 = f.clone();
        let off_main = Arc::new(AtomicUsize::new(0));
        let om = off_main.clone();
        rt.run(move || {
            let main_tid = tid();
            let wg = Arc::new(WaitGroup::new());
            wg.add(n as isize);
            for i in 0..n {
                let (f, wg, om) = (f2.clone(), wg.clone(), om.clone());
                gort::go(move || {
                    f[i].fetch_add(1, SeqCst);
                    if tid() != main_tid {
                        om.fetch_add(1, Relaxed);
                    }
                    wg.done();
                });
            }
            wg.wait();
            gosched_until(60, "num_goroutine back to 1", || {
                runtime::num_goroutine() == 1
            });
        });
        check_flags(&f, 1);
        let om = off_main.load(SeqCst);
        assert!(
            om > 0,
            "with {procs} Ps, no goroutine ran off the spawning goroutine's thread"
        );
        drop(rt);
        eprintln!(
            "spawn_flat procs={procs} n={n}: {:?} ({:?}/goroutine), {om} ran on other threads",
            t.elapsed(),
            t.elapsed() / n as u32
        );
    });
}

#[test]
fn spawn_a_million_procs2() {
    spawn_flat(2, MILLION);
}

#[test]
fn spawn_a_million_procs4() {
    spawn_flat(4, MILLION);
}

/// More Ps than CPUs: the OS preempts Ms in the middle of scheduling.
#[test]
fn spawn_a_million_procs8() {
    spawn_flat(8, MILLION);
}

/// A million goroutines started by 100 spawners at once, on 4 Ps: local queues overflow into
/// the global queue from several Ps while idle Ps steal.
#[test]
fn spawn_a_million_from_many_spawners() {
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        const SPAWNERS: usize = 100;
        let per = MILLION / SPAWNERS;
        let t = Instant::now();
        let rt = Builder::new().procs(4).build().unwrap();
        let f = flags(MILLION);
        let f2 = f.clone();
        rt.run(move || {
            let wg = Arc::new(WaitGroup::new());
            wg.add(MILLION as isize);
            let spawners: Vec<_> = (0..SPAWNERS)
                .map(|s| {
                    let (f, wg) = (f2.clone(), wg.clone());
                    gort::go(move || {
                        for i in s * per..(s + 1) * per {
                            let (f, wg) = (f.clone(), wg.clone());
                            gort::go(move || {
                                f[i].fetch_add(1, SeqCst);
                                wg.done();
                            });
                        }
                    })
                })
                .collect();
            for h in spawners {
                h.join().unwrap();
            }
            wg.wait();
        });
        check_flags(&f, 1);
        eprintln!("many_spawners procs=4 n={MILLION}: {:?}", t.elapsed());
    });
}

/// Goroutines spawning goroutines: a binary tree of 2^20 - 1 nodes, each marking its flag.
#[test]
fn spawn_a_million_as_a_tree() {
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        const DEPTH: u32 = 20;
        let n = (1usize << DEPTH) - 1;
        let t = Instant::now();
        let rt = Builder::new().procs(4).build().unwrap();
        let f = flags(n);
        let f2 = f.clone();
        rt.run(move || {
            fn node(i: usize, depth: u32, f: Arc<Vec<AtomicU8>>, wg: Arc<WaitGroup>) {
                f[i].fetch_add(1, SeqCst);
                if depth + 1 < DEPTH {
                    for c in [2 * i + 1, 2 * i + 2] {
                        wg.add(1);
                        let (f, wg) = (f.clone(), wg.clone());
                        gort::go(move || node(c, depth + 1, f, wg));
                    }
                }
                wg.done();
            }
            let wg = Arc::new(WaitGroup::new());
            wg.add(1);
            let w = wg.clone();
            gort::go(move || node(0, 0, f2, w));
            wg.wait();
        });
        check_flags(&f, 1);
        eprintln!("spawn_tree procs=4 n={n}: {:?}", t.elapsed());
    });
}

/// A tree where every node joins its two children and returns the size of its subtree.
#[test]
fn join_tree() {
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        const DEPTH: u32 = 17;
        let n = (1u64 << DEPTH) - 1;
        let t = Instant::now();
        let rt = Builder::new().procs(2).build().unwrap();
        let total = rt.run(|| {
            fn node(depth: u32) -> u64 {
                if depth + 1 == DEPTH {
                    return 1;
                }
                let a = gort::go(move || node(depth + 1));
                let b = gort::go(move || node(depth + 1));
                1 + a.join().unwrap() + b.join().unwrap()
            }
            gort::go(|| node(0)).join().unwrap()
        });
        assert_eq!(total, n);
        eprintln!("join_tree procs=2 n={n}: {:?}", t.elapsed());
    });
}

/// Many goroutines that yield repeatedly while others are being spawned and stolen.
fn gosched_heavy(procs: usize, n: usize, yields: u8) {
    let _s = serial();
    watchdog(LIMIT_SECS, move || {
        let t = Instant::now();
        let rt = Builder::new().procs(procs).build().unwrap();
        let f = flags(n);
        let f2 = f.clone();
        rt.run(move || {
            let wg = Arc::new(WaitGroup::new());
            wg.add(n as isize);
            for i in 0..n {
                let (f, wg) = (f2.clone(), wg.clone());
                gort::go(move || {
                    for _ in 0..yields {
                        f[i].fetch_add(1, SeqCst);
                        runtime::gosched();
                    }
                    wg.done();
                });
                if i % 1024 == 0 {
                    runtime::gosched();
                }
            }
            wg.wait();
        });
        check_flags(&f, yields);
        eprintln!(
            "gosched_heavy procs={procs} n={n} yields={yields}: {:?} ({} gosched calls)",
            t.elapsed(),
            n * yields as usize
        );
    });
}

#[test]
fn gosched_heavy_procs2() {
    gosched_heavy(2, 200_000, 5);
}

#[test]
fn gosched_heavy_procs4() {
    gosched_heavy(4, 200_000, 5);
}

/// A million goroutines parked at once on one WaitGroup gate; the stacks must not cost a
/// kernel mapping each.
#[test]
fn a_million_parked_on_a_gate() {
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        let n = MILLION;
        let t = Instant::now();
        let maps_before = map_count();
        let rt = Builder::new().procs(2).build().unwrap();
        let f = flags(n);
        let f2 = f.clone();
        let (maps, live, rss) = rt.run(move || {
            let gate = Arc::new(WaitGroup::new());
            gate.add(1);
            let ready = Arc::new(WaitGroup::new());
            ready.add(n as isize);
            let done = Arc::new(WaitGroup::new());
            done.add(n as isize);
            for i in 0..n {
                let (gate, ready, done, f) =
                    (gate.clone(), ready.clone(), done.clone(), f2.clone());
                gort::go(move || {
                    ready.done();
                    gate.wait();
                    f[i].fetch_add(1, SeqCst);
                    done.done();
                });
            }
            ready.wait();
            let live = runtime::num_goroutine();
            let maps = map_count();
            let rss = rss_mib();
            assert!(
                f2.iter().all(|x| x.load(Relaxed) == 0),
                "a goroutine got past the closed gate"
            );
            gate.done();
            done.wait();
            (maps, live, rss)
        });
        let parked_at = t.elapsed();
        check_flags(&f, 1);
        drop(rt);
        eprintln!(
            "parked_gate n={n}: {:?}, /proc/self/maps {maps_before} -> {maps} lines while parked, \
             RSS {rss} MiB, num_goroutine {live}",
            parked_at
        );
        assert_eq!(live, n + 1, "num_goroutine with all parked");
        assert!(maps < 5000, "{maps} mappings with {n} parked goroutines");
    });
}

/// A million goroutines in a chain, each parked in `join` on the next one's handle.
#[test]
fn a_million_parked_in_a_join_chain() {
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        let n = MILLION;
        let t = Instant::now();
        let rt = Builder::new().procs(2).build().unwrap();
        let (len, maps, live) = rt.run(move || {
            let gate = Arc::new(WaitGroup::new());
            gate.add(1);
            let arrived = Arc::new(AtomicUsize::new(0));
            let g = gate.clone();
            let a = arrived.clone();
            let mut h = gort::go(move || {
                a.fetch_add(1, SeqCst);
                g.wait();
                1usize
            });
            for _ in 1..n {
                let a = arrived.clone();
                h = gort::go(move || {
                    a.fetch_add(1, SeqCst);
                    h.join().unwrap() + 1
                });
            }
            gosched_until(120, "all goroutines parked", || arrived.load(SeqCst) == n);
            let maps = map_count();
            let live = runtime::num_goroutine();
            gate.done();
            (h.join().unwrap(), maps, live)
        });
        assert_eq!(len, n);
        eprintln!(
            "join_chain n={n}: {:?}, {maps} mappings while parked, num_goroutine {live}",
            t.elapsed()
        );
        assert!(maps < 5000, "{maps} mappings with {n} parked goroutines");
        assert!(live >= n, "num_goroutine {live} with {n} goroutines alive");
    });
}

/// Counts its drops in `.1`.
struct Counted(usize, &'static AtomicUsize);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, SeqCst);
    }
}

/// The task protocol (src/task.rs: no reference count, each side says when it is done) under
/// every order of a goroutine's finish against its handle's detach or join: handles dropped at
/// once, dropped after a racing delay, joined by a goroutine, or joined by a plain thread.
/// Every body and every result must be dropped exactly once (a double free or a leak shows as
/// a wrong count), and every join must return its own goroutine's value.
#[test]
fn join_and_detach_race_the_finish() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);
    static RESULTS: AtomicUsize = AtomicUsize::new(0);
    let _s = serial();
    watchdog(LIMIT_SECS, || {
        let n = 200_000;
        let rt = Builder::new().procs(4).build().unwrap();
        let (to_thread, from_gs) = std::sync::mpsc::channel::<(usize, gort::JoinHandle<Counted>)>();
        let thread_joiner = std::thread::spawn(move || {
            for (i, h) in from_gs {
                let r = h.join().unwrap();
                assert_eq!(
                    r.0, i,
                    "a plain thread's join returned another goroutine's value"
                );
            }
        });
        rt.run(move || {
            let mut joins = Vec::new();
            for i in 0..n {
                let body = Counted(i, &BODIES);
                let h = gort::go(move || {
                    let b = body;
                    for _ in 0..i % 3 {
                        runtime::gosched();
                    }
                    Counted(b.0, &RESULTS)
                });
                match i % 4 {
                    0 => drop(h),
                    1 => {
                        let d = gort::go(move || {
                            for _ in 0..i % 5 {
                                runtime::gosched();
                            }
                            drop(h)
                        });
                        drop(d);
                    }
                    2 => joins.push((i, h)),
                    _ => to_thread.send((i, h)).unwrap(),
                }
                if joins.len() == 64 {
                    let js = std::mem::take(&mut joins);
                    gort::go(move || {
                        for (k, (i, h)) in js.into_iter().enumerate() {
                            if k % 2 == 0 {
                                runtime::gosched();
                            }
                            let r = h.join().unwrap();
                            assert_eq!(r.0, i, "a goroutine's join returned another's value");
                        }
                    });
                }
            }
            for (i, h) in joins {
                assert_eq!(h.join().unwrap().0, i);
            }
            drop(to_thread);
            gosched_until(120, "every result dropped", || RESULTS.load(SeqCst) >= n);
        });
        thread_joiner.join().unwrap();
        drop(rt);
        assert_eq!(BODIES.load(SeqCst), n, "bodies dropped");
        assert_eq!(RESULTS.load(SeqCst), n, "results dropped");
    });
}
