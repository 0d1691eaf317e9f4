//! Loom models of a poll descriptor slot (`pd.rs`, Go's `rg`/`wg`): a waiter going through
//! prepare -> commit -> park against the poller's `unblock`, and a waiter woken by its timer
//! (`finish`) against `unblock`. Each record counts its drops: freed exactly once, never lost.

use super::pd::{Prepared, Slot};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::thread;
use std::sync::Arc;

/// A waiter record that counts how often it is dropped.
struct Rec(Arc<AtomicUsize>);

impl Drop for Rec {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// An event racing with a wait: the waiter either consumes `READY` (prepare), has its commit
/// fail (the park is called off), or is parked and then woken by the poller; in every order
/// it ends having seen readiness, and its record is freed once.
#[test]
fn loom_netpoll_event_vs_park() {
    loom::model(|| {
        let slot = Arc::new(Slot::<Rec>::new());
        let drops = Arc::new(AtomicUsize::new(0));
        let woken = Arc::new(AtomicBool::new(false));
        let poller = {
            let (slot, woken) = (slot.clone(), woken.clone());
            thread::spawn(move || {
                if let Some(rec) = slot.unblock() {
                    drop(rec);
                    woken.store(true, SeqCst); // Sched::ready
                }
            })
        };
        let mut allocated = 0;
        let saw_ready = match slot.prepare() {
            Prepared::Ready => true,
            Prepared::Wait => {
                allocated = 1;
                let rec = Box::into_raw(Box::new(Rec(drops.clone())));
                if slot.commit(rec) {
                    // Parked: only the poller can wake us (no timer in this model).
                    while !woken.load(SeqCst) {
                        thread::yield_now();
                    }
                }
                slot.finish()
            }
        };
        poller.join().unwrap();
        assert!(saw_ready, "the readiness event was lost");
        assert_eq!(
            drops.load(SeqCst),
            allocated,
            "a record was freed twice or leaked"
        );
        assert_eq!(slot.state(), super::pd::NIL);
    });
}

/// A parked waiter woken by its deadline timer (it runs `finish` itself) while the poller
/// unblocks the slot: exactly one of them takes and frees the record.
#[test]
fn loom_netpoll_timer_vs_event() {
    loom::model(|| {
        let slot = Arc::new(Slot::<Rec>::new());
        let drops = Arc::new(AtomicUsize::new(0));
        assert_eq!(slot.prepare(), Prepared::Wait);
        let rec = Box::into_raw(Box::new(Rec(drops.clone())));
        assert!(slot.commit(rec));
        let poller = {
            let slot = slot.clone();
            thread::spawn(move || slot.unblock().is_some())
        };
        let ready = slot.finish();
        let poller_took = poller.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "the record was freed twice or never");
        // If the poller took the record, the waiter saw READY; if the waiter took it back,
        // the poller found nothing and left READY for the next wait.
        assert_eq!(poller_took, ready);
        let left = slot.state();
        assert!(left == super::pd::NIL || (left == super::pd::READY && !ready));
    });
}
