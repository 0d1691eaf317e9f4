//! Loom models of the P's local run queue (`sched/runq.rs`). See the parent module's docs.

use super::model;
use crate::sched::runq::{Hint, RunQueue, Steal};
use loom::cell::UnsafeCell;
use loom::thread;
use std::sync::Arc;

/// A queued element: an id, and a payload that loom watches for data races.
struct Item {
    id: usize,
    body: UnsafeCell<usize>,
}

// SAFETY: `body` is only touched by the thread that currently holds the item; that the run
// queue makes this so (with happens-before at every hand-over) is what the models check.
unsafe impl Sync for Item {}

/// Items are plain values: nothing to fetch ahead.
impl Hint for Item {
    fn prefetch_deps(_: *const Item) {}
}

/// The items of one execution. It keeps two strong counts of each until the end (and leaks
/// them if the execution fails), so that a queue bug that hands an item out twice shows up as
/// a loom report or in [`Items::check_exactly_once`], not as a use-after-free crash that would
/// also swallow the report.
#[derive(Default)]
struct Items(std::cell::RefCell<Vec<Arc<Item>>>);

impl Drop for Items {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(std::mem::take(self.0.get_mut()));
        }
    }
}

impl Items {
    /// A new item, written by the calling thread (the one that will push it).
    fn item(&self, id: usize) -> Arc<Item> {
        let it = Arc::new(Item {
            id,
            body: UnsafeCell::new(0),
        });
        // SAFETY: not shared yet.
        it.body.with_mut(|b| unsafe { *b = id + 1000 });
        self.0.borrow_mut().extend([it.clone(), it.clone()]);
        it
    }

    /// Every item made is in `got` exactly once, and `got` holds its only count besides our two.
    fn check_exactly_once(&self, got: Vec<Arc<Item>>) {
        let n = self.0.borrow().len() / 2;
        let mut seen = vec![0usize; n];
        for it in &got {
            assert!(it.id < n, "unknown item {}", it.id);
            seen[it.id] += 1;
        }
        for (id, &k) in seen.iter().enumerate() {
            assert_eq!(k, 1, "item {id} obtained {k} times");
        }
        for it in &got {
            assert_eq!(
                Arc::strong_count(it),
                3,
                "item {}: leaked or duplicated count",
                it.id
            );
        }
    }
}

/// The consumer's first touch of an item it obtained (a real M writes the G's context).
fn took(it: Arc<Item>) -> Arc<Item> {
    // (black_box: an Arc's pointer is known non-null, so a plain check would be optimised out.)
    if std::hint::black_box(Arc::as_ptr(&it)).is_null() {
        // A slot read before its element was published: report it rather than crash.
        std::mem::forget(it);
        panic!("the queue handed out a null slot (read before it was published)");
    }
    it.body.with_mut(|b| {
        // SAFETY: we hold the item; loom reports a race if the queue did not order us after
        // the previous holder.
        let b = unsafe { &mut *b };
        assert!(
            *b == it.id + 1000 || *b == it.id + 2000,
            "item {}: stale payload {}",
            it.id,
            *b
        );
        *b = it.id + 2000;
    });
    it
}

/// Moves everything left in `q` (ring and runnext) to `out`.
fn drain(q: &RunQueue<Item>, out: &mut Vec<Arc<Item>>) {
    // SAFETY: the model's other threads have been joined: the caller is the only user.
    let l = unsafe { q.local() };
    while let Some((g, _)) = l.pop() {
        out.push(took(g));
    }
}

/// Spawns a stealer that owns `mine` and calls `steal_from` once per entry of `rounds` (the
/// entry is `steal_runnext`, which `find_runnable` sets on its last round), on the victim
/// queues in turn. Returns what it got to run; what it moved into `mine` stays there.
fn stealer(
    mine: Arc<RunQueue<Item>>,
    victims: Vec<Arc<RunQueue<Item>>>,
    rounds: &'static [bool],
) -> thread::JoinHandle<Vec<Arc<Item>>> {
    thread::spawn(move || {
        // SAFETY: this thread is `mine`'s only owner until it is joined.
        let local = unsafe { mine.local() };
        let mut got = Vec::new();
        for &steal_runnext in rounds {
            for v in &victims {
                if let Some(g) = local.steal_from(Steal(v), steal_runnext) {
                    got.push(took(g));
                }
            }
        }
        got
    })
}

/// The owner pushes past CAPACITY (so the 5th push overflows unless the stealer made room
/// first) and pops once, while one stealer steals twice (its second, last, round also takes
/// runnext). `start` places the indices, to cross the u32 wrap-around.
fn owner_vs_stealer(start: u32) {
    model(None, move || {
        let items = Items::default();
        let q0 = Arc::new(RunQueue::<Item>::starting_at(start));
        let q1 = Arc::new(RunQueue::<Item>::starting_at(start));
        let s = stealer(q1.clone(), vec![q0.clone()], &[false, true]);
        let mut got = Vec::new();
        {
            // SAFETY: the main thread owns q0 (the stealer only uses its Steal view).
            let owner = unsafe { q0.local() };
            for id in 0..5 {
                if let Some(batch) = owner.push(items.item(id), false) {
                    assert_eq!(batch.len(), crate::sched::runq::CAPACITY / 2 + 1);
                    got.extend(batch.into_iter().map(took));
                }
            }
            got.extend(owner.pop().map(|(g, _)| took(g)));
        }
        got.extend(s.join().unwrap());
        drain(&q0, &mut got);
        drain(&q1, &mut got);
        items.check_exactly_once(got);
    });
}

