//! Go's runtime channel tests, ported to gort.
//!
//! Source: the Go repository's `src/runtime/chan_test.go` at go1.19.8 (read from a local
//! install at `/usr/lib/go-1.19/src/runtime/chan_test.go`). Copyright 2009 The Go Authors;
//! Go's tests are under a BSD-style license (the LICENSE file of the Go repository).
//!
//! Ported: TestChan, TestNonblockRecvRace, TestNonblockSelectRace(2), TestSelfSelect,
//! TestSelectStress, TestSelectFairness, TestChanSendInterface, TestPseudoRandomSend,
//! TestMultiConsumer, TestSelectDuplicateChannel and the channel part of TestSelectStackAdjust.
//! Not ported: TestShrinkStackDuringBlockedSend and TestNoShrinkStackWhileParking (they race
//! Go's garbage collector shrinking a goroutine's stack against a channel operation; gort
//! never moves or shrinks a live stack). Where an iteration count is scaled down from Go's,
//! a comment says so: these tests must pass quickly on a loaded 2-core machine.
//!
//! `runtime.GOMAXPROCS(n)` becomes a runtime built with `procs(n)`; a nil channel is
//! `chan::never()` / `chan::never_sender()`; `v, ok := <-c` is `recv()`, `Err` once closed.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::watchdog;
use gort::chan::{self, Receiver, RecvError, RecvTimeoutError, Select, Sender, TrySendError};
use gort::sync::WaitGroup;
use gort::{go, select, Builder};

/// Runs `f` as the main goroutine of a fresh runtime with `procs` Ps (0: the default), failing
/// the test if it has not finished within 60 s.
fn run<T: Send + 'static>(procs: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog(60, move || {
        let b = if procs == 0 {
            Builder::new()
        } else {
            Builder::new().procs(procs)
        };
        b.build().expect("build a runtime").run(f)
    })
}

/// Parks the calling goroutine for `d`: a timed receive that nobody answers. (Only channels
/// are used here, so these tests depend on nothing but `gort::chan` and `WaitGroup`.)
fn sleep(d: Duration) {
    let (_keep, rx) = chan::bounded::<()>(0);
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
}

fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

// ---------------------------------------------------------------- TestChan --
// Capacities 0..200, as Go (20 in -short mode).

