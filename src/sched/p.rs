//! P: a logical processor, the right to run Go code. `gomaxprocs` of them exist per runtime.
//!
//! An M must hold a P to run goroutines. A P is held by at most one M at a time, or sits on the
//! runtime's idle list. The holder owns [`PLocal`] and is the only pusher of the run queue; other
//! Ms read the queue (and steal from it) through [`runq::Steal`](super::runq::Steal) and read the
//! counters.

use super::g::{Entry, G};
use super::runq::{Local, RunQueue};
use super::timer::Timers;
use crate::stack::Stack;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;

/// Free Gs kept per P before half of them move to the runtime-wide list (Go keeps 64).
pub const GFREE_MAX: usize = 64;
/// Default-size stacks cached per P before half of them move to the runtime-wide pool.
pub const STACK_CACHE_MAX: usize = 32;
/// Longest chain of `runnext` runs before the P's other work goes first.
pub const INHERIT_MAX: u32 = 61;
/// Goroutine ids taken from the runtime-wide counter at a time (Go's `_GoidCacheBatch`).
pub const GOID_BATCH: u64 = 16;

pub struct P {
    pub id: usize,
    pub runq: RunQueue<G>,
    /// Goroutines started and ended on this P. `num_goroutine` sums them over all Ps; only the
    /// holder writes them (plain load + store, no read-modify-write contention).
    pub spawned: AtomicU64,
    pub exited: AtomicU64,
    /// Goroutine runs (context switches to a G), parks and successful steals on this P, for
    /// `runtime::stats` and scheduler traces; holder-written like `spawned`.
    pub runs: AtomicU64,
    pub parks: AtomicU64,
    pub steals: AtomicU64,
    /// Beyond `gomaxprocs` and held by nobody. Read and written only under the scheduler lock
    /// (an atomic only so that the P stays `Sync`).
    pub retired: AtomicBool,
    /// Timers armed by goroutines running on this P (see `timer.rs`): any M may run or move
    /// them, under the heap's own lock.
    pub timers: Timers,
    local: UnsafeCell<PLocal>,
}

/// State only the holding M touches.
pub struct PLocal {
    /// Schedules since this P was created; every 61st checks the global queue first.
    pub schedtick: u32,
    /// Consecutive runs of Gs taken from `runnext` (which inherit the time slice and do not
    /// advance `schedtick`). Go bounds such chains with sysmon's time-slice preemption; gort's
    /// sysmon sees no long run in them (each switch is a new run), so a chain of
    /// [`INHERIT_MAX`] ends it: the ring and the global queue go
    /// first, so a ping-pong pair cannot starve the rest of its P.
    pub inherit_streak: u32,
    pub gfree: Vec<Arc<G>>,
    /// The spent task of the G spawned last, freed by the next spawn (see `Sched::spawn`).
    pub spent: Entry,
    pub stacks: Vec<Stack>,
    pub goid_next: u64,
    pub goid_end: u64,
    /// xorshift64 state for random steal order.
    pub rand: u64,
}

// SAFETY: `local` is only touched by the M holding the P (module docs); the rest is atomics.
unsafe impl Send for P {}
// SAFETY: as above.
unsafe impl Sync for P {}

impl P {
    pub fn new(id: usize) -> P {
        P {
            id,
            runq: RunQueue::new(),
            spawned: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            timers: Timers::new(),
            local: UnsafeCell::new(PLocal {
                schedtick: 0,
                inherit_streak: 0,
                gfree: Vec::new(),
                spent: Entry::empty(),
                stacks: Vec::new(),
                goid_next: 0,
                goid_end: 0,
                rand: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
            }),
        }
    }

    /// # Safety
    /// The caller must be the M holding this P, and must not keep the reference past releasing it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn local(&self) -> &mut PLocal {
        // SAFETY: forwarded contract: the holder is the only user.
        unsafe { &mut *self.local.get() }
    }

    /// # Safety
    /// As for [`P::local`].
    pub unsafe fn runq_local(&self) -> Local<'_, G> {
        // SAFETY: the holder of the P is the run queue's owner.
        unsafe { self.runq.local() }
    }

    /// Bumps an owner-written counter.
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Relaxed) + 1, Release);
    }
}

impl PLocal {
    pub fn fastrand(&mut self) -> u64 {
        let mut x = self.rand;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rand = x;
        x
    }
}
