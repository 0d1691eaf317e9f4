//! Diagnostics: wait reasons, goroutine dumps in Go's format, SIGQUIT, and fatal errors.
//!
//! # Wait reasons
//! Every park records why, as Go's `waitReason`: [`WaitReason`], a byte, packed with a coarse
//! timestamp into the G's `wait` word by one Relaxed store as the park is prepared
//! (`Waiter::current(reason)`, `park::set_wait_reason`). The timestamp is the coarse clock
//! [`tick_clock`] keeps: seconds since the process's first runtime tick, stored by every sysmon
//! tick (at most 10 ms apart), so a park reads one static instead of a clock. It only needs to
//! be good to the minute: Go's header says `, 2 minutes` once a goroutine has waited a minute.
//!
//! # The dump
//! One block per goroutine, Go's shape (see `runtime/traceback.go`):
//!
//! ```text
//! goroutine 7 "worker" [chan receive, 2 minutes]:
//! gort::chan::Receiver<T>::recv(...)
//!         /src/chan/mod.rs:310
//! my_crate::worker(...)
//!         /src/main.rs:12
//! created by /src/main.rs:30:9
//! ```
//!
//! The current goroutine's backtrace is `std::backtrace`'s. A parked goroutine's is walked from
//! its saved context (`unwind.rs`, see "Walking a parked goroutine's stack" there). A
//! goroutine running on another M, or runnable, gets its header, a line saying why there is no
//! stack, and `created by`.
//!
//! # SIGQUIT
//! See `sigquit.rs`: the handler writes a byte to a pipe; a dedicated thread dumps every live
//! runtime (the registry here) to stderr, and the program keeps running.

mod sigquit;
mod unwind;

pub use sigquit::install as install_sigquit;

use crate::sched::g::{self, G};
use crate::sched::Sched;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

/// Why a goroutine waits (Go's `waitReason`); the strings are Go's where Go has one.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// No reason recorded (a G that never parked).
    None = 0,
    ChanSend,
    ChanReceive,
    ChanSendNil,
    ChanReceiveNil,
    Select,
    SelectNoCases,
    Sleep,
    IoWait,
    Mutex,
    RwLockWrite,
    RwLockRead,
    CondWait,
    Semacquire,
    Once,
    Barrier,
    Join,
    Scope,
    /// Inside `gort::blocking` (the G is running, its M has given up the P).
    Syscall,
    /// `gort::block_on`: waiting for a future's waker.
    BlockOn,
}

const REASONS: [WaitReason; 20] = {
    use WaitReason::*;
    [
        None,
        ChanSend,
        ChanReceive,
        ChanSendNil,
        ChanReceiveNil,
        Select,
        SelectNoCases,
        Sleep,
        IoWait,
        Mutex,
        RwLockWrite,
        RwLockRead,
        CondWait,
        Semacquire,
        Once,
        Barrier,
        Join,
        Scope,
        Syscall,
        BlockOn,
    ]
};

impl WaitReason {
    /// The string Go's dump shows.
    pub fn as_str(self) -> &'static str {
        use WaitReason::*;
        match self {
            None => "waiting",
            ChanSend => "chan send",
            ChanReceive => "chan receive",
            ChanSendNil => "chan send (nil chan)",
            ChanReceiveNil => "chan receive (nil chan)",
            Select => "select",
            SelectNoCases => "select (no cases)",
            Sleep => "sleep",
            IoWait => "IO wait",
            Mutex => "sync.Mutex.Lock",
            RwLockWrite => "sync.RWMutex.Lock",
            RwLockRead => "sync.RWMutex.RLock",
            CondWait => "sync.Cond.Wait",
            Semacquire => "semacquire",
            Once => "sync.Once",
            Barrier => "barrier",
            Join => "join",
            Scope => "scope",
            Syscall => "syscall",
            BlockOn => "block_on",
        }
    }

    fn from_word(w: u64) -> WaitReason {
        REASONS
            .get((w & 0xff) as usize)
            .copied()
            .unwrap_or(WaitReason::None)
    }
}

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// Whole seconds since `EPOCH`, plus one (0: no tick yet). Written by every sysmon tick.
static COARSE_SECS: AtomicU64 = AtomicU64::new(0);

fn now_secs() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1
}

/// Advances the coarse clock (called by each runtime's sysmon at every tick). Relaxed: the
/// value is a timestamp good to the tick, read by parks as a hint.
pub fn tick_clock() {
    COARSE_SECS.store(now_secs(), Relaxed);
}

/// The G's `wait` word for a park with `reason` starting now: one load of the coarse clock.
#[inline]
pub fn wait_word(reason: WaitReason) -> u64 {
    reason as u64 | COARSE_SECS.load(Relaxed) << 8
}

/// Whole minutes a wait recorded in `word` has lasted at coarse time `now` (0 if unknown).
fn minutes_waited(word: u64, now: u64) -> u64 {
    let since = word >> 8;
    if since == 0 {
        return 0;
    }
    now.saturating_sub(since) / 60
}

/// `goroutine N "name" [state, M minutes]:` (the minutes part once it is at least 1, as Go).
fn write_header(out: &mut String, id: u64, name: Option<&str>, state: &str, minutes: u64) {
    let _ = write!(out, "goroutine {id} ");
    if let Some(n) = name {
        let _ = write!(out, "{n:?} ");
    }
    let _ = match minutes {
        0 => writeln!(out, "[{state}]:"),
        m => writeln!(out, "[{state}, {m} minutes]:"),
    };
}

