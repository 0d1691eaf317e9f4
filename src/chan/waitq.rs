//! Blocked operations and the wait queues that hold them (Go's `sudog` and `waitq`).
//!
//! A goroutine or thread that must block on channels makes one [`Op`] (its parking record) and
//! one [`Node`] per channel it waits on (one for `send`/`recv`, one per case for `select`),
//! all in its own stack frame, and links the nodes into the channels' queues under their locks.
//!
//! # Who may touch what
//! - A node's links belong to the queue it is in, and change only under that channel's lock.
//! - The op's state moves `WAITING -> CLAIMED -> final` (a counterpart that wins the claim CAS
//!   moves the value, takes the waiter, then publishes the final state with `Release`), or
//!   `WAITING -> CANCELLED` (the owner gives up, under the locks of every channel it waits on).
//!   The claim CAS is what makes a `select` complete exactly one case. A plain `send`/`recv`
//!   ([`Op::single`]) has one node, claimed only under its channel's lock, which its owner
//!   also holds to unlink it before cancelling: its claim is a load and a store.
//! - The slot behind `Node::slot` belongs to the counterpart between a successful claim and
//!   the final state, and to the owner otherwise.
//!
//! # Lifetime
//! The owner's frame (op, nodes, slots) stays alive until (1) the op is final or cancelled
//! and (2) the owner has taken every node it linked out of its queue, under that queue's lock.
//! A counterpart touches an op only under the lock of a queue still holding one of its nodes,
//! or, after claiming it, until it publishes the final state; so no one ever reads a freed frame.
//!
//! The op's state comes from `crate::loom`, so the protocol is model-checked: `loom_tests.rs`
//! (select-like ops claimed from two queues, giving up, close against send and receive).

use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use crate::sched::park::Waiter;
use std::cell::{Cell, UnsafeCell};
use std::ptr;

/// The op is waiting for a counterpart.
pub const WAITING: usize = 0;
/// A counterpart claimed the op and is moving the value.
pub const CLAIMED: usize = 1;

/// How a claimed op ended (the low 3 bits of its final state; the case index is above them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The value moved: delivered into a receiver's slot or taken from a sender's.
    Done = 2,
    /// The channel was closed while the op waited.
    Closed = 3,
    /// A receiver paired with this `select` send case and waits for the value (see
    /// [`Partner`]); the select's `SelectedOperation::send` delivers it.
    Paired = 4,
    /// A buffer slot was reserved for this `select` send case; `SelectedOperation::send`
    /// fills it.
    Reserved = 5,
    /// The owner gave up (time-out, cancellation).
    Cancelled = 6,
    /// The `select` a receiver paired with was abandoned: the receiver starts over.
    Retry = 7,
}

const OUTCOME_BITS: u32 = 3;

/// A final state: which case, and how.
pub fn decode(state: usize) -> Option<(usize, Outcome)> {
    let outcome = match state & 7 {
        2 => Outcome::Done,
        3 => Outcome::Closed,
        4 => Outcome::Paired,
        5 => Outcome::Reserved,
        6 => Outcome::Cancelled,
        7 => Outcome::Retry,
        _ => return None,
    };
    Some((state >> OUTCOME_BITS, outcome))
}

/// The receiving end a paired `select` send case must deliver to.
#[derive(Clone, Copy)]
pub struct Partner {
    pub op: *const Op,
    pub slot: *mut (),
}

/// One blocked operation's parking record (a `select` has one for all its cases).
pub struct Op {
    state: AtomicUsize,
    /// Taken by the counterpart that claims the op, and woken after it published the state.
    waiter: UnsafeCell<Option<Waiter>>,
    /// Written by the claimer before publishing [`Outcome::Paired`].
    partner: Cell<Partner>,
    /// The op has one node, and while that node is queued the op's state changes only under
    /// its channel's lock (a plain `send`/`recv`: counterparts claim it in `pop_claim`; the
    /// owner unlinks it under the lock before it cancels), so a claim, always made under the
    /// lock, needs no atomic read-modify-write.
    single: bool,
}

impl Op {
    #[inline]
    pub fn new(waiter: Waiter) -> Op {
        Op {
            state: AtomicUsize::new(WAITING),
            waiter: UnsafeCell::new(Some(waiter)),
            partner: Cell::new(Partner {
                op: ptr::null(),
                slot: ptr::null_mut(),
            }),
            single: false,
        }
    }

