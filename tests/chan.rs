//! Channels, `select!` and `Select`: gort's own tests (Go's ported tests are in go_chan*.rs).

use gort::chan::{self, bounded, never, unbounded, RecvTimeoutError, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

fn rt2() -> gort::Runtime {
    gort::Builder::new().procs(2).build().unwrap()
}

#[test]
fn pingpong_goroutines() {
    rt2().run(|| {
        let (a_tx, a_rx) = bounded::<u64>(0);
        let (b_tx, b_rx) = bounded::<u64>(0);
        let h = gort::go(move || {
            for v in a_rx.iter() {
                b_tx.send(v + 1).unwrap();
            }
        });
        let mut x = 0;
        for _ in 0..100_000 {
            a_tx.send(x).unwrap();
            x = b_rx.recv().unwrap();
        }
        assert_eq!(x, 100_000);
        drop(a_tx);
        h.join().unwrap();
    });
}

#[test]
fn thread_and_goroutine_talk() {
    let (tx, rx) = bounded::<u32>(0);
    let (back_tx, back_rx) = unbounded::<u32>();
    let rt = rt2();
    let t = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        drop(tx);
        back_rx.iter().sum::<u32>()
    });
    rt.run(move || {
        for v in rx.iter() {
            back_tx.send(v).unwrap();
        }
    });
    assert_eq!(t.join().unwrap(), (0..1000).sum());
}

#[test]
fn buffered_fifo_and_close_drains() {
    let (tx, rx) = bounded(3);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    tx.send(3).unwrap();
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert!(tx.close());
    assert_eq!(tx.send(5).unwrap_err().into_inner(), 5);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn mpmc_every_value_once() {
    rt2().run(|| {
        let (tx, rx) = bounded::<u64>(16);
        let (sum_tx, sum_rx) = unbounded::<(u64, u64)>();
        let n = 4u64;
        let per = 20_000u64;
        for p in 0..n {
            let tx = tx.clone();
            gort::go(move || {
                for i in 0..per {
                    tx.send(p * per + i).unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..n {
            let rx = rx.clone();
            let sum_tx = sum_tx.clone();
            gort::go(move || {
                let (mut s, mut c) = (0, 0);
                for v in rx.iter() {
                    s += v;
                    c += 1;
                }
                sum_tx.send((s, c)).unwrap();
            });
        }
        drop(sum_tx);
        let (s, c) = sum_rx.iter().fold((0, 0), |(a, b), (s, c)| (a + s, b + c));
        let total = n * per;
        assert_eq!(c, total);
        assert_eq!(s, total * (total - 1) / 2);
    });
}

#[test]
fn select_macro_basic() {
    rt2().run(|| {
        let (tx1, rx1) = bounded::<i32>(0);
        let (tx2, rx2) = bounded::<i32>(0);
        // The senders stay alive until the end: dropping them would close the channels,
        // and a closed channel is a ready case.
        let (tx1c, tx2c) = (tx1.clone(), tx2.clone());
        gort::go(move || tx1.send(1).unwrap());
        gort::go(move || tx2.send(2).unwrap());
        let mut got = vec![];
        for _ in 0..2 {
            gort::select! {
                recv(rx1) -> v => got.push(v.unwrap()),
                recv(rx2) -> v => got.push(v.unwrap()),
            }
        }
        got.sort();
        assert_eq!(got, [1, 2]);
        drop((tx1c, tx2c));
    });
}

#[test]
fn select_send_pairs_with_receiver() {
    rt2().run(|| {
        let (tx, rx) = bounded::<i32>(0);
        let h = gort::go(move || (0..1000).map(|_| rx.recv().unwrap()).sum::<i32>());
        for i in 0..1000 {
            gort::select! {
                send(tx, i) -> r => r.unwrap(),
                recv(never::<()>()) -> _ => unreachable!(),
            }
        }
        assert_eq!(h.join().unwrap(), (0..1000).sum());
    });
}

#[test]
fn select_both_sides() {
    // Two selects, each with a send and a receive case on the same unbuffered channel.
    rt2().run(|| {
        let (tx, rx) = bounded::<i32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let h = gort::go(move || {
            let mut n = 0;
            for _ in 0..10_000 {
                gort::select! {
                    send(tx2, 1) -> r => r.unwrap(),
                    recv(rx2) -> v => n += v.unwrap(),
                }
            }
            n
        });
        let mut m = 0;
        for _ in 0..10_000 {
            gort::select! {
                send(tx, 1) -> r => r.unwrap(),
                recv(rx) -> v => m += v.unwrap(),
            }
        }
        let n = h.join().unwrap();
        assert_eq!(n + m, 10_000);
    });
}

#[test]
fn timeouts() {
    let (_tx, rx) = bounded::<i32>(0);
    let t0 = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
    rt2().run(move || {
        let t0 = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(30)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let t0 = Instant::now();
        gort::select! {
            recv(rx) -> _ => unreachable!(),
            default(Duration::from_millis(30)) => {},
        }
        assert!(t0.elapsed() >= Duration::from_millis(30));
    });
}

#[test]
fn select_default_when_nothing_ready() {
    let (tx, rx) = bounded::<i32>(0);
    let hit = gort::select! {
        recv(rx) -> _ => false,
        send(tx, 1) -> _ => false,
        default => true,
    };
    assert!(hit);
    let _ = chan::never_sender::<i32>();
}

fn nil_rx() -> gort::chan::Receiver<i32> {
    never()
}

#[test]
fn select_macro_accepts_temporaries_tail_position_and_reassignment() {
    // A temporary channel expression, with and without default.
    let hit = gort::select! {
        recv(nil_rx()) -> _ => false,
        default => true,
    };
    assert!(hit);
    let (tx, rx) = bounded::<i32>(1);
    tx.send(1).unwrap();
    // In a block's tail position, using the block's locals.
    let got = {
        let r = rx.clone();
        gort::select! {
            recv(r) -> v => v.unwrap(),
            default => 0,
        }
    };
    assert_eq!(got, 1);
    // Reassigning a case's channel inside its body (Go sets it to nil).
    let (tx2, _rx2) = bounded::<i32>(1);
    let mut a = tx2.clone();
    let mut sent = 0;
    loop {
        gort::select! {
            send(a, 5) -> r => {
                r.unwrap();
                sent += 1;
                a = chan::never_sender();
            }
            default => break,
        }
    }
    assert_eq!(sent, 1);
    drop(a);
}
