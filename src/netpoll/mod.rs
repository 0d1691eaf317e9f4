//! The netpoller: goroutines that wait for a file descriptor park, and the scheduler wakes them
//! when epoll reports the fd ready (Go's `netpoll.go` + `netpoll_epoll.go`).
//!
//! * `sys.rs`: the syscalls (epoll, eventfd, poll(2), `O_NONBLOCK`).
//! * `pd.rs`: poll descriptors (Go's `pollDesc`): the read/write waiter slots and their state
//!   machine; the never-freed slab and generation numbers that make close and reuse safe.
//! * `poller.rs`: one runtime's epoll instance and eventfd; `poll` (Go's `netpoll(delay)`) and
//!   `wake` (Go's `netpollBreak`).
//! * `wait.rs`: [`PollIo`], what the I/O types use to wait (park a goroutine, or poll(2) on a
//!   plain thread), with deadlines.
//!
//! # Who polls, and when (Go's scheme, adapted)
//! - The poller of a runtime is created on first use (a goroutine's first wait on an fd); each
//!   fd is registered with it once, edge-triggered for both directions.
//! - `find_runnable`, when the local and global queues are empty, polls without blocking if
//!   goroutines wait on I/O and no M is blocked in `epoll_wait` ([`poll_ready`]); the readied
//!   goroutines land on its P, before it tries to steal.
//! - When Ms go idle, the one that becomes the *timer sleeper* (`timer.rs`) blocks in
//!   `epoll_wait` instead of on its note, with the earliest timer as timeout; at most one M
//!   does (`Poller::poll_m`). An M going idle while the timer sleeper sleeps on its note (it
//!   went idle before the poller existed) takes the role over ([`take_poll_role`]).
//! - Whoever would wake that M - hands it a P (`M::hand_p`, reached from `wakep`/`startm`,
//!   `timer_added` and shutdown) - also rings its eventfd ([`break_poll`]).
//! - With events, the blocked M takes itself off the idle list and takes an idle P, and the
//!   readied goroutines run there; with no idle P they go to the global queue.
//! - [`poll_if_stale`], for the future sysmon thread: a non-blocking poll if nobody polled for
//!   10 ms (Go's sysmon does the same), injecting into the global queue.

pub(crate) mod pd;
mod poller;
pub(crate) mod sys;
mod wait;

pub(crate) use pd::Dir;
pub use poller::Poller;
pub(crate) use wait::{deadline, PollIo};

use crate::sched::m::M;
use crate::sched::park::Waiter;
use crate::sched::{timer, Locked, Sched};
use std::io;
use std::ptr;
use std::sync::atomic::Ordering::*;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Where a `Sched` keeps its poller (created on first use).
pub type Slot = OnceLock<Arc<Poller>>;

/// How long nobody may have polled before [`poll_if_stale`] polls (Go's sysmon: 10 ms).
pub const STALE: Duration = Duration::from_millis(10);

/// The runtime's poller, created if needed. Creating it kicks the idle timer sleeper (if any)
/// so that it goes back to sleep in `epoll_wait` rather than on its note.
pub fn poller_or_init(sched: &Sched) -> io::Result<&Arc<Poller>> {
    if let Some(p) = sched.netpoll.get() {
        return Ok(p);
    }
    static INIT: Mutex<()> = Mutex::new(());
    let guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if sched.netpoll.get().is_none() {
        let p = Arc::new(Poller::new(sched.id)?);
        let _ = sched.netpoll.set(p);
        drop(guard);
        sched.timer_added(0);
    }
    Ok(sched.netpoll.get().expect("runtime: the poller vanished"))
}

/// Wakes the goroutines a poll returned.
pub fn wake_all(ws: Vec<Waiter>) {
    for w in ws {
        w.wake();
    }
}

