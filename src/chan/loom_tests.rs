//! Loom models of the channels' blocking protocol (`waitq.rs`): the [`Op`] state machine
//! (`WAITING -> CLAIMED -> final` through `try_claim`/`finish`, or `WAITING -> CANCELLED`
//! through `try_cancel`) and the intrusive [`WaitQ`]s (`push`, `pop_claim`, `remove`).
//!
//! Run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --lib --release chan::loom
//! ```
//!
//! The channel lock (a futex) cannot run under loom, so each queue here sits in a
//! `loom::sync::Mutex`, which stands for its channel's lock; a blocked owner waits for its op to
//! become final by spinning with `loom::thread::yield_now` (the real `block` parks, which needs
//! the runtime). Waiters are `Waiter::Thread`s that are only counted and dropped, never woken.
//!
//! 1. [`loom_chan_select_two_claimers`]: a `select`-like op with one node in each of two queues;
//!    two counterparts pop and claim concurrently and deliver into the claimed node's slot.
//! 2. [`loom_chan_select_claim_vs_give_up`]: the same while the owner gives up (`give_up` in
//!    `select`: unlink every node under the locks, then `try_cancel`);
//!    [`loom_chan_single_claim_vs_give_up`]: a plain `send`/`recv`'s op (`Op::single`, whose
//!    claim is a load and a store) claimed by two counterparts while its owner gives up.
//! 3. [`loom_chan_close_send_recv`], [`loom_chan_close_buffered`] and
//!    [`loom_chan_close_wakes_waiters`]: close against send and receive, on the real
//!    `Chan::send_now`/`recv_now`/`close_now` run under the model's lock.
//!
//! Slots and payloads are loom `UnsafeCell`s, so loom checks that every hand-over (claimer ->
//! owner through `finish`/`state`, sender -> receiver through a channel) carries
//! happens-before; owners read what they got before taking any lock again. The owner "reuses
//! its frame" (writes its slots) once it returned, so a counterpart that touches a slot after
//! that is reported as a data race.
//!
//! Each model was checked to fail with the protocol broken, one change at a time:
//! - `try_claim` as a load and a store instead of a CAS: models 1 and 2 (two claims; models
//!   2b and 3 cannot see it: on one channel every claim happens under its lock, which is why
//!   `Op::single` may claim that way);
//! - a single op cancelled while its node is still queued, without the queue's lock: model 2b;
//! - `finish` storing `Relaxed`, or `Op::state` loading `Relaxed`: every model (causality
//!   violation on a slot or payload);
//! - `try_cancel` succeeding even on a claimed op: model 2;
//! - `WaitQ::remove` doing nothing: every model (a node left queued);
//! - `close_now` not claiming the blocked senders: model 3c (the sender spins forever).
//!
//! `try_cancel` as a load and a store passes model 2, and rightly: `give_up` cancels holding the
//! locks of every queue the op is in, and a cancellable op is only claimed under one of them.

use super::imp::{Chan, Inner, RecvNow, SendNow};
use super::waitq::{decode, Node, Op, Outcome, WaitQ};
use crate::sched::park::Waiter;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::*};
use loom::sync::{Mutex, MutexGuard};
use loom::thread;
use std::collections::VecDeque;
use std::ptr;
use std::sync::Arc;

