//! Waiting for an fd to become ready: what every fd-backed type (`net`, `io`) embeds.
//!
//! [`PollIo::io`] runs a non-blocking syscall and, while it returns `EAGAIN`, waits:
//! - **on a goroutine**: registers the fd with this runtime's poller (once), claims the
//!   direction's slot of the poll descriptor and parks (see `pd.rs` for the state machine);
//!   only the goroutine waits, never its thread. A deadline arms a timer that readies the
//!   park by sequence number, as `Waiter::block_until` does. Goroutines waiting in the same
//!   direction on the same fd take turns through a per-direction lock held for the whole
//!   operation (Go's `fdMutex` read/write locks), so each slot has at most one waiter and an
//!   edge-triggered event is never consumed by the wrong one.
//! - **on a plain thread**: blocks the thread in poll(2) with the remaining timeout; the poll
//!   descriptor is not touched.
//!
//! A wait that passes its deadline returns `ErrorKind::TimedOut`. A wake-up without readiness
//! (a spurious one, see `pd.rs`) simply retries the syscall.

use super::pd::{Dir, PollDesc, Prepared};
use super::poller::Poller;
use super::sys;
use crate::sched::m::current_m;
use crate::sched::park::{self, Alarm, WaitReason, Waiter};
use crate::sched::{timer, Sched};
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

/// A poll descriptor and the per-direction turn locks for one open fd. Its owner keeps the fd
/// open until this is dropped (declare it before the fd), so the descriptor is freed (and the
/// fd deregistered) while the fd number still names it.
pub struct PollIo {
    pd: &'static PollDesc,
    rlock: crate::sync::Mutex<()>,
    wlock: crate::sync::Mutex<()>,
    /// The last stream read was short (see [`PollIo::read_stream`]); under the read turn.
    drained: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PollIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollIo").finish_non_exhaustive()
    }
}

/// The error of a wait that passed its deadline (Go's message).
pub fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// The deadline `timeout` from now (None: no deadline, also for one too far to represent).
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|d| Instant::now().checked_add(d))
}

/// One try of a non-blocking syscall: None on `WouldBlock`, the result otherwise (retrying
/// `Interrupted`).
fn attempt<T>(f: &mut impl FnMut() -> io::Result<T>) -> Option<io::Result<T>> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            r => return Some(r),
        }
    }
}

impl PollIo {
    /// A descriptor for the open, non-blocking `fd`.
    pub fn new(fd: RawFd) -> PollIo {
        PollIo {
            pd: PollDesc::alloc(fd),
            rlock: crate::sync::Mutex::new(()),
            wlock: crate::sync::Mutex::new(()),
            drained: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Runs `f` (a non-blocking syscall on `fd`) until it does not fail with `WouldBlock`,
    /// waiting for `dir`-readiness in between; `TimedOut` once `timeout` has passed.
    pub fn io<T>(
        &self,
        fd: RawFd,
        dir: Dir,
        timeout: Option<Duration>,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        if park::current().is_some() {
            // Take the direction's turn before the first try (Go's fdMutex): from then on
            // every readiness edge after a failed try lands in our slot, so one try per
            // wake-up suffices.
            let _turn = self.turn(dir);
            return self.io_turn(dir, deadline(timeout), false, f);
        }
        if let Some(r) = attempt(&mut f) {
            return r;
        }
        self.io_until(fd, dir, deadline(timeout), f)
    }

    /// [`PollIo::io`] for a read of up to `len` bytes from a **stream socket** (TCP, Unix
    /// stream). A stream socket's read returns everything queued up to `len`, so a read that
    /// returned fewer bytes (but some) left the receive queue empty; with edge-triggered epoll
    /// any later arrival raises a new edge, so the next read waits for readiness first instead
    /// of making a read that would fail with `EAGAIN` (tokio does the same) — unless the poller
    /// has seen a hang-up or an error on the fd, which stay readable without new edges. Not for pipes,
    /// ttys or packet-mode fds, whose short reads do not mean "empty".
    pub fn read_stream(
        &self,
        fd: RawFd,
        timeout: Option<Duration>,
        len: usize,
        mut f: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        if park::current().is_none() {
            return self.io(fd, Dir::Read, timeout, f);
        }
        let _turn = self.turn(Dir::Read);
        // Only read and written under the read turn. After a hang-up or an error the fd stays
        // readable with no edge to come (the edge that woke us may have carried both the last
        // data and the end-of-file): then always try first.
        let drained = self.drained.swap(false, Relaxed) && !self.pd.closed();
        let r = self.io_turn(Dir::Read, deadline(timeout), drained, &mut f);
        if let Ok(n) = r {
            self.drained.store(n > 0 && n < len, Relaxed);
        }
        r
    }

    fn turn(&self, dir: Dir) -> crate::sync::MutexGuard<'_, ()> {
        match dir {
            Dir::Read => self.rlock.lock(),
            Dir::Write => self.wlock.lock(),
        }
    }

    /// On a goroutine holding `dir`'s turn: try `f`, waiting for readiness after each
    /// `WouldBlock` (first, if `wait_first`).
    fn io_turn<T>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        mut wait_first: bool,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            if !wait_first {
                if let Some(r) = attempt(&mut f) {
                    return r;
                }
            }
            wait_first = false;
            self.wait_goroutine(dir, deadline)?;
        }
    }

    /// [`PollIo::io`] with an absolute deadline, waiting first (the caller just saw EAGAIN or
    /// EINPROGRESS).
    pub fn io_until<T>(
        &self,
        fd: RawFd,
        dir: Dir,
        deadline: Option<Instant>,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        if park::current().is_some() {
            // Try again under the turn before waiting: the readiness edge may have been
            // consumed by the goroutine that held it before us.
            let _turn = self.turn(dir);
            self.io_turn(dir, deadline, false, f)
        } else {
            loop {
                let ev = match dir {
                    Dir::Read => libc::POLLIN | libc::POLLRDHUP,
                    Dir::Write => libc::POLLOUT,
                };
                if !sys::poll_fd(fd, ev, deadline)? {
                    return Err(timed_out());
                }
                if let Some(r) = attempt(&mut f) {
                    return r;
                }
            }
        }
    }

    /// Parks the current goroutine until the fd is ready for `dir` (or spuriously), or
    /// `TimedOut` at the deadline.
    fn wait_goroutine(&self, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
        let m = current_m();
        // SAFETY: we run on a goroutine, so `m` is our live M; its Sched outlives it. The
        // reference is dropped before we park (we keep an Arc of the poller instead).
        let poller = super::poller_or_init(unsafe { &*(*m).sched_ptr() })?.clone();
        self.pd.register(&poller)?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out());
        }
        if self.pd.prepare(dir) == Prepared::Ready {
            return Ok(());
        }
        let ready = park_on(self.pd, dir, deadline, &poller);
        if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out());
        }
        Ok(())
    }
}

