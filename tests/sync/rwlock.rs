//! RwLock: a pending writer blocks new readers, writers are not starved, shared reads.

use super::*;

/// A waiting writer blocks new readers: try_read fails and a new reader queues behind the
/// writer, which gets the lock as soon as the old reader leaves.
#[test]
fn rwlock_pending_writer_blocks_new_readers() {
    watchdog(60, || {
        rt(2).run(|| {
            let l = Arc::new(RwLock::new(Vec::new()));
            let r1 = l.read();
            let l2 = l.clone();
            let w = go(move || l2.write().push("writer"));
            gosched_until("the writer to wait", || l.try_read().is_none());
            let l3 = l.clone();
            let r2 = thread::spawn(move || l3.read().clone());
            let l4 = l.clone();
            let r3 = go(move || l4.read().clone());
            gosched_for(30 * MS);
            assert!(l.try_write().is_none());
            drop(r1);
            w.join().unwrap();
            assert_eq!(
                r2.join().unwrap(),
                ["writer"],
                "a reader overtook the waiting writer"
            );
            assert_eq!(
                r3.join().unwrap(),
                ["writer"],
                "a reader overtook the waiting writer"
            );
        });
    });
}

/// Writers keep getting in while overlapping readers (goroutines and threads) hold the lock
/// continuously; readers always see a consistent pair.
#[test]
fn rwlock_writer_not_starved_by_readers() {
    watchdog(120, || {
        let l = Arc::new(RwLock::new((0u64, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
            move |on_goroutine: bool| {
                while !stop.load(SeqCst) {
                    let g = l.read();
                    assert_eq!(g.0, g.1, "torn write seen by a reader");
                    reads.fetch_add(1, SeqCst);
                    spin(200 * Duration::from_micros(1));
                    drop(g);
                    if on_goroutine {
                        gosched();
                    }
                }
            }
        };
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let r = reader.clone();
                thread::spawn(move || r(false))
            })
            .collect();
        let (l2, stop2) = (l.clone(), stop.clone());
        rt(2).run(move || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let r = reader.clone();
                    go(move || r(true))
                })
                .collect();
            gosched_until("readers", || reads.load(SeqCst) > 50);
            let t = Instant::now();
            for _ in 0..50 {
                let mut g = l2.write();
                g.0 += 1;
                gosched(); // hold the write lock across a switch
                g.1 += 1;
                drop(g);
                gosched();
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "writers starved: {:?}",
                t.elapsed()
            );
            stop2.store(true, SeqCst);
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*l.read(), (50, 50));
    });
}

/// Readers share; a writer excludes everyone; try_* agree.
#[test]
fn rwlock_shares_reads_and_excludes_writes() {
    let l = RwLock::new(1);
    let (a, b) = (l.read(), l.try_read().unwrap());
    assert_eq!(*a + *b, 2);
    assert!(l.try_write().is_none());
    drop((a, b));
    let mut w = l.try_write().unwrap();
    *w = 3;
    assert!(l.try_read().is_none() && l.try_write().is_none());
    drop(w);
    let mut l = l;
    *l.get_mut() += 1;
    assert_eq!(l.into_inner(), 4);
}