/// Runs `f` under loom, exploring every execution (`None`) or those with at most `n`
/// preemptions (`Some(n)`; the `LOOM_MAX_PREEMPTIONS` environment variable overrides it).
fn model(preemption_bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = preemption_bound;
    }
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    b.check(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "loom: {} executions",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A waiter that is only ever dropped (waking one needs the runtime).
fn waiter() -> Waiter {
    Waiter::Thread(std::thread::current())
}

/// Waits (spinning) until `op` is final, as `block` does, and returns the state.
fn wait_final(op: &Op) -> usize {
    loop {
        let s = op.state();
        if decode(s).is_some() {
            return s;
        }
        thread::yield_now();
    }
}

/// A wait queue behind the lock that stands for its channel's.
struct Queue(Mutex<Locked>);

struct Locked(WaitQ);

// SAFETY: the queue's nodes are reached only under the mutex, and their owners keep them alive
// while they are linked (the models check that they unlink them before returning).
unsafe impl Send for Locked {}

impl Queue {
    fn new() -> Arc<Queue> {
        Arc::new(Queue(Mutex::new(Locked(WaitQ::new()))))
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.0.lock().unwrap()
    }
}

/// A receive slot the model's counterparts deliver into (`Node::slot` points at it).
type Slot = UnsafeCell<Option<usize>>;

/// A blocked `select`'s frame: one op, and one receive node and slot per case (case `i` waits
/// in queue `i`). Only the owner holds it; counterparts reach it through the queues. It lives
/// until the end of the execution (leaked if a check fails, as the other threads may still
/// point into it), so a broken protocol shows up as a failed check or a loom report, not as a
/// crash.
struct Frame {
    op: Box<Op>,
    slots: Box<[Slot; 2]>,
    nodes: Box<[Node; 2]>,
}

impl Frame {
    fn new() -> std::mem::ManuallyDrop<Frame> {
        let op = Box::new(Op::new(waiter()));
        let slots = Box::new([UnsafeCell::new(None), UnsafeCell::new(None)]);
        let slot = |i: usize| (&slots[i] as *const Slot).cast_mut().cast::<()>();
        let nodes = Box::new([Node::new(&op, 0, slot(0)), Node::new(&op, 1, slot(1))]);
        std::mem::ManuallyDrop::new(Frame { op, slots, nodes })
    }

    fn node(&self, i: usize) -> *const Node {
        &self.nodes[i]
    }

    /// Links every node (as `select` does under all its locks before parking).
    fn enqueue(&self, qs: &[Arc<Queue>; 2]) {
        let (mut g0, mut g1) = (qs[0].lock(), qs[1].lock());
        // SAFETY: locked; the nodes are unlinked and live until the end of the execution.
        unsafe {
            g0.0.push(self.node(0));
            g1.0.push(self.node(1));
        }
    }

    /// Unlinks every node under both locks (`select`'s `remove_all`), then runs `then` before
    /// unlocking (`give_up` cancels there).
    fn remove_all<R>(&self, qs: &[Arc<Queue>; 2], then: impl FnOnce() -> R) -> R {
        let (mut g0, mut g1) = (qs[0].lock(), qs[1].lock());
        // SAFETY: locked; the nodes were pushed on these queues (or are unlinked).
        unsafe {
            g0.0.remove(self.node(0));
            g1.0.remove(self.node(1));
        }
        then()
    }

    /// Checks, under the locks, that no queue holds a node of this frame.
    fn assert_unlinked(&self, qs: &[Arc<Queue>; 2]) {
        for (i, q) in qs.iter().enumerate() {
            let g = q.lock();
            for j in 0..2 {
                assert!(
                    !g.0.contains(self.node(j)),
                    "queue {i} still holds node {j} after its owner returned"
                );
            }
        }
    }

    /// Reads slot `i`, as the owner.
    fn slot(&self, i: usize) -> Option<usize> {
        // SAFETY: the owner's slot; loom reports a claimer's write not ordered before this.
        self.slots[i].with(|p| unsafe { *p })
    }

    /// The owner returned: its frame is reused, so a claimer's late write races with this.
    fn reuse(&self) {
        for s in self.slots.iter() {
            // SAFETY: the owner's slot once it returned; loom reports any racing access.
            s.with_mut(|p| unsafe { *p = Some(usize::MAX) });
        }
    }

    /// Frees the frame once the execution passed its checks.
    fn free(f: std::mem::ManuallyDrop<Frame>) {
        drop(std::mem::ManuallyDrop::into_inner(f));
    }
}

/// Counts what the counterparts did in one execution.
#[derive(Default)]
struct Counts {
    claims: AtomicUsize,
    waiters: AtomicUsize,
}

/// A counterpart (a sender finding a blocked receiver, as `send_now`): claims the first
/// claimable node of `q` and delivers `value` into its slot. Returns the claimed case.
fn claim_and_deliver(q: &Queue, value: usize, counts: &Counts) -> Option<usize> {
    let mut g = q.lock();
    let n = g.0.pop_claim(ptr::null())?;
    counts.claims.fetch_add(1, Relaxed);
    // SAFETY: we claimed the node's op: node, slot and op are ours until `finish`, and the
    // slot is a model `Slot` (see `Frame::new`).
    let (case, w) = unsafe {
        let n = &*n;
        let slot = &*n.slot.cast::<Slot>().cast_const();
        slot.with_mut(|p| *p = Some(value));
        (n.case, (*n.op).finish(n.case, Outcome::Done))
    };
    drop(g);
    if let Some(w) = w {
        counts.waiters.fetch_add(1, Relaxed);
        drop(w);
    }
    Some(case)
}

/// The value counterpart `i` delivers.
fn value(i: usize) -> usize {
    100 + i
}

/// Spawns counterpart `i` on queue `i`, for `i` in 0..2.
fn spawn_claimers(
    qs: &[Arc<Queue>; 2],
    counts: &Arc<Counts>,
) -> Vec<thread::JoinHandle<Option<usize>>> {
    (0..2)
        .map(|i| {
            let (q, counts) = (qs[i].clone(), counts.clone());
            thread::spawn(move || claim_and_deliver(&q, value(i), &counts))
        })
        .collect()
}

/// The owner's checks of a completed select (before it reuses its frame): one final state
/// naming a case, `Done`, the value of that case's counterpart in its slot, the other empty.
fn check_delivered(f: &Frame, state: usize) -> usize {
    let (case, outcome) = decode(state).expect("a final state");
    assert_eq!(outcome, Outcome::Done, "select ended with {outcome:?}");
    assert_eq!(f.slot(case), Some(value(case)), "wrong value delivered");
    assert_eq!(f.slot(1 - case), None, "a value in the losing case's slot");
    case
}

/// The checks once every counterpart is done: exactly one claimed, and it claimed the case the
/// owner saw (`won`), or none if the owner cancelled (`won` None); one waiter taken per claim.
fn check_claims(ts: Vec<thread::JoinHandle<Option<usize>>>, won: Option<usize>, counts: &Counts) {
    let claimed: Vec<_> = ts.into_iter().map(|t| t.join().unwrap()).collect();
    let expect: Vec<_> = (0..2).map(|i| won.filter(|&w| w == i)).collect();
    assert_eq!(claimed, expect, "claims {claimed:?}, owner saw {won:?}");
    let n = usize::from(won.is_some());
    assert_eq!(counts.claims.load(Relaxed), n, "claimed not exactly once");
    assert_eq!(counts.waiters.load(Relaxed), n, "the waiter taken not once");
}

/// Model 1: a select blocked on two queues; counterpart `i` claims from queue `i`
/// concurrently. Exactly one claims the op; the owner sees one final state naming that case,
/// with the value in the case's slot; after the owner's `remove_all` no queue holds its nodes.
#[test]
fn loom_chan_select_two_claimers() {
    model(None, || {
        let qs = [Queue::new(), Queue::new()];
        let counts = Arc::new(Counts::default());
        let f = Frame::new();
        f.enqueue(&qs);
        let ts = spawn_claimers(&qs, &counts);
        // The value is readable as soon as the state is final (before taking any lock, as a
        // woken `recv` reads it).
        let case = check_delivered(&f, wait_final(&f.op));
        f.remove_all(&qs, || ());
        f.assert_unlinked(&qs);
        f.reuse();
        check_claims(ts, Some(case), &counts);
        Frame::free(f);
    });
}

/// Model 2: as model 1, while the owner gives up (a time-out: `give_up` unlinks every node
/// under the locks, then `try_cancel`s). Exactly one of {the cancel, one claim} wins; a claimed
/// op gets its value exactly once (the owner then waits for the final state); a cancelled one
/// gets none; after the owner returns no queue holds its nodes.
#[test]
fn loom_chan_select_claim_vs_give_up() {
    model(None, || {
        let qs = [Queue::new(), Queue::new()];
        let counts = Arc::new(Counts::default());
        let f = Frame::new();
        f.enqueue(&qs);
        let ts = spawn_claimers(&qs, &counts);
        // `block`'s loop at the deadline: final already? else give up.
        let s = f.op.state();
        let won = if decode(s).is_some() {
            let case = check_delivered(&f, s);
            f.remove_all(&qs, || ());
            Some(case)
        } else if f.remove_all(&qs, || f.op.try_cancel()) {
            assert_eq!(f.slot(0), None, "a value delivered to a cancelled op");
            assert_eq!(f.slot(1), None, "a value delivered to a cancelled op");
            None
        } else {
            Some(check_delivered(&f, wait_final(&f.op)))
        };
        f.assert_unlinked(&qs);
        f.reuse();
        check_claims(ts, won, &counts);
        Frame::free(f);
    });
}

/// Model 2b: the op of a plain `send`/`recv` (`Op::single`, claimed by a load and a store, not
/// a CAS) in one queue, with two counterparts claiming from that queue while the owner gives up
/// (`Chan::wait`'s `give_up`: unlink, then `try_cancel`, under the same lock). Exactly one of
/// {the cancel, one claim} wins, and a claimed op gets exactly its claimer's value.
#[test]
fn loom_chan_single_claim_vs_give_up() {
    model(None, || {
        let q = Queue::new();
        let counts = Arc::new(Counts::default());
        // Leaked if a check fails, as in `Frame`: the counterparts may still point into it.
        let op = std::mem::ManuallyDrop::new(Box::new(Op::single(waiter())));
        let slot: std::mem::ManuallyDrop<Box<Slot>> =
            std::mem::ManuallyDrop::new(Box::new(UnsafeCell::new(None)));
        let node = std::mem::ManuallyDrop::new(Box::new(Node::new(
            &op,
            0,
            (&**slot as *const Slot).cast_mut().cast(),
        )));
        // SAFETY: locked; the node is unlinked and lives until the end of the execution.
        unsafe { q.lock().0.push(&**node) };
        let ts: Vec<_> = (0..2)
            .map(|i| {
                let (q, counts) = (q.clone(), counts.clone());
                thread::spawn(move || claim_and_deliver(&q, value(i), &counts).map(|_| i))
            })
            .collect();
        // SAFETY: the owner's slot; loom reports a claimer's write not ordered before a read.
        let read = || slot.with(|p| unsafe { *p });
        let s = op.state();
        let won = if decode(s).is_some() {
            Some(read())
        } else {
            let mut g = q.lock();
            // SAFETY: locked; the node was pushed on this queue (or is unlinked).
            unsafe { g.0.remove(&**node) };
            let cancelled = op.try_cancel();
            drop(g);
            if cancelled {
                assert_eq!(read(), None, "a value delivered to a cancelled op");
                None
            } else {
                assert_eq!(decode(wait_final(&op)).map(|d| d.1), Some(Outcome::Done));
                Some(read())
            }
        };
        assert!(!q.lock().0.contains(&**node), "a node left queued");
        let claimed: Vec<_> = ts.into_iter().filter_map(|t| t.join().unwrap()).collect();
        match won {
            None => assert!(claimed.is_empty(), "claimed {claimed:?} a cancelled op"),
            Some(v) => assert_eq!(
                claimed.iter().map(|&i| Some(value(i))).collect::<Vec<_>>(),
                vec![v],
                "not exactly one claim, or the wrong value"
            ),
        }
        let n = usize::from(won.is_some());
        assert_eq!(counts.claims.load(Relaxed), n, "claimed not exactly once");
        assert_eq!(counts.waiters.load(Relaxed), n, "the waiter taken not once");
        drop(std::mem::ManuallyDrop::into_inner(node));
        drop(std::mem::ManuallyDrop::into_inner(slot));
        drop(std::mem::ManuallyDrop::into_inner(op));
    });
}

/// A value sent through a model channel; its body is a loom cell written by the sender and
/// read by whoever ends up with the value, so loom checks the hand-over.
struct Payload {
    id: usize,
    body: UnsafeCell<usize>,
}

impl Payload {
    fn new(id: usize) -> Payload {
        let p = Payload {
            id,
            body: UnsafeCell::new(0),
        };
        // SAFETY: ours alone.
        p.body.with_mut(|b| unsafe { *b = id });
        p
    }

    /// Reads the body on the thread that now holds the value; returns the id.
    fn check(&self) -> usize {
        // SAFETY: we hold the value; loom reports a hand-over without happens-before.
        let b = self.body.with(|b| unsafe { *b });
        assert_eq!(b, self.id, "payload body");
        self.id
    }
}

/// A channel for the model: the real `Chan` (its `send_now`/`recv_now`/`close_now`), with its
/// state behind a loom mutex standing for the channel's lock.
struct MChan {
    chan: Chan<Payload>,
    inner: Mutex<LockedInner>,
}

struct LockedInner(Inner<Payload>);

// SAFETY: the state (and the nodes in its queues) is reached only under the mutex; blocked
// operations keep their nodes alive until claimed or unlinked.
unsafe impl Send for LockedInner {}

impl MChan {
    fn new(cap: usize) -> Arc<MChan> {
        Arc::new(MChan {
            chan: Chan::new(cap),
            inner: Mutex::new(LockedInner(Inner {
                buf: VecDeque::new(),
                reserved: 0,
                closed: false,
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            })),
        })
    }

    /// `Chan::send` with the model's lock and wait.
    fn send(&self, v: Payload) -> Result<(), Payload> {
        let mut g = self.inner.lock().unwrap();
        // SAFETY: locked; `g.0` is this channel's state.
        let v = match unsafe { self.chan.send_now(&mut g.0, v) } {
            SendNow::Sent(w) => {
                drop(g);
                drop(w);
                return Ok(());
            }
            SendNow::Closed(v) => return Err(v),
            SendNow::Full(v) => v,
        };
        let mut slot = Some(v);
        let op = Op::single(waiter());
        let node = Node::new(&op, 0, (&mut slot as *mut Option<Payload>).cast());
        // SAFETY: locked; node, op and slot live in this frame until the op is final, and a
        // final op's node was popped by its claimer (checked below).
        unsafe { g.0.sendq.push(&node) };
        drop(g);
        let s = wait_final(&op);
        let r = match decode(s) {
            Some((0, Outcome::Done)) => Ok(()),
            Some((0, Outcome::Closed)) => Err(slot.take().expect("value back")),
            s => panic!("send ended with {s:?}"),
        };
        if let Err(v) = &r {
            v.check();
        }
        let g = self.inner.lock().unwrap();
        assert!(!g.0.sendq.contains(&node), "a final op's node still queued");
        r
    }

    /// `Chan::recv` with the model's lock and wait (no `select` here: no pairing, no retry).
    fn recv(&self) -> Option<Payload> {
        let mut g = self.inner.lock().unwrap();
        // SAFETY: locked; `g.0` is this channel's state.
        match unsafe { self.chan.recv_now(&mut g.0, ptr::null()) } {
            RecvNow::Got(v, w) => {
                drop(g);
                drop(w);
                return Some(v);
            }
            RecvNow::Closed => return None,
            RecvNow::Pair(_) => panic!("paired without a select"),
            RecvNow::Empty => {}
        }
        let mut slot: Option<Payload> = None;
        let op = Op::single(waiter());
        let node = Node::new(&op, 0, (&mut slot as *mut Option<Payload>).cast());
        // SAFETY: as in `send`.
        unsafe { g.0.recvq.push(&node) };
        drop(g);
        let s = wait_final(&op);
        let r = match decode(s) {
            Some((0, Outcome::Done)) => Some(slot.take().expect("delivered value")),
            Some((0, Outcome::Closed)) => None,
            s => panic!("recv ended with {s:?}"),
        };
        // Read the value before the lock below orders everything.
        r.as_ref().map(Payload::check);
        let g = self.inner.lock().unwrap();
        assert!(!g.0.recvq.contains(&node), "a final op's node still queued");
        r
    }

    /// `Chan::close`; true if this call closed the channel.
    fn close(&self) -> bool {
        let mut g = self.inner.lock().unwrap();
        // SAFETY: locked; `g.0` is this channel's state.
        let w = unsafe { self.chan.close_now(&mut g.0) };
        drop(g);
        w.is_some()
    }

    /// The state once every thread is done: closed, both queues empty, and what is left in
    /// the buffer (its ids).
    fn finish(&self) -> Vec<usize> {
        let mut g = self.inner.lock().unwrap();
        assert!(g.0.closed);
        assert_eq!(g.0.reserved, 0);
        assert!(
            g.0.recvq.pop_claim(ptr::null()).is_none(),
            "a receiver left queued"
        );
        assert!(
            g.0.sendq.pop_claim(ptr::null()).is_none(),
            "a sender left queued"
        );
        g.0.buf.iter().map(Payload::check).collect()
    }
}

/// Model 3: close against a send and a receive on an unbuffered channel (Go's semantics: a
/// send either hands its value to the receiver or, closed, gets it back; the receiver gets the
/// value or sees the close; nothing is lost or duplicated; no waiter stays queued).
#[test]
fn loom_chan_close_send_recv() {
    model(None, || {
        let c = MChan::new(0);
        let s = {
            let c = c.clone();
            thread::spawn(move || c.send(Payload::new(1)))
        };
        let r = {
            let c = c.clone();
            thread::spawn(move || c.recv().map(|p| p.check()))
        };
        assert!(c.close());
        let (sent, got) = (s.join().unwrap(), r.join().unwrap());
        match sent {
            Ok(()) => assert_eq!(got, Some(1), "a sent value was not received"),
            Err(v) => {
                assert_eq!(v.check(), 1, "another value came back");
                assert_eq!(got, None, "a value received from a failed send");
            }
        }
        assert!(c.finish().is_empty());
    });
}

/// Model 3b: a buffered channel (capacity 1) with two senders, a receiver taking two values
/// (or seeing the close) and a closer: every send that returned Ok is received or left in the
/// buffer exactly once, every failed one gets its own value back. Covers the receive that
/// takes the buffer's head and moves a blocked sender's value to the tail.
#[test]
fn loom_chan_close_buffered() {
    model(Some(3), || {
        let c = MChan::new(1);
        let s: Vec<_> = (1..=2)
            .map(|id| {
                let c = c.clone();
                thread::spawn(move || c.send(Payload::new(id)))
            })
            .collect();
        let r = {
            let c = c.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < 2 {
                    match c.recv() {
                        Some(p) => got.push(p.check()),
                        None => break,
                    }
                }
                got
            })
        };
        assert!(c.close());
        let mut ok = Vec::new();
        for (i, t) in s.into_iter().enumerate() {
            match t.join().unwrap() {
                Ok(()) => ok.push(i + 1),
                Err(v) => assert_eq!(v.check(), i + 1, "another value came back"),
            }
        }
        let mut got = r.join().unwrap();
        got.extend(c.finish());
        got.sort_unstable();
        assert_eq!(got, ok, "sent (Ok) and received/buffered values differ");
    });
}

/// Model 3c: close wakes every blocked operation: a sender and a receiver with no counterpart
/// (each on its own unbuffered channel) both end when their channel is closed, the sender with
/// its value back.
#[test]
fn loom_chan_close_wakes_waiters() {
    model(None, || {
        let (cs, cr) = (MChan::new(0), MChan::new(0));
        let s = {
            let c = cs.clone();
            thread::spawn(move || c.send(Payload::new(1)))
        };
        let r = {
            let c = cr.clone();
            thread::spawn(move || c.recv().map(|p| p.check()))
        };
        assert!(cs.close());
        assert!(cr.close());
        assert!(!cs.close(), "closed twice");
        let v = s
            .join()
            .unwrap()
            .expect_err("a send with no receiver succeeded");
        assert_eq!(v.check(), 1, "another value came back");
        assert_eq!(r.join().unwrap(), None, "a value from nowhere");
        assert!(cs.finish().is_empty());
        assert!(cr.finish().is_empty());
    });
}
