//! Diagnostics: goroutine headers in Go's format, and fatal errors.
//!
//! Go prints `goroutine 7 "name" [chan receive, 2 minutes]:` then a backtrace and
//! `created by ...`. Here the current goroutine gets a symbolised backtrace; other goroutines
//! get their state and creation site (walking a parked goroutine's saved stack comes later).

use crate::sched::g::{self, G};

/// `goroutine N "name" [state]:` for the *current* goroutine (its name is safe to read).
pub fn header(me: &G, state: &str) -> String {
    let id = me.id();
    // SAFETY: `me` is the running goroutine: we are its holder.
    match unsafe { me.name() } {
        Some(n) => format!("goroutine {id} {n:?} [{state}]:"),
        None => format!("goroutine {id} [{state}]:"),
    }
}

/// A block for another goroutine, or None if the G is not a live goroutine. The caller holds
/// the runtime's `allgs` lock (as `Sched::for_each_g` does).
pub fn describe(gp: &G) -> Option<String> {
    let state = match gp.state() {
        g::RUNNABLE => "runnable",
        g::RUNNING => "running",
        g::WAITING => "waiting",
        _ => return None,
    };
    let id = gp.id();
    // SAFETY: callers hold the allgs lock (`Sched::for_each_g`).
    let mut s = match unsafe { gp.name() } {
        Some(n) => format!("goroutine {id} {n:?} [{state}]:\n"),
        None => format!("goroutine {id} [{state}]:\n"),
    };
    if let Some(loc) = gp.created_by() {
        s.push_str(&format!(
            "created by {}:{}:{}\n",
            loc.file(),
            loc.line(),
            loc.column()
        ));
    }
    Some(s)
}

/// Prints `fatal error: msg` to stderr and aborts the process (Go's `throw`).
pub fn fatal(msg: &str) -> ! {
    eprintln!("fatal error: {msg}");
    std::process::abort()
}

/// Every live goroutine of `sched`, one block each (as [`describe`]), for callers that have no
/// current goroutine (deadlock reports from sysmon).
pub fn all_goroutines(sched: &crate::sched::Sched) -> String {
    let mut out = String::new();
    sched.for_each_g(|g| {
        if let Some(h) = describe(g) {
            out.push_str(&h);
            out.push('\n');
        }
    });
    out
}
