//! A goroutine's task: its body and its result in one allocation with two owners, the G
//! (through an [`Entry`]) and the join handle (through a [`TaskRef`]).
//!
//! There is no reference count: each side says when it is done with the task through bits of
//! one `state` byte, and the side whose read-modify-write finds the other already gone frees
//! the task. That costs one atomic read-modify-write per side (two for a G whose joiner is
//! parked), where an `Arc` shared by the two would add a count, two decrements and a weak
//! decrement.
//!
//! * `WAITING`: a joiner published its waiter. Set only by a CAS from 0, so before `DONE`.
//! * `DONE`: the G side stored the result.
//! * `RELEASED`: after a `DONE` that found `WAITING`, the G side has taken the waiter out.
//! * `DETACHED`: the handle side will not touch the task again.
//!
//! The G side is gone once `DONE` is set and either `WAITING` is clear or `RELEASED` is set
//! ([`g_gone`]); the handle side once `DETACHED` is set. Exactly one side's last
//! read-modify-write comes second and sees the other gone: that side frees the task.
//!
//! The cells are owned as follows: `f` by the G side; `result` by the G side until `DONE`, then
//! by the handle side unless the handle is gone (then it stays the G side's, which drops it at
//! once, so an unjoined result goes when both the goroutine and its handle are done, as a
//! thread's does); `waiter` by the joiner until `WAITING`, then by the G side. Each hand-over
//! is a Release read-modify-write on `state` paired with an Acquire one by the receiving side.
//!
//! A G side left owning the memory keeps it as its spent [`Entry`]: the G's next spawner frees
//! it, on the thread that usually allocated it (see `Sched::spawn`). Scoped tasks are freed at
//! once instead, since freeing one releases its scope.
//!
//! The task is `#[repr(C)]` with the header first and the result cell at an offset that
//! depends only on `T`, so that a handle, which does not know the body's type `F`, reaches
//! them through a [`Head<T>`] prefix, and anything that needs `F` goes through the header's
//! [`VTable`].

use crate::sched::park::{self, WaitReason, Waiter};
use crate::scope::ScopeData;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::Arc;

const WAITING: u8 = 1;
const DONE: u8 = 2;
const RELEASED: u8 = 4;
const DETACHED: u8 = 8;

/// Whether the G side is done with the task, in state `s`.
#[inline]
fn g_gone(s: u8) -> bool {
    s & DONE != 0 && (s & WAITING == 0 || s & RELEASED != 0)
}

/// What needs the body's type.
struct VTable {
    /// Runs the body (catching its panic) and stores the result. True if the G side now owns
    /// the task (the handle is gone).
    run: unsafe fn(NonNull<Header>) -> bool,
    /// Drops the body unrun and stores a `Cancelled` result; returns as `run`.
    cancel: unsafe fn(NonNull<Header>) -> bool,
    /// Drops what is left in the task (releasing its scope last) and frees its memory.
    free: unsafe fn(NonNull<Header>),
}

/// The start of every task.
#[repr(C)]
pub struct Header {
    state: AtomicU8,
    scoped: bool,
    vtable: &'static VTable,
}

/// The part of a task the handle knows: everything but the body.
#[repr(C)]
struct Head<T> {
    header: Header,
    waiter: UnsafeCell<Option<Waiter>>,
    result: UnsafeCell<Option<std::thread::Result<T>>>,
}

#[repr(C)]
struct Task<F, T> {
    head: Head<T>,
    /// For scoped goroutines: the scope to release when the task is freed.
    scope: Option<Arc<ScopeData>>,
    f: UnsafeCell<Option<F>>,
}

/// Makes a task for `f`: the scheduler's entry and the join side.
pub(crate) fn new<F, T>(f: F) -> (Entry, TaskRef<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: F and T are 'static: nothing the task holds can dangle.
    unsafe { new_scoped(f, None) }
}

