//! Tests of `gort::sync`: mutual exclusion under mixed goroutine and thread contention, the
//! mutex's starvation-mode hand-off, Condvar order and timeouts, Once with a panicking
//! function, Semaphore fairness, Barrier generations, RwLock writer preference, WaitGroup's
//! negative counter, and waiters cancelled at runtime shutdown.
//!
//! Deterministic scenarios run on one P, where a goroutine runs until it parks or yields, so
//! "the waiter has queued" is a fact after a `gosched`, not a guess. Timing bounds are loose
//! enough for a loaded two-core machine.

mod common;

use common::*;
use gort::runtime::gosched;
use gort::sync::{Barrier, Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};
use gort::{go, Builder, Runtime};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

fn rt(procs: usize) -> Runtime {
    Builder::new().procs(procs).build().unwrap()
}

/// Busy-waits for `d` without any runtime call (keeps the P).
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// On a goroutine: yields for about `d`.
fn gosched_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        gosched();
    }
}

/// On a goroutine: yields until `cond` holds; panics after 20 s.
fn gosched_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < 20 * 1000 * MS, "timed out waiting for {what}");
        gosched();
    }
}

/// The number of queued waiters a primitive's Debug output reports.
fn waiters(dbg: &impl std::fmt::Debug) -> usize {
    let s = format!("{dbg:?}");
    let i = s.find("waiters: ").expect("Debug shows waiters") + "waiters: ".len();
    s[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Mutex

/// Goroutines on two Ps and plain threads increment a plain counter under the lock, with a
/// read-yield-write in the critical section and an "inside" flag that two holders would trip.
#[test]
fn mutex_excludes_goroutines_and_threads_together() {
    watchdog(120, || {
        const GS: usize = 8;
        const TS: usize = 2;
        const N: usize = 20_000;
        struct Shared {
            m: Mutex<u64>,
            inside: AtomicBool,
        }
        let s = Arc::new(Shared {
            m: Mutex::new(0),
            inside: AtomicBool::new(false),
        });
        fn critical(s: &Shared, i: usize, on_goroutine: bool) {
            let mut g = if i.is_multiple_of(7) {
                loop {
                    if let Some(g) = s.m.try_lock() {
                        break g;
                    }
                    // (A goroutine must yield: the holder may be queued on this P.)
                    if on_goroutine {
                        gosched();
                    } else {
                        thread::yield_now();
                    }
                }
            } else {
                s.m.lock()
            };
            assert!(!s.inside.swap(true, SeqCst), "two holders at once");
            let v = *g;
            if i.is_multiple_of(16) {
                // Hold the lock across a switch.
                if on_goroutine {
                    gosched();
                } else {
                    thread::yield_now();
                }
            }
            *g = v + 1;
            s.inside.store(false, SeqCst);
        }
        let threads: Vec<_> = (0..TS)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || (0..N).for_each(|i| critical(&s, i, false)))
            })
            .collect();
        let s2 = s.clone();
        rt(2).run(move || {
            let hs: Vec<_> = (0..GS)
                .map(|_| {
                    let s = s2.clone();
                    go(move || (0..N).for_each(|i| critical(&s, i, true)))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*s.m.lock(), ((GS + TS) * N) as u64);
    });
}

/// Normal mode lets the unlocker barge in ahead of the waiter it woke; once that waiter has
/// waited over 1 ms and failed again, the mutex is in starvation mode and unlock hands it the
/// lock directly, so even an immediate `try_lock` by the unlocker fails. The mode ends with
/// the last waiter.
#[test]
fn mutex_starvation_mode_hands_the_lock_to_the_starved_waiter() {
    watchdog(60, || {
        rt(1).run(|| {
            let m = Arc::new(Mutex::new(Vec::new()));
            let g = m.lock();
            let m2 = m.clone();
            let h = go(move || m2.lock().push("waiter"));
            gosched(); // one P: the goroutine runs until it parks in lock()
            drop(g); // normal mode: wakes the waiter, which has not run yet
            let mut g = m
                .try_lock()
                .expect("normal mode: the unlocker may take the lock again before the waiter");
            g.push("main");
            spin(3 * MS); // the waiter has now waited more than 1 ms
            gosched(); // it runs, fails, and switches the mutex to starvation mode
            drop(g);
            assert!(
                m.try_lock().is_none(),
                "starvation mode: unlock must hand the lock to the starved waiter"
            );
            h.join().unwrap();
            assert_eq!(
                *m.try_lock().expect("normal mode again"),
                ["main", "waiter"]
            );
        });
    });
}

/// A goroutine re-locks in a tight loop (the lock is free only for an instant between its
/// holds); a waiter, goroutine or plain thread, still gets the lock after a few of those
/// holds, thanks to starvation mode. (With barging alone the waiter usually loses every race,
/// but wins now and then when the OS preempts the relocker right after an unlock, so this is
/// a liveness check; the deterministic check of the hand-off is the one-P test above.)
#[test]
fn mutex_long_waiter_beats_a_tight_relocker() {
    watchdog(120, || {
        for waiter_on_thread in [false, true] {
            const HOLD: Duration = Duration::from_millis(5);
            const CAP: usize = 300;
            let rt = rt(2);
            let m = Arc::new(Mutex::new(()));
            let started = Arc::new(AtomicBool::new(false));
            let waiting = Arc::new(AtomicBool::new(false));
            let stop = Arc::new(AtomicBool::new(false));
            let overtaken = thread::scope(|sc| {
                let (m1, started1, waiting1, stop1) =
                    (m.clone(), started.clone(), waiting.clone(), stop.clone());
                let relocker = sc.spawn(|| {
                    rt.run(move || {
                        let mut overtaken = 0;
                        for _ in 0..CAP {
                            if stop1.load(SeqCst) {
                                break;
                            }
                            let g = m1.lock();
                            started1.store(true, SeqCst);
                            if waiting1.load(SeqCst) {
                                overtaken += 1;
                            }
                            spin(HOLD);
                            drop(g);
                        }
                        overtaken
                    })
                });
                assert!(wait_until(Duration::from_secs(20), || started.load(SeqCst)));
                let (m2, waiting2, stop2) = (m.clone(), waiting.clone(), stop.clone());
                let waiter = move || {
                    waiting2.store(true, SeqCst);
                    let g = m2.lock();
                    waiting2.store(false, SeqCst);
                    stop2.store(true, SeqCst);
                    drop(g);
                };
                if waiter_on_thread {
                    waiter();
                } else {
                    rt.run(waiter);
                }
                relocker.join().unwrap()
            });
            assert!(
                stop.load(SeqCst) && overtaken <= 25,
                "waiter on {}: overtaken {overtaken} times (cap {CAP})",
                if waiter_on_thread {
                    "thread"
                } else {
                    "goroutine"
                }
            );
        }
    });
}

/// A starvation-mode hand-off to a goroutine that is cancelled (runtime dropped) before it
/// runs is not lost: the goroutine unlocks as it unwinds.
#[test]
fn mutex_handoff_to_a_cancelled_waiter_passes_on() {
    watchdog(60, || {
        let m = Arc::new(Mutex::new(0));
        let rt = rt(1);
        let m1 = m.clone();
        rt.run(move || {
            let g = m1.lock();
            let m2 = m1.clone();
            go(move || *m2.lock() += 1);
            gosched(); // queued
            drop(g);
            let g = m1.try_lock().unwrap();
            spin(3 * MS);
            gosched(); // requeued, starving
            drop(g); // hand-off: the waiter owns the lock but has not run
            assert!(m1.try_lock().is_none());
            // Keep the only P busy until the runtime is dropped, so the waiter resumes
            // cancelled (if the drop comes later, the waiter just runs: the test still holds).
            go(|| {
                spin(300 * MS);
                gosched();
            });
        });
        drop(rt);
        assert!(m.try_lock().is_some(), "the cancelled owner kept the lock");
    });
}

// ---------------------------------------------------------------------------------------------
// Condvar

/// Waiters (goroutines and threads alternating) queue in a known order; none wakes without a
/// notification; each notify_one wakes exactly the longest waiter.
#[test]
fn condvar_notify_one_is_fifo_without_spurious_wakeups() {
    watchdog(120, || {
        #[derive(Default)]
        struct S {
            registered: usize,
            woken: Vec<usize>,
        }
        const N: usize = 8;
        let pair = Arc::new((Mutex::new(S::default()), Condvar::new()));
        let threads = rt(2).run(move || {
            let (m, cv) = &*pair;
            let mut threads = Vec::new();
            let mut gs = Vec::new();
            for i in 0..N {
                let p = pair.clone();
                let body = move || {
                    let (m, cv) = &*p;
                    let mut g = m.lock();
                    g.registered += 1;
                    let mut g = cv.wait(g); // no loop: a spurious return would show
                    g.woken.push(i);
                };
                if i.is_multiple_of(2) {
                    gs.push(go(body));
                } else {
                    threads.push(thread::spawn(body));
                }
                // It registered under the mutex and queues before unlocking it, so once we
                // see the registration it is queued on the condvar.
                gosched_until("a waiter to queue", || m.lock().registered == i + 1);
            }
            gosched_for(50 * MS);
            assert!(m.lock().woken.is_empty(), "woken without a notification");
            for i in 0..N {
                cv.notify_one();
                gosched_until("the notified waiter", || m.lock().woken.len() > i);
                gosched_for(10 * MS);
                let woken = m.lock().woken.clone();
                assert_eq!(
                    woken,
                    (0..=i).collect::<Vec<_>>(),
                    "not FIFO, or extra wake-ups"
                );
            }
            gs.into_iter().for_each(|h| h.join().unwrap());
            threads
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
}

/// notify_all wakes every current waiter, and only those.
#[test]
fn condvar_notify_all_wakes_current_waiters_only() {
    watchdog(60, || {
        let pair = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
        let p = pair.clone();
        rt(2).run(move || {
            let (m, cv) = &*p;
            let spawn_waiter = |on_thread: bool| {
                let p = p.clone();
                let body = move || {
                    let (m, cv) = &*p;
                    let mut g = m.lock();
                    g.0 += 1;
                    let mut g = cv.wait(g);
                    g.1 += 1;
                };
                if on_thread {
                    thread::spawn(body);
                } else {
                    go(body);
                }
            };
            for i in 0..4usize {
                spawn_waiter(!i.is_multiple_of(2));
            }
            gosched_until("4 waiters", || m.lock().0 == 4);
            cv.notify_all();
            spawn_waiter(false); // arrives after the notify_all
            gosched_until("the woken", || m.lock().1 == 4);
            gosched_until("the late waiter", || m.lock().0 == 5);
            gosched_for(30 * MS);
            assert_eq!(
                m.lock().1,
                4,
                "a later waiter was woken by an earlier notify_all"
            );
            cv.notify_one();
            gosched_until("the late waiter to wake", || m.lock().1 == 5);
        });
    });
}

/// wait_timeout returns after its timeout with `true` when nobody notifies, and with `false`
/// soon after a notification; on a goroutine and on a plain thread.
#[test]
fn condvar_wait_timeout_times_out_or_is_notified() {
    fn check() {
        let m = Mutex::new(());
        let cv = Condvar::new();
        let t = Instant::now();
        let (g, timed_out) = cv.wait_timeout(m.lock(), 50 * MS);
        assert!(timed_out);
        assert!(t.elapsed() >= 50 * MS);
        drop(g);

        let pair = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let p2 = pair.clone();
        let notifier = thread::spawn(move || {
            let (m, cv) = &*p2;
            loop {
                let mut g = m.lock();
                if g.0 {
                    g.1 = true; // the waiter registered under the mutex: it is queued
                    cv.notify_one();
                    return;
                }
                drop(g);
                thread::sleep(MS);
            }
        });
        let (m, cv) = &*pair;
        let mut g = m.lock();
        g.0 = true;
        let t = Instant::now();
        let (g, timed_out) = cv.wait_timeout(g, Duration::from_secs(30));
        assert!(!timed_out, "notified, yet reported a timeout");
        assert!(g.1);
        assert!(t.elapsed() < Duration::from_secs(20));
        drop(g);
        notifier.join().unwrap();
    }
    watchdog(120, || {
        check();
        rt(2).run(check);
    });
}

/// A `notify_one` that picked a goroutine which is then cancelled before it runs passes on to
/// the next waiter (here a plain thread) instead of being lost.
#[test]
fn condvar_notify_one_to_a_cancelled_waiter_passes_on() {
    watchdog(60, || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let rt = rt(1);
        let p = pair.clone();
        let thread_waiter = rt.run(move || {
            let (m, cv) = &*p;
            let p1 = p.clone();
            go(move || drop(p1.1.wait(p1.0.lock())));
            gosched(); // one P: it queues
            let p2 = p.clone();
            let t =
                thread::spawn(move || p2.1.wait_timeout(p2.0.lock(), Duration::from_secs(10)).1);
            gosched_until("the thread to queue", || waiters(cv) == 2);
            drop(m.lock());
            cv.notify_one(); // to the goroutine, which has not run
            assert_eq!(waiters(cv), 1);
            go(|| {
                spin(300 * MS);
                gosched();
            });
            t
        });
        drop(rt);
        assert!(
            !thread_waiter.join().unwrap(),
            "the notification was lost with the cancelled waiter"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Once

/// f runs once; concurrent callers (goroutines and threads) park until it has finished.
#[test]
fn once_runs_once_and_callers_wait_for_it() {
    watchdog(60, || {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let call = {
            let (once, runs, finished) = (once.clone(), runs.clone(), finished.clone());
            move |on_goroutine: bool| {
                once.call_once(|| {
                    runs.fetch_add(1, SeqCst);
                    if on_goroutine {
                        gosched_for(50 * MS);
                    } else {
                        thread::sleep(50 * MS);
                    }
                    finished.store(true, SeqCst);
                });
                assert!(
                    finished.load(SeqCst),
                    "call_once returned before f finished"
                );
            }
        };
        let c = call.clone();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || c(false))
            })
            .collect();
        rt(2).run(move || {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let c = call.clone();
                    go(move || c(true))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(runs.load(SeqCst), 1);
        assert!(once.is_completed());
    });
}

/// If f panics, the panic reaches its caller only; the Once counts as done, callers that
/// waited return normally, and f never runs again.
#[test]
fn once_with_a_panicking_function_counts_as_done() {
    quiet_expected_panics();
    watchdog(60, || {
        let once = Arc::new(Once::new());
        let o = once.clone();
        rt(2).run(move || {
            let started = Arc::new(AtomicBool::new(false));
            let (o1, s1) = (o.clone(), started.clone());
            let first = go(move || {
                o1.call_once(|| {
                    s1.store(true, SeqCst);
                    gosched_for(50 * MS);
                    panic!("{EXPECTED} once's function");
                })
            });
            gosched_until("f to start", || started.load(SeqCst));
            assert!(!o.is_completed());
            let others: Vec<_> = (0..4)
                .map(|_| {
                    let o = o.clone();
                    go(move || o.call_once(|| panic!("f ran twice")))
                })
                .collect();
            let err = first.join().unwrap_err();
            assert!(panic_msg(&*err).contains("once's function"));
            others.into_iter().for_each(|h| h.join().unwrap());
            assert!(o.is_completed());
        });
        once.call_once(|| panic!("f ran again"));
        assert!(catch_unwind(AssertUnwindSafe(|| once.call_once(|| {}))).is_ok());
    });
}

// ---------------------------------------------------------------------------------------------
// Semaphore

/// Waiters (goroutines and threads) get permits in arrival order; a released permit goes to
/// the queue, not to a caller of try_acquire; add_permits serves waiters first.
#[test]
fn semaphore_is_fifo_and_add_permits_serves_waiters_first() {
    watchdog(120, || {
        const N: usize = 8;
        let sem = Arc::new(Semaphore::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let (s, o) = (sem.clone(), order.clone());
        let threads = rt(2).run(move || {
            let mut threads = Vec::new();
            let mut gs = Vec::new();
            for i in 0..N {
                let (s1, o) = (s.clone(), o.clone());
                let body = move || {
                    let p = s1.acquire();
                    o.lock().push(i);
                    drop(p); // to the next in line
                };
                if i.is_multiple_of(2) {
                    gs.push(go(body));
                } else {
                    threads.push(thread::spawn(body));
                }
                gosched_until("a waiter to queue", || waiters(&*s) == i + 1);
            }
            s.add_permits(1);
            gs.into_iter().for_each(|h| h.join().unwrap());
            threads
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*order.lock(), (0..N).collect::<Vec<_>>());
        assert_eq!(sem.available_permits(), 1);

        rt(1).run(|| {
            let sem = Arc::new(Semaphore::new(1));
            let p = sem.acquire();
            let got = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let (sem, got) = (sem.clone(), got.clone());
                    go(move || {
                        let p = sem.acquire();
                        got.fetch_add(1, SeqCst);
                        gosched_until("the test to finish", || got.load(SeqCst) > 100);
                        drop(p);
                    })
                })
                .collect();
            gosched(); // one P: all three queue
            assert_eq!(waiters(&*sem), 3);
            drop(p); // to the front waiter, which has not run yet
            assert!(sem.try_acquire().is_none(), "try_acquire jumped the queue");
            sem.add_permits(4); // two waiters left: two permits stay free
            assert_eq!(sem.available_permits(), 2);
            gosched_until("all three", || got.load(SeqCst) == 3);
            got.store(1000, SeqCst);
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(sem.available_permits(), 5);
        });
    });
}

/// A permit granted to a goroutine that is cancelled before it runs goes back to the
/// semaphore.
#[test]
fn semaphore_permit_granted_to_a_cancelled_waiter_is_returned() {
    watchdog(60, || {
        let sem = Arc::new(Semaphore::new(0));
        let rt = rt(1);
        let s = sem.clone();
        rt.run(move || {
            let s2 = s.clone();
            go(move || drop(s2.acquire()));
            gosched();
            s.add_permits(1); // granted to the waiter, which has not run
            assert_eq!(s.available_permits(), 0);
            go(|| {
                spin(300 * MS);
                gosched();
            });
        });
        drop(rt);
        assert_eq!(sem.available_permits(), 1, "the granted permit was lost");
    });
}

// ---------------------------------------------------------------------------------------------
// Barrier

/// Two goroutines and two threads pass a barrier of 4 for many generations: exactly one
/// leader per generation, and nobody leaves a generation before all four arrived.
#[test]
fn barrier_one_leader_per_generation() {
    watchdog(120, || {
        const N: usize = 4;
        const GENS: usize = 50;
        struct S {
            b: Barrier,
            arrived: Vec<AtomicUsize>,
            leaders: Vec<AtomicUsize>,
        }
        let s = Arc::new(S {
            b: Barrier::new(N),
            arrived: (0..GENS).map(|_| AtomicUsize::new(0)).collect(),
            leaders: (0..GENS).map(|_| AtomicUsize::new(0)).collect(),
        });
        fn run(s: &S) {
            for gen in 0..GENS {
                s.arrived[gen].fetch_add(1, SeqCst);
                let r = s.b.wait();
                assert_eq!(
                    s.arrived[gen].load(SeqCst),
                    N,
                    "left generation {gen} early"
                );
                if r.is_leader() {
                    s.leaders[gen].fetch_add(1, SeqCst);
                }
            }
        }
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || run(&s))
            })
            .collect();
        let s2 = s.clone();
        rt(2).run(move || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let s = s2.clone();
                    go(move || run(&s))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        for (gen, l) in s.leaders.iter().enumerate() {
            assert_eq!(l.load(SeqCst), 1, "generation {gen}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// RwLock

/// A waiting writer blocks new readers: try_read fails and a new reader queues behind the
/// writer, which gets the lock as soon as the old reader leaves.
#[test]
fn rwlock_pending_writer_blocks_new_readers() {
    watchdog(60, || {
        rt(2).run(|| {
            let l = Arc::new(RwLock::new(Vec::new()));
            let r1 = l.read();
            let l2 = l.clone();
            let w = go(move || l2.write().push("writer"));
            gosched_until("the writer to wait", || l.try_read().is_none());
            let l3 = l.clone();
            let r2 = thread::spawn(move || l3.read().clone());
            let l4 = l.clone();
            let r3 = go(move || l4.read().clone());
            gosched_for(30 * MS);
            assert!(l.try_write().is_none());
            drop(r1);
            w.join().unwrap();
            assert_eq!(
                r2.join().unwrap(),
                ["writer"],
                "a reader overtook the waiting writer"
            );
            assert_eq!(
                r3.join().unwrap(),
                ["writer"],
                "a reader overtook the waiting writer"
            );
        });
    });
}

/// Writers keep getting in while overlapping readers (goroutines and threads) hold the lock
/// continuously; readers always see a consistent pair.
#[test]
fn rwlock_writer_not_starved_by_readers() {
    watchdog(120, || {
        let l = Arc::new(RwLock::new((0u64, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
            move |on_goroutine: bool| {
                while !stop.load(SeqCst) {
                    let g = l.read();
                    assert_eq!(g.0, g.1, "torn write seen by a reader");
                    reads.fetch_add(1, SeqCst);
                    spin(200 * Duration::from_micros(1));
                    drop(g);
                    if on_goroutine {
                        gosched();
                    }
                }
            }
        };
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let r = reader.clone();
                thread::spawn(move || r(false))
            })
            .collect();
        let (l2, stop2) = (l.clone(), stop.clone());
        rt(2).run(move || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let r = reader.clone();
                    go(move || r(true))
                })
                .collect();
            gosched_until("readers", || reads.load(SeqCst) > 50);
            let t = Instant::now();
            for _ in 0..50 {
                let mut g = l2.write();
                g.0 += 1;
                gosched(); // hold the write lock across a switch
                g.1 += 1;
                drop(g);
                gosched();
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "writers starved: {:?}",
                t.elapsed()
            );
            stop2.store(true, SeqCst);
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*l.read(), (50, 50));
    });
}

/// Readers share; a writer excludes everyone; try_* agree.
#[test]
fn rwlock_shares_reads_and_excludes_writes() {
    let l = RwLock::new(1);
    let (a, b) = (l.read(), l.try_read().unwrap());
    assert_eq!(*a + *b, 2);
    assert!(l.try_write().is_none());
    drop((a, b));
    let mut w = l.try_write().unwrap();
    *w = 3;
    assert!(l.try_read().is_none() && l.try_write().is_none());
    drop(w);
    let mut l = l;
    *l.get_mut() += 1;
    assert_eq!(l.into_inner(), 4);
}

// ---------------------------------------------------------------------------------------------
// WaitGroup

#[test]
fn waitgroup_negative_counter_panics() {
    quiet_expected_panics();
    let wg = WaitGroup::new();
    wg.add(1);
    let err = catch_unwind(AssertUnwindSafe(|| wg.add(-2))).unwrap_err();
    assert_eq!(panic_msg(&*err), "sync: negative WaitGroup counter");
    // The failed add left the counter as it was.
    wg.done();
    wg.wait();
    let err = catch_unwind(AssertUnwindSafe(|| wg.done())).unwrap_err();
    assert!(panic_msg(&*err).contains("negative WaitGroup counter"));
}

// ---------------------------------------------------------------------------------------------
// Cancellation and plain threads

/// Goroutines blocked in every primitive when their runtime is dropped unwind out of their
/// queues; afterwards each primitive behaves as if they had never come.
#[test]
fn waiters_cancelled_at_shutdown_leave_primitives_consistent() {
    watchdog(60, || {
        let m = Arc::new(Mutex::new(0));
        let sem = Arc::new(Semaphore::new(0));
        let rw = Arc::new(RwLock::new(0));
        let cv = Arc::new((Mutex::new(0), Condvar::new()));
        let bar = Arc::new(Barrier::new(3));
        let held = m.lock();
        let wheld = rw.write();
        let rt = rt(2);
        {
            let (m, sem, rw, cv, bar) =
                (m.clone(), sem.clone(), rw.clone(), cv.clone(), bar.clone());
            rt.run(move || {
                let about = Arc::new(WaitGroup::new());
                let spawn = |f: Box<dyn FnOnce() + Send>| {
                    about.add(1);
                    let a = about.clone();
                    go(move || {
                        a.done();
                        f();
                        unreachable!("a blocked goroutine returned");
                    });
                };
                for _ in 0..3 {
                    let m = m.clone();
                    spawn(Box::new(move || drop(m.lock())));
                    let sem = sem.clone();
                    spawn(Box::new(move || drop(sem.acquire())));
                }
                for _ in 0..2 {
                    let rw1 = rw.clone();
                    spawn(Box::new(move || drop(rw1.read())));
                    let rw2 = rw.clone();
                    spawn(Box::new(move || drop(rw2.write())));
                    let cv = cv.clone();
                    spawn(Box::new(move || {
                        let g = cv.0.lock();
                        drop(cv.1.wait(g));
                    }));
                }
                let bar = bar.clone();
                spawn(Box::new(move || {
                    bar.wait();
                }));
                about.wait();
                gosched_until("the semaphore waiters", || waiters(&*sem) == 3);
                gosched_until("the condvar waiters", || waiters(&cv.1) == 2);
                gosched_for(50 * MS); // the rest park too
            });
        }
        drop(rt); // cancels them all
        drop(held);
        assert!(m.try_lock().is_some(), "mutex");
        // And it still wakes a real waiter (stale waiter counts would leave WOKEN stuck).
        for _ in 0..3 {
            let g = m.lock();
            let m2 = m.clone();
            let t = thread::spawn(move || *m2.lock() += 1);
            thread::sleep(20 * MS);
            drop(g);
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 3);
        sem.add_permits(1);
        assert_eq!(sem.available_permits(), 1, "semaphore");
        assert_eq!(waiters(&*sem), 0);
        drop(wheld);
        assert!(rw.try_write().is_some(), "rwlock");
        assert!(rw.try_read().is_some(), "rwlock");
        assert_eq!(waiters(&cv.1), 0, "condvar");
        // The cancelled barrier arrival was taken back: two threads are not enough.
        let released = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (b, r) = (bar.clone(), released.clone());
                thread::spawn(move || {
                    let leader = b.wait().is_leader();
                    r.fetch_add(1, SeqCst);
                    leader
                })
            })
            .collect();
        thread::sleep(100 * MS);
        assert_eq!(released.load(SeqCst), 0, "barrier released early");
        let mut leaders = usize::from(bar.wait().is_leader());
        leaders += ts
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum::<usize>();
        assert_eq!(leaders, 1);
    });
}

/// Everything works from plain threads, with no runtime at all.
#[test]
fn primitives_work_on_plain_threads() {
    watchdog(60, || {
        let m = Arc::new(Mutex::new(0u64));
        let rw = Arc::new(RwLock::new(0u64));
        let sem = Arc::new(Semaphore::new(2));
        let in_sem = Arc::new(AtomicUsize::new(0));
        let bar = Arc::new(Barrier::new(4));
        let once = Arc::new(Once::new());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let (m, rw, sem, in_sem, bar, once) = (
                    m.clone(),
                    rw.clone(),
                    sem.clone(),
                    in_sem.clone(),
                    bar.clone(),
                    once.clone(),
                );
                thread::spawn(move || {
                    once.call_once(|| *m.lock() += 1000);
                    bar.wait();
                    for i in 0..1000usize {
                        let mut g = m.lock();
                        let v = *g;
                        if i.is_multiple_of(64) {
                            thread::yield_now();
                        }
                        *g = v + 1;
                        drop(g);
                        *rw.write() += 1;
                        drop(rw.read());
                        if i.is_multiple_of(50) {
                            let _p = sem.acquire();
                            assert!(in_sem.fetch_add(1, SeqCst) < 2);
                            thread::yield_now();
                            in_sem.fetch_sub(1, SeqCst);
                        }
                    }
                    bar.wait().is_leader()
                })
            })
            .collect();
        let leaders = ts.into_iter().map(|t| t.join().unwrap());
        assert_eq!(leaders.filter(|l| *l).count(), 1);
        assert_eq!(*m.lock(), 5000);
        assert_eq!(*rw.read(), 4000);
        assert_eq!(sem.available_permits(), 2);

        // Condvar between threads.
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        let t = thread::spawn(move || {
            let mut g = p2.0.lock();
            while !*g {
                g = p2.1.wait(g);
            }
        });
        thread::sleep(10 * MS);
        *pair.0.lock() = true;
        pair.1.notify_all();
        t.join().unwrap();
    });
}
