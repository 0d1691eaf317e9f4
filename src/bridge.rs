//! The async bridge: futures inside goroutines ([`block_on`]) and goroutines inside async code
//! ([`Runtime::go_future`]).
//!
//! [`block_on`] polls a future on the calling goroutine. While it is pending the goroutine
//! parks (only the goroutine: its thread runs other goroutines), and the future's waker readies
//! it. A wake-up that arrives while the future is being polled, or before the goroutine parked,
//! is remembered (`notified`), so none is lost; extra wake-ups only cause an extra poll.
//!
//! [`Runtime::go_future`] starts a goroutine from any thread, an async executor's included,
//! and returns a future of its result: the goroutine stores the result and wakes the last waker
//! the future was polled with. The executor thread never blocks.

use crate::diag::WaitReason;
use crate::sched::park::Waiter;
use crate::Runtime;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// Runs a future to completion on the current goroutine and returns its output (Go has no
/// futures; this lets goroutines use async crates). While the future is pending, only the
/// goroutine parks; its waker makes the goroutine runnable again. On a plain thread (outside
/// any runtime), it blocks the thread instead.
///
/// The future is polled on the goroutine's stack, so it must fit there like any other call.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// // A future that is ready the second time it is polled, and wakes itself in between.
/// struct YieldOnce(bool);
/// impl Future for YieldOnce {
///     type Output = u32;
///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         if self.0 {
///             return Poll::Ready(42);
///         }
///         self.0 = true;
///         cx.waker().wake_by_ref();
///         Poll::Pending
///     }
/// }
///
/// gort::run(|| {
///     let h = gort::go(|| gort::block_on(YieldOnce(false)));
///     assert_eq!(h.join().unwrap(), 42);
/// });
/// assert_eq!(gort::block_on(YieldOnce(false)), 42); // on a plain thread too
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let signal = Arc::new(Signal::default());
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        signal.wait();
    }
}

/// The waker of a [`block_on`]: a flag and the parked goroutine (or thread), under a lock.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
}

#[derive(Default)]
struct SignalState {
    /// Woken since the last poll started waiting.
    notified: bool,
    waiter: Option<Waiter>,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until woken (returns at once if a wake-up came since the last wait).
    fn wait(&self) {
        loop {
            let mut s = self.lock();
            if std::mem::take(&mut s.notified) {
                return;
            }
            let w = Waiter::current(WaitReason::BlockOn);
            if w.is_goroutine() {
                s.waiter = Some(w);
                // Released once the goroutine is marked waiting: a wake-up in between finds
                // the waiter and readies the park.
                Waiter::block(true, s);
            } else {
                // A plain thread: not registered as asleep in gort (the future may be woken
                // by any thread), so deadlock detection keeps counting it as awake.
                s.waiter = Some(w);
                drop(s);
                std::thread::park();
            }
        }
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let w = {
            let mut s = self.lock();
            s.notified = true;
            s.waiter.take()
        };
        match w {
            Some(Waiter::Thread(t)) => t.unpark(),
            Some(w) => w.wake(),
            None => {}
        }
    }
}

/// The result of a goroutine started by [`Runtime::go_future`]: `Ok` with its value, or
/// `Err` with its panic payload (as [`JoinHandle::join`](crate::JoinHandle::join) returns).
pub struct GoFuture<T> {
    shared: Arc<Mutex<Slot<T>>>,
}

struct Slot<T> {
    result: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
}

impl<T> Future for GoFuture<T> {
    type Output = std::thread::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl<T> std::fmt::Debug for GoFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoFuture").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts `f` as a goroutine of this runtime from any thread (an async executor's too) and
    /// returns a future of its result, so async code can drive goroutine computations without
    /// blocking its executor thread. The future resolves to `Err` with the panic payload if
    /// the goroutine panics, or is cancelled by the runtime's shutdown.
    ///
    /// ```
    /// let rt = gort::Builder::new().procs(2).build().unwrap();
    /// let fut = rt.go_future(|| {
    ///     // Goroutine code: channels, blocking-style I/O, more goroutines.
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     gort::go(move || tx.send(20).unwrap());
    ///     rx.recv().unwrap() + 22
    /// });
    /// // Any executor can await it; here, a thread blocking on it.
    /// assert_eq!(gort::block_on(fut).unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn go_future<F, T>(&self, f: F) -> GoFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::new(Mutex::new(Slot {
            result: None,
            waker: None,
        }));
        let s = shared.clone();
        let (entry, _task) = crate::task::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            let waker = {
                let mut slot = s.lock().unwrap_or_else(PoisonError::into_inner);
                slot.result = Some(r);
                slot.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
        self.sched.spawn_external(entry, Location::caller());
        GoFuture { shared }
    }
}