#[test]
fn loom_runq_owner_vs_stealer() {
    owner_vs_stealer(0);
}

#[test]
fn loom_runq_owner_vs_stealer_index_wraparound() {
    owner_vs_stealer(u32::MAX - 1);
}

/// The ring is full; the owner's next push takes the slow path (`push_slow`), whose CAS on
/// head races the stealer's. Then the owner pops.
#[test]
fn loom_runq_overflow_vs_stealer() {
    model(None, || {
        let items = Items::default();
        let q0 = Arc::new(RunQueue::<Item>::new());
        let q1 = Arc::new(RunQueue::<Item>::new());
        // SAFETY: the main thread owns q0.
        let owner = unsafe { q0.local() };
        for id in 0..crate::sched::runq::CAPACITY {
            assert!(owner.push(items.item(id), false).is_none());
        }
        let n = crate::sched::runq::CAPACITY + 1;
        let s = stealer(q1.clone(), vec![q0.clone()], &[false, true]);
        let mut got = Vec::new();
        if let Some(batch) = owner.push(items.item(n - 1), false) {
            got.extend(batch.into_iter().map(took));
        }
        got.extend(owner.pop().map(|(g, _)| took(g)));
        got.extend(s.join().unwrap());
        drain(&q0, &mut got);
        drain(&q1, &mut got);
        items.check_exactly_once(got);
    });
}

/// runnext: the owner pushes with `next` (displacing the previous runnext to the ring), pops
/// the ring only (`pop_ring`, as `find_runnable` does to end a runnext chain), then pops
/// (runnext first), while the stealer steals a round without runnext, then its last round with
/// `steal_runnext`, which races the owner's CAS on runnext.
#[test]
fn loom_runq_runnext_stolen_on_last_round() {
    model(None, || {
        let items = Items::default();
        let q0 = Arc::new(RunQueue::<Item>::new());
        let q1 = Arc::new(RunQueue::<Item>::new());
        let s = stealer(q1.clone(), vec![q0.clone()], &[false, true]);
        let mut got = Vec::new();
        {
            // SAFETY: the main thread owns q0.
            let owner = unsafe { q0.local() };
            assert!(owner.push(items.item(0), true).is_none());
            assert!(owner.push(items.item(1), true).is_none()); // 0 moves to the ring
            got.extend(owner.pop_ring().map(took));
            got.extend(owner.pop().map(|(g, _)| took(g)));
            assert!(owner.push(items.item(2), true).is_none());
            got.extend(owner.pop().map(|(g, _)| took(g)));
        }
        got.extend(s.join().unwrap());
        drain(&q0, &mut got);
        drain(&q1, &mut got);
        items.check_exactly_once(got);
    });
}

/// Two stealers on one victim: their CASes on head race each other and the owner's pop; the
/// second stealer also goes for runnext.
#[test]
fn loom_runq_two_stealers() {
    model(Some(3), || {
        let items = Items::default();
        let q0 = Arc::new(RunQueue::<Item>::new());
        let q1 = Arc::new(RunQueue::<Item>::new());
        let q2 = Arc::new(RunQueue::<Item>::new());
        let s1 = stealer(q1.clone(), vec![q0.clone()], &[false]);
        let s2 = stealer(q2.clone(), vec![q0.clone()], &[true]);
        let mut got = Vec::new();
        {
            // SAFETY: the main thread owns q0.
            let owner = unsafe { q0.local() };
            for id in 0..3 {
                assert!(owner.push(items.item(id), false).is_none());
            }
            assert!(owner.push(items.item(3), true).is_none());
            got.extend(owner.pop().map(|(g, _)| took(g)));
        }
        got.extend(s1.join().unwrap());
        got.extend(s2.join().unwrap());
        drain(&q0, &mut got);
        drain(&q1, &mut got);
        drain(&q2, &mut got);
        items.check_exactly_once(got);
    });
}

/// Stolen items go on: stealer 1 moves half of q0 into its own ring (`steal_from` publishes
/// them with its tail store) while stealer 2 steals from stealer 1's queue, then from q0
/// (runnext included), and the owner pushes and pops.
#[test]
fn loom_runq_steal_chain() {
    model(None, || {
        let items = Items::default();
        let q0 = Arc::new(RunQueue::<Item>::new());
        let q1 = Arc::new(RunQueue::<Item>::new());
        let q2 = Arc::new(RunQueue::<Item>::new());
        let mut got = Vec::new();
        // SAFETY: the main thread owns q0.
        let owner = unsafe { q0.local() };
        for id in 0..3 {
            assert!(owner.push(items.item(id), false).is_none());
        }
        let s1 = stealer(q1.clone(), vec![q0.clone()], &[false]);
        let s2 = stealer(q2.clone(), vec![q1.clone(), q0.clone()], &[true]);
        assert!(owner.push(items.item(3), true).is_none());
        got.extend(owner.pop().map(|(g, _)| took(g)));
        got.extend(s1.join().unwrap());
        got.extend(s2.join().unwrap());
        drain(&q0, &mut got);
        drain(&q1, &mut got);
        drain(&q2, &mut got);
        items.check_exactly_once(got);
    });
}
