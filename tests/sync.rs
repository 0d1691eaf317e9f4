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

// One file per primitive under tests/sync/ (the crate root of a test looks in tests/ itself).
#[path = "sync/barrier.rs"]
mod barrier;
#[path = "sync/condvar.rs"]
mod condvar;
#[path = "sync/mutex.rs"]
mod mutex;
#[path = "sync/once.rs"]
mod once;
#[path = "sync/rwlock.rs"]
mod rwlock;
#[path = "sync/semaphore.rs"]
mod semaphore;

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

/// The auto traits match std's locks.
#[test]
fn send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Mutex<Vec<u8>>>();
    send_sync::<RwLock<Vec<u8>>>();
    send_sync::<Condvar>();
    send_sync::<Once>();
    send_sync::<Semaphore>();
    send_sync::<Barrier>();
    send_sync::<Mutex<std::cell::Cell<u8>>>(); // Send data suffices for a Mutex
    send_sync::<MutexGuardOf<'static>>();
}

type MutexGuardOf<'a> = gort::sync::MutexGuard<'a, Vec<u8>>;
