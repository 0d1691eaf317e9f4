//! `select`: wait on several channel operations and complete exactly one (Go's `selectgo`).
//!
//! [`Select`] is the dynamic form (shaped as crossbeam-channel's); the [`select!`](crate::select!)
//! macro is a thin layer over it.
//!
//! # The algorithm (as Go's)
//! 1. Poll the cases in a random order (Go shuffles too), under the locks of every channel
//!    involved, taken in address order (so two selects never deadlock) and once per channel
//!    (a channel may appear in several cases). The first ready case wins: a closed channel
//!    counts as ready; `never()` never does.
//! 2. If none is ready: fail (`try_select`), or enqueue one node per case, all sharing one
//!    [`Op`], and park. The first counterpart to claim the op (a CAS) completes that case;
//!    the others find the op taken and skip its nodes.
//! 3. On waking, take every node out of its queue again, under all the locks.
//!
//! # Send cases
//! The value of a send case is given after the selection ([`SelectedOperation::send`]), as in
//! crossbeam. So a send case is *reserved* when chosen: a receiver found waiting is claimed
//! (it stays parked until the value comes), or a buffer slot is reserved. A receiver that
//! finds a parked select's send case pairs with it and waits for the value ([`Outcome::Paired`]).
//! A [`SelectedOperation`] dropped without completing releases what it reserved (the paired
//! receiver starts over) and then panics, as crossbeam's does, since a chosen operation was
//! lost.

mod macros;

use crate::chan::imp::{Chan, RecvNow};
use crate::chan::lock::RawLock;
use crate::chan::waitq::{self, decode, Node, Op, Outcome, Partner};
use crate::chan::{Receiver, RecvError, SelectTimeoutError, SendError, Sender, TrySelectError};
use crate::sched::park::{WaitReason, Waiter};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ptr;
use std::time::{Duration, Instant};

/// A type-erased `Box<Option<T>>`: where a select's receive case gets its value.
pub(crate) struct Slot {
    ptr: *mut (),
    drop_fn: unsafe fn(*mut ()),
}

impl Slot {
    fn new<T>() -> Slot {
        unsafe fn drop_box<T>(p: *mut ()) {
            // SAFETY: p came from Box::<Option<T>>::into_raw in Slot::new::<T>.
            drop(unsafe { Box::from_raw(p.cast::<Option<T>>()) });
        }
        Slot {
            ptr: Box::into_raw(Box::new(None::<T>)).cast(),
            drop_fn: drop_box::<T>,
        }
    }

    /// # Safety
    /// The slot was made by `Slot::new::<T>` (callers check the channel identity).
    unsafe fn take<T>(&self) -> Option<T> {
        // SAFETY: forwarded contract; nobody else touches a slot we hold.
        unsafe { (*self.ptr.cast::<Option<T>>()).take() }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: ptr/drop_fn were made together by Slot::new.
        unsafe { (self.drop_fn)(self.ptr) }
    }
}

/// What polling one case found, under the locks.
pub(crate) enum Ready {
    /// A value (in the slot), and maybe a sender to wake after unlocking.
    RecvValue(Slot, Option<Waiter>),
    RecvClosed,
    /// A parked select send case claimed; pair with it.
    RecvPair(*const Node),
    /// A parked receiver claimed; deliver to it.
    SendReceiver(*const Node),
    /// A buffer slot reserved.
    SendReserved,
    SendClosed,
}

/// A channel, seen by `select` without its element type.
pub(crate) trait Selectable {
    fn raw_lock(&self) -> &RawLock;
    /// Polls the case under the lock.
    ///
    /// # Safety
    /// The caller holds the lock.
    unsafe fn poll(&self, send: bool) -> Option<Ready>;
    /// # Safety
    /// The caller holds the lock; `node` stays alive until removed.
    unsafe fn enqueue(&self, send: bool, node: *const Node);
    /// # Safety
    /// The caller holds the lock; `node` was enqueued here (or never).
    unsafe fn remove(&self, send: bool, node: *const Node);
    fn new_slot(&self) -> Slot;
    /// Pairs with a claimed select send case (see `Chan::pair`); `release` drops the locks.
    fn pair(&self, release: &mut dyn FnMut(), sender: *const Node) -> Option<Slot>;
    fn unreserve(&self);
}