    /// An op for a wait in one channel's queue whose owner gives up only under that channel's
    /// lock (see `Op::single`): its claim is a load and a store, not a CAS.
    #[inline]
    pub fn single(waiter: Waiter) -> Op {
        Op {
            single: true,
            ..Op::new(waiter)
        }
    }

    #[inline]
    pub fn state(&self) -> usize {
        self.state.load(Acquire)
    }

    /// `WAITING -> CLAIMED`; true if the caller now owns the op's completion.
    #[inline]
    pub fn try_claim(&self) -> bool {
        if self.single {
            // Only under the channel lock, which every other change of the state also holds
            // (see `Op::single`): no one can move the state between the load and the store.
            // The lock orders the owner's writes (waiter, slot) before ours.
            if self.state.load(Relaxed) != WAITING {
                return false;
            }
            self.state.store(CLAIMED, Relaxed);
            return true;
        }
        self.state
            .compare_exchange(WAITING, CLAIMED, AcqRel, Acquire)
            .is_ok()
    }

    /// `WAITING -> CANCELLED`, by the owner; true if no counterpart claimed the op first.
    pub fn try_cancel(&self) -> bool {
        let to = Outcome::Cancelled as usize;
        self.state
            .compare_exchange(WAITING, to, AcqRel, Acquire)
            .is_ok()
    }

    /// Publishes the final state of a claimed op and returns its waiter, to be woken once the
    /// caller released its locks.
    ///
    /// # Safety
    /// The caller claimed the op (`try_claim` returned true) and has not finished it yet; after
    /// this call it must not touch the op or its slots again.
    #[inline]
    pub unsafe fn finish(&self, case: usize, outcome: Outcome) -> Option<Waiter> {
        // SAFETY: the claim makes us the only one touching the waiter until the state is final.
        let w = unsafe { (*self.waiter.get()).take() };
        self.state
            .store((case << OUTCOME_BITS) | outcome as usize, Release);
        w
    }

    /// [`Op::finish`] with [`Outcome::Paired`], recording the receiver to deliver to.
    ///
    /// # Safety
    /// As for [`Op::finish`].
    pub unsafe fn finish_paired(&self, case: usize, partner: Partner) -> Option<Waiter> {
        self.partner.set(partner);
        // SAFETY: forwarded contract.
        unsafe { self.finish(case, Outcome::Paired) }
    }

    /// The receiver recorded by [`Op::finish_paired`]; read by the owner once the state says
    /// `Paired`.
    pub fn partner(&self) -> Partner {
        self.partner.get()
    }
}

/// One op's place in one channel's queue.
pub struct Node {
    prev: Cell<*const Node>,
    next: Cell<*const Node>,
    linked: Cell<bool>,
    pub op: *const Op,
    /// The select case this node stands for (0 for `send`/`recv`).
    pub case: usize,
    /// Receiver: `*mut Option<T>` to deliver into. Sender: `*mut Option<T>` holding the
    /// value, or null for a `select` send case (its value comes after selection).
    pub slot: *mut (),
}

impl Node {
    #[inline]
    pub fn new(op: &Op, case: usize, slot: *mut ()) -> Node {
        Node {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            op,
            case,
            slot,
        }
    }
}

/// A FIFO of nodes, intrusive and doubly linked, guarded by its channel's lock.
pub struct WaitQ {
    head: *const Node,
    tail: *const Node,
}

impl WaitQ {
    pub const fn new() -> WaitQ {
        WaitQ {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }

    /// Whether `n` is linked in this queue (for the models' checks).
    #[cfg(all(test, loom))]
    pub fn contains(&self, n: *const Node) -> bool {
        let mut p = self.head;
        while !p.is_null() {
            if p == n {
                return true;
            }
            // SAFETY: linked nodes are alive (module docs).
            p = unsafe { (*p).next.get() };
        }
        false
    }

    /// # Safety
    /// `n` is unlinked and stays alive until it is removed (see the module docs).
    #[inline]
    pub unsafe fn push(&mut self, n: *const Node) {
        // SAFETY: n is alive (contract); the tail is a linked, live node.
        unsafe {
            (*n).prev.set(self.tail);
            (*n).next.set(ptr::null());
            (*n).linked.set(true);
            if self.tail.is_null() {
                self.head = n;
            } else {
                (*self.tail).next.set(n);
            }
        }
        self.tail = n;
    }

    /// Unlinks `n` if it is still in this queue (a claimer may have popped it already).
    ///
    /// # Safety
    /// `n` is alive and was pushed on this queue (if linked).
    pub unsafe fn remove(&mut self, n: *const Node) {
        // SAFETY: n and its neighbours are live nodes of this queue.
        unsafe {
            if !(*n).linked.get() {
                return;
            }
            let (prev, next) = ((*n).prev.get(), (*n).next.get());
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next.set(next);
            }
            if next.is_null() {
                self.tail = prev;
            } else {
                (*next).prev.set(prev);
            }
            (*n).linked.set(false);
        }
    }

