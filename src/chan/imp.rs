//! The channel itself (Go's `hchan`): a lock, a buffer, and queues of blocked receivers and
//! senders. `send`/`recv` here are Go's `chansend`/`chanrecv`; `select` builds on the `poll_*`
//! and queue functions.
//!
//! # Invariants (under the lock)
//! - `recvq` non-empty ⇒ the buffer is empty (a receiver blocks only on an empty channel).
//! - `sendq` non-empty ⇒ the buffer is full, counting `reserved` slots (a sender blocks only
//!   on a full one). `reserved` counts buffer slots promised to `select` send cases whose
//!   value has not arrived yet (`SelectedOperation::send` fills them).
//! - Once `closed`, both queues stay empty: close claims every waiter.
//!
//! # Fast paths (as Go's)
//! A sender that finds a receiver waiting writes the value straight into the receiver's slot
//! and readies it (into its P's `runnext`, so a ping-pong pair stays on one P); a receiver
//! that finds a sender waiting on a full buffer takes the head and moves the sender's value to
//! the tail, which keeps the buffer FIFO. No lock is held across a park.

use super::lock::{LockGuard, RawLock};
use super::waitq::{self, decode, Node, Op, Outcome, Partner, WaitQ};
use crate::sched::park::{WaitReason, Waiter};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::time::Instant;

pub struct Chan<T> {
    lock: RawLock,
    inner: UnsafeCell<Inner<T>>,
    /// Buffer capacity; `usize::MAX` for unbounded.
    pub cap: usize,
    pub senders: AtomicUsize,
    pub receivers: AtomicUsize,
    /// Mirrors `Inner::closed` for lock-free reads.
    closed: AtomicBool,
}

pub struct Inner<T> {
    pub buf: VecDeque<T>,
    pub reserved: usize,
    pub closed: bool,
    pub recvq: WaitQ,
    pub sendq: WaitQ,
}

// SAFETY: the inner state is reached only under the lock; values of T move between threads,
// hence T: Send.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above; shared access goes through the lock.
unsafe impl<T: Send> Sync for Chan<T> {}

/// How long a send or receive may wait.
#[derive(Clone, Copy)]
pub enum Wait {
    /// Not at all (`try_send`, `try_recv`).
    Now,
    /// Until the instant, or forever with None.
    Until(Option<Instant>),
}

impl Wait {
    /// The deadline to block until (None inside: forever), or None if the caller may not
    /// block (any more).
    #[inline]
    fn deadline(self) -> Option<Option<Instant>> {
        match self {
            Wait::Now => None,
            Wait::Until(Some(d)) if Instant::now() >= d => None,
            Wait::Until(d) => Some(d),
        }
    }
}

/// What a receive found, under the lock.
pub enum RecvNow<T> {
    /// A value, and maybe a sender to wake (after unlocking).
    Got(T, Option<Waiter>),
    Closed,
    Empty,
    /// A parked `select` send case was claimed: its value comes after it runs (see
    /// [`Chan::pair`]).
    Pair(*const Node),
}

/// What a send found, under the lock.
pub enum SendNow<T> {
    /// Sent; maybe a receiver to wake (after unlocking).
    Sent(Option<Waiter>),
    Closed(T),
    Full(T),
}