/// [`new`] for a body that may borrow, released through `scope` when the task is freed.
///
/// # Safety
/// Everything `f` and its result borrow must outlive the task: the caller waits for `scope`'s
/// count (released when the task is freed, see [`ScopeData::decrement`]) before ending their
/// lifetime. The entry no longer carries those lifetimes.
pub(crate) unsafe fn new_scoped<F, T>(f: F, scope: Option<Arc<ScopeData>>) -> (Entry, TaskRef<T>)
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let task = Box::new(Task {
        head: Head::<T> {
            header: Header {
                state: AtomicU8::new(0),
                scoped: scope.is_some(),
                vtable: &Task::<F, T>::VTABLE,
            },
            waiter: UnsafeCell::new(None),
            result: UnsafeCell::new(None),
        },
        scope,
        f: UnsafeCell::new(Some(f)),
    });
    let p = NonNull::from(Box::leak(task));
    (
        Entry::new(Kind::Unrun(p.cast())),
        TaskRef {
            head: p.cast(),
            _result: PhantomData,
        },
    )
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    const VTABLE: VTable = VTable {
        run: Self::run,
        cancel: Self::cancel,
        free: Self::free,
    };

    /// # Safety
    /// `p` is a live `Task<F, T>` whose G side calls this once, before anything else.
    unsafe fn run(p: NonNull<Header>) -> bool {
        // SAFETY: forwarded contract.
        let t = unsafe { p.cast::<Self>().as_ref() };
        // SAFETY: the body is the G side's.
        let f = unsafe { (*t.f.get()).take() }.expect("runtime: a goroutine ran twice");
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: we are the G side, and this is its last use of the task.
        unsafe { t.head.set(r) }
    }

    /// # Safety
    /// As for `run`, instead of it.
    unsafe fn cancel(p: NonNull<Header>) -> bool {
        // SAFETY: forwarded contract.
        let t = unsafe { p.cast::<Self>().as_ref() };
        // SAFETY: the body is the G side's.
        let f = unsafe { (*t.f.get()).take() };
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
        // SAFETY: as in run.
        unsafe { t.head.set(Err(Box::new(crate::runtime::Cancelled))) }
    }

    /// # Safety
    /// `p` is a live `Task<F, T>` that both sides are done with; the caller is the side that
    /// saw the other gone (so nobody else will touch it).
    unsafe fn free(p: NonNull<Header>) {
        // SAFETY: forwarded contract: the task is ours alone, made by Box in `new_scoped`.
        let mut t = unsafe { Box::from_raw(p.cast::<Self>().as_ptr()) };
        let result = t.head.result.get_mut().take();
        let unjoined_panic = matches!(result, Some(Err(_)));
        let f = t.f.get_mut().take();
        // Drop the result and the body (user code, which may borrow from the scope) before
        // releasing the scope.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop((result, f))));
        if let Some(scope) = t.scope.take() {
            scope.decrement(unjoined_panic);
        }
    }
}

impl<T> Head<T> {
    /// Stores the result: the G side's last use of the task. True if the G side now owns it
    /// (the handle is gone); the result is then dropped here, unless the task is scoped (its
    /// free, right after, needs to see an unjoined panic).
    ///
    /// # Safety
    /// The caller is the G side, once.
    unsafe fn set(&self, r: std::thread::Result<T>) -> bool {
        // SAFETY: before DONE the result cell is the G side's.
        unsafe { *self.result.get() = Some(r) };
        let mut prev = self.header.state.fetch_or(DONE, AcqRel);
        if prev & WAITING != 0 {
            // SAFETY: WAITING was published (Release) after the joiner filled the cell; our
            // Acquire read-modify-write made it ours. Until RELEASED the joiner waits.
            let w = unsafe { (*self.waiter.get()).take() };
            prev = self.header.state.fetch_or(RELEASED, AcqRel);
            // From here the task may be freed by the handle: only the local waiter is used.
            if let Some(w) = w {
                w.wake();
            }
        }
        let owned = prev & DETACHED != 0;
        if owned && !self.header.scoped {
            // SAFETY: the handle is gone: the result stayed ours.
            let r = unsafe { (*self.result.get()).take() };
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(r)));
        }
        owned
    }
}

/// A goroutine's body as the scheduler holds it.
///
/// Dropping an unrun entry cancels the task (its join returns `Err` with a
/// [`Cancelled`](crate::runtime::Cancelled) payload).
///
/// One pointer (8 bytes in the G): null for no task, else the task's header, with the low bit
/// set for a spent one (headers are 8-byte aligned). See [`Kind`].
pub struct Entry(*mut Header);

