//! Go's `time` package: [`sleep`], [`after`], [`tick`], [`after_func`], [`Timer`], [`Ticker`].
//!
//! On a goroutine these park only the goroutine: a timer on its P's heap readies it (see
//! `sched/timer.rs`), and an idle runtime sleeps in the kernel until the earliest timer. On a
//! plain thread they block the thread (`std::thread::sleep`, a timer thread).
//!
//! Deadlines are never early: a sleep of `d` returns no sooner than `d` after the call. They
//! may be late by scheduling delays (a busy P runs its due timers at its next schedule; a
//! goroutine that never yields delays the timers of its own P until it does).
//!
//! # Timer channels (Go 1.23 semantics)
//! A timer's function runs under its `Shared` state lock and sends with `try_send` on a
//! channel of capacity 1 only if the timer's generation is still the one it was armed with;
//! `stop` and `reset` bump the generation, cancel the pending timer and drain the channel under
//! the same lock. So after either returns, no value from before it can be received, and a
//! value that fired but was not received counts as "stopped" (and is discarded). Unlike Go's
//! (where `len` and `cap` of a timer channel are 0), the channel's `len()` may be 1 while a
//! value waits. Lock order: a timer's state lock, then the runtime's locks (re-arming a ticker
//! may wake an idle M); never the reverse.

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::sched::park::{self, WaitReason, Waiter};
use crate::sched::timer::{self, TimerId};
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Pauses the current goroutine (or thread) for at least `d`; `Duration::ZERO` returns at once.
///
/// On a goroutine only the goroutine waits; its thread runs other goroutines meanwhile. A
/// sleeping goroutine is a cancellation point: at runtime shutdown it unwinds from `sleep`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let start = Instant::now();
///     let h = gort::go(|| gort::time::sleep(Duration::from_millis(20)));
///     gort::time::sleep(Duration::from_millis(10));
///     h.join().unwrap();
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// // From a plain thread it blocks the thread.
/// gort::time::sleep(Duration::from_millis(1));
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    if park::current().is_none() {
        std::thread::sleep(d);
        return;
    }
    let Some(deadline) = Instant::now().checked_add(d) else {
        // Too far to represent: sleep forever (until cancelled).
        loop {
            park::set_wait_reason(WaitReason::Sleep);
            Waiter::block(true, ());
        }
    };
    while Instant::now() < deadline {
        let w = Waiter::current(WaitReason::Sleep);
        Waiter::block_until(w.alarm(), (), deadline);
    }
}

/// The function a [`Timer`] made by [`after_func`] runs.
type Func = Box<dyn FnOnce() + Send>;

/// A channel timer's or ticker's state, shared by its handle and its pending timer function.
struct Shared {
    state: Mutex<State>,
    /// The timer's channel (buffer 1, kept open: see [`timer_chan`]); `None` for `after_func`.
    tx: Option<Sender<Instant>>,
}

struct State {
    /// Bumped by every stop and reset: a firing armed under an older generation does nothing
    /// (it may already be running, waiting for this lock, when the stop comes).
    gen: u64,
    /// The armed timer (None: stopped, or fired and not re-armed).
    timer: Option<TimerId>,
    /// Deadline of the armed timer (a ticker's next tick is computed from it).
    when: Instant,
    /// Ticker period.
    period: Option<Duration>,
    /// `after_func`'s function, until it runs.
    func: Option<Func>,
}

/// A channel for timer values: buffer 1, and it never closes when its senders are gone (Go's
/// timer channels never close; a closed one would make every later `select` on it ready). It
/// still closes when every receiver is gone, which stops a [`tick`] nobody listens to.
fn timer_chan() -> (Sender<Instant>, Receiver<Instant>) {
    let (tx, rx) = chan::bounded(1);
    if let Some(c) = &tx.chan {
        // A sender count that is never given back: dropping the real senders cannot close it.
        // (The channel's memory is still freed with its last handle: this is not an `Arc`.)
        c.senders.fetch_add(1, Relaxed);
    }
    (tx, rx)
}

