//! Loom models of `Note` (`sched/note.rs`). See the parent module's docs.

use super::model;
use crate::sched::note::Note;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::*};
use loom::sync::Mutex;
use loom::thread;
use std::sync::Arc;

/// A wakeup that comes first is remembered.
#[test]
fn loom_note_wakeup_before_sleep() {
    model(None, || {
        let n = Note::new();
        n.wakeup();
        n.sleep();
        n.clear();
        n.wakeup();
        n.sleep();
    });
}

/// Sleeper and waker race (loom runs both orders, and the sleeper blocking first); what the
/// waker wrote before `wakeup` (with Relaxed, like `M::hand_p`'s `nextp`) is seen after `sleep`.
#[test]
fn loom_note_sleep_and_wakeup_race() {
    model(None, || {
        let n = Arc::new(Note::new());
        let data = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(Cell(UnsafeCell::new(0)));
        let t = {
            let (n, data, cell) = (n.clone(), data.clone(), cell.clone());
            thread::spawn(move || {
                // SAFETY: the sleeper reads the cell only after sleep returns.
                cell.0.with_mut(|c| unsafe { *c = 7 });
                data.store(42, Relaxed);
                n.wakeup();
            })
        };
        n.sleep();
        assert_eq!(
            data.load(Relaxed),
            42,
            "wakeup/sleep did not publish the waker's writes"
        );
        // SAFETY: ordered after the write by wakeup -> sleep (loom checks).
        assert_eq!(cell.0.with(|c| unsafe { *c }), 7);
        t.join().unwrap();
    });
}

struct Cell(UnsafeCell<usize>);
// SAFETY: accesses are ordered by the note (checked by loom).
unsafe impl Sync for Cell {}

/// An M goes idle twice on the same note (as in `stopm`, called again after each wake-up):
/// `clear` re-arms it, and the waker only wakes an M it took off the idle list, under the lock.
#[test]
fn loom_note_reuse_after_clear() {
    model(None, || {
        let n = Arc::new(Note::new());
        let idle = Arc::new(Mutex::new(false));
        let t = {
            let (n, idle) = (n.clone(), idle.clone());
            thread::spawn(move || {
                let mut woken = 0;
                while woken < 2 {
                    if std::mem::take(&mut *idle.lock().unwrap()) {
                        n.wakeup();
                        woken += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        for _ in 0..2 {
            *idle.lock().unwrap() = true;
            n.sleep();
            n.clear();
        }
        t.join().unwrap();
    });
}

/// A timed sleep (the timer sleeper in `stopm`) either sees the wakeup or runs out; after
/// running out, a plain `sleep` still consumes a wakeup already in flight (`Timeout::Handoff`),
/// and the waker's writes are visible either way.
#[test]
fn loom_note_timed_sleep_then_sleep() {
    model(None, || {
        let n = Arc::new(Note::new());
        let data = Arc::new(AtomicUsize::new(0));
        let t = {
            let (n, data) = (n.clone(), data.clone());
            thread::spawn(move || {
                data.store(42, Relaxed);
                n.wakeup();
            })
        };
        if !n.sleep_until(std::time::Instant::now()) {
            n.sleep();
        }
        assert_eq!(data.load(Relaxed), 42);
        n.clear();
        t.join().unwrap();
    });
}
