//! Scheduler behaviour that needs real parallelism: Ps that come and go with set_gomaxprocs.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spins until `flag` is set or `limit` passes, with no runtime call (so it cannot yield).
fn spin_until(flag: &AtomicBool, limit: Duration) -> bool {
    let t = Instant::now();
    while !flag.load(SeqCst) {
        if t.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Two goroutines meet by spinning: only possible if both run at once on two Ps.
fn rendezvous() -> bool {
    let a = Arc::new(AtomicBool::new(false));
    let b = Arc::new(AtomicBool::new(false));
    let (a2, b2) = (a.clone(), b.clone());
    let h = gort::go(move || {
        a2.store(true, SeqCst);
        spin_until(&b2, Duration::from_secs(20))
    });
    let met = spin_until(&a, Duration::from_secs(20));
    b.store(true, SeqCst);
    met && h.join().unwrap()
}

#[test]
fn two_ps_run_goroutines_in_parallel() {
    let rt = gort::Builder::new().procs(2).build().unwrap();
    assert!(rt.run(rendezvous));
}

#[test]
fn ps_come_back_after_shrinking() {
    let rt = gort::Builder::new().procs(2).build().unwrap();
    let ok = rt.run(|| {
        assert_eq!(gort::runtime::set_gomaxprocs(1), 2);
        // Let the second P's M notice and retire it.
        for _ in 0..100 {
            let hs: Vec<_> = (0..4).map(|i| gort::go(move || i)).collect();
            for h in hs {
                h.join().unwrap();
            }
            gort::runtime::gosched();
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(gort::runtime::set_gomaxprocs(2), 1);
        rendezvous()
    });
    assert!(ok, "after set_gomaxprocs(2) two goroutines could not run at once");
}
