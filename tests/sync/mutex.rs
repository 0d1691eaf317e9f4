//! Mutex: mutual exclusion under mixed goroutine and thread contention, the starvation-mode
//! hand-off (deterministic on one P), liveness beside a tight relocker, a hand-off to a cancelled
//! waiter.

use super::*;

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
