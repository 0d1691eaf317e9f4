//! Go's channel test programs, ported to gort's channels, `select!` and `Select`.
//!
//! Source: the Go repository's `test/chan/` directory at go1.19.8 (read from a local install at
//! `/usr/lib/go-1.19/test/chan/`): fifo.go, sieve1.go, sieve2.go, doubleselect.go,
//! zerosize.go, goroutines.go, sendstmt.go, perm.go (its run-time part), select4.go,
//! select6.go, select7.go and select8.go. select.go, select3.go and nonblock.go are in
//! `tests/go_chan_select.rs`, powser1.go in `tests/go_chan_powser.rs`. Not ported: select2.go
//! (measures Go's heap per select), select5.go (generates Go source; its evaluation-order
//! checks do not apply to `select!`, which evaluates only the chosen send value), powser2.go
//! (powser1.go with interface values). Copyright 2009-2011 The Go Authors; Go's tests are under a
//! BSD-style license (the LICENSE file of the Go repository).
//!
//! Go idioms and their gort counterparts: a nil channel is `chan::never()` /
//! `chan::never_sender()`; `close(c)` is `close()` (or dropping every sender); `v, ok := <-c`
//! is `recv()`, which returns `Err(RecvError)` once the channel is closed and drained; a `for
//! ... range c` loop is `for v in rx.iter()`. A Go program that runs until `main` returns
//! leaves goroutines blocked forever; here they are cancelled when the runtime stops, and
//! where a goroutine can notice (a send fails because the receivers are gone) it returns.

mod common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};

use common::watchdog;
use gort::chan::{self, Receiver, RecvError, SendError, Sender};
use gort::{go, select, Builder};

/// Runs `f` as the main goroutine of a fresh runtime with the default number of Ps (Go's
/// default GOMAXPROCS), failing the test if it has not finished within 60 s.
fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog(60, move || gort::run(f))
}

/// The same with `procs` Ps, for programs that set GOMAXPROCS.
fn run_procs<T: Send + 'static>(procs: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog(60, move || {
        Builder::new()
            .procs(procs)
            .build()
            .expect("build a runtime")
            .run(f)
    })
}

// ---------------------------------------------------------------- fifo.go --
// Test that unbuffered channels act as pure fifos.

const FIFO_N: usize = 10;

fn asynch_fifo() {
    let (tx, rx) = chan::bounded(FIFO_N);
    for i in 0..FIFO_N {
        tx.send(i).unwrap();
    }
    for i in 0..FIFO_N {
        assert_eq!(rx.recv(), Ok(i), "bad receive");
    }
}

fn chain(ch: Receiver<usize>, val: usize, input: Receiver<i32>, out: Sender<i32>) {
    input.recv().unwrap();
    assert_eq!(ch.recv(), Ok(val));
    out.send(1).unwrap();
}

/// Threads together a daisy chain to read the elements in sequence.
fn synch_fifo() {
    let (ch_tx, ch_rx) = chan::bounded(0);
    let (start, mut input) = chan::bounded(0);
    for i in 0..FIFO_N {
        let (out_tx, out_rx) = chan::bounded(0);
        let ch_rx = ch_rx.clone();
        go(move || chain(ch_rx, i, input, out_tx));
        input = out_rx;
    }
    start.send(0).unwrap();
    for i in 0..FIFO_N {
        ch_tx.send(i).unwrap();
    }
    input.recv().unwrap();
}

#[test]
fn fifo() {
    run(|| {
        asynch_fifo();
        synch_fifo();
    });
}

// ---------------------------------------------------------------- sieve1.go --
// Classical inefficient concurrent prime sieve: a linear chain of divisibility filters.

const PRIMES: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

/// Sends the sequence 2, 3, 4, ... to `ch` (until nobody receives any more).
fn generate(ch: Sender<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return;
        }
    }
}

