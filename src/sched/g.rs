//! G: a goroutine's scheduling state.
//!
//! # States, by ownership (Go's `_G*` states in runtime2.go)
//! The status word packs a park sequence number (high 56 bits) with the state (low 8 bits).
//!
//! | state      | stack owned by                | on which queue          | who may change it            |
//! |------------|-------------------------------|-------------------------|------------------------------|
//! | `IDLE`     | nobody (it has no stack)      | a free-G list           | the P that takes it          |
//! | `RUNNABLE` | nobody runs on it             | a P's runq / global q   | the M that dequeues it       |
//! | `RUNNING`  | the M executing it            | none                    | that M                       |
//! | `WAITING`  | nobody runs on it             | some wait queue         | a waker, by CAS (`try_ready`)|
//! | `DEAD`     | being returned (on g0)        | none                    | the M that ran it            |
//!
//! A goroutine dump may set the `SCAN` bit on a `WAITING` G (`WAITING|SCAN`) while it walks
//! the G's stack (Go's `_Gscan`; see [`G::try_scan`] and "Walking a parked goroutine's stack"
//! in `diag/unwind.rs`): nobody else changes the status meanwhile, and wakers spin.
//!
//! `RUNNING -> WAITING` happens on the M's scheduler stack (g0) *after* the G's registers are
//! saved and *before* the park's unlock function runs, so a waker that finds the G in a wait
//! queue always sees `WAITING` and can never resume a G that is still on its stack.
//!
//! The sequence number grows at every park (`prepare_park`); a waiter record holds the number it
//! was made with, so a stale record (left in a queue by a cancelled or selected-elsewhere G, or a
//! G since reused) can never wake a later park: its CAS fails.
//!
//! The `ctx` cell is owned by whoever holds the G in the table above (the running M, or the M
//! that dequeued it); nobody else touches it except read-only diagnostics of immutable fields.

use super::m::M;
use super::Sched;
use crate::stack::Stack;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use std::sync::Weak;

pub const IDLE: u64 = 0;
pub const RUNNABLE: u64 = 1;
pub const RUNNING: u64 = 2;
pub const WAITING: u64 = 3;
pub const DEAD: u64 = 4;

/// The low byte of the status word: the state, plus the [`SCAN`] bit.
const STATE_MASK: u64 = 0xff;
const SEQ_ONE: u64 = 0x100;
/// Set on a `WAITING` G by a goroutine dump while it reads the G's stack (Go's `_Gscan`): a
/// waker's `try_ready` spins until it is clear, so the G cannot resume under the reader.
/// See "Walking a parked goroutine's stack" in `diag/mod.rs`.
const SCAN: u64 = 0x80;

pub use crate::task::Entry;

pub struct G {
    /// Goroutine id (low 63 bits; written by the spawning P before the G is published) and
    /// the cancel flag (top bit: set to ask the goroutine to unwind at its next runtime call,
    /// on runtime shutdown). Packed to keep the G small.
    id_cancel: AtomicU64,
    status: AtomicU64,
    /// The runtime this G belongs to.
    pub sched: Weak<Sched>,
    /// The goroutine's name. Written only by the spawner of an idle G, under the runtime's
    /// `allgs` lock; read by the goroutine itself, by the overflow handler on its thread, and
    /// by dumps under that lock. See [`G::name`] and `Sched::spawn`. Boxed twice to keep the
    /// pointer thin (8 bytes, for the `wait` word): names are rare, their extra box cheap.
    name: UnsafeCell<Option<Box<Box<str>>>>,
    /// `(seq << 1) | no_cancel` of the last park whose unlock closure has finished (see
    /// [`G::parked`]); cancellation wakes only such parks.
    parked: AtomicU64,
    /// The `go` call site, for dumps (atomic so that a dump may read it while the G is reused).
    pub created_by: AtomicPtr<Location<'static>>,
    /// Why and since when the G waits, for dumps: `reason | coarse_secs << 8` (see
    /// `diag::WaitReason`). Written only by the G itself (one Relaxed store as it prepares a
    /// park, or enters `blocking`); read by dumps, as a hint for a running G and exactly for a
    /// parked one held with [`G::try_scan`].
    pub wait: AtomicU64,
    /// Where the task this G was spawned for lives: a hint written by the spawner for the
    /// run queue to prefetch (see `runq::Hint`), never dereferenced.
    pub task: AtomicPtr<u8>,
    pub ctx: UnsafeCell<Ctx>,
}