/// `find_runnable`'s non-blocking poll (on g0, holding a P): if goroutines wait on I/O and no
/// M is blocked in `epoll_wait`, readies those whose fds are ready (onto the caller's P).
/// True if any was readied.
pub fn poll_ready(sched: &Sched) -> bool {
    let Some(p) = sched.netpoll.get() else {
        return false;
    };
    if p.nwait.load(SeqCst) == 0 || !p.poll_m.load(Relaxed).is_null() {
        return false;
    }
    let (ws, _) = p.poll(Some(Duration::ZERO));
    let any = !ws.is_empty();
    wake_all(ws);
    any
}

/// Whether goroutines of this runtime wait on I/O (a hint, for `find_runnable`'s spin).
pub fn has_waiters(sched: &Sched) -> bool {
    sched
        .netpoll
        .get()
        .is_some_and(|p| p.nwait.load(Relaxed) > 0)
}

/// `M::hand_p`'s hook, after the note is set: if `m` is blocked in `epoll_wait`, break it out.
pub fn break_poll(sched: &Sched, m: *const M) {
    if let Some(p) = sched.netpoll.get() {
        // SeqCst is not needed for the pairing (`poll_m` was set under the scheduler lock
        // before `m` could be taken off the idle list, see poller.rs); it is just cheap here.
        if ptr::eq(p.poll_m.load(SeqCst), m) {
            p.wake();
        }
    }
}

/// `stopm`'s hook, under the scheduler lock with `m` already on the idle list: true if `m`
/// should wait in `epoll_wait` (the runtime has a poller and no other M waits there). If `m`
/// may be the timer sleeper (`may_time`) and the current one sleeps on its note, `m` takes
/// its place: the old one wakes at its deadline at most once more, finds it is no longer the
/// timer sleeper and carries on as an ordinary idle M.
pub fn take_poll_role(sched: &Sched, l: &mut Locked, m: *const M, may_time: bool) -> bool {
    let Some(p) = sched.netpoll.get() else {
        return false;
    };
    if !p.poll_m.load(Relaxed).is_null() {
        return false;
    }
    p.poll_m.store(m.cast_mut(), SeqCst);
    if may_time && !l.timer_m.is_null() && !ptr::eq(l.timer_m, m) {
        sched.clear_timer_m(l);
    }
    true
}

/// What ended an idle M's wait in `epoll_wait` ([`block`]).
pub enum Blocked {
    /// Its note was set: someone handed it a P (or told it to exit).
    Woken,
    /// The deadline (the earliest timer) passed.
    Timeout,
    /// These goroutines' fds became ready; the M must wake them.
    Ready(Vec<Waiter>),
}

/// The idle M `m` (the one `take_poll_role` chose) waits in `epoll_wait` until its note is
/// set, `deadline` passes or events arrive; then gives up the role. On g0, with no P.
pub fn block(sched: &Sched, m: &M, deadline: Option<Instant>) -> Blocked {
    let Some(p) = sched.netpoll.get() else {
        crate::fatal("runtime: netpoll::block without a poller")
    };
    let why = loop {
        // Acquire (in `is_set`): pairs with the note's Release in `hand_p`, as `sleep` does.
        if m.park.is_set() {
            break Blocked::Woken;
        }
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break Blocked::Timeout;
                }
                Some(d - now)
            }
        };
        let (ws, _) = p.poll(timeout);
        if !ws.is_empty() {
            break Blocked::Ready(ws);
        }
    };
    p.poll_m.store(ptr::null_mut(), SeqCst);
    why
}

/// For sysmon (a thread that is not an M): if goroutines wait on I/O, no M is blocked in
/// `epoll_wait` and nobody polled for [`STALE`] (10 ms), polls without blocking and puts the
/// readied goroutines on the global run queue (waking an idle P's M for them).
/// Returns how many goroutines it readied.
pub fn poll_if_stale(sched: &Sched) -> usize {
    poll_stale(sched, Instant::now())
}

