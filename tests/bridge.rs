//! The async bridge: `gort::block_on` parks only the goroutine while a future is pending, and
//! `Runtime::go_future` lets async code await a goroutine. Tested with a real async crate
//! (`futures`: its channels and its executor).

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn block_on_parks_only_the_goroutine() {
    gort::Builder::new().procs(1).build().unwrap().run(|| {
        let (tx, rx) = oneshot::channel::<u32>();
        let waiter = gort::go(move || gort::block_on(rx).unwrap());
        // With one P, this goroutine runs only because the waiter parked instead of
        // blocking the thread.
        gort::time::sleep(Duration::from_millis(20));
        // Parked, not blocking its thread (sysmon would also rescue a blocked thread's P, so
        // the dump is what tells the two apart).
        let dump = gort::runtime::stack_dump(true);
        assert!(dump.contains("[block_on"), "{dump}");
        tx.send(7).unwrap();
        assert_eq!(waiter.join().unwrap(), 7);
    });
}

#[test]
fn block_on_a_stream_fed_by_a_plain_thread() {
    gort::run(|| {
        let (mut tx, rx) = mpsc::channel::<u64>(4);
        let feeder = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                for i in 0..1000u64 {
                    tx.send(i).await.unwrap();
                }
            })
        });
        let sum: u64 = gort::block_on(rx.fold(0, |a, v| async move { a + v }));
        assert_eq!(sum, 999 * 1000 / 2);
        feeder.join().unwrap();
    });
}

#[test]
fn many_goroutines_wait_on_futures_without_losing_a_wake_up() {
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let n = 2000;
        let done = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        let mut hs = Vec::new();
        for i in 0..n {
            let (tx, rx) = oneshot::channel::<usize>();
            senders.push(tx);
            let d = done.clone();
            hs.push(gort::go(move || {
                let v = gort::block_on(rx).unwrap();
                d.fetch_add(1, SeqCst);
                v == i
            }));
        }
        // Completed from another goroutine, racing the waiters' polls and parks.
        gort::go(move || {
            for (i, tx) in senders.into_iter().enumerate() {
                tx.send(i).unwrap();
                if i % 100 == 0 {
                    gort::runtime::gosched();
                }
            }
        });
        for h in hs {
            assert!(h.join().unwrap());
        }
        assert_eq!(done.load(SeqCst), n);
    });
}

#[test]
fn async_code_awaits_goroutines() {
    let rt = gort::Builder::new().procs(2).build().unwrap();
    // An async executor (futures' single-threaded pool) drives several goroutines at once.
    let futs: Vec<_> = (0..50u64)
        .map(|i| {
            rt.go_future(move || {
                let (tx, rx) = gort::chan::bounded(0);
                gort::go(move || {
                    gort::time::sleep(Duration::from_millis(1));
                    tx.send(i * 2).unwrap()
                });
                rx.recv().unwrap()
            })
        })
        .collect();
    let results = futures::executor::block_on(futures::future::join_all(futs));
    let sum: u64 = results.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(sum, 2 * (49 * 50 / 2));
}

#[test]
fn a_panicking_goroutine_gives_an_err_to_its_future() {
    let rt = gort::Builder::new().build().unwrap();
    let fut = rt.go_future(|| -> u8 { panic!("in a goroutine") });
    let err = futures::executor::block_on(fut).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"in a goroutine"));
    // The runtime is still fine.
    assert_eq!(futures::executor::block_on(rt.go_future(|| 5)).unwrap(), 5);
}