/// `goroutine N "name" [state]:` for the *current* goroutine (its name is safe to read).
pub fn header(me: &G, state: &str) -> String {
    let mut s = String::new();
    // SAFETY: `me` is the running goroutine: we are its holder.
    write_header(&mut s, me.id(), unsafe { me.name() }, state, 0);
    s.pop();
    s
}

fn write_created_by(out: &mut String, gp: &G) {
    if let Some(loc) = gp.created_by() {
        let _ = writeln!(
            out,
            "created by {}:{}:{}",
            loc.file(),
            loc.line(),
            loc.column()
        );
    }
}

/// Appends the block of a goroutine other than the caller's (if `gp` is a live goroutine):
/// header, backtrace or the reason there is none, `created by`. The caller holds the
/// runtime's `allgs` lock (as `Sched::for_each_g` does). Runs on g0 or a plain thread.
pub fn describe(gp: &G, walker: &mut unwind::Walker, out: &mut String) {
    let state = gp.state();
    if state != g::RUNNABLE && state != g::RUNNING && state != g::WAITING {
        return;
    }
    let word = gp.wait.load(Relaxed);
    let reason = WaitReason::from_word(word);
    let minutes = minutes_waited(word, now_secs());
    // SAFETY: callers hold the allgs lock (`Sched::for_each_g`).
    let name = unsafe { gp.name() };
    match state {
        g::RUNNABLE => {
            write_header(out, gp.id(), name, "runnable", 0);
            out.push_str("\tgoroutine runnable; stack unavailable\n");
        }
        g::RUNNING if reason == WaitReason::Syscall => {
            write_header(out, gp.id(), name, "syscall", minutes);
            out.push_str("\tgoroutine in a blocking call on another thread; stack unavailable\n");
        }
        g::RUNNING => {
            write_header(out, gp.id(), name, "running", 0);
            out.push_str("\tgoroutine running on other thread; stack unavailable\n");
        }
        _ => {
            // Pin the park (see unwind.rs) and re-read the reason under the pin: it is the
            // reason of the very park we walk.
            let walked = walker.walk_parked(gp);
            let word = gp.wait.load(Relaxed);
            let (reason, minutes) = (
                WaitReason::from_word(word),
                minutes_waited(word, now_secs()),
            );
            write_header(out, gp.id(), name, reason.as_str(), minutes);
            match walked {
                Some(frames) => unwind::write_frames(out, &frames),
                None => out.push_str("\tgoroutine changing state; stack unavailable\n"),
            }
        }
    }
    write_created_by(out, gp);
}

/// Every goroutine of `sched` except `skip` (the caller's own, dumped by the caller), in
/// Go's format, blocks separated by blank lines.
pub fn dump_others(sched: &Sched, skip: Option<&G>, out: &mut String) {
    let mut walker = unwind::Walker::new();
    sched.for_each_g(|g| {
        if skip.is_some_and(|s| std::ptr::eq(s, g)) {
            return;
        }
        let before = out.len();
        describe(g, &mut walker, out);
        if out.len() != before {
            out.push('\n');
        }
    });
}

/// Live runtimes, for SIGQUIT's "every runtime" (pruned as runtimes go).
static RUNTIMES: Mutex<Vec<Weak<Sched>>> = Mutex::new(Vec::new());

/// Records a new runtime for SIGQUIT dumps and makes sure the SIGQUIT handler is installed.
pub fn register_runtime(sched: &Arc<Sched>) {
    let mut rs = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    rs.retain(|w| w.strong_count() > 0);
    rs.push(Arc::downgrade(sched));
    drop(rs);
    install_sigquit();
}

/// The runtimes alive now.
fn live_runtimes() -> Vec<Arc<Sched>> {
    let rs = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    rs.iter().filter_map(Weak::upgrade).collect()
}

/// Prints `fatal error: msg` to stderr and aborts the process (Go's `throw`).
pub fn fatal(msg: &str) -> ! {
    eprintln!("fatal error: {msg}");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(name: Option<&str>, state: &str, minutes: u64) -> String {
        let mut s = String::new();
        write_header(&mut s, 7, name, state, minutes);
        s
    }

    #[test]
    fn header_shapes() {
        assert_eq!(
            header_of(None, "chan receive", 0),
            "goroutine 7 [chan receive]:\n"
        );
        assert_eq!(
            header_of(Some("worker"), "select", 3),
            "goroutine 7 \"worker\" [select, 3 minutes]:\n"
        );
    }

    #[test]
    fn minutes_suffix_from_an_injected_clock() {
        let word = WaitReason::ChanReceive as u64 | 100 << 8; // wait began at coarse second 100
        assert_eq!(WaitReason::from_word(word), WaitReason::ChanReceive);
        assert_eq!(minutes_waited(word, 100), 0);
        assert_eq!(minutes_waited(word, 159), 0);
        assert_eq!(minutes_waited(word, 160), 1);
        assert_eq!(minutes_waited(word, 100 + 125), 2);
        // Unknown start (no sysmon tick yet): never a suffix.
        assert_eq!(minutes_waited(WaitReason::Sleep as u64, 10_000), 0);
        let h = header_of(None, WaitReason::from_word(word).as_str(), 2);
        assert_eq!(h, "goroutine 7 [chan receive, 2 minutes]:\n");
    }

    #[test]
    fn reasons_round_trip() {
        for (i, r) in REASONS.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(WaitReason::from_word(*r as u64 | 5 << 8), *r);
        }
    }
}