/// Copies the values from `input` to `out`, removing those divisible by `prime`.
fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in input.iter() {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

/// The prime sieve: daisy-chains filter goroutines together.
fn sieve(primes: Sender<u64>) {
    let (tx, mut ch) = chan::bounded(0);
    go(move || generate(tx));
    loop {
        // Note that ch is different on each iteration.
        let Ok(prime) = ch.recv() else { return };
        if primes.send(prime).is_err() {
            return;
        }
        let (tx1, ch1) = chan::bounded(0);
        go(move || filter(ch, tx1, prime));
        ch = ch1;
    }
}

#[test]
fn sieve1() {
    run(|| {
        let (tx, primes) = chan::bounded(0);
        go(move || sieve(tx));
        for want in PRIMES {
            assert_eq!(primes.recv(), Ok(want));
        }
    });
}

// ---------------------------------------------------------------- sieve2.go --
// Prime sieve of Eratosthenes over odd candidates: a heap of channels of multiples, merged
// into one channel of composites, and a proxy goroutine whose select disables its send case
// (nil channel) while its buffer is empty.

/// A channel of odd numbers, starting from 5.
fn odds() -> Receiver<u64> {
    let (tx, rx) = chan::bounded(50);
    go(move || {
        let mut n = 5;
        while tx.send(n).is_ok() {
            n += 2;
        }
    });
    rx
}

/// A channel of odd multiples of the prime `p`, starting from p*p.
fn multiples(p: u64) -> Receiver<u64> {
    let (tx, rx) = chan::bounded(10);
    go(move || {
        let mut n = p * p;
        while tx.send(n).is_ok() {
            n += 2 * p;
        }
    });
    rx
}

/// A channel and the next value received from it; ordered by that value only.
struct PeekCh {
    head: u64,
    ch: Receiver<u64>,
}
impl PartialEq for PeekCh {
    fn eq(&self, o: &Self) -> bool {
        self.head == o.head
    }
}
impl Eq for PeekCh {}
impl PartialOrd for PeekCh {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for PeekCh {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.head.cmp(&o.head)
    }
}

/// A channel to serve as a sending proxy to `out`: a goroutine receives from it into an
/// expanding buffer, so that sending to the proxy never blocks.
fn sendproxy(out: Sender<u64>) -> Sender<u64> {
    let (proxy, from) = chan::bounded(10);
    go(move || {
        let disabled = chan::never_sender();
        let mut buf = VecDeque::new();
        loop {
            // Buffer empty: disable output.
            let c = if buf.is_empty() { &disabled } else { &out };
            select! {
                recv(from) -> e => match e {
                    Ok(e) => buf.push_back(e),
                    Err(RecvError) => return,
                },
                send(c, *buf.front().unwrap()) -> res => {
                    if res.is_err() {
                        return;
                    }
                    buf.pop_front();
                }
            }
        }
    });
    proxy
}

/// A channel of primes.
fn sieve2_primes() -> Receiver<u64> {
    // The output values.
    let (out, out_rx) = chan::bounded(10);
    out.send(2).unwrap();
    out.send(3).unwrap();

    // The channel of all composites to be eliminated in increasing order.
    let (composites, composites_rx) = chan::bounded(50);

    // The feedback loop.
    let (primes, primes_rx) = chan::bounded(10);
    primes.send(3).unwrap();

    // Merge channels of multiples of `primes` into `composites`.
    go(move || {
        let mut h = BinaryHeap::new();
        let mut min = 15;
        loop {
            let Ok(p) = primes_rx.recv() else { return };
            let m = multiples(p);
            let head = m.recv().unwrap();
            while min < head {
                if composites.send(min).is_err() {
                    return;
                }
                let Reverse(mut minchan): Reverse<PeekCh> = h.pop().unwrap();
                min = minchan.head;
                minchan.head = minchan.ch.recv().unwrap();
                h.push(Reverse(minchan));
            }
            while min == head {
                let Reverse(mut minchan): Reverse<PeekCh> = h.pop().unwrap();
                min = minchan.head;
                minchan.head = minchan.ch.recv().unwrap();
                h.push(Reverse(minchan));
            }
            if composites.send(head).is_err() {
                return;
            }
            let next = m.recv().unwrap();
            h.push(Reverse(PeekCh { head: next, ch: m }));
        }
    });

    // Sieve out `composites` from `candidates`.
    go(move || {
        // The merging goroutine receives from `primes` much more slowly than this one sends to
        // it, so a proxy does automatic buffering (else the two would deadlock).
        let primes = sendproxy(primes);
        let candidates = odds();
        let mut p = candidates.recv().unwrap();
        loop {
            let Ok(c) = composites_rx.recv() else { return };
            while p < c {
                if primes.send(p).is_err() || out.send(p).is_err() {
                    return;
                }
                p = candidates.recv().unwrap();
            }
            if p == c {
                p = candidates.recv().unwrap();
            }
        }
    });

    out_rx
}

#[test]
fn sieve2() {
    run(|| {
        let primes = sieve2_primes();
        for want in PRIMES {
            assert_eq!(primes.recv(), Ok(want));
        }
    });
}

// ---------------------------------------------------------------- doubleselect.go --
// The situation in which two cases of a select could both end up running: the same value
// would then reach two channels. 100,000 iterations and 2 Ps, as Go.

const DOUBLESELECT_N: usize = 100_000;

/// Sends a counter to one of four channels, then closes all four.
fn ds_sender(n: usize, c1: Sender<usize>, c2: Sender<usize>, c3: Sender<usize>, c4: Sender<usize>) {
    for i in 0..n {
        select! {
            send(c1, i) -> res => res.unwrap(),
            send(c2, i) -> res => res.unwrap(),
            send(c3, i) -> res => res.unwrap(),
            send(c4, i) -> res => res.unwrap(),
        }
    }
    c1.close();
    c2.close();
    c3.close();
    c4.close();
}

/// Forwards the values from `input` onto `out`.
fn mux(out: Sender<usize>, input: Receiver<usize>, done: Sender<bool>) {
    for v in input.iter() {
        out.send(v).unwrap();
    }
    done.send(true).unwrap();
}

/// Gets a stream of values from the four muxes and checks for duplicates.
fn recver(input: Receiver<usize>) -> usize {
    let mut seen = HashSet::new();
    for v in input.iter() {
        assert!(seen.insert(v), "got duplicate value: {v}");
    }
    seen.len()
}

#[test]
fn doubleselect() {
    let got = run_procs(2, || {
        let (c1, r1) = chan::bounded(0);
        let (c2, r2) = chan::bounded(0);
        let (c3, r3) = chan::bounded(0);
        let (c4, r4) = chan::bounded(0);
        let (done, done_rx) = chan::bounded(0);
        let (cmux, cmux_rx) = chan::bounded(0);
        go(move || ds_sender(DOUBLESELECT_N, c1, c2, c3, c4));
        for r in [r1, r2, r3, r4] {
            let (cmux, done) = (cmux.clone(), done.clone());
            go(move || mux(cmux, r, done));
        }
        go(move || {
            for _ in 0..4 {
                done_rx.recv().unwrap();
            }
            cmux.close();
        });
        recver(cmux_rx)
    });
    // Not in Go's test: every value arrived exactly once.
    assert_eq!(got, DOUBLESELECT_N);
}

// ---------------------------------------------------------------- zerosize.go --
// Channels of a zero-sized type. Go only makes them; here they carry values too.

#[test]
fn zerosize() {
    run(|| {
        let (tx, rx) = chan::bounded::<[u8; 0]>(0);
        let h = go(move || rx.recv());
        tx.send([]).unwrap();
        assert_eq!(h.join().unwrap(), Ok([]));

        let (tx, rx) = chan::bounded::<[u8; 0]>(1);
        tx.send([]).unwrap();
        assert_eq!(rx.recv(), Ok([]));

        let (tx, rx) = chan::bounded::<()>(0);
        let h = go(move || rx.recv());
        tx.send(()).unwrap();
        assert_eq!(h.join().unwrap(), Ok(()));

        let (tx, rx) = chan::bounded::<()>(1);
        tx.send(()).unwrap();
        assert_eq!(tx.len(), 1);
        assert!(
            tx.try_send(()).is_err(),
            "a zero-sized value must still count against cap"
        );
        assert_eq!(rx.recv(), Ok(()));
        assert!(rx.is_empty());
    });
}

// ---------------------------------------------------------------- goroutines.go --
// Torture test for goroutines: make a lot of goroutines, threaded together, and tear them
// down cleanly.

#[test]
fn goroutines() {
    run(|| {
        let n = 10_000;
        let (leftmost, leftmost_rx) = chan::bounded::<i32>(0);
        // f(left, right): left <- <-right
        let mut left = leftmost;
        for _ in 0..n {
            let (right, right_rx) = chan::bounded(0);
            go(move || left.send(right_rx.recv().unwrap()).unwrap());
            left = right;
        }
        let right = left;
        go(move || right.send(1).unwrap());
        assert_eq!(leftmost_rx.recv(), Ok(1));
    });
}

// ---------------------------------------------------------------- sendstmt.go --
// A send whose channel is itself received from a channel, inside a select.

#[test]
#[allow(clippy::nonminimal_bool)] // sendprec: `c <- false || true` sends (false || true)
fn sendstmt() {
    run(|| {
        let (cc, cc_rx) = chan::bounded::<Sender<i32>>(1);
        let (c, c_rx) = chan::bounded(1);
        cc.send(c).unwrap();
        select! {
            send(cc_rx.recv().unwrap(), 2) -> res => res.unwrap(),
            default => panic!("nonblock"),
        }
        assert_eq!(c_rx.recv(), Ok(2), "bad receive");

        let (c, c_rx) = chan::bounded(1);
        c.send(false || true).unwrap();
        assert_eq!(c_rx.recv(), Ok(true), "sent false");
    });
}

// ---------------------------------------------------------------- perm.go --
// perm.go checks at compile time that a receive-only channel cannot send and a send-only one
// cannot receive; gort's `Receiver` has no `send` and `Sender` no `recv`, so those lines have no
// run-time counterpart. What remains: both ends are MPMC handles that can move between
// goroutines, and (unlike Go, where close needs a send-capable channel) either end may close.

fn assert_handle<T: Clone + Send + Sync + 'static>() {}

#[test]
fn perm() {
    assert_handle::<Sender<i32>>();
    assert_handle::<Receiver<i32>>();
    run(|| {
        let (tx, rx) = chan::bounded::<i32>(1);
        tx.send(0).unwrap();
        assert_eq!(rx.recv(), Ok(0));
        assert!(rx.close(), "the receiving side closes");
        assert!(!tx.close(), "closed once only");
        assert_eq!(tx.send(0), Err(SendError(0)));
    });
}

// ---------------------------------------------------------------- select4.go --
// A select proceeds when a value is ready; the destination of the case not chosen is never
// evaluated.

#[test]
fn select4() {
    run(|| {
        fn f() -> &'static mut i32 {
            panic!("BUG: called f");
        }
        let mut x = 0;
        let (c, c_rx) = chan::bounded(1);
        let (_c1, c1_rx) = chan::bounded::<i32>(0);
        c.send(42).unwrap();
        select! {
            recv(c1_rx) -> v => *f() = v.unwrap(),
            recv(c_rx) -> v => {
                x = v.unwrap();
                assert_eq!(x, 42, "BUG");
            }
        }
        assert_eq!(x, 42);
    });
}

