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
    assert!(
        ok,
        "after set_gomaxprocs(2) two goroutines could not run at once"
    );
}

/// At one P, a pair of goroutines that keep waking each other (each wake-up goes to `runnext`)
/// must not starve a third goroutine queued behind them.
#[test]
fn a_ping_pong_pair_does_not_starve_its_p() {
    use gort::sync::WaitGroup;
    use std::sync::atomic::AtomicUsize;
    let rt = gort::Builder::new().procs(1).build().unwrap();
    let rounds = rt.run(|| {
        let wa = Arc::new(WaitGroup::new());
        let wb = Arc::new(WaitGroup::new());
        wa.add(1);
        wb.add(1);
        let seen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let b = {
            let (wa, wb, stop) = (wa.clone(), wb.clone(), stop.clone());
            gort::go(move || loop {
                wb.wait();
                wb.add(1);
                let done = stop.load(SeqCst);
                wa.done();
                if done {
                    return;
                }
            })
        };
        let a = {
            let (wa, wb, seen, stop, rounds) = (wa, wb, seen.clone(), stop, rounds.clone());
            gort::go(move || {
                for i in 0..1_000_000 {
                    if i == 10 {
                        // The pair is now a runnext chain: this goroutine lands in runnext and
                        // is pushed to the ring by the next wake-up, behind the pair.
                        let s = seen.clone();
                        gort::go(move || s.store(true, SeqCst));
                    }
                    if seen.load(SeqCst) {
                        rounds.store(i, SeqCst);
                        break;
                    }
                    wb.done();
                    wa.wait();
                    wa.add(1);
                }
                stop.store(true, SeqCst);
                wb.done();
                wa.wait();
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        assert!(
            seen.load(SeqCst),
            "the third goroutine never ran during 1,000,000 exchanges"
        );
        rounds.load(SeqCst)
    });
    assert!(
        rounds < 10 + 1_000,
        "the third goroutine waited {rounds} exchanges"
    );
}

/// At one P, a goroutine that yields in a loop must let a goroutine queued on the global queue
/// run (here the main goroutine of a second `Runtime::run`, made from another thread).
#[test]
fn a_yielding_goroutine_does_not_starve_the_global_queue() {
    let rt = gort::Builder::new().procs(1).build().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let (f, st) = (flag.clone(), started.clone());
        let rt = &rt;
        let spinner = s.spawn(move || {
            rt.run(move || {
                st.store(true, SeqCst);
                let t = Instant::now();
                while !f.load(SeqCst) {
                    assert!(t.elapsed() < Duration::from_secs(20), "starved for 20 s");
                    gort::runtime::gosched();
                }
            })
        });
        assert!(spin_until(&started, Duration::from_secs(20)));
        let f = flag.clone();
        rt.run(move || f.store(true, SeqCst));
        spinner.join().unwrap();
    });
}

/// A detached goroutine's result is dropped when the goroutine ends (as a detached thread's
/// is), even though the runtime keeps the finished task's memory for later reuse.
#[test]
fn an_unjoined_result_is_dropped_when_its_goroutine_ends() {
    struct Guard(Arc<AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let rt = gort::Builder::new().procs(2).build().unwrap();
    let dropped = rt.run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        drop(gort::go(move || Guard(f))); // detached at once
                                          // No other goroutine is spawned, so the finished G is not reused meanwhile.
        let t = Instant::now();
        while !flag.load(SeqCst) && t.elapsed() < Duration::from_secs(20) {
            gort::runtime::gosched();
        }
        flag.load(SeqCst)
    });
    assert!(
        dropped,
        "the unjoined result was not dropped when its goroutine ended"
    );
}

/// A joined result is the caller's: joining moves it out, and it drops when the caller drops it.
#[test]
fn a_joined_result_drops_with_the_caller() {
    struct Guard(Arc<AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let rt = gort::Builder::new().procs(2).build().unwrap();
    rt.run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let g = gort::go(move || Guard(f)).join().unwrap();
        assert!(!flag.load(SeqCst));
        drop(g);
        assert!(flag.load(SeqCst));
    });
}

#[cfg(target_arch = "x86_64")]
mod fpu_state {
    use std::arch::asm;

