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
                assert_eq!(order, (0..20).collect::<Vec<_>>(), "procs={procs}");
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
