//! Go's select and non-blocking channel test programs, ported to gort.
//!
//! Source: the Go repository's `test/chan/select.go`, `test/chan/select3.go` and
//! `test/chan/nonblock.go` at go1.19.8 (read from a local install at `/usr/lib/go-1.19/`).
//! Copyright 2009-2010 The Go Authors; Go's tests are under a BSD-style license (the LICENSE
//! file of the Go repository).
//!
//! A nil channel is `chan::never()` / `chan::never_sender()`. Where Go panics (a send on a
//! closed channel), gort returns `Err(SendError(v))` with the value, and the tests check that
//! value. Go's `select {}` (no cases) has no counterpart: an empty `select!` does not compile
//! (as in crossbeam-channel), so the blocking rules are checked with nil-channel cases instead.

mod common;

use std::fmt::Debug;
use std::time::{Duration, Instant};

use common::watchdog;
use gort::chan::{self, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError};
use gort::{go, select};

/// Runs `f` as the main goroutine of a fresh runtime, failing the test if it has not finished
/// within 60 s.
fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog(60, move || gort::run(f))
}

/// Parks the calling goroutine for `d`: a timed receive that nobody answers. (Only channels
/// are used here, so these tests depend on nothing but `gort::chan`.)
fn sleep(d: Duration) {
    let (_keep, rx) = chan::bounded::<()>(0);
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
}

// ---------------------------------------------------------------- select.go --
// Simple select: send cases on channels that become nil once used.
//
// One deliberate difference: Go evaluates the value of every send case each time the select
// runs, gort's `select!` (like crossbeam's) only that of the chosen case (API.md). So `counter`,
// which counts evaluations, ends at 3 here (one per send made) where Go's ends at 10.

struct Values {
    counter: u32,
    shift: u32,
}

impl Values {
    fn get_value(&mut self) -> u32 {
        self.counter += 1;
        1 << self.shift
    }

    fn send(&mut self, mut a: Sender<u32>, mut b: Sender<u32>) -> i32 {
        let mut i = 0;
        loop {
            select! {
                send(a, self.get_value()) -> res => {
                    res.unwrap();
                    i += 1;
                    a = chan::never_sender();
                }
                send(b, self.get_value()) -> res => {
                    res.unwrap();
                    i += 1;
                    b = chan::never_sender();
                }
                default => break,
            }
            self.shift += 1;
        }
        i
    }
}

#[test]
fn select() {
    run(|| {
        let mut st = Values {
            counter: 0,
            shift: 0,
        };
        let (a, a_rx) = chan::bounded(1);
        let (b, b_rx) = chan::bounded(1);
        assert_eq!(st.send(a.clone(), b.clone()), 2, "Send returned != 2");
        let (av, bv) = (a_rx.recv().unwrap(), b_rx.recv().unwrap());
        assert_eq!(av | bv, 3, "bad values {av} {bv}");
        assert_eq!(st.send(a, chan::never_sender()), 1, "Send returned != 1");
        assert_eq!(st.counter, 3, "counter is {} != 3", st.counter);
        // The value of the last send: made at shift 2 (after two sends and one default).
        assert_eq!(a_rx.try_recv(), Ok(4));
    });
}

// ---------------------------------------------------------------- select3.go --
// The semantics of the select statement for basic empty/non-empty cases: which operations
// must block and which must not.

const ALWAYS: bool = true;
const NEVER: bool = false;

/// Runs `f` on a goroutine and checks empirically that it always/never blocks. Go waits 10 ms
/// for "always" (a blocking `f` must not finish in that time) and 10 s for "never" (`f` must
/// finish within it); the same here, with 20 ms for "always".
fn test_block(what: &str, blocks: bool, f: impl FnOnce() + Send + 'static) {
    let (c, c_rx) = chan::bounded(1);
    go(move || {
        f();
        c.send(()).unwrap(); // f didn't block
    });
    let wait = if blocks {
        Duration::from_millis(20)
    } else {
        Duration::from_secs(10)
    };
    match c_rx.recv_timeout(wait) {
        Ok(()) => assert!(!blocks, "{what}: did not block, but must"),
        Err(RecvTimeoutError::Timeout) => assert!(blocks, "{what}: blocked, but must not"),
        Err(RecvTimeoutError::Closed) => panic!("{what}: panicked"),
    }
}

