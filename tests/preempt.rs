//! sysmon and preemption: a goroutine that runs too long (a hog, or one stuck in a call nobody
//! marked as blocking) loses its P to another M, so the others keep running; it keeps its own
//! thread and takes a P back at its next runtime call.
//!
//! Every test runs at `procs(1)`, where a goroutine that kept the only P would stop all the
//! others. Hangs are caught by a watchdog thread that fails the test with a message.

use gort::chan;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt1() -> gort::Runtime {
    gort::Builder::new().procs(1).build().unwrap()
}

/// Fails the whole test binary if `what` has not finished within `secs` (a hang would
/// otherwise stop the test run instead of failing it).
fn watchdog(secs: u64, what: &'static str) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let t = Instant::now();
        while !d.load(SeqCst) {
            if t.elapsed() > Duration::from_secs(secs) {
                // Not eprintln!: the test harness captures that, and we exit at once.
                let msg = format!("watchdog: {what} did not finish within {secs} s\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
                std::process::exit(101);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    done
}

/// Spins without any runtime call until `stop` is set or `max` has passed.
fn spin(stop: &AtomicBool, max: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while !stop.load(Relaxed) && t.elapsed() < max {
        n = n.wrapping_add(1);
        std::hint::black_box(n);
    }
    n
}

#[test]
fn a_spinning_goroutine_does_not_stop_a_ticker() {
    let wd = watchdog(60, "a_spinning_goroutine_does_not_stop_a_ticker");
    let worst = rt1().run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let hog = gort::go(move || spin(&s, Duration::from_secs(2)));
        // Let the hog take the P first (this sleep counts as a tick too).
        let t = Instant::now();
        gort::time::sleep(Duration::from_millis(5));
        let mut worst = t.elapsed().saturating_sub(Duration::from_millis(5));
        let start = Instant::now();
        let mut ticks = 0;
        while start.elapsed() < Duration::from_millis(1500) {
            let t = Instant::now();
            gort::time::sleep(Duration::from_millis(20));
            worst = worst.max(t.elapsed().saturating_sub(Duration::from_millis(20)));
            ticks += 1;
        }
        stop.store(true, Relaxed);
        assert!(hog.join().unwrap() > 0);
        assert!(ticks >= 10, "only {ticks} ticks in 1.5 s");
        worst
    });
    wd.store(true, SeqCst);
    // Without preemption the first tick would wait for the whole 2 s spin.
    assert!(
        worst < Duration::from_millis(700),
        "a tick was {worst:?} late"
    );
}

#[test]
fn a_goroutine_in_an_unmarked_sleep_does_not_stop_the_others() {
    let wd = watchdog(
        60,
        "a_goroutine_in_an_unmarked_sleep_does_not_stop_the_others",
    );
    rt1().run(|| {
        let others_done = Arc::new(AtomicBool::new(false));
        let od = others_done.clone();
        let (started_tx, started_rx) = chan::bounded::<()>(0);
        let sleeper = gort::go(move || {
            started_tx.send(()).unwrap();
            // Not wrapped in `gort::blocking`: sysmon must notice by itself.
            std::thread::sleep(Duration::from_secs(3));
            od.load(SeqCst)
        });
        started_rx.recv().unwrap();
        let mut sum = 0;
        for i in 0..20 {
            sum += gort::go(move || i).join().unwrap();
            gort::time::sleep(Duration::from_millis(2));
        }
        assert_eq!(sum, 190);
        others_done.store(true, SeqCst);
        assert!(
            sleeper.join().unwrap(),
            "the other goroutines waited for the thread::sleep to end"
        );
    });
    wd.store(true, SeqCst);
}

#[test]
fn a_goroutine_in_a_raw_read_does_not_stop_the_writer() {
    let wd = watchdog(60, "a_goroutine_in_a_raw_read_does_not_stop_the_writer");
    let mut fds = [0; 2];
    // SAFETY: pipe with a valid two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (r, w) = (fds[0], fds[1]);
    rt1().run(move || {
        let reader = gort::go(move || {
            let mut buf = [0u8; 8];
            // A plain blocking read(2) on an empty pipe: only the writer below can end it,
            // and with one P the writer runs only if the reader's P is taken from it.
            // SAFETY: reading into a valid buffer from our pipe's read end.
            let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
            (n, buf)
        });
        gort::time::sleep(Duration::from_millis(50));
        let writer = gort::go(move || {
            // SAFETY: writing a valid buffer to our pipe's write end.
            unsafe { libc::write(w, b"hello".as_ptr().cast(), 5) }
        });
        assert_eq!(writer.join().unwrap(), 5);
        let (n, buf) = reader.join().unwrap();
        assert_eq!(n, 5);
        assert_eq!(&buf[..5], b"hello");
    });
    // SAFETY: closing our own fds once.
    unsafe {
        libc::close(r);
        libc::close(w);
    }
    wd.store(true, SeqCst);
}

#[test]
fn a_preempted_goroutine_comes_back_for_runtime_calls_and_exit() {
    let wd = watchdog(
        120,
        "a_preempted_goroutine_comes_back_for_runtime_calls_and_exit",
    );
    rt1().run(|| {
        for round in 0..5 {
            let stop = AtomicBool::new(false);
            // Long enough to be preempted (10 ms), then runtime calls without a P of its own.
            let hog = gort::go(move || {
                spin(&stop, Duration::from_millis(60));
                let (tx, rx) = chan::bounded::<u64>(1);
                let h = gort::go(move || tx.send(round).unwrap());
                let v = rx.recv().unwrap();
                h.join().unwrap();
                // Spin again and exit straight from the spin: the exit may find no P.
                spin(&AtomicBool::new(false), Duration::from_millis(30));
                v
            });
            let ticker = gort::go(|| {
                for _ in 0..5 {
                    gort::time::sleep(Duration::from_millis(5));
                }
            });
            assert_eq!(hog.join().unwrap(), round);
            ticker.join().unwrap();
        }
        // Every goroutine was counted out, whichever way it exited.
        let t = Instant::now();
        while gort::runtime::num_goroutine() != 1 {
            assert!(t.elapsed() < Duration::from_secs(10), "goroutines leaked");
            gort::time::sleep(Duration::from_millis(1));
        }
    });
    wd.store(true, SeqCst);
}

#[test]
fn many_hogs_on_two_ps_all_finish_and_the_rest_keeps_going() {
    let wd = watchdog(
        120,
        "many_hogs_on_two_ps_all_finish_and_the_rest_keeps_going",
    );
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..4)
            .map(|_| {
                let s = stop.clone();
                // Until told to stop: without preemption the rest never runs (the watchdog
                // then fails the test).
                gort::go(move || spin(&s, Duration::from_secs(300)))
            })
            .collect();
        // Meanwhile, ordinary goroutines and channels keep working.
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<u64>(16);
        let c = count.clone();
        let consumer = gort::go(move || {
            let mut sum = 0;
            for v in rx {
                sum += v;
                c.fetch_add(1, SeqCst);
            }
            sum
        });
        for i in 0..1000u64 {
            tx.send(i).unwrap();
            if i % 100 == 0 {
                gort::time::sleep(Duration::from_millis(1));
            }
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), 999 * 1000 / 2);
        stop.store(true, Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        assert_eq!(count.load(SeqCst), 1000);
    });
    wd.store(true, SeqCst);
}

