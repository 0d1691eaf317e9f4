//! Semaphore: FIFO, no queue jumping, add_permits, a permit granted to a cancelled waiter
//! returned.

use super::*;

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