/// [`poll_if_stale`] at `now`; returns how many goroutines it readied.
fn poll_stale(sched: &Sched, now: Instant) -> usize {
    let Some(p) = sched.netpoll.get() else {
        return 0;
    };
    if p.nwait.load(SeqCst) == 0 || !p.poll_m.load(Relaxed).is_null() {
        return 0;
    }
    let last = p.last_poll.load(Relaxed);
    if timer::nanos(now).saturating_sub(last) < STALE.as_nanos() as u64 {
        return 0;
    }
    let (ws, _) = p.poll(Some(Duration::ZERO));
    let n = ws.len();
    wake_all(ws);
    n
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A pipe whose read end is registered with `sched`'s poller and has a plain thread's
    /// waiter committed in its read slot (as a parked goroutine's would be).
    fn parked_reader(
        sched: &Sched,
    ) -> (
        std::os::fd::OwnedFd,
        std::os::fd::OwnedFd,
        &'static pd::PollDesc,
    ) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        sys::cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })
            .unwrap();
        let (r, w) = (sys::owned(fds[0]), sys::owned(fds[1]));
        let poller = poller_or_init(sched).unwrap().clone();
        let pd = pd::PollDesc::alloc(r.as_raw_fd());
        pd.register(&poller).unwrap();
        // Consume the registration's initial edge (the pipe's write end is writable, the read
        // end not yet readable: nothing for Read), then claim and commit.
        poller.poll(Some(Duration::ZERO));
        assert_eq!(pd.prepare(Dir::Read), pd::Prepared::Wait);
        let rec = Box::into_raw(Box::new(Waiter::current(
            crate::sched::park::WaitReason::IoWait,
        )));
        assert!(pd.slot(Dir::Read).commit(rec));
        poller.nwait.fetch_add(1, SeqCst);
        (r, w, pd)
    }

    /// A scheduler that starts no M: creating the poller calls `wakep`, and an M would poll
    /// (and consume the test's event) in `find_runnable`.
    fn quiet_sched() -> Arc<Sched> {
        let sched = Sched::new(1, crate::stack::DEFAULT_STACK);
        sched.stopping.store(true, SeqCst);
        sched
    }

    #[test]
    fn poll_if_stale_polls_only_when_stale() {
        let sched = quiet_sched();
        let (_r, w, pd) = parked_reader(&sched);
        // SAFETY: writes one byte from a live buffer to an open pipe.
        assert_eq!(
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) },
            1
        );
        let poller = sched.netpoll.get().unwrap();
        let fresh = timer::instant(poller.last_poll.load(Relaxed)) + Duration::from_millis(1);
        assert_eq!(
            poll_stale(&sched, fresh),
            0,
            "polled although someone polled 1 ms ago"
        );
        assert!(
            pd.slot(Dir::Read).state() > pd::WAIT,
            "the waiter was taken"
        );
        let stale = fresh + STALE;
        assert_eq!(poll_stale(&sched, stale), 1, "a stale poller did not poll");
        assert_eq!(pd.slot(Dir::Read).state(), pd::READY);
        // Nothing waits any more: no poll at all.
        poller.nwait.fetch_sub(1, SeqCst);
        assert_eq!(poll_stale(&sched, stale + STALE), 0);
        assert!(pd.finish(Dir::Read));
        pd.free();
    }

    #[test]
    fn a_blocked_poller_is_never_stale() {
        let sched = quiet_sched();
        let (_r, w, pd) = parked_reader(&sched);
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) },
            1
        );
        let poller = sched.netpoll.get().unwrap();
        let fake_m = ptr::dangling_mut::<M>(); // never dereferenced: only compared
        poller.poll_m.store(fake_m, SeqCst);
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(poll_stale(&sched, later), 0);
        poller.poll_m.store(ptr::null_mut(), SeqCst);
        assert_eq!(poll_stale(&sched, later), 1);
        poller.nwait.fetch_sub(1, SeqCst);
        pd.finish(Dir::Read);
        pd.free();
    }
}