/// What an [`Entry`] holds.
#[derive(Clone, Copy)]
enum Kind {
    /// No task (an idle G, or one whose task belongs to its handle now).
    Empty,
    /// A task to run.
    Unrun(NonNull<Header>),
    /// A task that ran and that only the G side still owns: freed when dropped.
    Spent(NonNull<Header>),
}

const SPENT_BIT: usize = 1;
const _: () = assert!(std::mem::align_of::<Header>() > SPENT_BIT);

// SAFETY: the task's body and result are Send; the entry is used by one G holder at a time.
unsafe impl Send for Entry {}

impl Entry {
    /// No task.
    pub(crate) fn empty() -> Entry {
        Entry(std::ptr::null_mut())
    }

    fn new(kind: Kind) -> Entry {
        match kind {
            Kind::Empty => Entry::empty(),
            Kind::Unrun(p) => Entry(p.as_ptr()),
            Kind::Spent(p) => Entry(p.as_ptr().map_addr(|a| a | SPENT_BIT)),
        }
    }

    fn kind(&self) -> Kind {
        let p = self.0.map_addr(|a| a & !SPENT_BIT);
        match NonNull::new(p) {
            None => Kind::Empty,
            Some(p) if self.0.addr() & SPENT_BIT != 0 => Kind::Spent(p),
            Some(p) => Kind::Unrun(p),
        }
    }

    /// True for no task.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_null()
    }

    /// The start of the task's allocation, or null: a prefetch hint.
    pub(crate) fn addr(&self) -> *mut u8 {
        self.0.map_addr(|a| a & !SPENT_BIT).cast()
    }

    /// Starts moving the task's first two lines into this core's cache (see
    /// [`prefetch_write`](crate::arch::prefetch_write)): the spawner that will free a spent
    /// task calls this one spawn ahead, since the goroutine that ran it last wrote it on
    /// another core.
    pub(crate) fn prefetch(&self) {
        if !self.is_empty() {
            crate::arch::prefetch_write(self.addr(), 128);
        }
    }

    /// Runs the body (it catches its own panics). A task the G side is left owning stays in
    /// the entry as spent, for the G's next spawner to free (see `Sched::spawn`),
    /// so that its memory usually returns to the allocator of the thread that allocated it,
    /// where a cross-thread free would be slow (glibc takes the owning arena's lock). Scoped
    /// tasks are freed at once (freeing one releases its scope).
    pub fn run(&mut self) {
        let Kind::Unrun(p) = self.kind() else { return };
        // Not dropped: that would cancel it.
        std::mem::forget(std::mem::replace(self, Entry::empty()));
        // SAFETY: an unrun entry is the G side of a live task, which runs it once; `run` says
        // whether the G side now owns it, as `after` needs.
        *self = unsafe { Self::after(p, (header(p).vtable.run)(p)) };
    }

    /// What the G side keeps of task `p` once it is done with it.
    ///
    /// # Safety
    /// The G side has just run or cancelled `p`, and `owned` is what that returned: if true,
    /// the task is live and the G side's alone; if false, the G side must not touch it again.
    unsafe fn after(p: NonNull<Header>, owned: bool) -> Entry {
        if !owned {
            return Entry::empty();
        }
        // SAFETY: forwarded contract: the task is live and ours alone.
        unsafe {
            if header(p).scoped {
                (header(p).vtable.free)(p);
                return Entry::empty();
            }
        }
        Entry::new(Kind::Spent(p))
    }
}

/// The header of task `p`.
///
/// # Safety
/// `p` is a live task the caller holds one side of (which keeps it alive while `'a` lasts).
unsafe fn header<'a>(p: NonNull<Header>) -> &'a Header {
    // SAFETY: forwarded contract.
    unsafe { p.as_ref() }
}

impl Drop for Entry {
    fn drop(&mut self) {
        match self.kind() {
            Kind::Empty => {}
            Kind::Unrun(p) => {
                // SAFETY: the G side of a live task that never ran: it cancels instead, and
                // `cancel` says whether the G side now owns it, as `after` needs.
                drop(unsafe { Self::after(p, (header(p).vtable.cancel)(p)) });
            }
            // SAFETY: a spent entry owns its task alone.
            Kind::Spent(p) => unsafe { (header(p).vtable.free)(p) },
        }
    }
}

