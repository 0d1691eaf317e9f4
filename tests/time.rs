//! `gort::time` and the timers under it: sleeping goroutines wake in order and never early, an
//! idle runtime sleeps in the kernel until its next timer, timers survive `set_gomaxprocs`
//! shrinking, and Go's Timer/Ticker corner cases (Go 1.23 semantics).
//!
//! Timing bounds: "not early" is exact; "not late" allows hundreds of milliseconds (a loaded
//! 2-core machine runs these next to other tests).

mod common;

use common::{is_child, run_child, watchdog};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LATE: Duration = Duration::from_millis(700);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn sleepers_wake_in_order_and_never_early() {
    watchdog(60, || {
        for procs in [1, 2, 4] {
            let rt = gort::Builder::new().procs(procs).build().unwrap();
            rt.run(move || {
                let order = Arc::new(Mutex::new(Vec::new()));
                let start = Instant::now();
                // Spawned in a scrambled order; deadlines 20 ms apart.
                let hs: Vec<_> = (0..20u64)
                    .map(|i| (i * 7) % 20)
                    .map(|i| {
                        let order = order.clone();
                        gort::go(move || {
                            let d = ms(20 * i + 20);
                            let t = Instant::now();
                            gort::time::sleep(d);
                            let slept = t.elapsed();
                            assert!(slept >= d, "slept {slept:?} < {d:?}");
                            order.lock().unwrap().push(i);
                            slept - d
                        })
                    })
                    .collect();
                let worst = hs.into_iter().map(|h| h.join().unwrap()).max().unwrap();
                let order = order.lock().unwrap().clone();
                if procs == 1 {
                    // One P: its heap runs the timers in deadline order and the woken Gs
                    // queue FIFO, so the order is exact even if the thread stalls.
                    assert_eq!(order, (0..20).collect::<Vec<_>>(), "procs={procs}");
                } else {
                    // Several Ps run in parallel: a stalled thread may let a neighbour's
                    // wake-up overtake; allow only local swaps (a 100 ms stall).
                    for (pos, &i) in order.iter().enumerate() {
                        assert!(pos.abs_diff(i as usize) <= 5, "procs={procs}: {order:?}");
                    }
                }
                assert!(worst < LATE, "a sleeper was {worst:?} late");
                assert!(start.elapsed() >= ms(400));
            });
        }
    });
}

#[test]
fn sleep_from_a_plain_thread_blocks_the_thread() {
    let t = Instant::now();
    gort::time::sleep(ms(30));
    assert!(t.elapsed() >= ms(30));
    gort::time::sleep(Duration::ZERO);
}