impl<T> Selectable for Chan<T> {
    fn raw_lock(&self) -> &RawLock {
        Chan::raw_lock(self)
    }

    unsafe fn poll(&self, send: bool) -> Option<Ready> {
        // SAFETY: the caller holds the lock.
        let inner = unsafe { self.inner() };
        if send {
            if inner.closed {
                return Some(Ready::SendClosed);
            }
            if let Some(n) = inner.recvq.pop_claim(ptr::null()) {
                return Some(Ready::SendReceiver(n));
            }
            if inner.buf.len() + inner.reserved < self.cap {
                inner.reserved += 1;
                return Some(Ready::SendReserved);
            }
            return None;
        }
        // SAFETY: locked (contract).
        match unsafe { self.recv_now(inner, ptr::null()) } {
            RecvNow::Got(v, w) => {
                let slot = Slot::new::<T>();
                // SAFETY: a fresh slot of our T.
                unsafe { *slot.ptr.cast::<Option<T>>() = Some(v) };
                Some(Ready::RecvValue(slot, w))
            }
            RecvNow::Closed => Some(Ready::RecvClosed),
            RecvNow::Pair(n) => Some(Ready::RecvPair(n)),
            RecvNow::Empty => None,
        }
    }

    unsafe fn enqueue(&self, send: bool, node: *const Node) {
        // SAFETY: forwarded contract.
        unsafe {
            let inner = self.inner();
            if send {
                inner.sendq.push(node);
            } else {
                inner.recvq.push(node);
            }
        }
    }

    unsafe fn remove(&self, send: bool, node: *const Node) {
        // SAFETY: forwarded contract.
        unsafe {
            let inner = self.inner();
            if send {
                inner.sendq.remove(node);
            } else {
                inner.recvq.remove(node);
            }
        }
    }

    fn new_slot(&self) -> Slot {
        Slot::new::<T>()
    }

    fn pair(&self, release: &mut dyn FnMut(), sender: *const Node) -> Option<Slot> {
        let slot = Slot::new::<T>();
        // SAFETY: a fresh slot of our T, ours alone while we wait.
        let ok = self.pair_into(release, sender, unsafe {
            &mut *slot.ptr.cast::<Option<T>>()
        });
        ok.then_some(slot)
    }

    fn unreserve(&self) {
        Chan::unreserve(self)
    }
}

struct Case<'a> {
    chan: Option<&'a dyn Selectable>,
    /// The channel's address: identity and lock order.
    addr: usize,
    send: bool,
}

/// Waits on several channel operations and completes exactly one, chosen uniformly at random
/// among the ready ones (Go's `select`; shaped as `crossbeam_channel::Select`).
///
/// Register cases with [`recv`](Select::recv) and [`send`](Select::send) (each returns the
/// case's index), pick one with [`select`](Select::select), [`try_select`](Select::try_select)
/// or [`select_timeout`](Select::select_timeout), then complete it on the returned
/// [`SelectedOperation`] with the same channel.
///
/// ```
/// use gort::chan::{bounded, Select};
/// let (tx1, rx1) = bounded::<i32>(1);
/// let (_tx2, rx2) = bounded::<i32>(1);
/// tx1.send(10).unwrap();
/// let mut sel = Select::new();
/// let a = sel.recv(&rx1);
/// let b = sel.recv(&rx2);
/// let oper = sel.select();
/// assert_eq!(oper.index(), a);
/// assert_eq!(oper.recv(&rx1), Ok(10));
/// # let _ = b;
/// ```
pub struct Select<'a> {
    cases: Vec<Case<'a>>,
}

