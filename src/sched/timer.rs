//! Timers: run a short function at a given instant.
//!
//! This is the runtime's internal timer interface; `crate::time` (sleep, Timer, Ticker) and
//! every timed wait (`recv_timeout`, `Condvar::wait_timeout`, `select` with a timeout) are
//! built on it.
//!
//! # Contract
//! - [`add`] arms a timer; its function runs once, at or after `when`, unless [`cancel`]
//!   removed it first. `cancel` returns true exactly when it removed the timer before its
//!   function started.
//! - Timer functions run on a runtime thread (a scheduler stack or the timer thread) with no
//!   lock held: they must not block, park or panic; they wake someone (`Sched::ready`, a
//!   `try_send`) and return.
//!
//! # Implementation
//! One process-wide timer thread with a binary heap, started on first use. (Go 1.14 keeps a
//! heap per P and runs due timers from the scheduler loop; that design replaces this one for
//! goroutines, and this thread remains the home of timers armed from plain threads.)

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

type TimerFn = Box<dyn FnOnce() + Send>;

/// An armed timer, for [`cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerId(u64);

struct Heap {
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    fns: HashMap<u64, TimerFn>,
    next_id: u64,
}

struct TimerThread {
    heap: Mutex<Heap>,
    cv: Condvar,
}

fn timer_thread() -> &'static TimerThread {
    static T: OnceLock<&'static TimerThread> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static TimerThread = Box::leak(Box::new(TimerThread {
            heap: Mutex::new(Heap {
                due: BinaryHeap::new(),
                fns: HashMap::new(),
                next_id: 1,
            }),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("gort-timer".into())
            .spawn(move || t.run())
            .unwrap_or_else(|e| {
                crate::fatal(&format!("runtime: cannot start the timer thread: {e}"))
            });
        t
    })
}

impl TimerThread {
    fn run(&self) -> ! {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            match h.due.peek().copied() {
                Some(Reverse((when, id))) if when <= now => {
                    h.due.pop();
                    if let Some(f) = h.fns.remove(&id) {
                        drop(h);
                        f();
                        h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                    }
                }
                Some(Reverse((when, _))) => {
                    h = self
                        .cv
                        .wait_timeout(h, when - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => h = self.cv.wait(h).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

/// Arms a timer that runs `f` at or after `when` (see the module docs for what `f` may do).
pub fn add(when: Instant, f: Box<dyn FnOnce() + Send>) -> TimerId {
    let t = timer_thread();
    let mut h = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    let id = h.next_id;
    h.next_id += 1;
    let earliest = h.due.peek().is_none_or(|Reverse((w, _))| when < *w);
    h.due.push(Reverse((when, id)));
    h.fns.insert(id, f);
    drop(h);
    if earliest {
        t.cv.notify_one();
    }
    TimerId(id)
}

/// Disarms a timer: true if it was removed before its function started.
pub fn cancel(id: TimerId) -> bool {
    let t = timer_thread();
    let mut h = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    // The heap entry stays until it comes due and is skipped; the function is what counts.
    h.fns.remove(&id.0).is_some()
}
