//! A P's local run queue: a fixed ring of [`CAPACITY`] slots plus `runnext`.
//!
//! The algorithm is Go's (`runqput`, `runqget`, `runqgrab` in runtime/proc.go), itself a
//! single-producer, multi-consumer bounded ring in the style of Chase and Lev's work-stealing
//! deque, but FIFO for the owner as well:
//!
//! * Only the owner (the M holding the P) pushes, and only it writes `tail`. See [`Local`].
//! * The owner and any number of stealers consume by a CAS on `head`. See [`Steal`].
//! * A stealer copies up to half of the queue out of the ring *before* its CAS on `head`; if the
//!   CAS fails it discards the copy and retries. Slots are atomics, so a copy that races with the
//!   owner's overwrite is a benign stale read, never a data race.
//! * `runnext` holds one G that runs before the ring (a G readied by the running one inherits its
//!   time slice, which keeps producer/consumer pairs on one P). Stealers take it only on their
//!   last round.
//!
//! * The owner's pop prefetches the Gs queued right behind the one it takes, and what the next
//!   one's run touches first (its task, through [`Hint`]): they were usually written last on
//!   another core (their spawner's, or their waker's), and the prefetch overlaps that transfer
//!   with the run of the G just taken. A hint reads only atomics and never faults.
//!
//! The queue is generic so that the loom model can run it on plain values; the scheduler
//! stores `Arc<G>`. Elements are `Arc`s converted to raw pointers; a pointer in a slot between `head` and
//! `tail`, or in `runnext`, owns one strong count.
//!
//! Ordering pairs (each Release names its Acquire):
//! * owner `tail.store(Release)` in `push_back` -> stealer `tail.load(Acquire)` in `grab`: the
//!   slot writes before it are visible to the stealer.
//! * consumer `head.compare_exchange(AcqRel)` -> owner `head.load(Acquire)` in `push_back`: the
//!   owner never overwrites a slot a consumer has not finished reading.

use crate::loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering::*};
use std::ptr;
use std::sync::Arc;

/// Slots in the ring (Go's 256; 4 under loom so the model reaches wrap-around and overflow).
#[cfg(not(loom))]
pub const CAPACITY: usize = 256;
#[cfg(loom)]
pub const CAPACITY: usize = 4;

/// Starts fetching the `Arc` allocation behind `p` (its two counts, 16 bytes below the value
/// for values aligned to at most 16, and the value) into this core's cache.
#[inline]
pub fn prefetch_arc<G>(p: *const G) {
    #[cfg(not(loom))]
    crate::arch::prefetch_write(
        (p as *const u8).wrapping_sub(16),
        std::mem::size_of::<G>() + 16,
    );
    #[cfg(loom)]
    let _ = p;
}

/// How far ahead of the popped G `pop` fetches: the lines of the G `PREFETCH_AHEAD + 1`
/// places behind it, and what the G `PREFETCH_AHEAD` places behind it will touch (whose lines
/// the previous pop fetched).
const PREFETCH_AHEAD: u32 = 1;

/// What the owner's `pop` may fetch ahead for an element it will pop soon.
pub trait Hint {
    /// Starts fetching (as a hint: see `arch::prefetch_write`) the memory that running `*p`
    /// will touch first beyond `*p` itself. `p` is an element that was queued here; it may
    /// have been taken by a stealer since, so an implementation reads through it only if
    /// its elements outlive their time in the queue.
    fn prefetch_deps(p: *const Self);
}

/// The shared state of one P's run queue.
pub struct RunQueue<G> {
    head: AtomicU32,
    tail: AtomicU32,
    runnext: AtomicPtr<G>,
    /// A fixed array (not a boxed slice): no indirection, and `% CAPACITY` indices need no
    /// bounds checks.
    buf: [AtomicPtr<G>; CAPACITY],
}

/// The owner's view: push and pop. Only the M that holds the P makes one (see `P::runq_local`).
pub struct Local<'a, G>(&'a RunQueue<G>);

/// A stealer's (or anyone's) view: steal and inspect.
pub struct Steal<'a, G>(pub &'a RunQueue<G>);

