//! Starting goroutines and waiting for them: [`go`], the [`Goroutine`] builder, [`JoinHandle`]
//! and [`GoId`].
//!
//! A goroutine's closure and result live in one [`Task`] allocation shared by the G and the
//! handle. The closure's panic is caught at the goroutine's root (the panic hook has already
//! printed it, as for a thread) and stored as the result; `join` returns it as `Err`. If the
//! goroutine never runs (a runtime shutdown cancelled it first), the task completes with a
//! [`Cancelled`](crate::runtime::Cancelled) payload when the scheduler drops its [`Entry`].

use crate::sched::park::{self, WaitReason, Waiter};
use crate::sched::{m, Sched};
use crate::scope::ScopeData;
use crate::stack;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::Arc;

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

/// A goroutine's body and its result, in one allocation shared by the G (through [`Entry`])
/// and the join handle (through [`Join`]).
///
/// `state` is a set of bits: `WAITING` (a joiner published its waiter), `DONE` (the result is
/// in), `DETACHED` (the join handle was dropped unjoined). The cells are owned as follows: `f`
/// by the G until it runs; `result` by the G until `DONE` is published, then by the handle;
/// `waiter` by the joiner until `WAITING` is published, then by the finishing G. Each hand-over
/// is a Release read-modify-write on `state` paired with an Acquire one by the receiving side.
/// An unjoined result is dropped by whichever of `set` and `detach` comes second (each sees the
/// other's bit), so it goes when both the goroutine and its handle are done, as a thread's
/// does, however long the G keeps the task's memory.
pub(crate) struct Task<F, T> {
    state: AtomicU8,
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
    waiter: UnsafeCell<Option<Waiter>>,
    /// For scoped goroutines: the scope to release when the task is dropped.
    scope: Option<Arc<ScopeData>>,
}

const EMPTY: u8 = 0;
const WAITING: u8 = 1;
const DONE: u8 = 2;
const DETACHED: u8 = 4;

// SAFETY: the cells are handed over through `state` as described above; F and T are Send.
unsafe impl<F: Send, T: Send> Send for Task<F, T> {}
// SAFETY: as above: no cell is accessed by two threads without a hand-over through `state`.
unsafe impl<F: Send, T: Send> Sync for Task<F, T> {}

/// The G's view of a task: run it, or cancel it (drop it unrun).
pub(crate) trait Runnable: Send + Sync {
    fn run(&self);
    /// Drops the body unrun and completes the task with `Cancelled`; no-op once it has run.
    fn cancel(&self);
    /// Scoped tasks must be freed as soon as they finish (freeing releases the scope).
    fn is_scoped(&self) -> bool;
}

/// The join handle's view of a task.
pub(crate) trait Join<T>: Send + Sync {
    fn wait(&self) -> std::thread::Result<T>;
    /// [`Join::wait`] on a plain thread that also gives up (None) once `stop` returns true;
    /// whoever makes `stop` true then unparks the thread. The handle must be detached after
    /// giving up.
    fn wait_or(&self, stop: &dyn Fn() -> bool) -> Option<std::thread::Result<T>>;
    fn is_finished(&self) -> bool;
    /// The handle is gone unjoined: drop the result now if it is in (else `set` will).
    fn detach(&self);
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    pub(crate) fn new(f: F, scope: Option<Arc<ScopeData>>) -> Arc<Task<F, T>> {
        Arc::new(Task {
            state: AtomicU8::new(EMPTY),
            f: UnsafeCell::new(Some(f)),
            result: UnsafeCell::new(None),
            waiter: UnsafeCell::new(None),
            scope,
        })
    }

    fn set(&self, r: std::thread::Result<T>) {
        // SAFETY: before DONE the result cell is ours (the running G's).
        unsafe { *self.result.get() = Some(r) };
        let prev = self.state.fetch_or(DONE, AcqRel);
        if prev & WAITING != 0 {
            // SAFETY: WAITING was published (Release) after the joiner filled the waiter cell;
            // our Acquire read-modify-write makes it ours.
            if let Some(w) = unsafe { (*self.waiter.get()).take() } {
                w.wake();
            }
        }
        if prev & DETACHED != 0 {
            // The handle is gone: nobody will take the result. It stays ours; drop it now.
            // SAFETY: as above, the result cell was never handed over.
            let r = unsafe { (*self.result.get()).take() };
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(r)));
        }
    }

    fn take_result(&self) -> std::thread::Result<T> {
        // SAFETY: called after observing DONE (Acquire): the result cell is the joiner's.
        unsafe { (*self.result.get()).take() }
            .expect("runtime: a goroutine's result was taken twice")
    }
}

impl<F, T> Runnable for Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(&self) {
        // SAFETY: only the G runs the task, once.
        let f = unsafe { (*self.f.get()).take() }.expect("runtime: a goroutine ran twice");
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        self.set(r);
    }

    fn cancel(&self) {
        // SAFETY: as in run.
        let Some(f) = (unsafe { (*self.f.get()).take() }) else {
            return; // it ran: nothing to cancel
        };
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
        self.set(Err(Box::new(crate::runtime::Cancelled)));
    }

    fn is_scoped(&self) -> bool {
        self.scope.is_some()
    }
}