impl<T> Chan<T> {
    pub fn new(cap: usize) -> Chan<T> {
        Chan {
            lock: RawLock::new(),
            inner: UnsafeCell::new(Inner {
                buf: VecDeque::new(),
                reserved: 0,
                closed: false,
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
        }
    }

    pub fn raw_lock(&self) -> &RawLock {
        &self.lock
    }

    /// Takes the lock.
    pub fn lock(&self) -> LockGuard<'_> {
        self.lock.lock()
    }

    /// The state behind the lock.
    ///
    /// # Safety
    /// The caller holds the lock, and drops the reference before releasing it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn inner(&self) -> &mut Inner<T> {
        // SAFETY: forwarded contract: the lock makes the access exclusive.
        unsafe { &mut *self.inner.get() }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    pub fn len(&self) -> usize {
        let _g = self.lock();
        // SAFETY: locked.
        unsafe { self.inner().buf.len() }
    }

    /// A send under the lock, without blocking.
    ///
    /// # Safety
    /// `inner` is this channel's state, and the caller holds the lock.
    pub unsafe fn send_now(&self, inner: &mut Inner<T>, v: T) -> SendNow<T> {
        if inner.closed {
            return SendNow::Closed(v);
        }
        if let Some(n) = inner.recvq.pop_claim(ptr::null()) {
            // SAFETY: a claimed receiver node and its slot are ours until we finish its op.
            unsafe {
                let n = &*n;
                *n.slot.cast::<Option<T>>() = Some(v);
                return SendNow::Sent((*n.op).finish(n.case, Outcome::Done));
            }
        }
        if inner.buf.len() + inner.reserved < self.cap {
            inner.buf.push_back(v);
            return SendNow::Sent(None);
        }
        SendNow::Full(v)
    }

    /// A receive under the lock, without blocking.
    ///
    /// # Safety
    /// `inner` is this channel's state, and the caller holds the lock.
    pub unsafe fn recv_now(&self, inner: &mut Inner<T>, skip: *const Op) -> RecvNow<T> {
        if let Some(v) = inner.buf.pop_front() {
            // A slot opened: a blocked sender (there is one only if the buffer was full)
            // moves its value to the tail.
            let wake = Self::refill(inner, skip);
            return RecvNow::Got(v, wake);
        }
        if let Some(n) = inner.sendq.pop_claim(skip) {
            // SAFETY: as above.
            unsafe {
                let n = &*n;
                if n.slot.is_null() {
                    return RecvNow::Pair(n);
                }
                let v = (*n.slot.cast::<Option<T>>()).take();
                let w = (*n.op).finish(n.case, Outcome::Done);
                return RecvNow::Got(v.expect("runtime: a blocked sender without a value"), w);
            }
        }
        if inner.closed {
            RecvNow::Closed
        } else {
            RecvNow::Empty
        }
    }

    /// A buffer slot just opened: the first blocked sender fills it (its value moves to the
    /// tail), or, if it is a `select` send case, the slot is reserved for it. Returns the
    /// sender to wake after unlocking. Called under the lock.
    fn refill(inner: &mut Inner<T>, skip: *const Op) -> Option<Waiter> {
        let n = inner.sendq.pop_claim(skip)?;
        // SAFETY: a claimed sender node is ours until we finish its op.
        unsafe {
            let n = &*n;
            if n.slot.is_null() {
                inner.reserved += 1;
                (*n.op).finish(n.case, Outcome::Reserved)
            } else {
                inner.buf.extend((*n.slot.cast::<Option<T>>()).take());
                (*n.op).finish(n.case, Outcome::Done)
            }
        }
    }

    /// Pairs the caller with a claimed `select` send case (`RecvNow::Pair`) and waits for the
    /// select to deliver. Consumes the lock guard. Returns the value, or None if the select
    /// was abandoned (the caller starts over).
    pub fn pair(&self, guard: impl FnOnce(), sender: *const Node) -> Option<T> {
        let mut slot: Option<T> = None;
        self.pair_into(guard, sender, &mut slot)
            .then(|| slot.expect("runtime: paired without a value"))
    }

    /// [`Chan::pair`] delivering into `slot`; true if the value came.
    pub fn pair_into(
        &self,
        guard: impl FnOnce(),
        sender: *const Node,
        slot: &mut Option<T>,
    ) -> bool {
        let waiter = Waiter::current(WaitReason::ChanReceive);
        let is_g = waiter.is_goroutine();
        let me = Op::new(waiter);
        // SAFETY: the sender node is claimed by us: we finish its op, recording where its
        // value goes; our op and slot stay alive until our op is final (we wait for it).
        let wake = unsafe {
            let n = &*sender;
            let partner = Partner {
                op: &me,
                slot: (slot as *mut Option<T>).cast(),
            };
            (*n.op).finish_paired(n.case, partner)
        };
        let release = move || {
            guard();
            if let Some(w) = wake {
                w.wake();
            }
        };
        // Not cancellable: the select owns our slot until it delivers or gives up.
        let s = waitq::block(&me, is_g, release, None, false, &|| false)
            .expect("runtime: an untimed wait gave up");
        matches!(decode(s), Some((_, Outcome::Done)))
    }

    /// Go's `chansend`: sends, waiting as `wait` allows. On failure the value comes back, with
    /// true if it could not be sent in time (or at once, for [`Wait::Now`]), false if the
    /// channel is closed.
    pub fn send(&self, v: T, wait: Wait) -> Result<(), (T, bool)> {
        let g = self.lock();
        // SAFETY: locked.
        let v = match unsafe { self.send_now(self.inner(), v) } {
            SendNow::Sent(w) => {
                drop(g);
                if let Some(w) = w {
                    w.wake();
                }
                return Ok(());
            }
            SendNow::Closed(v) => return Err((v, false)),
            SendNow::Full(v) => v,
        };
        let Some(deadline) = wait.deadline() else {
            return Err((v, true));
        };
        let mut slot = Some(v);
        match self.wait(g, true, &mut slot, deadline) {
            Some(Outcome::Done) => Ok(()),
            Some(Outcome::Closed) => Err((slot.take().expect("value"), false)),
            None => Err((slot.take().expect("value"), true)),
            Some(o) => crate::fatal(&format!("runtime: send ended with {o:?}")),
        }
    }

    /// Blocks the caller in the send or receive queue, with `slot` as the value's place, until
    /// a counterpart completes the op or `deadline` passes (None). Consumes the lock guard.
    // Always inlined: a park is one stack frame down to the switch (ARCHITECTURE.md,
    // "one frame per park").
    #[inline(always)]
    fn wait(
        &self,
        g: LockGuard<'_>,
        send: bool,
        slot: &mut Option<T>,
        deadline: Option<Instant>,
    ) -> Option<Outcome> {
        let reason = if send {
            WaitReason::ChanSend
        } else {
            WaitReason::ChanReceive
        };
        let waiter = Waiter::current(reason);
        let is_g = waiter.is_goroutine();
        let timed = deadline.map(|d| (d, waiter.alarm()));
        // One node, claimed under our lock, and `give_up` cancels under it too.
        let op = Op::single(waiter);
        let node = Node::new(&op, 0, (slot as *mut Option<T>).cast());
        let queue = |inner: &'_ mut Inner<T>| -> *mut WaitQ {
            if send {
                &mut inner.sendq
            } else {
                &mut inner.recvq
            }
        };
        // SAFETY: locked; node and slot live in this frame until `block` returns with the op
        // final or cancelled and the node unlinked (give_up unlinks it under the lock).
        unsafe { (*queue(self.inner())).push(&node) };
        let give_up = || {
            let _g = self.lock();
            // SAFETY: locked; the node is ours.
            unsafe { (*queue(self.inner())).remove(&node) };
            op.try_cancel()
        };
        let s = waitq::block(&op, is_g, move || drop(g), timed, true, &give_up);
        s.and_then(decode).map(|(_, o)| o)
    }

