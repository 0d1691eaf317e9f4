//! Starting a runtime: [`run`], [`Builder`] and [`Runtime`], and the environment variables
//! `GORTMAXPROCS` and `GORT_STACK_SIZE`.
//!
//! A [`Runtime`] owns a scheduler (its Ps, Ms and stacks). `Runtime::run` starts a main goroutine
//! from the calling (plain) thread and blocks that thread until the goroutine returns. Dropping
//! the runtime shuts it down: see "Shutdown" in ARCHITECTURE.md and [`Runtime`].

use crate::sched::{m, Sched, MAX_PROCS};
use crate::stack;
use crate::Deadlock;
use std::io;
use std::panic::{self, Location};
use std::sync::Arc;
use std::time::Duration;

/// How long a shutdown waits for goroutines to unwind and Ms to exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = gort::Builder::new().procs(2).stack_size(256 * 1024).build().unwrap();
/// assert_eq!(rt.run(gort::runtime::gomaxprocs), 2);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    procs: Option<usize>,
    stack_size: Option<usize>,
    on_deadlock: Deadlock,
}

impl Builder {
    /// A builder with the defaults: `GORTMAXPROCS` or the number of CPUs; `GORT_STACK_SIZE` or
    /// 64 KiB stacks.
    ///
    /// ```
    /// let rt = gort::Builder::new().build().unwrap();
    /// assert_eq!(rt.run(|| 1 + 1), 2);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the number of Ps (`GOMAXPROCS`): how many goroutines run in parallel.
    ///
    /// ```
    /// let rt = gort::Builder::new().procs(1).build().unwrap();
    /// assert_eq!(rt.run(gort::runtime::gomaxprocs), 1);
    /// assert!(gort::Builder::new().procs(0).build().is_err());
    /// ```
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Sets the default goroutine stack size in bytes (16 KiB to 1 GiB, rounded up to pages).
    ///
    /// ```
    /// let err = gort::Builder::new().stack_size(4096).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// What to do when every goroutine of the runtime is asleep and nothing in the process can
    /// wake one (Go's `all goroutines are asleep - deadlock!`). The default,
    /// [`Deadlock::Exit`], prints the message and a goroutine dump to stderr and exits the
    /// process with status 2; [`Deadlock::Panic`] makes [`Runtime::run`] panic with them (a
    /// `String` payload) instead, for test suites. Detection is conservative: nothing is
    /// reported while a timer is pending, a goroutine waits for I/O or runs, or any thread
    /// of the process is not itself asleep in a gort wait (see "Deadlock detection" in
    /// ARCHITECTURE.md).
    ///
    /// ```no_run
    /// let rt = gort::Builder::new().on_deadlock(gort::Deadlock::Panic).build().unwrap();
    /// let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     rt.run(|| {
    ///         let (_tx, rx) = gort::chan::bounded::<u32>(0);
    ///         rx.recv().ok(); // nobody will ever send
    ///     })
    /// }));
    /// let msg = r.unwrap_err().downcast::<String>().unwrap();
    /// assert!(msg.starts_with("fatal error: all goroutines are asleep - deadlock!"));
    /// ```
    ///
    /// (`no_run`: a doc test runs beside the test harness's threads, which keep any process
    /// from counting as deadlocked; `tests/deadlock.rs` runs this in a child process.)
    pub fn on_deadlock(mut self, action: Deadlock) -> Builder {
        self.on_deadlock = action;
        self
    }

    /// Builds the runtime. Threads start lazily, when the first goroutine runs.
    ///
    /// # Errors
    /// `InvalidInput` for `procs == 0` (or above 1024), an impossible stack size, or a bad
    /// `GORTMAXPROCS` / `GORT_STACK_SIZE` / `GORT_DEBUG` value. `GORT_DEBUG` takes Go's
    /// `GODEBUG` syntax: `schedtrace=N` prints a scheduler trace line to stderr every N ms
    /// (`SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 ...`), `scheddetail=1` adds per-P,
    /// per-M and per-G lines; an unknown key is reported on stderr once and ignored.
    ///
    /// ```
    /// let rt = gort::Builder::new().build().unwrap();
    /// assert_eq!(rt.run(|| "hello"), "hello");
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        let procs = match self.procs {
            Some(n) => n,
            None => match env_procs()? {
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        };
        if procs == 0 || procs > MAX_PROCS {
            return Err(invalid(format!(
                "procs must be between 1 and {MAX_PROCS}, not {procs}"
            )));
        }
        let stack = match self.stack_size {
            Some(s) => stack::validate_size(s)?,
            None => match env_stack_size()? {
                Some(s) => s,
                None => stack::DEFAULT_STACK,
            },
        };
        let debug = env_debug()?;
        crate::signal::install();
        let sched = Sched::new(procs, stack);
        crate::diag::register_runtime(&sched);
        sched
            .counters
            .trace_ms
            .store(debug.schedtrace, std::sync::atomic::Ordering::Relaxed);
        sched
            .counters
            .trace_detail
            .store(debug.scheddetail, std::sync::atomic::Ordering::Relaxed);
        *sched.on_deadlock.lock().unwrap_or_else(|e| e.into_inner()) = self.on_deadlock;
        Ok(Runtime { sched })
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn env_procs() -> io::Result<Option<usize>> {
    let Some(v) = std::env::var_os("GORTMAXPROCS") else {
        return Ok(None);
    };
    let s = v.to_string_lossy();
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PROCS).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(format!(
            "GORTMAXPROCS={s:?} is invalid: it must be a whole number from 1 to {MAX_PROCS}"
        ))),
    }
}