/// The join side of a task: dropping it detaches the goroutine.
pub(crate) struct TaskRef<T> {
    head: NonNull<Head<T>>,
    _result: PhantomData<T>,
}

// SAFETY: the handle only moves the result out, and tasks exist only for `T: Send` (`new` and
// `new_scoped` require it), so, like std's `JoinHandle`, the handle is Send and Sync for any
// `T` it can hold; the rest is atomics, and through &TaskRef only the state is read.
unsafe impl<T> Send for TaskRef<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for TaskRef<T> {}

impl<T> TaskRef<T> {
    fn head(&self) -> &Head<T> {
        // SAFETY: the handle side keeps the task alive until it detaches or frees it.
        unsafe { self.head.as_ref() }
    }

    fn state(&self) -> &AtomicU8 {
        &self.head().header.state
    }

    /// Whether the result is in.
    pub(crate) fn is_finished(&self) -> bool {
        self.state().load(Acquire) & DONE != 0
    }

    /// Waits for the result: parks a goroutine, blocks a plain thread.
    pub(crate) fn join(self) -> std::thread::Result<T> {
        if !g_gone(self.state().load(Acquire)) {
            let w = Waiter::current(WaitReason::Join);
            if !w.is_goroutine() {
                return self
                    .join_or(&|| false)
                    .expect("runtime: a join that never gives up gave up");
            }
            // SAFETY: the state is not WAITING yet, so the waiter cell is ours.
            unsafe { *self.head().waiter.get() = Some(w) };
            // Publish the waiter on g0, once we are marked waiting; if the goroutine finished
            // meanwhile (DONE), call the park off. The G side wakes us only after RELEASED.
            // (If a shutdown cancels the park, this unwinds and the handle's drop detaches.)
            park::park(&mut || {
                self.state()
                    .compare_exchange(0, WAITING, AcqRel, Acquire)
                    .is_ok()
            });
        }
        debug_assert!(g_gone(self.state().load(Acquire)));
        self.take_and_free()
    }

    /// [`TaskRef::join`] on a plain thread (how it joins there) that also gives up (None,
    /// detaching) once `stop` returns true; whoever makes `stop` true then unparks the thread.
    pub(crate) fn join_or(self, stop: &dyn Fn() -> bool) -> Option<std::thread::Result<T>> {
        if !g_gone(self.state().load(Acquire)) {
            // SAFETY: the state is not WAITING yet, so the waiter cell is ours.
            unsafe { *self.head().waiter.get() = Some(Waiter::Thread(park::current_thread())) };
            if self
                .state()
                .compare_exchange(0, WAITING, AcqRel, Acquire)
                .is_ok()
            {
                while !g_gone(self.state().load(Acquire)) {
                    if stop() {
                        // The waiter stays published: the finishing G unparks a thread that
                        // has moved on (harmless). Dropping self detaches.
                        return None;
                    }
                    crate::sched::deadlock::park_thread();
                }
            }
        }
        Some(self.take_and_free())
    }

    /// Takes the result and frees the task, the G side being gone.
    fn take_and_free(self) -> std::thread::Result<T> {
        // SAFETY: the G side is gone (observed with Acquire): the result cell is ours, and so
        // is the task.
        let r = unsafe { (*self.head().result.get()).take() }
            .expect("runtime: a goroutine's result was taken twice");
        let p = self.head.cast::<Header>();
        std::mem::forget(self);
        // SAFETY: as above; we no longer use it.
        unsafe { (header(p).vtable.free)(p) };
        r
    }
}

impl<T> Drop for TaskRef<T> {
    fn drop(&mut self) {
        let prev = self.state().fetch_or(DETACHED, AcqRel);
        if g_gone(prev) {
            let p = self.head.cast::<Header>();
            // SAFETY: the G side was gone before our read-modify-write: the task is ours
            // alone (an unjoined result with it, dropped by free).
            unsafe { (header(p).vtable.free)(p) };
        }
    }
}
