//! # gort: Go's runtime as a Rust library
//!
//! Goroutines — cheap, stackful, blocking-style threads — multiplexed onto OS threads by Go's
//! G/M/P scheduler. No `async`, no function colouring: a goroutine that waits (for another
//! goroutine, a channel, a [`sync`] primitive, a socket in [`net`] or a pipe in [`io`]) parks
//! only itself, and its thread runs something else.
//!
//! ```
//! use std::sync::Arc;
//! use gort::sync::WaitGroup;
//!
//! let total = gort::run(|| {
//!     let wg = Arc::new(WaitGroup::new());
//!     let sum = Arc::new(std::sync::atomic::AtomicU64::new(0));
//!     for i in 0..1000u64 {
//!         wg.add(1);
//!         let (wg, sum) = (wg.clone(), sum.clone());
//!         gort::go(move || {
//!             sum.fetch_add(i, std::sync::atomic::Ordering::Relaxed);
//!             wg.done();
//!         });
//!     }
//!     wg.wait();
//!     sum.load(std::sync::atomic::Ordering::Relaxed)
//! });
//! assert_eq!(total, 499_500);
//! ```
//!
//! ## Thread-local storage
//! A goroutine may resume on a different OS thread after any call into gort that can park or
//! yield it (join, wait, gosched, ...). Two consequences for code running on goroutines:
//! * `thread_local!` values are per *thread*, not per goroutine: a value read before such a call
//!   may belong to another goroutine after it.
//! * Worse, LLVM may keep the *address* of a thread-local in a register across such a call
//!   (rust-lang/rust#33368, llvm/llvm-project#98479) and so touch the old thread's copy from the
//!   new thread. This is a data race the compiler introduces; gort cannot detect it.
//!
//! The policy: **do not access a `thread_local!` in a function that also makes a gort call
//! between two accesses**, unless the goroutine is pinned with
//! [`runtime::lock_os_thread`] around that code. Accesses inside a separate `#[inline(never)]`
//! function are safe (the address is recomputed at each call). gort's own runtime code follows
//! exactly this rule. Libraries that keep per-thread caches (allocators, `rand::thread_rng`)
//! touch them without parking in between, which is safe; but do not *hold* a handle bound to
//! the current thread (such as `rand`'s `ThreadRng`, which points at this thread's generator)
//! across a parking call: after it the goroutine may run on another thread while the handle
//! still points at the first one. Take a fresh one after the call, or pin the goroutine.
//!
//! ## Shutdown
//! When `gort::run`'s main goroutine returns, the other goroutines are cancelled: see
//! [`Runtime`].
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

mod arch;
mod bridge;
mod builder;
pub mod chan;
mod diag;
mod goroutine;
pub mod io;
mod loom;
pub mod net;
mod netpoll;
pub mod runtime;
mod sched;
mod scope;
mod select;
mod signal;
mod stack;
pub mod sync;
mod sysmon;
mod task;
pub mod time;

pub use bridge::{block_on, GoFuture};
pub use builder::{run, Builder, Runtime};
pub use goroutine::{go, GoId, Goroutine, JoinHandle};
pub use sched::deadlock::Deadlock;
pub use sched::syscall::blocking;
pub use scope::{scope, Scope, ScopedJoinHandle};

/// Runs `fn main()` as the main goroutine of a gort runtime, like [`run`].
///
/// ```
/// #[gort::main]
/// fn main() {
///     let h = gort::go(|| 6 * 7);
///     assert_eq!(h.join().unwrap(), 42);
/// }
/// ```
///
/// The body may return `()` or a `Result<(), E>` (its value is `main`'s, so `?` works). The
/// value crosses from the goroutine to the calling thread, so it must be `Send`: write
/// `Box<dyn Error + Send + Sync>` rather than `Box<dyn Error>`.
///
/// ```
/// #[gort::main(procs = 2, stack_size = 262144)]
/// fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     assert_eq!(gort::runtime::gomaxprocs(), 2);
///     let n: u32 = "42".parse()?;
///     assert_eq!(n, 42);
///     Ok(())
/// }
/// ```
///
/// The expansion builds a runtime with [`Builder`] (`procs = N` calls [`Builder::procs`],
/// `stack_size = BYTES` calls [`Builder::stack_size`]; without them `GORTMAXPROCS` and
/// `GORT_STACK_SIZE` apply), runs the body with [`Runtime::run`] and drops the runtime, which
/// cancels the goroutines still alive. A configuration the builder rejects (such as
/// `GORTMAXPROCS=abc`) panics with its message before the body runs, as does a panic in the
/// body (it resumes on the main thread).
///
/// Like `#[tokio::main]`, the attribute is allowed on a function not named `main`: calling
/// that function then starts a runtime of its own and blocks until the body returns (so it
/// must not be called from a goroutine). `async fn`, parameters, generics and unknown
/// arguments are compile errors.
pub use gort_macros::main;

/// Makes a `#[test]` whose body runs as the main goroutine of its own runtime, so tests still
/// run in parallel. Takes the same arguments as [`main`](macro@main); the body may return `()`
/// or a `Result<(), E>`, and `#[should_panic]` / `#[ignore]` work as for `#[test]`. A
/// deadlocked test fails with the deadlock report ([`Deadlock::Panic`]) rather than exiting
/// the test binary.
///
/// ```test_harness
/// #[gort::test(procs = 2)]
/// fn ping_pong() {
///     let (tx, rx) = gort::chan::bounded(0);
///     gort::go(move || tx.send(1).unwrap());
///     assert_eq!(rx.recv().unwrap(), 1);
/// }
/// ```
pub use gort_macros::test;

pub(crate) use diag::fatal;

/// The README's examples, compiled and run as doc tests so that they stay true (its
/// `#[gort::test]` block is tagged `test_harness`: without it rustdoc would drop the `#[test]`
/// function unchecked).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