    /// Go's `chanrecv`: receives, waiting as `wait` allows. `Err(false)` once the channel is
    /// closed and drained; `Err(true)` if nothing came in time (or at once, for
    /// [`Wait::Now`]).
    pub fn recv(&self, wait: Wait) -> Result<T, bool> {
        loop {
            let g = self.lock();
            // SAFETY: locked.
            match unsafe { self.recv_now(self.inner(), ptr::null()) } {
                RecvNow::Got(v, w) => {
                    drop(g);
                    if let Some(w) = w {
                        w.wake();
                    }
                    return Ok(v);
                }
                RecvNow::Closed => return Err(false),
                RecvNow::Pair(n) => match self.pair(move || drop(g), n) {
                    Some(v) => return Ok(v),
                    None => continue,
                },
                RecvNow::Empty => {}
            }
            let Some(deadline) = wait.deadline() else {
                return Err(true);
            };
            let mut slot: Option<T> = None;
            match self.wait(g, false, &mut slot, deadline) {
                Some(Outcome::Done) => return Ok(slot.take().expect("delivered value")),
                Some(Outcome::Closed) => return Err(false),
                // A select send case claimed us, then was dropped without sending.
                Some(Outcome::Retry) => continue,
                None => return Err(true),
                Some(o) => crate::fatal(&format!("runtime: recv ended with {o:?}")),
            }
        }
    }

    /// Go's `closechan`; true if this call closed the channel.
    pub fn close(&self) -> bool {
        let g = self.lock();
        // SAFETY: locked.
        let Some(wake) = (unsafe { self.close_now(self.inner()) }) else {
            return false;
        };
        drop(g);
        for w in wake {
            w.wake();
        }
        true
    }

    /// A close under the lock: marks the channel closed and claims every waiter with
    /// [`Outcome::Closed`]. Returns the waiters to wake after unlocking, or None if the channel
    /// was already closed.
    ///
    /// # Safety
    /// `inner` is this channel's state, and the caller holds the lock.
    pub unsafe fn close_now(&self, inner: &mut Inner<T>) -> Option<Vec<Waiter>> {
        if inner.closed {
            return None;
        }
        inner.closed = true;
        // Pairs with the Acquire load in `is_closed` (a hint: every decision is re-made under
        // the lock).
        self.closed.store(true, Release);
        let mut wake = Vec::new();
        for q in [&mut inner.recvq, &mut inner.sendq] {
            while let Some(n) = q.pop_claim(ptr::null()) {
                // SAFETY: a claimed node is ours until we finish its op.
                unsafe { wake.extend((*(*n).op).finish((*n).case, Outcome::Closed)) };
            }
        }
        Some(wake)
    }

    /// Returns a buffer slot reserved for a `select` send case that gave up, passing it on to
    /// a blocked sender if there is one.
    pub fn unreserve(&self) {
        let g = self.lock();
        // SAFETY: locked.
        let inner = unsafe { self.inner() };
        inner.reserved -= 1;
        let wake = Self::refill(inner, ptr::null());
        drop(g);
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Fills a buffer slot reserved for a `select` send case (even if the channel closed
    /// since: the send happened when the case was chosen), or hands the value to a receiver
    /// that blocked since.
    pub fn send_reserved(&self, v: T) {
        let g = self.lock();
        // SAFETY: locked.
        let inner = unsafe { self.inner() };
        inner.reserved -= 1;
        let mut wake = None;
        if let Some(n) = inner.recvq.pop_claim(ptr::null()) {
            // SAFETY: a claimed receiver node and its slot are ours until we finish its op.
            unsafe {
                let n = &*n;
                *n.slot.cast::<Option<T>>() = Some(v);
                wake = (*n.op).finish(n.case, Outcome::Done);
            }
        } else {
            inner.buf.push_back(v);
        }
        drop(g);
        if let Some(w) = wake {
            w.wake();
        }
    }
}