#[test]
fn short_blocking_calls_keep_their_p() {
    // The `_Psyscall` fast path: a call that returns within a sysmon tick takes its own P
    // back. Correctness only (the cost is measured by the benchmarks): every call returns on
    // a P, and work queued meanwhile still runs.
    rt1().run(|| {
        let ran = Arc::new(AtomicU64::new(0));
        let r = ran.clone();
        let bg = gort::go(move || {
            for _ in 0..1000 {
                r.fetch_add(1, SeqCst);
                gort::runtime::gosched();
            }
        });
        let mut total = 0u64;
        for i in 0..100_000u64 {
            total += gort::blocking(|| i & 1);
        }
        assert_eq!(total, 50_000);
        bg.join().unwrap();
        assert_eq!(ran.load(SeqCst), 1000);
    });
}

#[test]
fn a_locked_hog_keeps_its_thread() {
    let wd = watchdog(60, "a_locked_hog_keeps_its_thread");
    rt1().run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let hog = gort::go(move || {
            gort::runtime::lock_os_thread();
            let before = std::thread::current().id();
            spin(&s, Duration::from_secs(300)); // until told to stop (see the watchdog)
                                                // A runtime call after losing the P: the goroutine comes back on its own thread.
            gort::runtime::gosched();
            gort::go(|| ()).join().unwrap();
            let same = std::thread::current().id() == before;
            gort::runtime::unlock_os_thread();
            same
        });
        gort::time::sleep(Duration::from_millis(50));
        // Runs only if the hog's P was handed to another M.
        assert_eq!(gort::go(|| 3).join().unwrap(), 3);
        stop.store(true, Relaxed);
        assert!(hog.join().unwrap());
    });
    wd.store(true, SeqCst);
}

#[test]
fn preemption_works_when_the_program_blocks_sigurg() {
    let wd = watchdog(60, "preemption_works_when_the_program_blocks_sigurg");
    // Threads inherit their creator's signal mask; the runtime's threads are created from
    // this one (directly or from each other) and must unblock the preemption signal.
    // SAFETY: building a signal set and changing this thread's mask with valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGURG);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    rt1().run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let hog = gort::go(move || spin(&s, Duration::from_secs(300))); // until told to stop
        gort::time::sleep(Duration::from_millis(30));
        // Runs only if the hog's P was taken.
        assert_eq!(gort::go(|| 7).join().unwrap(), 7);
        stop.store(true, Relaxed);
        hog.join().unwrap();
    });
    wd.store(true, SeqCst);
}
