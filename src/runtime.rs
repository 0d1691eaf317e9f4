//! Go's `runtime` package: [`gomaxprocs`], [`gosched`], [`goexit`], [`num_goroutine`],
//! [`lock_os_thread`], [`goid`] and friends.
//!
//! All of these act on the runtime of the calling goroutine. Those that only make sense inside
//! a runtime panic on a plain thread with a message that says to wrap `main` in `gort::run`.

pub use crate::sched::stats::Stats;

use crate::goroutine::{current_sched, GoId};
use crate::sched::park;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::*;

/// The payload of a goroutine ended by [`goexit`]; `join` returns it as `Err`.
///
/// ```
/// gort::run(|| {
///     let err = gort::go(|| gort::runtime::goexit()).join().unwrap_err();
///     assert!(err.downcast_ref::<gort::runtime::Goexit>().is_some());
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goexit;

/// The payload of a goroutine cancelled by its runtime's shutdown (the goroutine unwound from a
/// runtime call, or never started).
///
/// ```
/// // A goroutine parked forever when main returns is cancelled; its destructors run.
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// struct Flag(Arc<AtomicBool>);
/// impl Drop for Flag { fn drop(&mut self) { self.0.store(true, Ordering::SeqCst); } }
/// let dropped = Arc::new(AtomicBool::new(false));
/// let d = dropped.clone();
/// gort::run(move || {
///     gort::go(move || {
///         let _f = Flag(d);
///         let wg = gort::sync::WaitGroup::new();
///         wg.add(1);
///         wg.wait(); // never released
///     });
///     gort::runtime::gosched();
/// });
/// assert!(dropped.load(Ordering::SeqCst));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// The number of Ps: how many goroutines may run at once.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// let rt = gort::Builder::new().procs(3).build().unwrap();
/// assert_eq!(rt.run(gort::runtime::gomaxprocs), 3);
/// ```
pub fn gomaxprocs() -> usize {
    current_sched("gort::runtime::gomaxprocs")
        .1
        .gomaxprocs
        .load(Relaxed)
}

/// Sets the number of Ps and returns the previous value; `0` only queries (as in Go). Values
/// above 1024 are clamped to 1024.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// let rt = gort::Builder::new().procs(2).build().unwrap();
/// rt.run(|| {
///     assert_eq!(gort::runtime::set_gomaxprocs(1), 2);
///     assert_eq!(gort::runtime::set_gomaxprocs(0), 1);
///     assert_eq!(gort::runtime::gomaxprocs(), 1);
/// });
/// ```
pub fn set_gomaxprocs(n: usize) -> usize {
    let sched = current_sched("gort::runtime::set_gomaxprocs").1;
    if n == 0 {
        return sched.gomaxprocs.load(Relaxed);
    }
    sched.set_gomaxprocs(n)
}

/// Yields the processor: the current goroutine goes to the back of the run queue.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| 5);
///     while !h.is_finished() {
///         gort::runtime::gosched();
///     }
///     assert_eq!(h.join().unwrap(), 5);
/// });
/// ```
pub fn gosched() {
    park::yield_now();
}

/// Ends the current goroutine, running its destructors (it unwinds). Its `join` returns
/// `Err(payload)` with a [`Goexit`] payload. On the main goroutine, `run` panics saying that
/// goexit ended main.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| {
///         gort::runtime::goexit();
///     });
///     assert!(h.join().unwrap_err().is::<gort::runtime::Goexit>());
/// });
/// ```
pub fn goexit() -> ! {
    current_sched("gort::runtime::goexit");
    std::panic::resume_unwind(Box::new(Goexit))
}

/// The number of live goroutines in this runtime, main included.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// gort::run(|| assert_eq!(gort::runtime::num_goroutine(), 1));
/// ```
pub fn num_goroutine() -> usize {
    current_sched("gort::runtime::num_goroutine")
        .1
        .num_goroutine()
}

/// Wires the calling goroutine to its current OS thread: until as many [`unlock_os_thread`]
/// calls, it runs only on this thread and no other goroutine runs there. Use it around code
/// that relies on thread-local state (see "Thread-local storage" in the crate docs). A
/// goroutine that exits while locked takes its thread with it (as in Go). On a plain thread
/// this does nothing.
///
/// ```
/// gort::run(|| {
///     gort::runtime::lock_os_thread();
///     let before = std::thread::current().id();
///     for _ in 0..10 {
///         gort::runtime::gosched();
///         assert_eq!(std::thread::current().id(), before);
///     }
///     gort::runtime::unlock_os_thread();
/// });
/// ```
pub fn lock_os_thread() {
    let Some((m, g)) = park::current() else {
        return;
    };
    // SAFETY: we are the running G on our own M; nothing here is held across a switch.
    unsafe {
        let ctx = (*g).ctx();
        ctx.lock_count += 1;
        ctx.locked_m = m;
        let ml = (*m).local();
        ml.locked_g = ml.curg.clone();
    }
}