/// The case a [`Select`] chose; complete it with [`recv`](SelectedOperation::recv) or
/// [`send`](SelectedOperation::send) on the same channel.
///
/// Dropping it without completing releases the operation and then panics (a chosen operation
/// would otherwise be lost silently).
///
/// ```
/// use gort::chan::{bounded, Select};
/// let (tx, rx) = bounded(1);
/// let mut sel = Select::new();
/// let i = sel.send(&tx);
/// let oper = sel.select();
/// assert_eq!(oper.index(), i);
/// oper.send(&tx, "sent").unwrap();
/// assert_eq!(rx.recv(), Ok("sent"));
/// ```
pub struct SelectedOperation<'a> {
    index: usize,
    addr: usize,
    send: bool,
    state: Cell<Option<Chosen<'a>>>,
    _not_send: PhantomData<*const ()>,
}

/// What the chosen case holds until it is completed.
enum Chosen<'a> {
    RecvValue(Slot),
    RecvClosed,
    SendReceiver(*const Node),
    SendPaired(Partner),
    SendReserved(&'a dyn Selectable),
    SendClosed,
}

enum Mode {
    Block,
    Try,
    Until(Option<Instant>),
}

#[inline(never)]
fn fastrand(n: usize) -> usize {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = (s as *const _ as u64) | 1;
        }
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize) % n
    })
}