// ---------------------------------------------------------------- select6.go --
// Go issue 2075: a select that fails on a channel with several waiters must not corrupt that
// channel's queue of waiters.

#[test]
fn select6() {
    run(|| {
        let (c1, c1_rx) = chan::bounded::<bool>(0);
        let (c2, c2_rx) = chan::bounded::<bool>(0);
        let (c3, c3_rx) = chan::bounded::<bool>(0);
        let r = c1_rx.clone();
        go(move || r.recv());
        go(move || {
            select! {
                recv(c1_rx) -> _ => panic!("dummy"),
                recv(c2_rx) -> _ => c3.send(true).unwrap(),
            }
            c1_rx.recv()
        });
        go(move || c2.send(true));
        c3_rx.recv().unwrap();
        c1.send(true).unwrap();
        c1.send(true).unwrap();
    });
}

// ---------------------------------------------------------------- select7.go --
// A select when discarding a value: each way to receive against each way to send.

fn recv1(c: Receiver<i32>) {
    let _ = c.recv();
}

fn recv2(c: Receiver<i32>) {
    select! {
        recv(c) -> _ => {}
    }
}

fn recv3(c: Receiver<i32>) {
    let (_c2, c2_rx) = chan::bounded::<i32>(0);
    select! {
        recv(c) -> _ => {}
        recv(c2_rx) -> _ => {}
    }
}