/// Undoes one [`lock_os_thread`]; the goroutine may migrate again once the count reaches zero.
/// Extra calls do nothing.
///
/// ```
/// gort::run(|| {
///     gort::runtime::lock_os_thread();
///     gort::runtime::unlock_os_thread();
///     gort::runtime::unlock_os_thread(); // harmless
/// });
/// ```
pub fn unlock_os_thread() {
    let Some((m, g)) = park::current() else {
        return;
    };
    // SAFETY: as in lock_os_thread.
    unsafe {
        let ctx = (*g).ctx();
        if ctx.lock_count == 0 {
            return;
        }
        ctx.lock_count -= 1;
        if ctx.lock_count == 0 {
            ctx.locked_m = std::ptr::null();
            (*m).local().locked_g = None;
        }
    }
}

/// The current goroutine's id.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// gort::run(|| assert_eq!(gort::runtime::goid().to_string(), "1"));
/// ```
pub fn goid() -> GoId {
    current_sched("gort::runtime::goid");
    let g = park::current_g().expect("gort::runtime::goid called on the scheduler stack");
    GoId(g.id())
}

/// The current goroutine's name, if it was given one with [`Goroutine::name`](crate::Goroutine::name).
/// `None` on a plain thread.
///
/// ```
/// gort::run(|| {
///     assert_eq!(gort::runtime::name(), None);
///     let h = gort::Goroutine::new().name("w").spawn(gort::runtime::name).unwrap();
///     assert_eq!(h.join().unwrap().as_deref(), Some("w"));
/// });
/// ```
pub fn name() -> Option<String> {
    let g = park::current_g()?;
    // SAFETY: we are the running G; the name is only changed when the G is reused.
    unsafe { g.name() }.map(str::to_owned)
}

/// Go's `runtime.Stack`: a dump of the current goroutine (`all == false`) or of every goroutine
/// of this runtime, one block per goroutine in Go's format:
///
/// ```text
/// goroutine 7 "worker" [chan receive, 2 minutes]:
/// my_app::worker(...)
///         /src/main.rs:12
/// created by /src/main.rs:30:9
/// ```
///
/// The header holds the id, the name in quotes if the goroutine has one, and its state:
/// `running`, `runnable`, `syscall` (inside [`blocking`](crate::blocking)) or why it waits
/// (`chan receive`, `select`, `sleep`, `IO wait`, `sync.Mutex.Lock`, `semacquire`, `join`, ...),
/// with `, N minutes` once it has waited a minute. The current goroutine's backtrace and every
/// parked goroutine's (walked from its saved context) follow; a goroutine running on another
/// thread, or runnable, gets a line saying its stack is unavailable. `created by` names the
/// `go` call. The same dump goes to stderr on SIGQUIT (and the program keeps running).
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// #[inline(never)]
/// fn waiter(rx: gort::chan::Receiver<u32>) -> u32 {
///     rx.recv().unwrap()
/// }
/// gort::run(|| {
///     let d = gort::runtime::stack_dump(false);
///     assert!(d.starts_with("goroutine 1 [running]:"), "{d}");
///
///     let (tx, rx) = gort::chan::bounded(0);
///     let h = gort::Goroutine::new().name("worker").spawn(move || waiter(rx)).unwrap();
///     let header = format!("goroutine {} \"worker\" [chan receive]:", h.id());
///     let mut d = gort::runtime::stack_dump(true);
///     while !d.contains(&header) {
///         gort::runtime::gosched(); // let it reach its receive
///         d = gort::runtime::stack_dump(true);
///     }
///     let block = &d[d.find(&header).unwrap()..];
///     assert!(block.contains("waiter"), "{block}"); // the function that called recv
///     tx.send(1).unwrap();
///     h.join().unwrap();
/// });
/// ```
pub fn stack_dump(all: bool) -> String {
    let (_, sched) = current_sched("gort::runtime::stack_dump");
    let me = park::current_g().expect("stack_dump on the scheduler stack");
    // Capturing the return addresses needs little stack and must run here, on the goroutine;
    // symbolising and formatting need a lot, so they run on the scheduler stack (as Go's
    // runtime.Stack does), which lets even a 16 KiB goroutine take a dump.
    let bt = std::backtrace::Backtrace::force_capture();
    park::on_system_stack(move || {
        let mut out = String::new();
        let _ = writeln!(out, "{}", crate::diag::header(me, "running"));
        let _ = writeln!(out, "{bt}");
        if all {
            crate::diag::dump_others(sched, Some(me), &mut out);
        }
        out
    })
}

/// Scheduler statistics of this runtime: goroutines, threads (Ms), idle and spinning Ms, idle
/// Ps, the global run queue, and counters since the runtime started (spawns, context switches,
/// parks, steals, P hand-offs, preemptions, netpoll wake-ups). See [`Stats`]. Cheap enough to
/// call often: it sums per-P counters and takes the scheduler lock once.
///
/// # Panics
/// Outside a gort runtime.
///
/// ```
/// gort::run(|| {
///     let s0 = gort::runtime::stats();
///     let (tx, rx) = gort::chan::bounded(0);
///     let h = gort::go(move || tx.send(1).unwrap());
///     assert_eq!(rx.recv().unwrap(), 1);
///     h.join().unwrap();
///     let s1 = gort::runtime::stats();
///     assert!(s1.spawned > s0.spawned);
///     assert!(s1.parks > s0.parks || s1.context_switches > s0.context_switches);
///     assert!(s1.threads >= 1);
/// });
/// ```
pub fn stats() -> Stats {
    current_sched("gort::runtime::stats").1.stats()
}