impl<'a> Select<'a> {
    /// An empty select.
    ///
    /// ```
    /// let sel = gort::chan::Select::new();
    /// # drop(sel);
    /// ```
    pub fn new() -> Select<'a> {
        Select { cases: Vec::new() }
    }

    /// Adds a receive case and returns its index.
    ///
    /// ```
    /// let (_tx, rx) = gort::chan::bounded::<u8>(0);
    /// let mut sel = gort::chan::Select::new();
    /// assert_eq!(sel.recv(&rx), 0);
    /// ```
    pub fn recv<T>(&mut self, r: &'a Receiver<T>) -> usize {
        let chan = r.chan.as_deref();
        self.push(chan.map(|c| c as &dyn Selectable), chan_addr(chan), false)
    }

    /// Adds a send case and returns its index (the value is given to
    /// [`SelectedOperation::send`] if the case is chosen).
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded::<u8>(0);
    /// let mut sel = gort::chan::Select::new();
    /// assert_eq!(sel.send(&tx), 0);
    /// ```
    pub fn send<T>(&mut self, s: &'a Sender<T>) -> usize {
        let chan = s.chan.as_deref();
        self.push(chan.map(|c| c as &dyn Selectable), chan_addr(chan), true)
    }

    fn push(&mut self, chan: Option<&'a dyn Selectable>, addr: usize, send: bool) -> usize {
        self.cases.push(Case { chan, addr, send });
        self.cases.len() - 1
    }

    /// Waits until a case is ready and chooses it (uniformly at random among the ready
    /// ones). With no cases, or only `never()` ones, it blocks forever, as Go's `select {}`.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     gort::go(move || tx.send(1).unwrap());
    ///     let mut sel = gort::chan::Select::new();
    ///     sel.recv(&rx);
    ///     assert_eq!(sel.select().recv(&rx), Ok(1));
    /// });
    /// ```
    pub fn select(&mut self) -> SelectedOperation<'a> {
        match self.run(Mode::Block) {
            Some(op) => op,
            None => unreachable!("runtime: a blocking select gave up"),
        }
    }

    /// Chooses a ready case, or fails if none is ready now (Go's `select` with `default`).
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// let mut sel = gort::chan::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.try_select().is_err());
    /// tx.send(3).unwrap();
    /// assert_eq!(sel.try_select().unwrap().recv(&rx), Ok(3));
    /// ```
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.run(Mode::Try).ok_or(TrySelectError)
    }

    /// [`select`](Select::select), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = gort::chan::bounded::<u8>(0);
    /// let mut sel = gort::chan::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        let until = Instant::now().checked_add(timeout);
        self.run(Mode::Until(until)).ok_or(SelectTimeoutError)
    }

    fn run(&mut self, mode: Mode) -> Option<SelectedOperation<'a>> {
        crate::sched::park::poll_cancel();
        // The distinct channels, in address order.
        let mut locks: Vec<(usize, &'a dyn Selectable)> = self
            .cases
            .iter()
            .filter_map(|c| c.chan.map(|ch| (c.addr, ch)))
            .collect();
        locks.sort_by_key(|l| l.0);
        locks.dedup_by_key(|l| l.0);
        let lock_all = || {
            locks
                .iter()
                .for_each(|l| std::mem::forget(l.1.raw_lock().lock()))
        };
        // As a park's release (on g0), this reads `locks` in the G's frame while it unlocks.
        // That is sound although a counterpart may wake the G after the first unlock: to go
        // on, the G must take every lock again (`remove_all`), in address order, and the lowest
        // one is released last; after that last unlock the loop touches nothing of the G's.
        // (A pairing park is woken without our locks: it releases only one, see `RecvPair`.)
        let unlock_all = || {
            for l in locks.iter().rev() {
                // SAFETY: called only while `lock_all` holds every lock.
                unsafe { l.1.raw_lock().unlock() }
            }
        };
        let n = self.cases.len();
        loop {
            // Poll in random order (Fisher-Yates).
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, fastrand(i + 1));
            }
            lock_all();
            let mut found = None;
            for &i in &order {
                if let Some(ch) = self.cases[i].chan {
                    // SAFETY: all locks held.
                    if let Some(r) = unsafe { ch.poll(self.cases[i].send) } {
                        found = Some((i, ch, r));
                        break;
                    }
                }
            }
            if let Some((i, ch, r)) = found {
                let chosen = match r {
                    Ready::RecvValue(slot, w) => {
                        unlock_all();
                        if let Some(w) = w {
                            w.wake();
                        }
                        Chosen::RecvValue(slot)
                    }
                    Ready::RecvClosed => {
                        unlock_all();
                        Chosen::RecvClosed
                    }
                    Ready::RecvPair(sender) => {
                        // Keep only this channel's lock for the pairing park: its release must
                        // be a single unlock, since the paired select can wake us without
                        // taking any of our other locks (see `unlock_all`).
                        let addr = self.cases[i].addr;
                        for l in locks.iter().filter(|l| l.0 != addr) {
                            // SAFETY: `lock_all` holds every lock; each is released once.
                            unsafe { l.1.raw_lock().unlock() }
                        }
                        // SAFETY: the remaining lock is held; the pairing releases it once.
                        match ch.pair(&mut || unsafe { ch.raw_lock().unlock() }, sender) {
                            Some(slot) => Chosen::RecvValue(slot),
                            None => continue,
                        }
                    }
                    Ready::SendReceiver(node) => {
                        unlock_all();
                        Chosen::SendReceiver(node)
                    }
                    Ready::SendReserved => {
                        unlock_all();
                        Chosen::SendReserved(ch)
                    }
                    Ready::SendClosed => {
                        unlock_all();
                        Chosen::SendClosed
                    }
                };
                return Some(self.selected(i, chosen));
            }
            let deadline = match mode {
                Mode::Try => {
                    unlock_all();
                    return None;
                }
                Mode::Until(Some(d)) if Instant::now() >= d => {
                    unlock_all();
                    return None;
                }
                Mode::Until(d) => d,
                Mode::Block => None,
            };
            // Nothing ready: park on every case.
            let reason = if self.cases.iter().all(|c| c.chan.is_none()) {
                WaitReason::SelectNoCases // Go's `select {}`
            } else {
                WaitReason::Select
            };
            let waiter = Waiter::current(reason);
            let is_g = waiter.is_goroutine();
            let timed = deadline.map(|d| (d, waiter.alarm()));
            let op = Op::new(waiter);
            let slots: Vec<Option<Slot>> = self
                .cases
                .iter()
                .map(|c| c.chan.filter(|_| !c.send).map(|ch| ch.new_slot()))
                .collect();
            let nodes: Vec<Node> = (0..n)
                .map(|i| {
                    let slot = slots[i].as_ref().map_or(ptr::null_mut(), |s| s.ptr);
                    Node::new(&op, i, slot)
                })
                .collect();
            // Enqueue in the random poll order too: two cases on one channel must not always
            // be found in case order (Go's TestPseudoRandomSend).
            for &i in &order {
                let c = &self.cases[i];
                if let Some(ch) = c.chan {
                    // SAFETY: locked; the nodes outlive their time in the queues (every
                    // exit below removes them under the locks first).
                    unsafe { ch.enqueue(c.send, &nodes[i]) };
                }
            }
            let remove_all = || {
                lock_all();
                for (c, node) in self.cases.iter().zip(&nodes) {
                    if let Some(ch) = c.chan {
                        // SAFETY: locked; our node.
                        unsafe { ch.remove(c.send, node) };
                    }
                }
            };
            let give_up = || {
                remove_all();
                let cancelled = op.try_cancel();
                unlock_all();
                cancelled
            };
            let mut cleanup = Cleanup {
                op: &op,
                cases: &self.cases,
                remove_all: &|| {
                    remove_all();
                    unlock_all();
                },
                armed: true,
            };
            let state = waitq::block(&op, is_g, unlock_all, timed, true, &give_up);
            // Take our nodes out of every other queue.
            remove_all();
            unlock_all();
            cleanup.armed = false;
            let Some((i, outcome)) = state.and_then(decode) else {
                return None; // timed out
            };
            let c = &self.cases[i];
            let chosen = match (outcome, c.send) {
                (Outcome::Done, false) => {
                    Chosen::RecvValue(slots.into_iter().nth(i).flatten().expect("recv slot"))
                }
                (Outcome::Closed, false) => Chosen::RecvClosed,
                (Outcome::Closed, true) => Chosen::SendClosed,
                (Outcome::Paired, true) => Chosen::SendPaired(op.partner()),
                (Outcome::Reserved, true) => Chosen::SendReserved(c.chan.expect("a channel")),
                (Outcome::Retry, false) => continue,
                (o, send) => crate::fatal(&format!(
                    "runtime: select case (send: {send}) ended with {o:?}"
                )),
            };
            return Some(self.selected(i, chosen));
        }
    }

    fn selected(&self, i: usize, chosen: Chosen<'a>) -> SelectedOperation<'a> {
        SelectedOperation {
            index: i,
            addr: self.cases[i].addr,
            send: self.cases[i].send,
            state: Cell::new(Some(chosen)),
            _not_send: PhantomData,
        }
    }
}