impl<G> Default for RunQueue<G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G> RunQueue<G> {
    pub fn new() -> RunQueue<G> {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            runnext: AtomicPtr::new(ptr::null_mut()),
            buf: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// A queue whose `head` and `tail` start at `pos` instead of 0, so that a model crosses the
    /// `u32` wrap-around of the indices.
    #[cfg(all(test, loom))]
    pub fn starting_at(pos: u32) -> RunQueue<G> {
        RunQueue {
            head: AtomicU32::new(pos),
            tail: AtomicU32::new(pos),
            runnext: AtomicPtr::new(ptr::null_mut()),
            buf: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Copies `n` slots from index `h` on, *before* the caller's CAS on `head` claims them (the
    /// copy is discarded if the CAS fails; slots are atomics, so a stale read is benign).
    fn read_slots(&self, h: u32, n: usize) -> Vec<*mut G> {
        (0..n)
            .map(|i| self.buf[(h as usize + i) % CAPACITY].load(Relaxed))
            .collect()
    }

    /// The owner's handle.
    ///
    /// # Safety
    /// The caller must be the queue's only owner for the handle's lifetime (the M holding the P).
    pub unsafe fn local(&self) -> Local<'_, G> {
        Local(self)
    }

    /// Number of Gs queued, runnext included (racy: a hint for others, exact for the owner).
    pub fn len(&self) -> usize {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Acquire);
        let n = t.wrapping_sub(h) as usize;
        n.min(CAPACITY) + usize::from(!self.runnext.load(Acquire).is_null())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What `Local::push` could not keep: half the ring plus the pushed G, for the global queue.
pub type Overflow<G> = Vec<Arc<G>>;

impl<G: Hint> Local<'_, G> {
    /// Go's `runqput`. With `next`, `g` goes to `runnext` and any G it displaces goes to the tail.
    /// Returns a batch for the global queue when the ring is full.
    #[inline]
    pub fn push(&self, g: Arc<G>, next: bool) -> Option<Overflow<G>> {
        let q = self.0;
        let mut g = Arc::into_raw(g) as *mut G;
        if next {
            let old = q.runnext.swap(g, AcqRel);
            if old.is_null() {
                return None;
            }
            g = old;
        }
        loop {
            let h = q.head.load(Acquire); // pairs with the consumers' CAS on head
            let t = q.tail.load(Relaxed); // only we write tail
            if (t.wrapping_sub(h) as usize) < CAPACITY {
                q.buf[t as usize % CAPACITY].store(g, Relaxed);
                q.tail.store(t.wrapping_add(1), Release); // publishes the slot to stealers
                return None;
            }
            if let Some(batch) = self.push_slow(g, h, t) {
                return Some(batch);
            }
            // A stealer made room: retry the fast path.
        }
    }

    /// Go's `runqputslow`: move half of the ring and `g` out, for the global queue. Cold and
    /// out of line, so that `push`'s fast path stays a handful of instructions.
    #[cold]
    #[inline(never)]
    fn push_slow(&self, g: *mut G, h: u32, t: u32) -> Option<Overflow<G>> {
        let q = self.0;
        let n = (t.wrapping_sub(h) as usize) / 2;
        if cfg!(any(debug_assertions, loom)) {
            assert_eq!(n, CAPACITY / 2, "runtime: runq is not full");
        }
        let batch = q.read_slots(h, n);
        if q.head
            .compare_exchange(h, h.wrapping_add(n as u32), AcqRel, Relaxed)
            .is_err()
        {
            return None; // consumers took some; the caller retries the fast path
        }
        let mut out = Vec::with_capacity(n + 1);
        for p in batch.into_iter().chain(std::iter::once(g)) {
            // SAFETY: each pointer came from Arc::into_raw and the CAS transferred its count to us.
            out.push(unsafe { Arc::from_raw(p) });
        }
        Some(out)
    }

    /// Go's `runqget`: runnext first, then the head of the ring. The flag says whether the G
    /// came from runnext (it inherits the current time slice).
    #[inline]
    pub fn pop(&self) -> Option<(Arc<G>, bool)> {
        let q = self.0;
        let next = q.runnext.load(Relaxed);
        if !next.is_null()
            && q.runnext
                .compare_exchange(next, ptr::null_mut(), AcqRel, Relaxed)
                .is_ok()
        {
            // SAFETY: the CAS moved runnext's count to us.
            return Some((unsafe { Arc::from_raw(next) }, true));
        }
        self.pop_ring().map(|g| (g, false))
    }

    /// Pops the head of the ring, leaving `runnext` alone (`pop`'s second half; also used for
    /// fairness, see `PLocal::inherit_streak`).
    #[inline]
    pub fn pop_ring(&self) -> Option<Arc<G>> {
        let q = self.0;
        loop {
            let h = q.head.load(Acquire);
            let t = q.tail.load(Relaxed);
            if t == h {
                return None;
            }
            let g = q.buf[h as usize % CAPACITY].load(Relaxed);
            if q.head
                .compare_exchange(h, h.wrapping_add(1), AcqRel, Relaxed)
                .is_ok()
            {
                // The Gs after this one run soon and were likely last written on another core
                // (their spawner, or the waker that queued them): start fetching the second
                // one, and what the first one's run touches beyond itself (its lines were
                // fetched by the previous pop). A stale slot is harmless: see `Hint`.
                let n = t.wrapping_sub(h);
                if PREFETCH_AHEAD + 1 < n {
                    let at = h.wrapping_add(PREFETCH_AHEAD + 1) as usize % CAPACITY;
                    prefetch_arc(q.buf[at].load(Relaxed));
                }
                if PREFETCH_AHEAD < n {
                    let at = h.wrapping_add(PREFETCH_AHEAD) as usize % CAPACITY;
                    G::prefetch_deps(q.buf[at].load(Relaxed));
                }
                // SAFETY: the CAS on head gave us the slot's count.
                return Some(unsafe { Arc::from_raw(g) });
            }
        }
    }

    /// Go's `runqsteal`: move about half of `victim`'s Gs into this queue and return one to run.
    /// The Gs are copied straight from the victim's ring into ours (no allocation).
    pub fn steal_from(&self, victim: Steal<'_, G>, steal_runnext: bool) -> Option<Arc<G>> {
        let q = self.0;
        let t = q.tail.load(Relaxed); // only we write tail
        let h = q.head.load(Acquire);
        // Room left in our ring; consumers only ever add room while we copy.
        let room = CAPACITY - t.wrapping_sub(h) as usize;
        let n = victim.grab_into(q, t, steal_runnext, room.min(CAPACITY / 2));
        if n == 0 {
            return None;
        }
        // The last G grabbed runs now; the others are published to our consumers.
        let n = n as u32 - 1;
        let last = q.buf[t.wrapping_add(n) as usize % CAPACITY].load(Relaxed);
        if n > 0 {
            q.tail.store(t.wrapping_add(n), Release); // publishes the copied slots
        }
        // SAFETY: `grab_into` moved one count per grabbed G into our slots from `t` on; the
        // last of them was not published, so its count is ours.
        Some(unsafe { Arc::from_raw(last) })
    }
}

impl<G> Steal<'_, G> {
    /// Go's `runqgrab`: move up to half (at most `max`) of the ring, or runnext if the ring is
    /// empty and `steal_runnext` is set, into `dst`'s slots from `dst_tail` on. Returns how
    /// many Gs it moved; their counts are then owned by those slots, unpublished (`dst`'s
    /// tail is left to the caller).
    ///
    /// The caller must be `dst`'s owner, with `dst_tail` its current tail and at least `max`
    /// free slots from it. Writing there before our CAS on the victim's `head` is safe: no
    /// consumer of `dst` reads beyond its tail, and a failed CAS just lets the retry overwrite
    /// the copy (slots are atomics and the copy owned nothing yet).
    fn grab_into(
        &self,
        dst: &RunQueue<G>,
        dst_tail: u32,
        steal_runnext: bool,
        max: usize,
    ) -> usize {
        let q = self.0;
        loop {
            let h = q.head.load(Acquire);
            let t = q.tail.load(Acquire); // pairs with the owner's Release store
            let n = t.wrapping_sub(h) as usize;
            let n = (n - n / 2).min(max);
            if n == 0 {
                if steal_runnext && max > 0 {
                    let next = q.runnext.load(Acquire);
                    if !next.is_null()
                        && runnext_stays(&q.runnext, next)
                        && q.runnext
                            .compare_exchange(next, ptr::null_mut(), AcqRel, Relaxed)
                            .is_ok()
                    {
                        // The CAS moved runnext's count to us; the slot now owns it.
                        dst.buf[dst_tail as usize % CAPACITY].store(next, Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > CAPACITY / 2 {
                continue; // read an inconsistent h and t; try again
            }
            for i in 0..n {
                let g = q.buf[(h as usize + i) % CAPACITY].load(Relaxed);
                dst.buf[(dst_tail as usize + i) % CAPACITY].store(g, Relaxed);
            }
            if q.head
                .compare_exchange(h, h.wrapping_add(n as u32), AcqRel, Relaxed)
                .is_ok()
            {
                // The CAS on head transferred these slots' counts to the copies in `dst`.
                return n;
            }
        }
    }
}

/// Go's `runqgrab` grace period: a G in `runnext` was usually just readied by the G that is
/// now parking on that P, whose M will run it within a few hundred nanoseconds. Stealing it at
/// once would bounce a ping-pong pair (or a ring) between cores, so a thief waits up to 3 µs
/// and takes it only if it is still there.
fn runnext_stays<G>(runnext: &AtomicPtr<G>, seen: *mut G) -> bool {
    #[cfg(not(loom))]
    {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_micros(3) {
            for _ in 0..30 {
                std::hint::spin_loop();
            }
            if runnext.load(Relaxed) != seen {
                return false;
            }
        }
    }
    runnext.load(Relaxed) == seen
}

impl<G> Drop for RunQueue<G> {
    fn drop(&mut self) {
        // &mut self: nobody else can touch the queue. Each pointer in runnext or between head
        // and tail owns one count (module docs).
        let next = self.runnext.swap(ptr::null_mut(), Relaxed);
        if !next.is_null() {
            // SAFETY: as above.
            drop(unsafe { Arc::from_raw(next) });
        }
        let (mut h, t) = (self.head.load(Relaxed), self.tail.load(Relaxed));
        while h != t {
            let g = self.buf[h as usize % CAPACITY].load(Relaxed);
            // SAFETY: as above.
            drop(unsafe { Arc::from_raw(g) });
            h = h.wrapping_add(1);
        }
    }
}
