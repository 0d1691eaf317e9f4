//! Poll descriptors (Go's `pollDesc`): one per open fd that a goroutine may wait on, holding a
//! read and a write waiter slot.
//!
//! # The slot state machine (Go's `rg`/`wg`)
//! Each slot is one atomic word:
//!
//! | value | meaning |
//! |---|---|
//! | `NIL` | no readiness seen since it was last consumed, nobody waits |
//! | `READY` | the poller saw the fd ready; the next waiter consumes it and retries at once |
//! | `WAIT` | a goroutine claimed the slot and is about to park (between EAGAIN and the park) |
//! | a pointer | a `Box<Waiter>` of the parked goroutine (published by the park's commit) |
//!
//! ```text
//!            prepare (CAS)                 commit, on g0 (CAS)
//!   NIL ------------------------> WAIT -------------------------> waiter
//!    ^ \                           |                                |
//!    |  \ unblock (event)          | unblock (event): -> READY      | unblock (event, CAS): -> READY,
//!    |   v                         v   (the commit CAS then fails:  |  the poller takes the box and
//!    +- READY <--------------------+    the park is called off)     |  wakes the goroutine
//!   prepare consumes it (CAS READY -> NIL): the caller retries its syscall at once
//! ```
//!
//! A readiness event that arrives between "the syscall returned EAGAIN" and "the goroutine is
//! parked" is never lost: it finds the slot `NIL` or `WAIT` and leaves `READY`, which either
//! `prepare` consumes or makes the commit CAS fail. Whoever moves a pointer out of the slot by
//! CAS or swap owns the box (the poller, which wakes the goroutine; or the goroutine itself
//! after a timer or a cancellation woke it), so it is freed exactly once. Only one goroutine
//! waits per slot: the I/O types serialise waiters per direction (`io.rs`).
//!
//! # Close and reuse
//! Descriptors live in a slab that is never freed; epoll's data word for a registration is
//! `generation << 32 | index`. Freeing a descriptor deregisters the fd from every epoll
//! instance it was added to, then bumps the generation, so an event already taken from the
//! kernel for the old fd finds a different generation and is dropped. An event racing with the
//! free can still mark the reused descriptor `READY` or wake its waiter: that is a spurious
//! wake-up, which every waiter tolerates (it retries its syscall and waits again). No memory is
//! ever touched after it is freed.

use super::poller::Poller;
use super::sys;
use crate::loom::sync::atomic::AtomicUsize;
use crate::sched::park::Waiter;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, PoisonError};

pub const NIL: usize = 0;
pub const READY: usize = 1;
pub const WAIT: usize = 2;

/// Descriptors per slab chunk, and the most chunks (4M descriptors).
const CHUNK: usize = 1024;
const MAX_CHUNKS: usize = 4096;

/// Which waiter slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Read,
    Write,
}

pub struct PollDesc {
    index: u32,
    /// Bumped whenever the descriptor is freed (see "Close and reuse").
    gen: AtomicU32,
    fd: AtomicI32,
    rg: Slot,
    wg: Slot,
    /// The poller has seen a hang-up or an error on the fd (EPOLLRDHUP, EPOLLHUP, EPOLLERR):
    /// states that stay readable without further edges. Set before the waiter is woken.
    closed: AtomicBool,
    /// The id of the first poller the fd was registered with (0: none): a lock-free check for
    /// the common case of one runtime.
    reg0: AtomicU64,
    /// Every poller the fd is registered with (normally one; a goroutine of another runtime
    /// waiting on the same fd adds its own).
    regs: Mutex<Vec<Arc<Poller>>>,
}

/// What [`PollDesc::prepare`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// A readiness event was pending (now consumed): retry the syscall.
    Ready,
    /// The slot is ours (`WAIT`): park, or give up with [`PollDesc::finish`].
    Wait,
}

struct Slab {
    free: Vec<u32>,
    /// Descriptors carved so far.
    len: usize,
}

static CHUNKS: [AtomicPtr<PollDesc>; MAX_CHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_CHUNKS];
static SLAB: Mutex<Slab> = Mutex::new(Slab {
    free: Vec::new(),
    len: 0,
});