impl Shared {
    fn new(
        tx: Option<Sender<Instant>>,
        period: Option<Duration>,
        func: Option<Func>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                gen: 0,
                timer: None,
                when: Instant::now(),
                period,
                func,
            }),
            tx,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the timer for `when` under the current generation (state locked by the caller).
    fn arm(self: &Arc<Shared>, st: &mut State, when: Instant) {
        let me = self.clone();
        let gen = st.gen;
        st.when = when;
        st.timer = Some(timer::add(when, Box::new(move || me.fire(gen))));
    }

    /// The timer function: runs on a scheduler thread or the timer thread, must not block.
    fn fire(self: &Arc<Shared>, gen: u64) {
        let mut st = self.lock();
        if st.gen != gen {
            return; // stopped or reset after this firing was armed
        }
        st.timer = None;
        if let Some(f) = st.func.take() {
            drop(st);
            spawn_func(f);
            return;
        }
        let Some(tx) = &self.tx else { return };
        let now = Instant::now();
        // A full buffer means the reader is slow: this value is dropped (Go does the same).
        let sent = tx.try_send(now);
        if let Some(period) = st.period {
            if matches!(sent, Err(TrySendError::Closed(_))) {
                return; // every receiver is gone: stop ticking
            }
            // Next tick: the first multiple of the period after now (missed ticks are skipped).
            let behind = now.saturating_duration_since(st.when);
            let n = behind.as_nanos() / period.as_nanos() + 1;
            let step = u32::try_from(n).map_or(behind + period, |n| period * n);
            let next = st.when + step;
            self.arm(&mut st, next);
        }
    }

    /// Stops the timer and discards an unreceived value: true if either happened.
    fn stop(&self, st: &mut State, rx: &Receiver<Instant>) -> bool {
        st.gen += 1;
        let mut stopped = false;
        if let Some(id) = st.timer.take() {
            // Even if its function has started, it now sees the new generation and does
            // nothing: the value was never delivered, so the timer counts as stopped.
            timer::cancel(id);
            stopped = true;
        }
        // Fired but not received: that counts as stopped too (Go 1.23), and the stale value
        // must not be received after this call.
        if rx.try_recv().is_ok() {
            stopped = true;
        }
        stopped
    }
}

/// Runs an `after_func` function in a goroutine of the runtime whose scheduler runs this timer,
/// or on a new thread if the timer was armed on a plain thread.
fn spawn_func(f: Func) {
    if crate::sched::m::current_m().is_null() {
        std::thread::Builder::new()
            .name("gort-after-func".into())
            .spawn(f)
            .unwrap_or_else(|e| {
                crate::fatal(&format!("cannot start a thread for after_func: {e}"))
            });
    } else {
        drop(crate::go(f));
    }
}

fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    // Beyond what Instant can hold: a century is "never" in practice.
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A single event: after a duration, the current time is sent on [`Timer::receiver`] (or, for
/// a timer made by [`after_func`], a function runs in its own goroutine). Go's `time.Timer`,
/// with Go 1.23 semantics: after [`stop`](Timer::stop) or [`reset`](Timer::reset) returns,
/// no value from before the call is received.
///
/// Dropping a `Timer` does not stop it. Its channel never closes.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let start = Instant::now();
///     let t = gort::time::Timer::new(Duration::from_millis(10));
///     let fired = t.receiver().recv().unwrap();
///     assert!(fired >= start + Duration::from_millis(10));
/// });
/// ```
pub struct Timer {
    shared: Arc<Shared>,
    rx: Receiver<Instant>,
}

impl Timer {
    /// A timer that sends the current time on its channel after `d`.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Works from a plain thread too (a timer thread fires it).
    /// let t = gort::time::Timer::new(Duration::from_millis(1));
    /// t.receiver().recv().unwrap();
    /// ```
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = timer_chan();
        let shared = Shared::new(Some(tx), None, None);
        let when = deadline(d);
        shared.arm(&mut shared.lock(), when);
        Timer { shared, rx }
    }

    /// The channel the timer's value arrives on (for an [`after_func`] timer, a channel that
    /// never delivers).
    ///
    /// ```
    /// let t = gort::time::Timer::new(std::time::Duration::from_millis(1));
    /// assert!(t.receiver().recv().is_ok());
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. True if this call stopped it before its value was received: it had
    /// not fired yet, or it fired but nobody took the value (which is discarded; Go 1.23). False
    /// if it was already stopped, or its value was received (or its `after_func` function
    /// started).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_secs(60));
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// assert!(t.receiver().try_recv().is_err());
    /// ```
    pub fn stop(&self) -> bool {
        let mut st = self.shared.lock();
        self.shared.stop(&mut st, &self.rx)
    }

    /// Stops the timer (as [`stop`](Timer::stop), returning what it would) and arms it again
    /// to fire after `d`. An [`after_func`] timer whose function already started returns false
    /// and is left alone.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = gort::time::Timer::new(Duration::from_millis(1));
    /// std::thread::sleep(Duration::from_millis(20)); // it fires; nobody receives
    /// let before = Instant::now();
    /// assert!(t.reset(Duration::from_millis(10)));   // the stale value is discarded
    /// assert!(t.receiver().recv().unwrap() >= before + Duration::from_millis(10));
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        let mut st = self.shared.lock();
        if self.shared.tx.is_none() && st.func.is_none() {
            return false; // an after_func timer whose function already ran
        }
        let active = self.shared.stop(&mut st, &self.rx);
        self.shared.arm(&mut st, deadline(d));
        active
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Timer { .. }")
    }
}

