//! Condvar: FIFO notify_one with no spurious wake-ups, notify_all, wait_timeout, and a
//! notify_one picked by a cancelled waiter passing on.

use super::*;

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