/// On an unwind out of a parked select (runtime shutdown), releases what a counterpart
/// reserved for the op meanwhile.
struct Cleanup<'s, 'a> {
    op: &'s Op,
    cases: &'s [Case<'a>],
    /// Takes every node out of its queue (under the locks).
    remove_all: &'s dyn Fn(),
    armed: bool,
}

impl Drop for Cleanup<'_, '_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // `waitq::block`'s own guard has made the op final (cancelled, or completed by a
        // counterpart); nodes of the other cases may still be queued.
        (self.remove_all)();
        if let Some((i, o)) = decode(self.op.state()) {
            match o {
                Outcome::Paired => release_partner(self.op.partner()),
                Outcome::Reserved => {
                    if let Some(ch) = self.cases[i].chan {
                        ch.unreserve();
                    }
                }
                _ => {}
            }
        }
    }
}

/// Tells a paired receiver that no value is coming (it starts over).
fn release_partner(p: Partner) {
    // SAFETY: a paired receiver's op waits, unclaimed and in no queue, until we finish it.
    let w = unsafe {
        let op = &*p.op;
        assert!(
            op.try_claim(),
            "runtime: a paired receiver was claimed twice"
        );
        op.finish(0, Outcome::Retry)
    };
    if let Some(w) = w {
        w.wake();
    }
}

/// For `select!`: the chosen index matched none of its cases (a bug in the macro). Typed
/// `()` rather than `!` so that the macro's expansion has no unreachable code.
#[doc(hidden)]
pub fn __select_no_case(op: SelectedOperation<'_>) {
    let i = op.index();
    std::mem::forget(op);
    unreachable!("gort::select!: no case matches the selected index {i}")
}

fn chan_addr<T>(c: Option<&Chan<T>>) -> usize {
    c.map_or(0, |c| c as *const Chan<T> as usize)
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .finish()
    }
}