impl<F, T> Join<T> for Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    /// Waits for the result: parks a goroutine, blocks a plain thread.
    fn wait(&self) -> std::thread::Result<T> {
        if self.state.load(Acquire) & DONE != 0 {
            return self.take_result();
        }
        let w = Waiter::current(WaitReason::Join);
        if w.is_goroutine() {
            // SAFETY: the state is not WAITING yet, so the waiter cell is ours.
            unsafe { *self.waiter.get() = Some(w) };
            // Publish the waiter on g0, once we are marked waiting; if the goroutine finished
            // meanwhile (DONE), call the park off.
            park::park(&mut || {
                self.state
                    .compare_exchange(EMPTY, WAITING, AcqRel, Acquire)
                    .is_ok()
            });
            debug_assert_ne!(self.state.load(Acquire) & DONE, 0);
        } else {
            // SAFETY: as above.
            unsafe { *self.waiter.get() = Some(w) };
            if self
                .state
                .compare_exchange(EMPTY, WAITING, AcqRel, Acquire)
                .is_ok()
            {
                while self.state.load(Acquire) & DONE == 0 {
                    crate::sched::deadlock::park_thread();
                }
            }
        }
        self.take_result()
    }

    fn wait_or(&self, stop: &dyn Fn() -> bool) -> Option<std::thread::Result<T>> {
        if self.state.load(Acquire) & DONE == 0 {
            // SAFETY: the state is not WAITING yet, so the waiter cell is ours.
            unsafe { *self.waiter.get() = Some(Waiter::Thread(park::current_thread())) };
            if self
                .state
                .compare_exchange(EMPTY, WAITING, AcqRel, Acquire)
                .is_ok()
            {
                while self.state.load(Acquire) & DONE == 0 {
                    if stop() {
                        // The waiter stays published: the finishing G unparks a thread that
                        // has moved on (harmless), and the detached result is dropped then.
                        return None;
                    }
                    crate::sched::deadlock::park_thread();
                }
            }
        }
        Some(self.take_result())
    }

    fn is_finished(&self) -> bool {
        self.state.load(Acquire) & DONE != 0
    }

    fn detach(&self) {
        if self.state.fetch_or(DETACHED, AcqRel) & DONE != 0 {
            // SAFETY: DONE was published before our Acquire read-modify-write: the result
            // cell is the handle's, i.e. ours.
            let r = unsafe { (*self.result.get()).take() };
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(r)));
        }
    }
}

impl<F, T> Drop for Task<F, T> {
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take() {
            let r = self.result.get_mut();
            let unjoined_panic = matches!(r, Some(Err(_)));
            // Drop the result and the body (which may borrow from the scope) before releasing
            // the scope.
            *r = None;
            *self.f.get_mut() = None;
            scope.decrement(unjoined_panic);
        }
    }
}

/// A goroutine's body as the scheduler holds it: dropping it unrun cancels the task (its join
/// returns `Err` with a [`Cancelled`](crate::runtime::Cancelled) payload).
pub struct Entry(Option<Arc<dyn Runnable>>);

impl Entry {
    pub(crate) fn new(task: Arc<dyn Runnable>) -> Entry {
        Entry(Some(task))
    }

    /// No body (a G that has started, or an idle one).
    pub(crate) fn empty() -> Entry {
        Entry(None)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The start of the task's allocation, or null: a prefetch hint. The `Arc`'s counts sit
    /// 16 bytes below the task (more for a task aligned above 16; the hint is then off by the
    /// padding, harmlessly).
    pub(crate) fn addr(&self) -> *mut u8 {
        match &self.0 {
            Some(t) => (Arc::as_ptr(t) as *const u8).wrapping_sub(16).cast_mut(),
            None => std::ptr::null_mut(),
        }
    }

    /// Starts moving the task's memory into this core's cache (see
    /// [`prefetch_write`](crate::arch::prefetch_write)): the spawner that will free a spent
    /// task calls this one spawn ahead, since the goroutine that ran it last wrote it on
    /// another core.
    pub(crate) fn prefetch(&self) {
        if let Some(t) = &self.0 {
            crate::arch::prefetch_write(self.addr(), std::mem::size_of_val(&**t) + 16);
        }
    }

    /// Runs the body (it catches its own panics). The spent task stays in the entry: the G
    /// keeps it until its next spawner frees it (see `Sched::spawn`), so that the task's memory
    /// usually returns to the allocator of the thread that allocated it, where a cross-thread
    /// free would be slow (glibc takes the owning arena's lock). The result is not kept by this:
    /// see [`Task`]. Scoped tasks are freed at once (freeing one releases its scope).
    pub fn run(&mut self) {
        let Some(t) = &self.0 else { return };
        t.run();
        if t.is_scoped() {
            self.0 = None;
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// Makes a task for `f`: the scheduler's entry and the join side.
pub(crate) fn wrap<F, T>(f: F) -> (Entry, Arc<dyn Join<T>>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let task = Task::new(f, None);
    (Entry::new(task.clone()), task)
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
    let (entry, task) = wrap(f);
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
        let (entry, task) = wrap(f);
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
    task: Arc<dyn Join<T>>,
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
        self.task.wait()
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

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // Joined or not, the handle lets go of the result (after `join` it is already taken).
        self.task.detach();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