/// Parses a `GORT_STACK_SIZE` value: bytes, with an optional `K` (KiB) or `M` (MiB) suffix.
pub(crate) fn parse_stack_size(s: &str) -> io::Result<usize> {
    let t = s.trim();
    let (digits, mult) = match t.as_bytes().last() {
        Some(b'K' | b'k') => (&t[..t.len() - 1], 1024),
        Some(b'M' | b'm') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    let bad = || {
        invalid(format!(
            "GORT_STACK_SIZE={s:?} is invalid: use a number of bytes with an optional K or M \
             suffix, from 16K to 1024M (e.g. 262144, 256K or 1M)"
        ))
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    stack::validate_size(bytes).map_err(|e| invalid(format!("GORT_STACK_SIZE={s:?}: {e}")))
}

/// Settings from `GORT_DEBUG` (Go's `GODEBUG` syntax: comma-separated `key=value`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Debug {
    /// `schedtrace=N`: print a scheduler trace line every N ms (0: off).
    pub schedtrace: u64,
    /// `scheddetail=1`: add per-P, per-M and per-G lines to each trace.
    pub scheddetail: bool,
    /// Keys this version does not know (reported once, otherwise ignored).
    pub unknown: Vec<String>,
}

/// Parses a `GORT_DEBUG` value.
pub(crate) fn parse_debug(s: &str) -> io::Result<Debug> {
    let mut d = Debug::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = |what: &str| {
            invalid(format!(
                "GORT_DEBUG={s:?} is invalid: {item:?}: {what} (e.g. GORT_DEBUG=schedtrace=1000,scheddetail=1)"
            ))
        };
        let Some((key, value)) = item.split_once('=') else {
            return Err(bad("expected key=value"));
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "schedtrace" => {
                d.schedtrace = value
                    .parse()
                    .map_err(|_| bad("schedtrace takes a whole number of milliseconds"))?;
            }
            "scheddetail" => {
                d.scheddetail = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("scheddetail takes 0 or 1")),
                };
            }
            "" => return Err(bad("empty key")),
            _ => d.unknown.push(key.to_owned()),
        }
    }
    Ok(d)
}

fn env_debug() -> io::Result<Debug> {
    let Some(v) = std::env::var_os("GORT_DEBUG") else {
        return Ok(Debug::default());
    };
    let d = parse_debug(&v.to_string_lossy())?;
    if !d.unknown.is_empty() {
        static REPORTED: std::sync::Once = std::sync::Once::new();
        REPORTED.call_once(|| {
            eprintln!(
                "gort: GORT_DEBUG: unknown key(s) ignored: {} (known: schedtrace, scheddetail)",
                d.unknown.join(", ")
            );
        });
    }
    Ok(d)
}

fn env_stack_size() -> io::Result<Option<usize>> {
    match std::env::var_os("GORT_STACK_SIZE") {
        None => Ok(None),
        Some(v) => parse_stack_size(&v.to_string_lossy()).map(Some),
    }
}

/// A gort runtime: Ps, Ms and stacks for goroutines.
///
/// Several runtimes can live in one process. Dropping one cancels its remaining goroutines:
/// parked ones are woken and unwound (their destructors run), runnable ones that never started
/// are dropped unrun, running ones unwind at their next runtime call. The drop waits up to a
/// second for that and for its threads to exit; a goroutine that makes no runtime call in that
/// time is abandoned to its thread. Cancellation never aborts the process.
///
/// ```
/// let rt = gort::Builder::new().procs(2).build().unwrap();
/// let a = rt.run(|| gort::go(|| 20).join().unwrap());
/// let b = rt.run(|| 22);
/// assert_eq!(a + b, 42);
/// ```
pub struct Runtime {
    pub(crate) sched: Arc<Sched>,
}

