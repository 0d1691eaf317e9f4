//! Loom models of the M park/unpark protocol ("Worker thread parking/unparking" in
//! `sched/mod.rs`), run on the miniature scheduler in `mini.rs`.

use super::model;
use std::sync::Arc;

use super::mini::{Config, Sched};

/// Asserts that `ran` is `0..n` in some order.
fn check_ran(n: usize, mut ran: Vec<usize>) {
    ran.sort_unstable();
    assert_eq!(ran, (0..n).collect::<Vec<_>>(), "Gs lost or run twice");
}

/// A G made runnable from outside any P (`Sched::spawn` with no M, or `Sched::ready` from a
/// plain thread: `globrunqput` then `wakep`), while the only M, holding the only P, finds
/// nothing and gives up its P (rule 1 against rule 3, global queue).
fn global_queue_wakeup(recheck_global: bool) {
    model(Some(3), move || {
        let s = Sched::new(Config {
            procs: 1,
            held: vec![0],
            local_gs: vec![],
            global_gs: vec![],
            g0_spawns: 0,
            max_ms: 2,
            recheck_global,
        });
        s.start_m(Some(0));
        // The test's main thread is the producer (a plain thread: no M, no P).
        s.globrunqput(vec![Arc::new(0)]);
        s.wakep();
        check_ran(1, s.wait_and_shutdown(1));
    });
}

#[test]
fn loom_park_global_queue_wakeup() {
    global_queue_wakeup(true);
}

/// The protocol before commit 7fbd9c5, whose `find_runnable` did not re-check the global queue
/// after the `nmspinning` decrement: the model must find the lost wake-up (M0 drops its P and
/// is still counted as spinning when `wakep` looks, then re-checks only the local queues and
/// sleeps; the G stays in the global queue). Keeps the model honest: if this stops failing,
/// the model has lost the power to see that bug.
#[test]
#[should_panic(expected = "deadlock")]
fn loom_park_global_queue_wakeup_before_fix_deadlocks() {
    global_queue_wakeup(false);
}

/// As above with two Ps: M0 holds P0 and looks for work; M1 is idle (on the idle list, asleep
/// on its note) and P1 is idle, so the producer's `wakep` can hand P1 to M1 through its note.
#[test]
fn loom_park_global_queue_wakeup_idle_m() {
    model(Some(2), || {
        let s = Sched::new(Config {
            procs: 2,
            held: vec![0],
            local_gs: vec![],
            global_gs: vec![],
            g0_spawns: 0,
            max_ms: 4,
            recheck_global: true,
        });
        s.start_m(Some(0));
        s.start_m(None);
        // The test's main thread is the producer (a plain thread: no M, no P).
        s.globrunqput(vec![Arc::new(0)]);
        s.wakep();
        check_ran(1, s.wait_and_shutdown(1));
    });
}

/// A G spawned on an M's own P (`Sched::spawn` with a P: `runqput(p, g, next = true)`, then
/// `wakep`): `wakep` hands the idle P1 to the idle M1 (or a new M) through its note; whichever
/// of the woken M (stealing runnext on its last round) and the spawner's own M gets the G runs
/// it, and the other goes back to sleep until shutdown.
#[test]
fn loom_park_local_spawn_wakeup() {
    model(Some(2), || {
        let s = Sched::new(Config {
            procs: 2,
            held: vec![0],
            local_gs: vec![(0, 0)],
            global_gs: vec![],
            g0_spawns: 1,
            max_ms: 3,
            recheck_global: true,
        });
        s.start_m(Some(0));
        s.start_m(None);
        check_ran(2, s.wait_and_shutdown(2));
    });
}