impl PollDesc {
    /// A descriptor for `fd`, unregistered, both slots `NIL`.
    pub fn alloc(fd: i32) -> &'static PollDesc {
        let mut s = SLAB.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match s.free.pop() {
            Some(i) => i as usize,
            None => {
                let i = s.len;
                if i.is_multiple_of(CHUNK) {
                    if i / CHUNK >= MAX_CHUNKS {
                        crate::fatal("runtime: more than 4M poll descriptors in use");
                    }
                    let chunk: Box<[PollDesc]> =
                        (0..CHUNK).map(|k| PollDesc::new((i + k) as u32)).collect();
                    // Leaked on purpose: descriptors are never freed (see "Close and reuse").
                    let p = Box::leak(chunk).as_mut_ptr();
                    // Release: pairs with the Acquire load in `lookup`.
                    CHUNKS[i / CHUNK].store(p, Release);
                }
                s.len += 1;
                i
            }
        };
        drop(s);
        let pd = lookup(index).expect("runtime: a carved poll descriptor is missing");
        pd.fd.store(fd, Relaxed);
        pd.closed.store(false, Relaxed);
        pd
    }

    /// Records a hang-up or error event (the poller, before it wakes the waiters).
    pub fn set_closed(&self) {
        self.closed.store(true, Release);
    }

    /// Whether a hang-up or error was seen: a read may find end-of-file (or an error) with no
    /// edge to come, so `read_stream` must not skip its first try.
    pub fn closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    fn new(index: u32) -> PollDesc {
        PollDesc {
            index,
            gen: AtomicU32::new(0),
            fd: AtomicI32::new(-1),
            rg: Slot::new(),
            wg: Slot::new(),
            closed: AtomicBool::new(false),
            reg0: AtomicU64::new(0),
            regs: Mutex::new(Vec::new()),
        }
    }

    /// epoll's data word for this descriptor's current generation.
    pub fn token(&self) -> u64 {
        (u64::from(self.gen.load(Relaxed)) << 32) | u64::from(self.index)
    }

    pub fn slot(&self, dir: Dir) -> &Slot {
        match dir {
            Dir::Read => &self.rg,
            Dir::Write => &self.wg,
        }
    }

    /// Makes sure the fd is in `poller`'s epoll set (edge-triggered, both directions).
    pub fn register(&self, poller: &Arc<Poller>) -> std::io::Result<()> {
        if self.reg0.load(Acquire) == poller.id {
            return Ok(());
        }
        let mut regs = self.regs.lock().unwrap_or_else(PoisonError::into_inner);
        if regs.iter().any(|p| p.id == poller.id) {
            return Ok(());
        }
        let ev = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        sys::epoll_add(
            poller.epfd(),
            self.fd.load(Relaxed),
            ev as u32,
            self.token(),
        )?;
        regs.push(poller.clone());
        if regs.len() == 1 {
            // Release: pairs with the Acquire above (the registration happened).
            self.reg0.store(poller.id, Release);
        }
        Ok(())
    }

    /// Consumes a pending readiness event or claims the `dir` slot for a wait.
    pub fn prepare(&self, dir: Dir) -> Prepared {
        self.slot(dir).prepare()
    }

    /// Readiness for `dir` (an event from the poller): see [`Slot::unblock`].
    pub fn unblock(&self, dir: Dir) -> Option<Waiter> {
        self.slot(dir).unblock().map(|b| *b)
    }

    /// Ends a wait in the `dir` slot: see [`Slot::finish`].
    pub fn finish(&self, dir: Dir) -> bool {
        self.slot(dir).finish()
    }

    /// Frees the descriptor: deregisters the fd (which must still be open) from every poller,
    /// bumps the generation and returns the slot to the slab. The owner calls it before
    /// closing the fd, when no goroutine can be waiting on it any more.
    pub fn free(&'static self) {
        let fd = self.fd.swap(-1, Relaxed);
        let regs = std::mem::take(&mut *self.regs.lock().unwrap_or_else(PoisonError::into_inner));
        for p in &regs {
            let _ = sys::epoll_del(p.epfd(), fd);
        }
        self.reg0.store(0, Relaxed);
        self.gen.fetch_add(1, Relaxed);
        self.finish(Dir::Read);
        self.finish(Dir::Write);
        let mut s = SLAB.lock().unwrap_or_else(PoisonError::into_inner);
        s.free.push(self.index);
    }
}

/// One waiter slot (Go's `rg` or `wg`): `NIL`, `READY`, `WAIT` or a `Box<T>` pointer (see the
/// module docs). Generic over the record so that the loom model can count frees.
pub struct Slot<T = Waiter> {
    word: AtomicUsize,
    _owns: PhantomData<Box<T>>,
}

impl<T> Slot<T> {
    pub fn new() -> Slot<T> {
        Slot {
            word: AtomicUsize::new(NIL),
            _owns: PhantomData,
        }
    }

    /// The raw state word (for tests).
    #[cfg(test)]
    pub fn state(&self) -> usize {
        self.word.load(SeqCst)
    }

    /// Consumes a pending readiness event or claims the slot for a wait.
    pub fn prepare(&self) -> Prepared {
        loop {
            // Acquire: pairs with the Release in `unblock` (a formality: the data itself is
            // ordered by the kernel).
            if self
                .word
                .compare_exchange(READY, NIL, Acquire, Relaxed)
                .is_ok()
            {
                return Prepared::Ready;
            }
            if self
                .word
                .compare_exchange(NIL, WAIT, Relaxed, Relaxed)
                .is_ok()
            {
                return Prepared::Wait;
            }
            if self.word.load(Relaxed) > READY {
                crate::fatal("runtime: two goroutines wait on one poll descriptor slot");
            }
        }
    }

