//! `gort::blocking`: a call that blocks its thread releases its P, so the other goroutines of
//! that P keep running (Go's entersyscall/exitsyscall).

use gort::chan;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> gort::Runtime {
    gort::Builder::new().procs(procs).build().unwrap()
}

#[test]
fn one_p_keeps_running_while_a_goroutine_blocks_its_thread() {
    rt(1).run(|| {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let (started_tx, started_rx) = chan::bounded::<()>(0);
        let sleeper = gort::go(move || {
            started_tx.send(()).unwrap();
            gort::blocking(|| std::thread::sleep(Duration::from_millis(300)));
            d.store(true, SeqCst);
        });
        started_rx.recv().unwrap();
        // The sleeper holds its thread, not the only P: these goroutines run meanwhile.
        let hs: Vec<_> = (0..10).map(|i| gort::go(move || i * 2)).collect();
        let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 90);
        assert!(
            !done.load(SeqCst),
            "other goroutines had to wait for the blocking call to return"
        );
        sleeper.join().unwrap();
        assert!(done.load(SeqCst));
    });
}

#[test]
fn returns_the_value_and_propagates_panics() {
    rt(1).run(|| {
        assert_eq!(gort::blocking(|| 6 * 7), 42);
        let h = gort::go(|| gort::blocking(|| -> u8 { panic!("inside blocking") }));
        assert!(h.join().is_err());
        // The runtime still runs goroutines afterwards (the P came back).
        assert_eq!(gort::go(|| 5).join().unwrap(), 5);
        assert_eq!(gort::blocking(|| gort::blocking(|| "nested")), "nested");
    });
    // On a plain thread it just runs.
    assert_eq!(gort::blocking(|| 1 + 1), 2);
}

#[test]
fn many_blocking_calls_overlap() {
    rt(1).run(|| {
        let n = 40;
        let t = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|_| gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(50)))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // One after the other (as they would on one P without `blocking`) they would take
        // 2 s; each has its own thread meanwhile.
        assert!(
            t.elapsed() < Duration::from_millis(1200),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn parking_and_spawning_inside_blocking_work() {
    rt(1).run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        gort::go(move || tx.send(7).unwrap());
        // A channel receive parks the goroutine even without a P.
        let v = gort::blocking(|| rx.recv().unwrap());
        assert_eq!(v, 7);
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let hs = gort::blocking(move || {
            (0..100)
                .map(|_| {
                    let c = c.clone();
                    gort::go(move || c.fetch_add(1, SeqCst))
                })
                .collect::<Vec<_>>()
        });
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(count.load(SeqCst), 100);
        gort::blocking(gort::runtime::gosched);
    });
}

#[test]
fn a_locked_goroutine_comes_back_on_its_thread() {
    rt(1).run(|| {
        gort::go(|| {
            gort::runtime::lock_os_thread();
            let before = std::thread::current().id();
            // Keep the P busy meanwhile, so that no idle P is left when the call returns.
            let spinner = gort::go(|| {
                for _ in 0..200 {
                    gort::runtime::gosched();
                }
            });
            gort::blocking(|| std::thread::sleep(Duration::from_millis(20)));
            assert_eq!(std::thread::current().id(), before);
            gort::runtime::unlock_os_thread();
            spinner.join().unwrap();
        })
        .join()
        .unwrap();
    });
}

#[test]
fn a_call_returning_to_a_busy_p_waits_its_turn() {
    // The P is busy when the blocking call returns, so the goroutine is queued (Go's
    // exitsyscall0) and continues once the busy goroutine yields.
    rt(1).run(|| {
        let back = Arc::new(AtomicBool::new(false));
        let b = back.clone();
        let caller = gort::go(move || {
            let before = gort::runtime::goid();
            gort::blocking(|| std::thread::sleep(Duration::from_millis(30)));
            b.store(true, SeqCst);
            gort::runtime::goid() == before
        });
        let busy = gort::go(move || {
            let t = Instant::now();
            let mut yields = 0u64;
            while !back.load(SeqCst) {
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "the caller never came back"
                );
                gort::runtime::gosched();
                yields += 1;
            }
            yields
        });
        assert!(caller.join().unwrap());
        assert!(busy.join().unwrap() > 0);
    });
}