/// Fields owned by the G's current holder (see the module docs).
pub struct Ctx {
    /// Saved stack pointer while not running; null before the first run.
    pub sp: *mut u8,
    pub stack: Option<Stack>,
    /// Requested stack size in bytes (validated and page-rounded, so at most 1 GiB).
    pub stack_size: u32,
    /// The body, until the G starts (empty otherwise).
    pub entry: Entry,
    /// `lock_os_thread` nesting depth and the M it pins (Go's lockedm).
    pub lock_count: u32,
    pub locked_m: *const M,
    /// The id of the last goroutine this one spawned: its next spawn gets a larger one even
    /// from another P's batch of ids (see `Sched::spawn`).
    pub last_spawned: u64,
}

// SAFETY: `ctx` is only touched by the G's single current holder (module docs); the rest is
// atomics and a Weak.
unsafe impl Send for G {}
// SAFETY: as above.
unsafe impl Sync for G {}

impl G {
    pub fn new(sched: Weak<Sched>) -> G {
        G {
            id_cancel: AtomicU64::new(0),
            status: AtomicU64::new(IDLE),
            sched,
            name: UnsafeCell::new(None),
            parked: AtomicU64::new(0),
            created_by: AtomicPtr::new(std::ptr::null_mut()),
            wait: AtomicU64::new(0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            ctx: UnsafeCell::new(Ctx {
                sp: std::ptr::null_mut(),
                stack: None,
                stack_size: 0,
                entry: Entry::empty(),
                lock_count: 0,
                locked_m: std::ptr::null(),
                last_spawned: 0,
            }),
        }
    }

    /// The state (without the [`SCAN`] bit).
    #[inline]
    pub fn state(&self) -> u64 {
        self.status.load(Acquire) & STATE_MASK & !SCAN
    }

    /// Sets the state, keeping the sequence number. Only the G's holder calls this.
    #[inline]
    pub fn set_state(&self, state: u64) {
        let s = self.status.load(Relaxed);
        self.status.store((s & !STATE_MASK) | state, Release);
    }

    /// Starts a new park: bumps the sequence number and returns it. Called by the running G
    /// before it publishes a waiter record.
    #[inline]
    pub fn prepare_park(&self) -> u64 {
        let s = self.status.load(Relaxed);
        debug_assert_eq!(
            s & STATE_MASK,
            RUNNING,
            "runtime: park of a G that is not running"
        );
        let n = s.wrapping_add(SEQ_ONE);
        self.status.store(n, Relaxed);
        n >> 8
    }

    /// `RUNNING -> WAITING`, on g0 once the G is off its stack.
    #[inline]
    pub fn set_waiting(&self) {
        let s = self.status.load(Relaxed);
        debug_assert_eq!(s & STATE_MASK, RUNNING);
        // Release pairs with the Acquire of a waker's CAS: the saved context is visible to the
        // M that will resume the G.
        self.status.store((s & !STATE_MASK) | WAITING, Release);
    }

    /// `WAITING -> RUNNABLE` for the park numbered `seq`. True if this call won the wake-up.
    #[inline]
    pub fn try_ready(&self, seq: u64) -> bool {
        let from = (seq << 8) | WAITING;
        let to = (seq << 8) | RUNNABLE;
        let mut spins = 0u32;
        loop {
            match self.status.compare_exchange(from, to, AcqRel, Relaxed) {
                Ok(_) => return true,
                // A dump is reading the stack of this very park: wait for it (a few µs).
                Err(now) if now == from | SCAN => {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Pins park `seq` for a dump: `WAITING -> WAITING|SCAN`, which holds off every waker
    /// (their `try_ready` spins) so the G cannot resume, and succeeds only if the park is
    /// complete (its unlock closure has returned, so no M touches the G's stack either). While
    /// it holds, the caller is the G's holder in the sense of the module docs and may read its
    /// `ctx` and stack; it must call [`G::end_scan`] soon (wakers spin meanwhile) and must not
    /// block or take a lock a waker may hold in between.
    pub fn try_scan(&self) -> Option<u64> {
        let s = self.status.load(Relaxed);
        if s & STATE_MASK != WAITING {
            return None;
        }
        // Acquire pairs with the Release of `set_waiting`: the saved context is visible.
        if self
            .status
            .compare_exchange(s, s | SCAN, Acquire, Relaxed)
            .is_err()
        {
            return None;
        }
        let seq = s >> 8;
        // Acquire pairs with the AcqRel `fetch_max` in `parked`: the unlock closure's accesses
        // to the G's stack happen before our reads.
        if self.parked.load(Acquire) >> 1 != seq {
            self.end_scan(seq);
            return None;
        }
        Some(seq)
    }

    /// Ends a [`G::try_scan`] of park `seq`. Nobody else changes a scanned status, so a store
    /// suffices; Release pairs with the Acquire of the waker's CAS, so our reads of the stack
    /// happen before the G runs again.
    pub fn end_scan(&self, seq: u64) {
        debug_assert_eq!(self.status.load(Relaxed), (seq << 8) | WAITING | SCAN);
        self.status.store((seq << 8) | WAITING, Release);
    }

    /// The current park sequence number (used to cancel a parked G).
    #[inline]
    pub fn seq(&self) -> u64 {
        self.status.load(Acquire) >> 8
    }

    /// Records, on g0, that park `seq` is complete: its unlock closure has returned, so its
    /// frame on the G's stack is no longer in use by the M. `fetch_max` keeps the record
    /// monotonic even if this M is slower than a later park of the same G on another M.
    #[inline]
    pub fn parked(&self, seq: u64, no_cancel: bool) {
        self.parked
            .fetch_max((seq << 1) | u64::from(no_cancel), AcqRel);
    }

    /// Wakes the G for cancellation if it is parked, its park is complete, and the park is
    /// cancellable (the G was not unwinding, and the wait is not one that must complete). A cancelled wake-up is an ordinary `try_ready`: the G unwinds
    /// from `park` when it runs.
    pub fn try_ready_cancelled(&self) -> bool {
        let seq = self.seq();
        self.state() == WAITING && self.parked.load(Acquire) == seq << 1 && self.try_ready(seq)
    }

    /// # Safety
    /// The caller must be the G's current holder (module docs) and must not keep the reference
    /// across a point where the G changes hands.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn ctx(&self) -> &mut Ctx {
        // SAFETY: forwarded contract.
        unsafe { &mut *self.ctx.get() }
    }
}

const CANCEL: u64 = 1 << 63;

impl G {
    /// The goroutine id.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id_cancel.load(Relaxed) & !CANCEL
    }

    /// Gives a (reused) G its new id and initial cancel flag, before it is published.
    pub fn set_id(&self, id: u64, cancelled: bool) {
        self.id_cancel
            .store(id | if cancelled { CANCEL } else { 0 }, Relaxed);
    }

    /// Whether the runtime asked this goroutine to unwind.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.id_cancel.load(Relaxed) & CANCEL != 0
    }

    /// Asks the goroutine to unwind at its next runtime call.
    pub fn cancel(&self) {
        self.id_cancel.fetch_or(CANCEL, SeqCst);
    }

    /// The goroutine's name.
    ///
    /// # Safety
    /// The caller must be the running goroutine itself (or its M's signal handler), or hold
    /// the runtime's `allgs` lock.
    pub unsafe fn name(&self) -> Option<&str> {
        // SAFETY: forwarded contract: no writer can run concurrently.
        unsafe { (*self.name.get()).as_deref().map(|b| &**b) }
    }

    /// Sets the name of an idle G being spawned.
    ///
    /// # Safety
    /// The caller must be the G's holder and hold the `allgs` lock (unless both the old and
    /// the new name are `None`, when nothing is written).
    pub unsafe fn set_name(&self, name: Option<Box<str>>) {
        // SAFETY: forwarded contract.
        unsafe { *self.name.get() = name.map(Box::new) };
    }

    /// Where the goroutine was started, if known.
    pub fn created_by(&self) -> Option<&'static Location<'static>> {
        // SAFETY: the pointer is null or came from a &'static Location.
        unsafe { self.created_by.load(Relaxed).as_ref() }
    }
}

// `runq::prefetch_arc` and `Sched::spawn` find a G's `Arc` counts 16 bytes below it.
const _: () = assert!(std::mem::align_of::<G>() <= 16);

impl super::runq::Hint for G {
    #[inline]
    fn prefetch_deps(p: *const G) {
        // SAFETY: a G is never freed while its runtime lives (`Sched::allgs` keeps every G ever
        // made), and a run queue belongs to a P of that runtime; the field is atomic, so a
        // stale read races with nobody.
        let task = unsafe { (*p).task.load(Relaxed) };
        // The task's first two lines: its state, body and result.
        crate::arch::prefetch_write(task, 128);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn g_stays_small() {
        // A parked goroutine costs its G (plus a 4 KiB stack page); keep the G within a
        // 144-byte malloc chunk together with its Arc header.
        let size = std::mem::size_of::<super::G>();
        assert!(size <= 120, "G grew to {size} bytes");
    }
}
