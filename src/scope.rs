//! Scoped goroutines: [`scope`] lets goroutines borrow from the caller's stack, like
//! [`std::thread::scope`].
//!
//! Soundness rests on one invariant: `scope` does not return (or unwind) before every goroutine
//! started in it has finished and dropped its closure and result. Each goroutine holds a
//! [`ScopeData`] count through its task, released when the task is dropped (by the goroutine or
//! by its handle, whichever is last); `scope` waits for the count to reach zero.

use crate::goroutine::{current_sched, GoId};
use crate::sched::park::{WaitReason, Waiter};
use crate::task::{self, TaskRef};
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};

pub(crate) struct ScopeData {
    running: AtomicUsize,
    a_goroutine_panicked: AtomicBool,
    waiter: Mutex<Option<Waiter>>,
}

impl ScopeData {
    /// Called when a scoped goroutine's packet is dropped (by the goroutine or the handle,
    /// whichever is last): `panicked` says whether it held a panic nobody joined.
    pub(crate) fn decrement(&self, panicked: bool) {
        if panicked {
            self.a_goroutine_panicked.store(true, Relaxed);
        }
        if self.running.fetch_sub(1, Release) == 1 {
            let w = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    fn wait_all(&self) {
        loop {
            let mut w = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
            if self.running.load(Acquire) == 0 {
                return;
            }
            let me = Waiter::current(WaitReason::Scope);
            let g = me.is_goroutine();
            *w = Some(me);
            // Not cancellable: leaving early would free the frame the goroutines borrow.
            Waiter::block_with(g, w, false);
        }
    }
}

/// A scope to start goroutines that may borrow non-`'static` data. See [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to join a goroutine started in a [`Scope`].
pub struct ScopedJoinHandle<'scope, T> {
    task: TaskRef<T>,
    id: GoId,
    _scope: PhantomData<&'scope ()>,
}

/// Runs `f` with a [`Scope`] whose goroutines may borrow from the caller; returns once all of
/// them have finished.
///
/// If any goroutine panicked and was not joined, `scope` panics after all have finished. If `f`
/// panics, the panic resumes after all goroutines have finished.
///
/// ```
/// gort::run(|| {
///     let mut counts = [0u64; 4];
///     gort::scope(|s| {
///         for (i, c) in counts.iter_mut().enumerate() {
///             s.go(move || *c = (i as u64 + 1) * 10);
///         }
///     });
///     assert_eq!(counts, [10, 20, 30, 40]);
/// });
/// ```
#[track_caller]
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_goroutine_panicked: AtomicBool::new(false),
            waiter: Mutex::new(None),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.data.wait_all();
    // A shutdown that arrived while we waited takes effect now.
    crate::sched::park::poll_cancel();
    match r {
        Err(e) => panic::resume_unwind(e),
        Ok(_) if scope.data.a_goroutine_panicked.load(Relaxed) => {
            panic!("a scoped goroutine panicked")
        }
        Ok(v) => v,
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Relaxed))
            .finish()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Starts a goroutine in this scope.
    ///
    /// # Panics
    /// Outside a gort runtime.
    ///
    /// ```
    /// gort::run(|| {
    ///     let v = vec![1, 2, 3];
    ///     let sum = gort::scope(|s| s.go(|| v.iter().sum::<i32>()).join().unwrap());
    ///     assert_eq!(sum, 6);
    /// });
    /// ```
    #[track_caller]
    pub fn go<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (m, sched) = current_sched("gort::Scope::go");
        self.data.running.fetch_add(1, Relaxed);
        // SAFETY: `scope` waits for `running` to reach zero before returning, and the count is
        // released only when the task (body, result and all) is freed by its last owner, so
        // every 'scope borrow outlives its uses.
        let (entry, task) = unsafe { task::new_scoped(f, Some(self.data.clone())) };
        // SAFETY: m is this thread's M.
        let id = unsafe { sched.spawn(m, entry, None, sched.default_stack, Location::caller()) };
        crate::sched::park::poll_cancel();
        ScopedJoinHandle {
            task,
            id: GoId(id),
            _scope: PhantomData,
        }
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine; `Err(payload)` if it panicked.
    ///
    /// ```
    /// gort::run(|| {
    ///     let r = gort::scope(|s| s.go(|| 2 + 2).join());
    ///     assert_eq!(r.unwrap(), 4);
    /// });
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.task.join()
    }

    /// The goroutine's id.
    ///
    /// ```
    /// gort::run(|| {
    ///     gort::scope(|s| {
    ///         let h = s.go(gort::runtime::goid);
    ///         let id = h.id();
    ///         assert_eq!(h.join().unwrap(), id);
    ///     });
    /// });
    /// ```
    pub fn id(&self) -> GoId {
        self.id
    }

    /// Whether the goroutine has finished.
    ///
    /// ```
    /// gort::run(|| {
    ///     gort::scope(|s| {
    ///         let h = s.go(|| ());
    ///         while !h.is_finished() {
    ///             gort::runtime::gosched();
    ///         }
    ///     });
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
