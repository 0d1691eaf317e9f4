//! Loom model checks of the scheduler's lock-free parts.
//!
//! Run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --lib --release loom
//! ```
//!
//! (about 30 s in all on two cores; `LOOM_MAX_PREEMPTIONS=n` overrides each model's
//! preemption bound; `-- --nocapture` shows how many executions each model explored).
//!
//! 1. The P's local run queue (`runq.rs`), on items whose payload lives in a loom `UnsafeCell`:
//!    the pushing thread writes it before the push and whoever takes the item writes it again,
//!    so loom checks that each hand-over (push -> pop / grab, grab -> the stealer's own ring ->
//!    the next stealer) carries happens-before, as the real `G::ctx` needs. At the end every
//!    item must have been obtained exactly once, with no leaked or duplicated `Arc` count.
//! 2. The `Note` (`note.rs`) on its own.
//! 3. The M park/unpark protocol ("Worker thread parking/unparking" in `mod.rs`): a miniature
//!    of `Sched` and `M` ([`mini`]) with the real `Note` and `RunQueue`, step for step as in
//!    `m.rs` / `mod.rs`. A lost wake-up leaves an M asleep on its note and the test's main
//!    thread waiting for the work forever, which loom reports as a deadlock; the failing
//!    execution's protocol steps are printed after loom's message.
//!
//! Loom does not explore load buffering (a load returning a store that comes later), so e.g.
//! `push`'s `head.load(Acquire)` being weakened to Relaxed goes unnoticed; every other
//! ordering or CAS in `runq.rs` that was weakened or removed, one at a time, made at least one
//! model here fail.

//!
//! Files: `runq.rs` (1), `note.rs` (2), `park.rs` and `mini.rs` (3).

mod mini;
mod note;
mod park;
mod runq;

use std::sync::Arc;

/// Runs `f` under loom, exploring every execution (`None`) or those with at most `n`
/// preemptions (`Some(n)`; the `LOOM_MAX_PREEMPTIONS` environment variable overrides it).
fn model(preemption_bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = preemption_bound;
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            mini::print_trace();
        }));
    });
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    b.check(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        mini::clear_trace();
        f()
    });
    eprintln!(
        "loom: {} executions",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}