#[test]
fn select3() {
    run(|| {
        const ASYNC: usize = 1; // asynchronous channels
        let (closed_tx, closed_rx) = chan::bounded::<i32>(0);
        closed_tx.close();
        let nil_rx = chan::never::<i32>;
        let nil_tx = chan::never_sender::<i32>;

        // sending/receiving from a nil channel blocks
        test_block("send on nil", ALWAYS, move || {
            let _ = nil_tx().send(7);
        });
        test_block("receive on nil", ALWAYS, move || {
            let _ = nil_rx().recv();
        });

        // sending/receiving from a nil channel inside a select is never selected
        select! {
            send(nil_tx(), 7) -> _ => unreachable!(),
            default => {}
        }
        select! {
            recv(nil_rx()) -> _ => unreachable!(),
            default => {}
        }

        // sending to an async channel with free buffer space never blocks
        test_block("send with free buffer space", NEVER, || {
            let (ch, _rx) = chan::bounded(ASYNC);
            ch.send(7).unwrap();
        });

        // receiving from a closed channel never blocks
        let c = closed_rx.clone();
        test_block("receive on closed", NEVER, move || {
            for _ in 0..10 {
                assert_eq!(c.recv(), Err(RecvError));
                assert_eq!(c.try_recv(), Err(TryRecvError::Closed));
            }
        });

        // sending to a closed channel panics in Go; gort returns the value
        assert_eq!(closed_tx.send(7), Err(SendError(7)));

        // receiving from a non-ready channel always blocks
        test_block("receive on empty", ALWAYS, || {
            let (_ch, rx) = chan::bounded::<i32>(0);
            let _ = rx.recv();
        });

        // selects with only nil channels always block
        test_block("select: nil receive", ALWAYS, move || {
            select! {
                recv(nil_rx()) -> _ => unreachable!(),
            }
        });
        test_block("select: nil send", ALWAYS, move || {
            select! {
                send(nil_tx(), 7) -> _ => unreachable!(),
            }
        });
        test_block("select: nil receive and send", ALWAYS, move || {
            select! {
                recv(nil_rx()) -> _ => unreachable!(),
                send(nil_tx(), 7) -> _ => unreachable!(),
            }
        });

        // selects with non-ready non-nil channels always block
        test_block("select: receive on empty", ALWAYS, || {
            let (_ch, rx) = chan::bounded::<i32>(0);
            select! {
                recv(rx) -> _ => unreachable!(),
            }
        });

        // selects with default cases don't block
        test_block("select: default only", NEVER, || {
            select! {
                default => {}
            }
        });
        test_block("select: nil receive, default", NEVER, move || {
            select! {
                recv(nil_rx()) -> _ => unreachable!(),
                default => {}
            }
        });
        test_block("select: nil send, default", NEVER, move || {
            select! {
                send(nil_tx(), 7) -> _ => unreachable!(),
                default => {}
            }
        });

        // selects with ready channels don't block
        test_block("select: send with room", NEVER, || {
            let (ch, _rx) = chan::bounded(ASYNC);
            select! {
                send(ch, 7) -> res => res.unwrap(),
                default => unreachable!(),
            }
        });
        test_block("select: receive of a buffered value", NEVER, || {
            let (ch, rx) = chan::bounded(ASYNC);
            ch.send(7).unwrap();
            select! {
                recv(rx) -> v => assert_eq!(v, Ok(7)),
                default => unreachable!(),
            }
        });

        // selects with closed channels behave like ordinary operations
        let c = closed_rx.clone();
        test_block("select: receive on closed", NEVER, move || {
            select! {
                recv(c) -> v => assert_eq!(v, Err(RecvError)),
            }
        });
        select! {
            send(closed_tx, 7) -> res => assert_eq!(res, Err(SendError(7))),
        }

        // select should not get confused if it sees itself
        test_block(
            "select: send and receive on the same channel",
            ALWAYS,
            || {
                let (c, c_rx) = chan::bounded(0);
                select! {
                    send(c, 1) -> _ => unreachable!(),
                    recv(c_rx) -> _ => unreachable!(),
                }
            },
        );
    });
}

// ---------------------------------------------------------------- nonblock.go --
// Channel operations that test for blocking, with several sizes and types of operands.
//
// Go polls with up to 10,000 tries, each sleeping two 10 µs ticks and yielding three times
// (up to 100 ms per operation); on a loaded machine that is too tight, so here the polling
// gives up after 10 s instead.

/// Go's sleep(): wait two ticks of 10 µs, then yield three times.
fn nap() {
    sleep(Duration::from_micros(20));
    for _ in 0..3 {
        gort::runtime::gosched();
    }
}

const POLL_LIMIT: Duration = Duration::from_secs(10);

/// One operand type: `to_recv` is what the receiver goroutine expects from us, `to_send`
/// what the sender goroutine sends to us.
fn nonblock_type<T>(name: &str, buffer: usize, to_recv: T, to_send: T)
where
    T: Clone + PartialEq + Debug + Send + 'static,
{
    let (sync, sync_rx) = chan::bounded::<bool>(0);
    let (c, c_rx) = chan::bounded::<T>(buffer);

    select! {
        recv(c_rx) -> _ => panic!("blocked {name} sender"),
        default => {}
    }

    // receiver
    let (r, s, want) = (c_rx.clone(), sync.clone(), to_recv.clone());
    go(move || {
        assert_eq!(r.recv(), Ok(want), "{} value", std::any::type_name::<T>());
        s.send(true).unwrap();
    });
    let t0 = Instant::now();
    loop {
        select! {
            send(c, to_recv.clone()) -> res => {
                res.unwrap();
                break;
            }
            default => {
                assert!(t0.elapsed() < POLL_LIMIT, "{name} receiver buffer={buffer}");
                nap();
            }
        }
    }
    assert_eq!(sync_rx.recv(), Ok(true), "{name} receiver failed");

    // sender
    let (w, s, v) = (c.clone(), sync.clone(), to_send.clone());
    go(move || {
        w.send(v).unwrap();
        s.send(true).unwrap();
    });
    if buffer > 0 {
        sync_rx.recv().unwrap();
    }
    let t0 = Instant::now();
    let got = loop {
        select! {
            recv(c_rx) -> v => break v.unwrap(),
            default => {
                assert!(t0.elapsed() < POLL_LIMIT, "{name} sender buffer={buffer}");
                nap();
            }
        }
    };
    assert_eq!(got, to_send, "{name} sender value");
    if buffer == 0 {
        sync_rx.recv().unwrap();
    }
}

#[test]
fn nonblock() {
    run(|| {
        for buffer in 0..2 {
            nonblock_type::<i32>("i32", buffer, 123, 234);
            nonblock_type::<i64>("i64", buffer, 123456, 234567);
            nonblock_type::<bool>("bool", buffer, true, true);
            nonblock_type::<String>("string", buffer, "hello".into(), "hello again".into());
        }
    });
}