fn send1(recv: fn(Receiver<i32>)) {
    let (c, rx) = chan::bounded(0);
    go(move || recv(rx));
    gort::runtime::gosched();
    c.send(1).unwrap();
}

fn send2(recv: fn(Receiver<i32>)) {
    let (c, rx) = chan::bounded(0);
    go(move || recv(rx));
    gort::runtime::gosched();
    select! {
        send(c, 1) -> res => res.unwrap(),
    }
}

fn send3(recv: fn(Receiver<i32>)) {
    let (c, rx) = chan::bounded(0);
    go(move || recv(rx));
    gort::runtime::gosched();
    let (c2, _c2_rx) = chan::bounded(0);
    select! {
        send(c, 1) -> res => res.unwrap(),
        send(c2, 1) -> _ => panic!("nobody receives on c2"),
    }
}

#[test]
fn select7() {
    run(|| {
        for recv in [recv1, recv2, recv3] {
            send1(recv);
            send2(recv);
            send3(recv);
        }
    });
}

// ---------------------------------------------------------------- select8.go --
// `break` in 1-, 2- and 3-case selects. In Go, `break` leaves the select; with gort's
// `select!`, as with crossbeam's, `break` acts on the enclosing loop, so each select sits in a
// loop that must be left by that `break` on its first pass.