#[test]
fn many_goroutines_sleep_at_once() {
    watchdog(60, || {
        let rt = gort::Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            let start = Instant::now();
            let hs: Vec<_> = (0..10_000u64)
                .map(|i| {
                    gort::go(move || {
                        let d = ms(50 + i % 100);
                        let t = Instant::now();
                        gort::time::sleep(d);
                        assert!(t.elapsed() >= d);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert!(start.elapsed() < ms(150) + Duration::from_secs(5));
        });
    });
}

/// In a child process (so other tests' CPU time does not count): two goroutines sleep 500 ms
/// while the runtime has nothing else to do; the process must not spin meanwhile.
#[test]
fn idle_runtime_sleeps_until_the_timer() {
    if is_child("idle") {
        let rt = gort::Builder::new().procs(2).build().unwrap();
        let (cpu, wall) = rt.run(|| {
            // Warm up: both Ms exist and have gone idle once.
            gort::time::sleep(ms(20));
            let (c0, t0) = (cpu_time(), Instant::now());
            let h = gort::go(|| gort::time::sleep(ms(500)));
            gort::time::sleep(ms(500));
            h.join().unwrap();
            (cpu_time() - c0, t0.elapsed())
        });
        println!("cpu={:?} wall={:?}", cpu, wall);
        assert!(wall >= ms(500));
        assert!(
            cpu < ms(100),
            "the idle runtime used {cpu:?} of CPU in {wall:?}"
        );
        return;
    }
    let out = run_child(
        "idle_runtime_sleeps_until_the_timer",
        "idle",
        &[],
        Duration::from_secs(60),
    );
    out.assert_passed();
}

#[test]
fn timers_survive_shrinking_gomaxprocs() {
    watchdog(60, || {
        let rt = gort::Builder::new().procs(4).build().unwrap();
        rt.run(|| {
            // Sleepers spread over the Ps (each arms its timer on the P it runs on).
            let hs: Vec<_> = (0..64u64)
                .map(|i| {
                    gort::go(move || {
                        let d = ms(100 + i * 3);
                        let t = Instant::now();
                        gort::time::sleep(d);
                        assert!(t.elapsed() >= d);
                        t.elapsed() - d
                    })
                })
                .collect();
            gort::time::sleep(ms(10));
            assert_eq!(gort::runtime::set_gomaxprocs(1), 4);
            let worst = hs.into_iter().map(|h| h.join().unwrap()).max().unwrap();
            assert!(
                worst < LATE,
                "a sleeper was {worst:?} late after the shrink"
            );
            // Grow again and sleep across the change.
            let h = gort::go(|| gort::time::sleep(ms(50)));
            gort::runtime::set_gomaxprocs(3);
            h.join().unwrap();
        });
    });
}

#[test]
fn sleeping_goroutines_are_cancelled_at_shutdown() {
    watchdog(60, || {
        let t = Instant::now();
        gort::run(|| {
            for _ in 0..10 {
                gort::go(|| gort::time::sleep(Duration::from_secs(3600)));
            }
            gort::go(|| gort::time::sleep(Duration::MAX));
            gort::time::sleep(ms(10));
        });
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

/// A goroutine that keeps its P busy with yields still has its timers run (by itself at each
/// schedule, or by an idle M that steals them).
#[test]
fn timers_fire_beside_a_yielding_goroutine() {
    watchdog(60, || {
        for procs in [1, 2] {
            let rt = gort::Builder::new().procs(procs).build().unwrap();
            rt.run(move || {
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let s = stop.clone();
                let busy = gort::go(move || {
                    while !s.load(std::sync::atomic::Ordering::Relaxed) {
                        gort::runtime::gosched();
                    }
                });
                for _ in 0..5 {
                    let t = Instant::now();
                    gort::time::sleep(ms(20));
                    let late = t.elapsed() - ms(20);
                    assert!(late < LATE, "procs={procs}: {late:?} late");
                }
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                busy.join().unwrap();
            });
        }
    });
}

// ---- Timer, Ticker, after, tick, after_func (Go 1.23 semantics) ----

use gort::time::{after, after_func, tick, Ticker, Timer};

/// Both from a goroutine and from a plain thread.
fn both(f: fn()) {
    watchdog(60, move || {
        f();
        gort::run(f);
        let rt = gort::Builder::new().procs(1).build().unwrap();
        rt.run(f);
    });
}

#[test]
fn timer_fires_once_not_early() {
    both(|| {
        let start = Instant::now();
        let t = Timer::new(ms(30));
        let at = t.receiver().recv().unwrap();
        assert!(at >= start + ms(30));
        assert!(start.elapsed() < ms(30) + LATE);
        // Only one value; the channel stays open.
        assert!(t.receiver().recv_timeout(ms(50)).unwrap_err().is_timeout());
        assert!(!t.receiver().is_closed());
    });
}

#[test]
fn reset_of_a_fired_unreceived_timer_gives_no_stale_value() {
    both(|| {
        let t = Timer::new(ms(1));
        gort::time::sleep(ms(30)); // fired; nobody received
        let before = Instant::now();
        assert!(
            t.reset(ms(40)),
            "a fired, unreceived timer counts as active"
        );
        let v = t.receiver().recv().unwrap();
        assert!(v >= before + ms(40), "received the stale value {v:?}");
        // Fired and received: reset returns false and re-arms.
        assert!(!t.reset(ms(5)));
        t.receiver().recv().unwrap();
    });
}

#[test]
fn stop_after_fire_returns_true_when_not_received() {
    both(|| {
        let t = Timer::new(ms(1));
        gort::time::sleep(ms(30));
        assert!(
            t.stop(),
            "Go 1.23: a fired but unreceived timer is stopped by Stop"
        );
        assert!(t.receiver().try_recv().is_err(), "stale value after stop");
        assert!(!t.stop());
        // Received: stop returns false.
        let t = Timer::new(ms(1));
        t.receiver().recv().unwrap();
        assert!(!t.stop());
        // Pending: true, and nothing ever arrives.
        let t = Timer::new(ms(20));
        assert!(t.stop());
        assert!(t.receiver().recv_timeout(ms(60)).is_err());
    });
}

#[test]
fn dropping_a_timer_does_not_stop_it() {
    both(|| {
        let t = Timer::new(ms(10));
        let rx = t.receiver().clone();
        drop(t);
        rx.recv().unwrap();
        // `after` is a dropped timer's channel.
        let start = Instant::now();
        assert!(after(ms(20)).recv().unwrap() >= start + ms(20));
    });
}

#[test]
fn stop_and_reset_race_with_firing_never_leak_a_stale_value() {
    both(|| {
        for i in 0..200u64 {
            let t = Timer::new(Duration::from_micros(i % 50));
            std::hint::black_box(i);
            let before = Instant::now();
            t.reset(ms(15));
            let v = t.receiver().recv().unwrap();
            assert!(v >= before + ms(15), "round {i}: stale value");
        }
    });
}

#[test]
fn ticker_drops_ticks_for_a_slow_reader() {
    both(|| {
        let t = Ticker::new(ms(5));
        gort::time::sleep(ms(100)); // ~20 ticks; the buffer holds one
        let first = t.receiver().recv().unwrap();
        assert!(t.receiver().len() <= 1);
        let second = t.receiver().recv().unwrap();
        assert!(second > first);
        // Ticking goes on after the slow patch.
        let a = t.receiver().recv().unwrap();
        let b = t.receiver().recv().unwrap();
        assert!(b > a);
        t.stop();
        assert!(t.receiver().try_recv().is_err(), "stale tick after stop");
        assert!(
            t.receiver().recv_timeout(ms(30)).is_err(),
            "tick after stop"
        );
        t.reset(ms(5));
        t.receiver().recv().unwrap();
    });
}

#[test]
fn dropping_a_ticker_stops_it() {
    both(|| {
        let t = Ticker::new(ms(2));
        let rx = t.receiver().clone();
        rx.recv().unwrap();
        drop(t);
        assert!(rx.try_recv().is_err(), "stop drains the buffered tick");
        assert!(rx.recv_timeout(ms(30)).is_err());
    });
}

#[test]
fn tick_zero_never_delivers_and_ticker_zero_panics() {
    common::quiet_expected_panics();
    let rx = tick(Duration::ZERO);
    assert!(rx.recv_timeout(ms(20)).is_err());
    let err = std::panic::catch_unwind(|| Ticker::new(Duration::ZERO)).unwrap_err();
    let msg = common::panic_msg(&*err);
    assert!(msg.contains("non-zero period"), "{msg}");
    let rx = tick(ms(2));
    rx.recv().unwrap();
    rx.recv().unwrap();
}

#[test]
fn after_func_runs_in_its_own_goroutine() {
    watchdog(60, || {
        gort::run(|| {
            let (tx, rx) = gort::chan::bounded(1);
            let me = gort::runtime::goid();
            let start = Instant::now();
            let _ = after_func(ms(20), move || {
                tx.send((gort::runtime::goid(), Instant::now())).unwrap();
            });
            let (id, at) = rx.recv().unwrap();
            assert_ne!(id, me);
            assert!(at >= start + ms(20));
        });
    });
}

/// A thousand `after_func` timers firing together: their goroutines are spawned from the
/// scheduler's own stack (g0), which overflows the P's run queue; a spawner on g0 must not
/// try to yield (see "Spawn storms" in ARCHITECTURE.md), and every function must run.
#[test]
fn a_thousand_after_funcs_firing_at_once_all_run() {
    watchdog(60, || {
        for procs in [1, 2] {
            let rt = gort::Builder::new().procs(procs).build().unwrap();
            rt.run(|| {
                let n = 1000;
                let wg = std::sync::Arc::new(gort::sync::WaitGroup::new());
                wg.add(n);
                let at = Instant::now() + ms(30);
                let timers: Vec<_> = (0..n)
                    .map(|_| {
                        let wg = wg.clone();
                        after_func(at.saturating_duration_since(Instant::now()), move || {
                            wg.done()
                        })
                    })
                    .collect();
                wg.wait();
                drop(timers);
            });
        }
    });
}

#[test]
fn after_func_from_a_plain_thread_runs_on_a_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = std::thread::current().id();
    let t = after_func(ms(10), move || {
        tx.send(std::thread::current().id()).unwrap();
    });
    let ran_on = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(ran_on, caller);
    std::thread::sleep(ms(10));
    // It already ran: reset does nothing and returns false; stop returns false.
    assert!(!t.reset(ms(1)));
    assert!(!t.stop());
    assert!(rx.recv_timeout(ms(50)).is_err());
}

#[test]
fn after_func_stop_and_reset() {
    both(|| {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        let t = after_func(ms(20), move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(t.stop());
        gort::time::sleep(ms(40));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
        // A stopped after_func timer can be reset: f still runs, once.
        assert!(!t.reset(ms(5)));
        gort::time::sleep(ms(60));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!t.reset(ms(5)));
        gort::time::sleep(ms(30));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(t.receiver().try_recv().is_err());
    });
}

#[test]
fn timers_in_select() {
    both(|| {
        let (_tx, rx) = gort::chan::bounded::<u8>(0);
        let start = Instant::now();
        let timeout = after(ms(25));
        gort::select! {
            recv(rx) -> _ => panic!("nothing was sent"),
            recv(timeout) -> v => assert!(v.unwrap() >= start + ms(25)),
        }
    });
}

/// 10^5 timers made and stopped in a loop keep memory flat (cancelled entries are compacted
/// away and their functions dropped at once).
#[test]
fn add_stop_loop_does_not_grow_memory() {
    fn rss_kib() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    if is_child("addstop") {
        let rt = gort::Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            let round = || {
                for _ in 0..100_000 {
                    let t = Timer::new(Duration::from_secs(3600));
                    assert!(t.stop());
                }
            };
            round();
            let base = rss_kib();
            for _ in 0..5 {
                round();
            }
            let grown = rss_kib().saturating_sub(base);
            println!("grew {grown} KiB");
            assert!(
                grown < 8 * 1024,
                "RSS grew by {grown} KiB over 5x10^5 add/stop"
            );
        });
        return;
    }
    run_child(
        "add_stop_loop_does_not_grow_memory",
        "addstop",
        &[],
        Duration::from_secs(120),
    )
    .assert_passed();
}