    /// Pops nodes until one whose op this call claims, and returns it; nodes of ops already
    /// claimed elsewhere (a `select` that completed another case) are dropped from the queue.
    /// `skip` names an op never to claim (a `select`'s own, for a self-select).
    ///
    /// The returned node stays valid until the caller finishes its op (module docs).
    #[inline]
    pub fn pop_claim(&mut self, skip: *const Op) -> Option<*const Node> {
        let mut n = self.head;
        while !n.is_null() {
            // SAFETY: linked nodes are alive (module docs).
            let node = unsafe { &*n };
            let next = node.next.get();
            if node.op != skip {
                // SAFETY: as above; unlinking keeps the queue consistent.
                unsafe { self.remove(n) };
                // SAFETY: a linked node's op is alive.
                if unsafe { (*node.op).try_claim() } {
                    return Some(n);
                }
            }
            n = next;
        }
        None
    }
}

/// Runs a closure when dropped: how a parking call hands "release my locks" to the M.
pub struct OnDrop<F: FnOnce()>(pub Option<F>);

impl<F: FnOnce()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Blocks the caller until `op` is final.
///
/// `release` runs once the caller is committed to sleeping (a goroutine: on g0, after it is
/// marked waiting, so no wake-up can be lost): it drops the channel locks and may wake
/// someone. With `timed`, the wait gives up at the deadline: `give_up` takes the op's locks,
/// tries [`Op::try_cancel`], unlinks the op's nodes and says whether it cancelled; a wait that
/// gave up returns None. A goroutine cancelled by its runtime's shutdown while it waits runs
/// `give_up` (and, if a counterpart claimed the op meanwhile, waits for it to finish) before it
/// unwinds on, so its frame is never in use when it is popped.
// Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
// "one frame per park").
#[inline(always)]
pub fn block(
    op: &Op,
    is_goroutine: bool,
    release: impl FnOnce(),
    timed: Option<(std::time::Instant, crate::sched::park::Alarm)>,
    cancellable: bool,
    give_up: &dyn Fn() -> bool,
) -> Option<usize> {
    let deadline = timed.as_ref().map(|t| t.0);
    let mut guard = Abandon {
        op,
        give_up,
        armed: true,
    };
    let release = OnDrop(Some(release));
    match timed {
        Some((d, alarm)) => Waiter::block_until(alarm, release, d),
        None => Waiter::block_with(is_goroutine, release, cancellable),
    }
    loop {
        let s = op.state();
        if decode(s).is_some() {
            guard.armed = false;
            return Some(s);
        }
        let now = std::time::Instant::now();
        if let Some(d) = deadline {
            if now >= d {
                guard.armed = false;
                if give_up() {
                    return None;
                }
                wait_final(op);
                return Some(op.state());
            }
        }
        if is_goroutine {
            // Claimed, and the claimer is moving the value (or woken early): let it run.
            crate::sched::park::yield_now();
        } else {
            match deadline {
                Some(d) => std::thread::park_timeout(d - now),
                None => crate::sched::deadlock::park_thread(),
            }
        }
    }
}

/// Spins (yielding) until a claimed op is final.
fn wait_final(op: &Op) {
    while decode(op.state()).is_none() {
        if crate::sched::park::current().is_some() {
            crate::sched::park::yield_now();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Leaves the queues cleanly if a wait unwinds (runtime shutdown cancels parked goroutines).
struct Abandon<'a> {
    op: &'a Op,
    give_up: &'a dyn Fn() -> bool,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed && decode(self.op.state()).is_none() && !(self.give_up)() {
            wait_final(self.op);
        }
    }
}