    /// Parks the waiter's record in the slot (`WAIT -> record`), on g0 in the park's unlock
    /// closure. False if readiness arrived first (the slot is no longer `WAIT`): the record is
    /// freed and the park must be called off.
    pub fn commit(&self, rec: *mut T) -> bool {
        // Release: publishes the record's contents to `unblock`'s Acquire.
        if self
            .word
            .compare_exchange(WAIT, rec as usize, Release, Relaxed)
            .is_ok()
        {
            return true;
        }
        // SAFETY: the record was never published (the CAS failed), so it is still ours.
        drop(unsafe { Box::from_raw(rec) });
        false
    }

    /// Readiness (an event from the poller): marks the slot `READY` and returns the parked
    /// waiter's record, if any, for the caller to wake. Callable from any thread.
    pub fn unblock(&self) -> Option<Box<T>> {
        loop {
            let old = self.word.load(Acquire);
            if old == READY {
                return None;
            }
            // AcqRel: Acquire pairs with the Release of `commit` (the record's contents);
            // Release pairs with the Acquire of `prepare`/`finish`.
            if self
                .word
                .compare_exchange(old, READY, AcqRel, Acquire)
                .is_ok()
            {
                if old > WAIT {
                    // SAFETY: a pointer value in the slot is a `Box<T>` published by `commit`;
                    // our CAS took it out, so we own it now.
                    return Some(unsafe { Box::from_raw(old as *mut T) });
                }
                return None;
            }
        }
    }

    /// Ends a wait: empties the slot and says whether readiness was seen. Frees the record if
    /// it was still there (the goroutine was woken by a timer or by cancellation).
    pub fn finish(&self) -> bool {
        // AcqRel: Acquire pairs with `unblock`'s Release (and `commit`'s, for the record we
        // free); Release keeps the swap symmetric with `commit`.
        let old = self.word.swap(NIL, AcqRel);
        if old > WAIT {
            // SAFETY: as in `unblock`: the pointer came out of the slot through our swap.
            drop(unsafe { Box::from_raw(old as *mut T) });
        }
        old == READY
    }
}

/// The descriptor an epoll data word names, if it is still the same generation.
pub fn from_token(token: u64) -> Option<&'static PollDesc> {
    let pd = lookup((token & 0xffff_ffff) as usize)?;
    (pd.gen.load(Relaxed) == (token >> 32) as u32).then_some(pd)
}

fn lookup(index: usize) -> Option<&'static PollDesc> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: chunks are leaked arrays of CHUNK descriptors, never freed; the Acquire pairs
    // with the Release that published this one fully initialised.
    Some(unsafe { &*chunk.add(index % CHUNK) })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn ready_before_wait_is_consumed_once() {
        let pd = PollDesc::alloc(-1);
        assert!(pd.unblock(Dir::Read).is_none());
        assert_eq!(pd.prepare(Dir::Read), Prepared::Ready);
        assert_eq!(pd.prepare(Dir::Read), Prepared::Wait);
        // An event between WAIT and the commit makes the commit fail.
        assert!(pd.unblock(Dir::Read).is_none());
        let rec = Box::into_raw(Box::new(Waiter::current(
            crate::sched::park::WaitReason::IoWait,
        )));
        assert!(!pd.slot(Dir::Read).commit(rec));
        assert!(pd.finish(Dir::Read));
        pd.free();
    }

    #[test]
    fn committed_waiter_is_taken_by_exactly_one_side() {
        let pd = PollDesc::alloc(-1);
        assert_eq!(pd.prepare(Dir::Write), Prepared::Wait);
        let rec = Box::into_raw(Box::new(Waiter::current(
            crate::sched::park::WaitReason::IoWait,
        )));
        assert!(pd.slot(Dir::Write).commit(rec));
        assert!(pd.unblock(Dir::Write).is_some());
        assert!(pd.unblock(Dir::Write).is_none());
        assert!(pd.finish(Dir::Write)); // READY, and no box left to free
                                        // The other way round: the waiter takes its own box back (a timer woke it).
        assert_eq!(pd.prepare(Dir::Write), Prepared::Wait);
        let rec = Box::into_raw(Box::new(Waiter::current(
            crate::sched::park::WaitReason::IoWait,
        )));
        assert!(pd.slot(Dir::Write).commit(rec));
        assert!(!pd.finish(Dir::Write));
        assert!(pd.unblock(Dir::Write).is_none());
        pd.free();
    }

    #[test]
    fn a_freed_descriptor_ignores_old_tokens() {
        let pd = PollDesc::alloc(-1);
        let old = pd.token();
        assert!(from_token(old).is_some());
        pd.free();
        assert!(from_token(old).is_none());
    }
}