    fn mxcsr() -> u32 {
        let mut v = 0u32;
        // SAFETY: stmxcsr stores 4 bytes to a valid, writable u32.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
        v
    }

    fn set_mxcsr(v: u32) {
        // SAFETY: ldmxcsr loads a valid MXCSR value (only the rounding bits differ from the
        // default); nothing here relies on the rounding mode.
        unsafe { asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly)) };
    }

    /// MXCSR is callee-saved: a goroutine that sets a rounding mode keeps it across parks
    /// and yields, and the goroutines that run in between on the same thread do not see it
    /// (the switch loads it only when it differs, so both directions are checked).
    #[test]
    fn a_goroutines_rounding_mode_travels_with_it() {
        const ROUND_TOWARD_ZERO: u32 = 0b11 << 13;
        let rt = gort::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let default = mxcsr();
            let (to_b, from_a) = gort::chan::bounded::<u32>(0);
            let (to_a, from_b) = gort::chan::bounded::<u32>(0);
            let a = gort::go(move || {
                set_mxcsr(default | ROUND_TOWARD_ZERO);
                for _ in 0..100 {
                    to_b.send(mxcsr()).unwrap();
                    assert_eq!(from_b.recv().unwrap(), default, "b saw a's MXCSR");
                    gort::runtime::gosched();
                    assert_eq!(mxcsr(), default | ROUND_TOWARD_ZERO, "a lost its MXCSR");
                }
                set_mxcsr(default);
            });
            let b = gort::go(move || {
                for v in from_a.iter() {
                    assert_eq!(v, default | ROUND_TOWARD_ZERO);
                    to_a.send(mxcsr()).unwrap();
                }
            });
            a.join().unwrap();
            b.join().unwrap();
            assert_eq!(mxcsr(), default);
        });
    }
}

/// Channel hand-offs switch directly from one goroutine to the next when they can (no trip
/// through the M's scheduler stack). A goroutine locked to its thread must never be the target
/// of such a switch from another thread, nor switch to another goroutine on its own thread:
/// with one P, every round trip crosses between the locked M and the P's other M.
#[test]
fn direct_switches_respect_locked_goroutines() {
    fn tid() -> i64 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::syscall(libc::SYS_gettid) }
    }
    let rt = gort::Builder::new().procs(1).build().unwrap();
    rt.run(|| {
        let (to_pong, from_ping) = gort::chan::bounded::<i64>(0);
        let (to_ping, from_pong) = gort::chan::bounded::<i64>(0);
        let pong = gort::go(move || {
            for locked in from_ping.iter() {
                assert_ne!(
                    tid(),
                    locked,
                    "an unlocked goroutine ran on a locked thread"
                );
                to_ping.send(tid()).unwrap();
            }
        });
        let ping = gort::go(move || {
            gort::runtime::lock_os_thread();
            let me = tid();
            for i in 0..2000 {
                to_pong.send(me).unwrap();
                let other = from_pong.recv().unwrap();
                assert_ne!(
                    other, me,
                    "round trip {i}: the partner ran on the locked thread"
                );
                assert_eq!(tid(), me, "round trip {i}: the locked goroutine moved");
            }
            gort::runtime::unlock_os_thread();
        });
        ping.join().unwrap();
        pong.join().unwrap();
    });
}

/// A spawn storm: a goroutine that spawns without ever blocking yields to what it spawned once
/// it overflows its P's run queue (see ARCHITECTURE.md, "spawn storms"), so the goroutines
/// alive at once stay a few run queues' worth instead of everything spawned so far. Without
/// that, one P would queue all 200,000 before running any.
#[test]
fn a_spawn_storm_runs_what_it_spawned_as_it_goes() {
    for procs in [1, 2] {
        let rt = gort::Builder::new().procs(procs).build().unwrap();
        let most = rt.run(|| {
            let mut most = 0;
            for i in 0..200_000u32 {
                drop(gort::go(move || std::hint::black_box(i)));
                if i % 64 == 0 {
                    most = most.max(gort::runtime::num_goroutine());
                }
            }
            most
        });
        // 256 local slots, runnext and one overflow batch per P, and the global queue the
        // spawner waits behind once it passes 256: far below the 200,000 spawned.
        assert!(
            most < 5_000,
            "procs={procs}: {most} goroutines alive at once"
        );
    }
}