/// Sends the current time every period on [`Ticker::receiver`] until stopped; a reader that
/// falls behind gets one value per tick it catches, the others are dropped (as in Go).
/// Dropping a `Ticker` stops it.
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let t = gort::time::Ticker::new(Duration::from_millis(5));
///     let a = t.receiver().recv().unwrap();
///     let b = t.receiver().recv().unwrap();
///     assert!(b > a);
/// });
/// ```
pub struct Ticker {
    shared: Arc<Shared>,
    rx: Receiver<Instant>,
}

impl Ticker {
    /// A ticker with period `d`.
    ///
    /// # Panics
    /// If `d` is zero (as Go's `NewTicker` does for a non-positive interval).
    ///
    /// ```
    /// let t = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// t.receiver().recv().unwrap();
    /// ```
    pub fn new(d: Duration) -> Ticker {
        let (shared, rx) = ticker(d, "gort::time::Ticker::new");
        Ticker { shared, rx }
    }

    /// The channel the ticks arrive on.
    ///
    /// ```
    /// let t = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// assert!(t.receiver().recv().is_ok());
    /// ```
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker; no tick from before the call is received after it.
    ///
    /// ```
    /// let t = gort::time::Ticker::new(std::time::Duration::from_millis(1));
    /// std::thread::sleep(std::time::Duration::from_millis(5));
    /// t.stop();
    /// assert!(t.receiver().try_recv().is_err());
    /// ```
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        self.shared.stop(&mut st, &self.rx);
    }

    /// Stops the ticker and restarts it with period `d` (the next tick comes `d` from now).
    ///
    /// # Panics
    /// If `d` is zero.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t = gort::time::Ticker::new(Duration::from_secs(60));
    /// let before = Instant::now();
    /// t.reset(Duration::from_millis(5));
    /// assert!(t.receiver().recv().unwrap() >= before + Duration::from_millis(5));
    /// ```
    pub fn reset(&self, d: Duration) {
        assert!(
            !d.is_zero(),
            "gort: gort::time::Ticker::reset needs a non-zero period"
        );
        let mut st = self.shared.lock();
        self.shared.stop(&mut st, &self.rx);
        st.period = Some(d);
        self.shared.arm(&mut st, deadline(d));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Ticker { .. }")
    }
}

fn ticker(d: Duration, what: &str) -> (Arc<Shared>, Receiver<Instant>) {
    assert!(
        !d.is_zero(),
        "gort: {what} needs a non-zero period (got Duration::ZERO)"
    );
    let (tx, rx) = timer_chan();
    let shared = Shared::new(Some(tx), Some(d), None);
    shared.arm(&mut shared.lock(), deadline(d));
    (shared, rx)
}

/// A channel that receives the current time once, after `d` (Go's `time.After`).
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let (tx, rx) = gort::chan::bounded::<i32>(0);
///     let timeout = gort::time::after(Duration::from_millis(10));
///     gort::select! {
///         recv(rx) -> _ => unreachable!(),
///         recv(timeout) -> t => assert!(t.is_ok()),
///     }
///     drop(tx);
/// });
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    Timer::new(d).rx
}

/// A channel that receives the current time every `d` (Go's `time.Tick`), dropping ticks for a
/// slow reader. It stops once every receiver is dropped. `Duration::ZERO` gives a channel that
/// never delivers (Go returns nil).
///
/// ```
/// use std::time::Duration;
/// let ticks = gort::time::tick(Duration::from_millis(2));
/// let a = ticks.recv().unwrap();
/// let b = ticks.recv().unwrap();
/// assert!(b > a);
/// assert!(gort::time::tick(Duration::ZERO).try_recv().is_err());
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return chan::never();
    }
    ticker(d, "gort::time::tick").1
}

/// Runs `f` in its own goroutine after `d` (on a new thread if called from a plain thread), and
/// returns a [`Timer`] that can stop or reset it; its [`receiver`](Timer::receiver) never
/// delivers. Dropping the timer does not cancel `f`.
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let (tx, rx) = gort::chan::bounded(1);
///     let _ = gort::time::after_func(Duration::from_millis(5), move || {
///         tx.send(gort::runtime::goid()).unwrap();
///     });
///     assert_ne!(rx.recv().unwrap(), gort::runtime::goid());
///
///     let t = gort::time::after_func(Duration::from_secs(60), || unreachable!());
///     assert!(t.stop());
/// });
/// ```
pub fn after_func<F: FnOnce() + Send + 'static>(d: Duration, f: F) -> Timer {
    let shared = Shared::new(None, None, Some(Box::new(f)));
    shared.arm(&mut shared.lock(), deadline(d));
    Timer {
        shared,
        rx: chan::never(),
    }
}
