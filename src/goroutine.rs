//! Starting goroutines and waiting for them: [`go`], the [`Goroutine`] builder, [`JoinHandle`]
//! and [`GoId`].
//!
//! A goroutine's closure and result live in one task allocation (see [`crate::task`]) owned
//! by the G and the handle. The closure's panic is caught at the goroutine's root (the panic
//! hook has already printed it, as for a thread) and stored as the result; `join` returns it
//! as `Err`. If the goroutine never runs (a runtime shutdown cancelled it first), the task
//! completes with a [`Cancelled`](crate::runtime::Cancelled) payload when the scheduler drops
//! its entry.

use crate::sched::{m, Sched};
use crate::stack;
use crate::task::{self, TaskRef};
use std::fmt;
use std::io;
use std::panic::Location;

/// A goroutine id: the number Go would print (`goroutine 7 [running]:`).
///
/// Ids are unique within a runtime and never reused; the main goroutine of a fresh runtime is 1.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| gort::runtime::goid());
///     let id = h.id();
///     assert_eq!(h.join().unwrap(), id);
///     assert!(id > gort::runtime::goid());
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GoId(pub(crate) u64);

impl GoId {
    /// The id as a number.
    ///
    /// ```
    /// gort::run(|| assert_eq!(gort::runtime::goid().as_u64(), 1));
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The scheduler of the current goroutine, or a panic telling the user to start a runtime.
pub(crate) fn current_sched(what: &str) -> (*const m::M, &'static Sched) {
    // A runtime call that may switch: a goroutine whose P was taken gets one back first.
    crate::sched::preempt::check();
    let m = m::current_m();
    if m.is_null() {
        panic!("gort: {what} called outside a gort runtime; wrap your main in gort::run(|| ...)");
    }
    // SAFETY: an M's scheduler outlives the M (the M's thread holds an Arc to it).
    (m, unsafe { &*(*m).sched_ptr() })
}

/// Starts a goroutine running `f` and returns a handle to join it.
///
/// Dropping the handle detaches the goroutine (as in Go, it runs to completion on its own).
///
/// # Panics
/// Outside a gort runtime (wrap `main` in [`gort::run`](crate::run)).
///
/// ```
/// let sum = gort::run(|| {
///     let hs: Vec<_> = (1..=10).map(|i| gort::go(move || i * i)).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum, 385);
/// ```
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (m, sched) = current_sched("gort::go");
    let (entry, task) = task::new(f);
    // SAFETY: m is this thread's M.
    let id = unsafe { sched.spawn(m, entry, None, sched.default_stack, Location::caller()) };
    crate::sched::park::poll_cancel();
    JoinHandle { task, id: GoId(id) }
}

/// Configures a goroutine before starting it, like [`std::thread::Builder`].
///
/// ```
/// gort::run(|| {
///     let h = gort::Goroutine::new()
///         .name("worker")
///         .stack_size(1 << 20)
///         .spawn(|| gort::runtime::name())
///         .unwrap();
///     assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// });
/// ```
#[derive(Debug, Default)]
pub struct Goroutine {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Goroutine {
    /// A builder with no name and the runtime's default stack size.
    ///
    /// ```
    /// gort::run(|| gort::Goroutine::new().spawn(|| ()).unwrap().join().unwrap());
    /// ```
    pub fn new() -> Goroutine {
        Goroutine::default()
    }

    /// Names the goroutine (shown in dumps, overflow messages and [`runtime::name`](crate::runtime::name)).
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::Goroutine::new().name("parser").spawn(gort::runtime::name).unwrap();
    ///     assert_eq!(h.join().unwrap().unwrap(), "parser");
    /// });
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Goroutine {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes: 16 KiB to 1 GiB, rounded up to whole pages.
    ///
    /// ```
    /// gort::run(|| {
    ///     let err = gort::Goroutine::new().stack_size(1024).spawn(|| ()).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Goroutine {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the goroutine.
    ///
    /// # Errors
    /// `InvalidInput` if the stack size is out of range.
    ///
    /// # Panics
    /// Outside a gort runtime.
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::Goroutine::new().spawn(|| 6 * 7).unwrap();
    ///     assert_eq!(h.join().unwrap(), 42);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (m, sched) = current_sched("gort::Goroutine::spawn");
        let size = match self.stack_size {
            Some(s) => stack::validate_size(s)?,
            None => sched.default_stack,
        };
        let (entry, task) = task::new(f);
        // SAFETY: m is this thread's M.
        let id = unsafe { sched.spawn(m, entry, self.name, size, Location::caller()) };
        crate::sched::park::poll_cancel();
        Ok(JoinHandle { task, id: GoId(id) })
    }
}

/// An owned permission to join a goroutine (wait for its result).
///
/// Dropping it detaches the goroutine.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| panic!("oops"));
///     assert!(h.join().is_err());
/// });
/// ```
pub struct JoinHandle<T> {
    task: TaskRef<T>,
    id: GoId,
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish: parks the calling goroutine, or blocks the calling
    /// thread. Returns `Err(payload)` if it panicked (or called
    /// [`goexit`](crate::runtime::goexit): the payload is a [`Goexit`](crate::runtime::Goexit)).
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::go(|| gort::runtime::goexit());
    ///     let err = h.join().unwrap_err();
    ///     assert!(err.is::<gort::runtime::Goexit>());
    /// });
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.task.join()
    }

    /// The goroutine's id.
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::go(gort::runtime::goid);
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> GoId {
        self.id
    }

    /// Whether the goroutine has finished (its result is ready for `join`).
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::go(|| ());
    ///     while !h.is_finished() {
    ///         gort::runtime::gosched();
    ///     }
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
