//! One runtime's poller: its epoll instance, the eventfd that breaks a blocked `epoll_wait`
//! (Go's `netpollBreak`), and the counters the scheduler reads to decide whether to poll.
//!
//! # Invariants
//! - At most one M blocks in `epoll_wait` per runtime: the one named by `poll_m`, chosen under
//!   `Sched::lock` in `stopm` (see `mod.rs`). Any number of Ms may poll without blocking.
//! - `poll_m` is set under `Sched::lock` while that M is on the idle list, before anyone can
//!   take it off; so whoever takes it off the list (and hands it a P through `M::hand_p`)
//!   reads `poll_m == m` and rings the eventfd. The M clears `poll_m` itself once it stops
//!   waiting.
//! - The eventfd is registered level-triggered: once rung it stays readable until the poller
//!   that sees it drains it, so a ring before the `epoll_wait` is not lost. `wake_sig` keeps
//!   concurrent rings down to one write (Go's `netpollWakeSig`).

use super::pd::{self, Dir};
use super::sys;
use crate::sched::m::M;
use crate::sched::park::Waiter;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::time::Duration;

/// epoll's data word for the eventfd (no descriptor has this token: indices stay below 2^22).
const BREAK_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait` (Go takes 128).
const BATCH: usize = 128;

pub struct Poller {
    /// The runtime's `Sched::id` (never 0).
    pub id: u64,
    epfd: OwnedFd,
    evfd: OwnedFd,
    wake_sig: AtomicBool,
    /// Goroutines parked on a poll descriptor registered here (or about to park). A hint for
    /// "is polling worth a syscall"; incremented before the park, decremented after it.
    pub nwait: AtomicUsize,
    /// When anyone last polled (`timer::nanos`), for [`super::poll_if_stale`].
    pub last_poll: AtomicU64,
    /// The idle M blocked in (or about to enter) `epoll_wait`; null if none. See the module
    /// docs for who writes it.
    pub poll_m: AtomicPtr<M>,
    /// Goroutines readied by polls so far (`runtime::stats`).
    pub woken: AtomicU64,
}

impl Poller {
    pub fn new(id: u64) -> io::Result<Poller> {
        let epfd = sys::epoll_create()?;
        let evfd = sys::eventfd()?;
        sys::epoll_add(
            epfd.as_raw_fd(),
            evfd.as_raw_fd(),
            libc::EPOLLIN as u32,
            BREAK_TOKEN,
        )?;
        Ok(Poller {
            id,
            epfd,
            evfd,
            wake_sig: AtomicBool::new(false),
            nwait: AtomicUsize::new(0),
            last_poll: AtomicU64::new(crate::sched::timer::nanos(std::time::Instant::now())),
            poll_m: AtomicPtr::new(std::ptr::null_mut()),
            woken: AtomicU64::new(0),
        })
    }

    pub fn epfd(&self) -> RawFd {
        self.epfd.as_raw_fd()
    }

    /// Go's `netpollBreak`: makes a blocked (or the next) `epoll_wait` return.
    pub fn wake(&self) {
        if !self.wake_sig.swap(true, AcqRel) {
            sys::eventfd_signal(self.evfd.as_raw_fd());
        }
    }

    /// Go's `netpoll(delay)`: waits up to `timeout` (None: until an event) and returns the
    /// waiters of the descriptors that became ready (the caller wakes them), and whether the
    /// eventfd rang. Runs on g0 or on a plain thread (sysmon, tests); never parks.
    pub fn poll(&self, timeout: Option<Duration>) -> (Vec<Waiter>, bool) {
        let mut buf = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let n = sys::epoll_wait(self.epfd(), &mut buf, timeout);
        self.last_poll.store(
            crate::sched::timer::nanos(std::time::Instant::now()),
            Relaxed,
        );
        let mut woken = Vec::new();
        let mut broke = false;
        for ev in &buf[..n] {
            let (events, token) = (ev.events, ev.u64);
            if token == BREAK_TOKEN {
                sys::eventfd_drain(self.evfd.as_raw_fd());
                self.wake_sig.store(false, Release);
                broke = true;
                continue;
            }
            let Some(pd) = pd::from_token(token) else {
                continue; // the fd was closed since (see "Close and reuse" in pd.rs)
            };
            if events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                pd.set_closed();
            }
            let (r, w) = ready_dirs(events);
            if r {
                woken.extend(pd.unblock(Dir::Read));
            }
            if w {
                woken.extend(pd.unblock(Dir::Write));
            }
        }
        if !woken.is_empty() {
            self.woken.fetch_add(woken.len() as u64, Relaxed);
        }
        (woken, broke)
    }
}

/// Which directions an epoll event makes ready (as Go's `netpoll`: errors and hang-ups wake
/// both, so the retried syscall reports them).
fn ready_dirs(events: u32) -> (bool, bool) {
    let read = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    let write = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    (events & read != 0, events & write != 0)
}