impl<'a> SelectedOperation<'a> {
    /// The index of the chosen case (as returned by [`Select::recv`]/[`Select::send`]).
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// tx.send(()).unwrap();
    /// let mut sel = gort::chan::Select::new();
    /// let i = sel.recv(&rx);
    /// let op = sel.select();
    /// assert_eq!(op.index(), i);
    /// op.recv(&rx).unwrap();
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    fn take(&self, addr: usize, send: bool) -> Chosen<'a> {
        assert!(
            addr == self.addr && send == self.send,
            "gort: passed a {} that wasn't selected",
            if send { "sender" } else { "receiver" }
        );
        self.state
            .take()
            .expect("runtime: a selected operation completed twice")
    }

    /// Completes a chosen receive case: the value, or `Err` if the channel was closed.
    ///
    /// # Panics
    /// If `r` is not the receiver of the chosen case.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded::<i32>(1);
    /// drop(tx);
    /// let mut sel = gort::chan::Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.select().recv(&rx).is_err()); // closed counts as ready
    /// ```
    pub fn recv<T>(self, r: &Receiver<T>) -> Result<T, RecvError> {
        match self.take(chan_addr(r.chan.as_deref()), false) {
            // SAFETY: the same channel (checked), so the slot holds Option<T>.
            Chosen::RecvValue(slot) => unsafe { slot.take::<T>() }.ok_or(RecvError),
            _ => Err(RecvError),
        }
    }

    /// Completes a chosen send case with `v`; gives `v` back if the channel was closed.
    ///
    /// # Panics
    /// If `s` is not the sender of the chosen case.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     let h = gort::go(move || rx.recv().unwrap());
    ///     let mut sel = gort::chan::Select::new();
    ///     sel.send(&tx);
    ///     sel.select().send(&tx, 9).unwrap();
    ///     assert_eq!(h.join().unwrap(), 9);
    /// });
    /// ```
    pub fn send<T>(self, s: &Sender<T>, v: T) -> Result<(), SendError<T>> {
        let chan = s.chan.as_deref();
        match self.take(chan_addr(chan), true) {
            Chosen::SendReceiver(node) => {
                // SAFETY: we claimed the receiver node; its slot is an Option<T> (same
                // channel, checked) and ours until we finish its op.
                let w = unsafe {
                    let node = &*node;
                    *node.slot.cast::<Option<T>>() = Some(v);
                    (*node.op).finish(node.case, Outcome::Done)
                };
                if let Some(w) = w {
                    w.wake();
                }
                Ok(())
            }
            Chosen::SendPaired(p) => {
                // SAFETY: the paired receiver waits, unclaimed and in no queue, with a slot
                // of our T (it received from this channel) until we finish its op.
                let w = unsafe {
                    let op = &*p.op;
                    assert!(
                        op.try_claim(),
                        "runtime: a paired receiver was claimed twice"
                    );
                    *p.slot.cast::<Option<T>>() = Some(v);
                    op.finish(0, Outcome::Done)
                };
                if let Some(w) = w {
                    w.wake();
                }
                Ok(())
            }
            Chosen::SendReserved(_) => {
                chan.expect("a channel").send_reserved(v);
                Ok(())
            }
            Chosen::SendClosed => Err(SendError(v)),
            Chosen::RecvValue(_) | Chosen::RecvClosed => unreachable!(),
        }
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        let Some(chosen) = self.state.take() else {
            return;
        };
        let lost = match chosen {
            Chosen::SendReceiver(node) => {
                // SAFETY: a receiver node we claimed and have not finished.
                let w = unsafe { (*(*node).op).finish((*node).case, Outcome::Retry) };
                if let Some(w) = w {
                    w.wake();
                }
                false
            }
            Chosen::SendPaired(p) => {
                release_partner(p);
                false
            }
            Chosen::SendReserved(ch) => {
                ch.unreserve();
                false
            }
            Chosen::RecvValue(_) => true,
            Chosen::RecvClosed | Chosen::SendClosed => false,
        };
        if !crate::sched::park::panicking() {
            panic!(
                "gort: dropped a SelectedOperation without completing it{}",
                if lost {
                    " (a received value was lost)"
                } else {
                    ""
                }
            );
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish()
    }
}