#[test]
#[allow(clippy::never_loop)] // each loop exists only for the `break` in its select! to leave
fn select8() {
    run(|| {
        let (ch, ch_rx) = chan::bounded(0);
        go(move || while ch.send(5).is_ok() {});

        let mut passes = 0;
        loop {
            passes += 1;
            select! {
                recv(ch_rx) -> v => {
                    assert_eq!(v, Ok(5));
                    break;
                }
            }
            #[allow(unreachable_code)]
            {
                panic!("unreachable");
            }
        }
        loop {
            passes += 1;
            select! {
                default => break,
            }
            #[allow(unreachable_code)]
            {
                panic!("unreachable");
            }
        }
        loop {
            passes += 1;
            select! {
                recv(ch_rx) -> _ => break,
                default => break,
            }
            #[allow(unreachable_code)]
            {
                panic!("unreachable");
            }
        }
        let never = chan::never_sender::<i32>();
        loop {
            passes += 1;
            select! {
                recv(ch_rx) -> _ => break,
                send(never, 10) -> _ => panic!("unreachable"),
                default => break,
            }
            #[allow(unreachable_code)]
            {
                panic!("unreachable");
            }
        }
        assert_eq!(passes, 4);
        // Go's sends `ch <- 10`; its select can never pick that case because nobody receives
        // on ch but itself (self-select, see TestSelfSelect). Here the same case:
        let (ch2, ch2_rx) = chan::bounded::<i32>(0);
        select! {
            recv(ch2_rx) -> _ => panic!("self receive"),
            send(ch2, 10) -> _ => panic!("self send"),
            default => {}
        }
    });
}

#[test]
fn values_outlive_the_runtime() {
    // Not from Go: a channel and its buffered values outlive the runtime that carried them.
    let rx = run(|| {
        let (tx, rx) = chan::bounded(3);
        let h = go(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
            }
        });
        h.join().unwrap();
        rx
    });
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(rx.is_closed(), "every sender is gone");
}