impl Runtime {
    /// Runs `f` as a main goroutine and returns its value, blocking the calling thread.
    ///
    /// May be called again, and from several threads at once; goroutines left running when
    /// `f` returns keep running until the runtime is dropped.
    ///
    /// # Panics
    /// If called from a goroutine (use [`go`](crate::go) there); if `f` panics (the panic
    /// resumes here); if `f` ends in [`goexit`](crate::runtime::goexit).
    ///
    /// ```
    /// let rt = gort::Builder::new().build().unwrap();
    /// assert_eq!(rt.run(|| gort::runtime::goid().as_u64()), 1);
    /// assert_eq!(rt.run(|| gort::runtime::goid().as_u64()), 2);
    /// ```
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        finish_main(self.run_catch(f))
    }

    #[track_caller]
    fn run_catch<F, T>(&self, f: F) -> std::thread::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if !m::current_m().is_null() {
            panic!("gort::run called from inside a goroutine; use gort::go to start a goroutine");
        }
        let (entry, packet) = crate::task::new(f);
        // Deadlock reports (`Deadlock::Panic`) wake the threads waiting here.
        let me = std::thread::current();
        let seen = {
            let mut d = self
                .sched
                .deadlock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            d.2.push(me.clone());
            d.0
        };
        self.sched.spawn_external(entry, Location::caller());
        let reported = || {
            self.sched
                .deadlock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                != seen
        };
        let r = packet.join_or(&reported);
        let report = {
            let mut d = self
                .sched
                .deadlock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(i) = d.2.iter().position(|t| t.id() == me.id()) {
                d.2.swap_remove(i);
            }
            d.1.clone()
        };
        match r {
            Some(r) => r,
            // (join_or detached the goroutine.)
            None => panic::panic_any(report),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.sched.shutdown(SHUTDOWN_GRACE);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.sched.id)
            .field(
                "gomaxprocs",
                &self
                    .sched
                    .gomaxprocs
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .finish()
    }
}

fn finish_main<T>(r: std::thread::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) if e.is::<crate::runtime::Goexit>() => {
            panic!("runtime.Goexit ended the main goroutine (goexit was called on main)")
        }
        Err(e) => panic::resume_unwind(e),
    }
}

/// Starts a runtime with the default [`Builder`], runs `f` as its main goroutine and returns
/// its value. When `f` returns, the goroutines still alive are cancelled (see [`Runtime`]) and
/// have finished unwinding before `run` returns.
///
/// # Panics
/// If `GORTMAXPROCS` or `GORT_STACK_SIZE` holds a bad value (with the error's message), if
/// called from a goroutine, or if `f` panics (the panic resumes in the caller).
///
/// ```
/// let v = gort::run(|| {
///     let h = gort::go(|| "from a goroutine");
///     h.join().unwrap()
/// });
/// assert_eq!(v, "from a goroutine");
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !m::current_m().is_null() {
        panic!("gort::run called from inside a goroutine; use gort::go to start a goroutine");
    }
    let rt = Builder::new()
        .build()
        .unwrap_or_else(|e| panic!("gort::run: {e}"));
    let r = rt.run_catch(f);
    drop(rt);
    finish_main(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_values() {
        let d = parse_debug("schedtrace=100, scheddetail=1").unwrap();
        assert_eq!((d.schedtrace, d.scheddetail), (100, true));
        let d = parse_debug("gctrace=1,schedtrace=5").unwrap();
        assert_eq!(d.schedtrace, 5);
        assert_eq!(d.unknown, vec!["gctrace".to_string()]);
        assert_eq!(parse_debug("").unwrap(), Debug::default());
        for bad in [
            "schedtrace",
            "schedtrace=x",
            "schedtrace=-1",
            "scheddetail=2",
            "=1",
        ] {
            let e = parse_debug(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("GORT_DEBUG"), "{e}");
        }
    }

    #[test]
    fn stack_size_values() {
        assert_eq!(parse_stack_size("65536").unwrap(), 65536);
        assert_eq!(parse_stack_size("64K").unwrap(), 65536);
        assert_eq!(parse_stack_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_stack_size(" 20000 ").unwrap(), 20480);
        for bad in [
            "",
            "K",
            "abc",
            "12Q",
            "-5",
            "1K",
            "2048M",
            "99999999999999999999M",
        ] {
            let e = parse_stack_size(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains("GORT_STACK_SIZE"), "{e}");
        }
    }
}