impl Drop for PollIo {
    fn drop(&mut self) {
        self.pd.free();
    }
}

/// Parks the current goroutine in `pd`'s `dir` slot (which is `WAIT`, claimed by us) until the
/// poller readies it, the deadline's timer fires, or shutdown cancels it. True if readiness
/// was seen. The slot is `NIL` again on return, and on unwind.
fn park_on(pd: &'static PollDesc, dir: Dir, deadline: Option<Instant>, poller: &Poller) -> bool {
    let waiter = Waiter::current(WaitReason::IoWait);
    let mut unarmed = None;
    let mut cleanup = Cleanup {
        pd,
        dir,
        poller,
        timer: None,
        done: false,
    };
    if let (Some(d), Alarm::G { g, seq }) = (deadline, waiter.alarm()) {
        let (id, u) = timer::prepare(d, Box::new(move || Sched::ready(g, seq)));
        cleanup.timer = Some(id);
        unarmed = Some(u);
    }
    let rec = Box::into_raw(Box::new(waiter));
    let slot = pd.slot(dir);
    // SeqCst: read by `find_runnable`'s poll check; a hint (the blocked poller M, if any,
    // sees the event anyway).
    poller.nwait.fetch_add(1, SeqCst);
    park::park(&mut || {
        // Copy everything onto g0 first: once the timer is armed or the record is
        // published, the goroutine may resume elsewhere and this closure's captures go.
        let (unarmed, slot, rec) = (unarmed.take(), slot, rec);
        if let Some(u) = unarmed {
            u.arm();
        }
        slot.commit(rec)
    });
    cleanup.finish()
}

/// Ends a park in a poll descriptor, also when it unwinds (cancellation at shutdown): cancels
/// the deadline's timer, empties the slot (freeing our record if the poller did not take it)
/// and takes us off the poller's waiter count.
struct Cleanup<'a> {
    pd: &'static PollDesc,
    dir: Dir,
    poller: &'a Poller,
    timer: Option<timer::TimerId>,
    done: bool,
}

impl Cleanup<'_> {
    fn finish(&mut self) -> bool {
        self.done = true;
        if let Some(t) = self.timer.take() {
            timer::cancel(t);
        }
        self.poller.nwait.fetch_sub(1, SeqCst);
        self.pd.finish(self.dir)
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish();
        }
    }
}