fn test_chan_cap(chan_cap: usize) {
    {
        // Ensure that receive from empty chan blocks.
        let (c, c_rx) = chan::bounded::<i32>(chan_cap);
        let recv1 = flag();
        let (r, f) = (c_rx.clone(), recv1.clone());
        go(move || {
            let _ = r.recv();
            f.store(true, SeqCst);
        });
        let recv2 = flag();
        let (r, f) = (c_rx.clone(), recv2.clone());
        go(move || {
            let _ = r.recv();
            f.store(true, SeqCst);
        });
        sleep(Duration::from_millis(1));
        assert!(
            !recv1.load(SeqCst) && !recv2.load(SeqCst),
            "chan[{chan_cap}]: receive from empty chan"
        );
        // Ensure that non-blocking receive does not block.
        select! {
            recv(c_rx) -> _ => panic!("chan[{chan_cap}]: receive from empty chan"),
            default => {}
        }
        c.send(0).unwrap();
        c.send(0).unwrap();
    }

    {
        // Ensure that send to full chan blocks.
        let (c, c_rx) = chan::bounded::<usize>(chan_cap);
        for i in 0..chan_cap {
            c.send(i).unwrap();
        }
        let sent = flag();
        let (w, f) = (c.clone(), sent.clone());
        go(move || {
            w.send(0).unwrap();
            f.store(true, SeqCst);
        });
        sleep(Duration::from_millis(1));
        assert!(!sent.load(SeqCst), "chan[{chan_cap}]: send to full chan");
        // Ensure that non-blocking send does not block.
        select! {
            send(c, 0) -> _ => panic!("chan[{chan_cap}]: send to full chan"),
            default => {}
        }
        assert_eq!(c.try_send(7), Err(TrySendError::Full(7)));
        c_rx.recv().unwrap();
    }

    {
        // Ensure that we receive 0 (here: the buffered values, then Err) from closed chan.
        let (c, c_rx) = chan::bounded::<usize>(chan_cap);
        for i in 0..chan_cap {
            c.send(i).unwrap();
        }
        assert!(c.close());
        for i in 0..chan_cap {
            assert_eq!(c_rx.recv(), Ok(i), "chan[{chan_cap}]");
        }
        assert_eq!(c_rx.recv(), Err(RecvError), "chan[{chan_cap}]");
        assert_eq!(c_rx.recv(), Err(RecvError), "chan[{chan_cap}]");
    }

    {
        // Ensure that close unblocks receive.
        let (c, c_rx) = chan::bounded::<i32>(chan_cap);
        let (done, done_rx) = chan::bounded(0);
        go(move || {
            let v = c_rx.recv();
            done.send(v == Err(RecvError)).unwrap();
        });
        sleep(Duration::from_millis(1));
        c.close();
        assert!(
            done_rx.recv().unwrap(),
            "chan[{chan_cap}]: received non zero from closed chan"
        );
    }

    {
        // Send 100 integers, ensure that we receive them non-corrupted in FIFO order.
        let (c, c_rx) = chan::bounded::<usize>(chan_cap);
        let w = c.clone();
        go(move || {
            for i in 0..100 {
                w.send(i).unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(c_rx.recv(), Ok(i), "chan[{chan_cap}]");
        }
        // (Go repeats this with the `v, ok :=` form of receive, which is the same call here.)

        // Send 1000 integers in 4 goroutines, ensure that we receive what we send.
        const P: usize = 4;
        const L: usize = 1000;
        for _ in 0..P {
            let w = c.clone();
            go(move || {
                for i in 0..L {
                    w.send(i).unwrap();
                }
            });
        }
        let (done, done_rx) = chan::bounded::<HashMap<usize, usize>>(0);
        for _ in 0..P {
            let (r, done) = (c_rx.clone(), done.clone());
            go(move || {
                let mut recv = HashMap::new();
                for _ in 0..L {
                    *recv.entry(r.recv().unwrap()).or_insert(0) += 1;
                }
                done.send(recv).unwrap();
            });
        }
        let mut recv = HashMap::new();
        for _ in 0..P {
            for (k, v) in done_rx.recv().unwrap() {
                *recv.entry(k).or_insert(0) += v;
            }
        }
        assert_eq!(recv.len(), L, "chan[{chan_cap}]: received values");
        assert!(recv.values().all(|&v| v == P), "chan[{chan_cap}]: counts");
    }

    {
        // Test len/cap.
        let (c, c_rx) = chan::bounded::<usize>(chan_cap);
        assert_eq!(
            (c.len(), c.capacity()),
            (0, Some(chan_cap)),
            "chan[{chan_cap}]"
        );
        for i in 0..chan_cap {
            c.send(i).unwrap();
        }
        assert_eq!((c.len(), c.capacity()), (chan_cap, Some(chan_cap)));
        assert_eq!((c_rx.len(), c_rx.capacity()), (chan_cap, Some(chan_cap)));
    }
}

#[test]
fn test_chan() {
    run(4, || {
        for chan_cap in 0..200 {
            test_chan_cap(chan_cap);
        }
    });
}

// ---------------------------------------------------------------- TestNonblockRecvRace --

#[test]
fn test_nonblock_recv_race() {
    run(0, || {
        for _ in 0..10_000 {
            let (c, c_rx) = chan::bounded(1);
            c.send(1).unwrap();
            let r = c_rx.clone();
            let h = go(move || {
                select! {
                    recv(r) -> _ => true,
                    default => false,
                }
            });
            c.close();
            c_rx.recv().ok();
            assert!(h.join().unwrap(), "chan is not ready");
        }
    });
}

// ---------------------------------------------------------------- TestNonblockSelectRace --
// A select acts on the state of the channels at one moment, not over a smeared time window:
// from the time the goroutine is created, at least one of c1 and c2 is ready, so its
// non-blocking select must never take the default case. 100,000 iterations, as Go (1,000 in
// -short mode), for each of the two tests.

fn nonblock_select_race(close_c2: bool) {
    let (done, done_rx) = chan::bounded(1);
    for _ in 0..100_000 {
        let (c1, c1_rx) = chan::bounded(1);
        let (c2, c2_rx) = chan::bounded(if close_c2 { 0 } else { 1 });
        c1.send(1).unwrap();
        let (r1, r2, done) = (c1_rx.clone(), c2_rx.clone(), done.clone());
        go(move || {
            select! {
                recv(r1) -> _ => {}
                recv(r2) -> _ => {}
                default => {
                    done.send(false).unwrap();
                    return;
                }
            }
            done.send(true).unwrap();
        });
        if close_c2 {
            c2.close();
        } else {
            c2.send(1).unwrap();
        }
        select! {
            recv(c1_rx) -> _ => {}
            default => {}
        }
        assert!(done_rx.recv().unwrap(), "no chan is ready");
    }
}

#[test]
fn test_nonblock_select_race() {
    run(0, || nonblock_select_race(false));
}

/// Same as TestNonblockSelectRace, but close(c2) replaces c2 <- 1.
#[test]
fn test_nonblock_select_race2() {
    run(0, || nonblock_select_race(true));
}

// ---------------------------------------------------------------- TestSelfSelect --
// Send and receive on the same channel in one select neither crash nor deadlock, and on an
// unbuffered channel a goroutine never receives its own value.

#[test]
fn test_self_select() {
    run(2, || {
        for chan_cap in [0, 10] {
            let wg = Arc::new(WaitGroup::new());
            wg.add(2);
            let (c, c_rx) = chan::bounded::<usize>(chan_cap);
            let hs: Vec<_> = (0..2)
                .map(|p| {
                    let (c, c_rx, wg) = (c.clone(), c_rx.clone(), wg.clone());
                    go(move || {
                        let self_receive =
                            |v: Result<usize, RecvError>| chan_cap == 0 && v == Ok(p);
                        let mut ok = true;
                        for i in 0..1000 {
                            if p == 0 || i % 2 == 0 {
                                select! {
                                    send(c, p) -> res => res.unwrap(),
                                    recv(c_rx) -> v => if self_receive(v) { ok = false; break },
                                }
                            } else {
                                select! {
                                    recv(c_rx) -> v => if self_receive(v) { ok = false; break },
                                    send(c, p) -> res => res.unwrap(),
                                }
                            }
                        }
                        wg.done();
                        ok
                    })
                })
                .collect();
            wg.wait();
            for h in hs {
                assert!(h.join().unwrap(), "self receive (cap {chan_cap})");
            }
        }
    });
}

// ---------------------------------------------------------------- TestSelectStress --
// 4 goroutines send N values on each of 4 channels, 4 receive N from each, one sends N on each
// in a single select and one receives N from each in a single select; a channel leaves a
// select (becomes nil) once its N are done. All this must not deadlock. N = 100,000 (10,000
// in -short mode) and 10 Ps, as Go.

#[test]
fn test_select_stress() {
    const N: usize = 100_000;
    run(10, || {
        let (c, r): (Vec<Sender<i32>>, Vec<Receiver<i32>>) =
            [0, 0, 2, 3].into_iter().map(chan::bounded).unzip();
        let wg = Arc::new(WaitGroup::new());
        wg.add(10);
        for k in 0..4 {
            let (ck, wg1) = (c[k].clone(), wg.clone());
            go(move || {
                for _ in 0..N {
                    ck.send(0).unwrap();
                }
                wg1.done();
            });
            let (rk, wg1) = (r[k].clone(), wg.clone());
            go(move || {
                for _ in 0..N {
                    rk.recv().unwrap();
                }
                wg1.done();
            });
        }
        let (mut c1, wg1) = (c.clone(), wg.clone());
        go(move || {
            let mut n = [0; 4];
            for _ in 0..4 * N {
                let k = select! {
                    send(c1[3], 0) -> res => res.map(|_| 3),
                    send(c1[2], 0) -> res => res.map(|_| 2),
                    send(c1[0], 0) -> res => res.map(|_| 0),
                    send(c1[1], 0) -> res => res.map(|_| 1),
                }
                .unwrap();
                n[k] += 1;
                if n[k] == N {
                    c1[k] = chan::never_sender();
                }
            }
            wg1.done();
        });
        let (mut r1, wg1) = (r.clone(), wg.clone());
        go(move || {
            let mut n = [0; 4];
            for _ in 0..4 * N {
                let k = select! {
                    recv(r1[0]) -> v => v.map(|_| 0),
                    recv(r1[1]) -> v => v.map(|_| 1),
                    recv(r1[2]) -> v => v.map(|_| 2),
                    recv(r1[3]) -> v => v.map(|_| 3),
                }
                .unwrap();
                n[k] += 1;
                if n[k] == N {
                    r1[k] = chan::never();
                }
            }
            wg1.done();
        });
        wg.wait();
    });
}

// ---------------------------------------------------------------- TestSelectFairness --
// With both c1 and c2 always ready, a select over c1..c4 must pick c1 and c2 about equally
// often. Go's bound is six nines of confidence (|r - 0.5| <= 0.0245 over 10,000 trials); the
// bound here is 0.05, about ten standard deviations, so a fair select never fails it.

#[test]
fn test_select_fairness() {
    const TRIALS: usize = 10_000;
    let (cnt1, cnt2) = run(0, || {
        let (c1, c1_rx) = chan::bounded::<u8>(TRIALS + 1);
        let (c2, c2_rx) = chan::bounded::<u8>(TRIALS + 1);
        for _ in 0..TRIALS + 1 {
            c1.send(1).unwrap();
            c2.send(2).unwrap();
        }
        let (_c3, c3_rx) = chan::bounded::<u8>(0);
        let (_c4, c4_rx) = chan::bounded::<u8>(0);
        let (out, out_rx) = chan::bounded::<u8>(0);
        let (done, done_rx) = chan::bounded::<u8>(0);
        let h = go(move || loop {
            let b = select! {
                recv(c3_rx) -> b => b,
                recv(c4_rx) -> b => b,
                recv(c1_rx) -> b => b,
                recv(c2_rx) -> b => b,
            }
            .unwrap();
            select! {
                send(out, b) -> res => res.unwrap(),
                recv(done_rx) -> _ => return,
            }
        });
        let (mut cnt1, mut cnt2) = (0, 0);
        for _ in 0..TRIALS {
            match out_rx.recv().unwrap() {
                1 => cnt1 += 1,
                2 => cnt2 += 1,
                b => panic!("unexpected value {b} on channel"),
            }
        }
        done.close();
        h.join().unwrap();
        (cnt1, cnt2)
    });
    let r = cnt1 as f64 / TRIALS as f64;
    let e = (r - 0.5).abs();
    assert!(
        e <= 0.05,
        "unfair select: in {TRIALS} trials, results were {cnt1}, {cnt2}"
    );
}

// ---------------------------------------------------------------- TestChanSendInterface --
// Go sends interface values (`chan any`); the Rust counterpart is a boxed trait object.

#[test]
fn test_chan_send_interface() {
    run(0, || {
        struct Mt;
        type Any = Box<dyn std::any::Any + Send>;
        let (c, c_rx) = chan::bounded::<Any>(1);
        c.send(Box::new(Mt)).unwrap();
        select! {
            send(c, Box::new(Mt)) -> _ => panic!("the channel is full"),
            default => {}
        }
        select! {
            send(c, Box::new(Mt)) -> _ => panic!("the channel is full"),
            send(c, Box::new(1u8)) -> _ => panic!("the channel is full"),
            default => {}
        }
        assert!(c_rx.recv().unwrap().is::<Mt>());
        select! {
            send(c, Box::new(Mt)) -> res => res.unwrap(),
            send(c, Box::new(1u8)) -> res => res.unwrap(),
            default => panic!("the channel has room"),
        }
        let v = c_rx.try_recv().unwrap();
        assert!(v.is::<Mt>() || v.is::<u8>());
    });
}

// ---------------------------------------------------------------- TestPseudoRandomSend --
// A select between `c <- 1` and `c <- 0` must pick both, each more than a tenth of the time.

#[test]
fn test_pseudo_random_send() {
    run(0, || {
        let n = 100;
        for chan_cap in [0, n] {
            let (c, c_rx) = chan::bounded::<usize>(chan_cap);
            let h = go(move || {
                let mut l = vec![0; n];
                for x in l.iter_mut() {
                    gort::runtime::gosched();
                    *x = c_rx.recv().unwrap();
                }
                l
            });
            for _ in 0..n {
                select! {
                    send(c, 1) -> res => res.unwrap(),
                    send(c, 0) -> res => res.unwrap(),
                }
            }
            let l = h.join().unwrap();
            let n1: usize = l.iter().sum();
            let n0 = n - n1;
            assert!(
                n0 > n / 10 && n1 > n / 10,
                "want pseudorandom, got {n0} zeros and {n1} ones (chan cap {chan_cap})"
            );
        }
    });
}

// ---------------------------------------------------------------- TestMultiConsumer --

#[test]
fn test_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = 271_828;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    run(0, || {
        let (q, q_rx) = chan::bounded::<usize>(NWORK * 3);
        let (r, r_rx) = chan::bounded::<usize>(NWORK * 3);

        // workers
        let wg = Arc::new(WaitGroup::new());
        for w in 0..NWORK {
            wg.add(1);
            let (q_rx, r, wg) = (q_rx.clone(), r.clone(), wg.clone());
            go(move || {
                for v in q_rx.iter() {
                    // mess with the fifo-ish nature of range
                    if PN[w % PN.len()] == v {
                        gort::runtime::gosched();
                    }
                    r.send(v).unwrap();
                }
                wg.done();
            });
        }
        drop(q_rx);

        // feeder & closer
        let expect = Arc::new(AtomicUsize::new(0));
        let e = expect.clone();
        go(move || {
            for i in 0..NITER {
                let v = PN[i % PN.len()];
                e.fetch_add(v, SeqCst);
                q.send(v).unwrap();
            }
            q.close(); // no more work
            wg.wait(); // workers done
            r.close(); // ... so there can be no more results
        });

        // consume & check
        let (mut n, mut s) = (0, 0);
        for v in r_rx.iter() {
            n += 1;
            s += v;
        }
        let expect = expect.load(SeqCst);
        assert!(
            n == NITER && s == expect,
            "expected sum {expect} (got {s}) from {NITER} iter (saw {n})"
        );
    });
}

// ---------------------------------------------------------------- TestSelectDuplicateChannel --
// A goroutine can be queued on the same channel several times (two cases on c).

#[test]
fn test_select_duplicate_channel() {
    run(0, || {
        let (c, c_rx) = chan::bounded::<i32>(0);
        let (d, d_rx) = chan::bounded::<i32>(0);
        let (e, e_rx) = chan::bounded::<i32>(0);

        // goroutine A
        let (c1, c2) = (c_rx.clone(), c_rx.clone());
        go(move || {
            select! {
                recv(c1) -> _ => {}
                recv(c2) -> _ => {}
                recv(d_rx) -> _ => {}
            }
            e.send(9).unwrap();
        });
        sleep(Duration::from_millis(1)); // make sure goroutine A gets queued first on c

        // goroutine B
        let b = go(move || c_rx.recv());
        sleep(Duration::from_millis(1)); // make sure goroutine B gets queued on c before continuing

        d.send(7).unwrap(); // wake up A, it dequeues itself from c
        assert_eq!(e_rx.recv(), Ok(9)); // A tells us it's done
        c.send(8).unwrap(); // wake up B
        assert_eq!(b.join().unwrap(), Ok(8));
    });
}

// ---------------------------------------------------------------- TestSelectStackAdjust --
// In Go this checks that a select's receive slots pointing into the stack survive stack
// shrinking. gort never moves a stack, so what is left is the channel part: two goroutines,
// one with duplicate cases (through the dynamic `Select`), block with a reference to a local
// across the select, and one close wakes both.

#[test]
fn test_select_stack_adjust() {
    run(0, || {
        let (_c, c_rx) = chan::bounded::<i32>(0);
        let (d, d_rx) = chan::bounded::<i32>(0);
        let (ready1, ready1_rx) = chan::bounded::<bool>(0);
        let (ready2, ready2_rx) = chan::bounded::<bool>(0);

        let f = move |ready: Sender<bool>, dup: bool, c: Receiver<i32>, d: Receiver<i32>| {
            move || {
                ready.send(true).unwrap();
                let mut val = 42;
                let cx = &mut val;
                let never = chan::never();
                let (c2, d2) = if dup { (&c, &d) } else { (&never, &never) };
                let mut sel = Select::new();
                let ic = sel.recv(&c);
                let ic2 = sel.recv(c2);
                let id = sel.recv(&d);
                let id2 = sel.recv(d2);
                let op = sel.select();
                let i = op.index();
                let got = match i {
                    _ if i == ic => op.recv(&c),
                    _ if i == ic2 => op.recv(c2),
                    _ if i == id => op.recv(&d),
                    _ if i == id2 => op.recv(d2),
                    _ => panic!("unknown index {i}"),
                };
                assert_eq!(got, Err(RecvError), "woken by the close of d");
                assert!(i == id || i == id2, "receive from d");
                assert_eq!(*cx, 42, "val changed");
                *cx = 43;
                assert_eq!(val, 43, "changing *cx failed to change val");
                ready.send(true).unwrap();
            }
        };
        go(f(ready1, false, c_rx.clone(), d_rx.clone()));
        go(f(ready2, true, c_rx, d_rx));

        // Let the goroutines get into the select.
        ready1_rx.recv().unwrap();
        ready2_rx.recv().unwrap();
        sleep(Duration::from_millis(10));

        // Wake selects.
        d.close();
        ready1_rx.recv().unwrap();
        ready2_rx.recv().unwrap();
    });
}
