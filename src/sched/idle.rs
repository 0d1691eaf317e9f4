//! Idle Ms: the short spin before an M without work gives its P up, and `stopm`, where an M
//! with no P sleeps on the idle list: on its note, until the earliest timer as the *timer
//! sleeper*, or in `epoll_wait` as the runtime's poller (see `timer.rs` and `netpoll/`).
//!
//! All of it runs on g0.

use super::m::{M, SPIN_WAIT};
use super::timer::Timeout;
use super::Sched;
use crate::netpoll::Blocked;
use std::ptr;
use std::sync::atomic::Ordering::*;

impl M {
    /// Polls (without taking anything) until some run queue holds work, a timer is due, or
    /// [`SPIN_WAIT`] has passed. True if work appeared.
    pub(super) fn spin_for_work(&self, sched: &Sched, procs: usize) -> bool {
        let start = std::time::Instant::now();
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if sched.runqsize.load(Relaxed) > 0 || sched.stopping.load(Relaxed) {
                return true;
            }
            if (0..procs).any(|vid| sched.p(vid).is_some_and(|v| !v.runq.is_empty())) {
                return true;
            }
            let now = std::time::Instant::now();
            if sched.any_timer_due(now) {
                return true;
            }
            if now - start >= SPIN_WAIT {
                return false;
            }
        }
    }

    /// Go's `stopm`: sleep on the idle list until handed a P. False if told to exit.
    ///
    /// If no other idle M does, this one sleeps only until the earliest timer of any P (it is
    /// the *timer sleeper*, see `timer.rs`); when that passes it takes an idle P itself and
    /// returns, and `find_runnable` runs the due timers. Once the runtime has a netpoller,
    /// one idle M (normally the timer sleeper) waits in `epoll_wait` instead of on its note,
    /// and wakes for I/O too (see `netpoll/mod.rs`, "Who polls, and when").
    ///
    /// # Safety
    /// Own thread, on g0, holding no P.
    pub(super) unsafe fn stopm(&self, sched: &Sched) -> bool {
        let mut may_time = true;
        let mut handed_ready = Vec::new();
        loop {
            let (deadline, poll) = {
                let mut l = sched.lock();
                if sched.stopping.load(SeqCst) {
                    return false;
                }
                l.midle.push(self);
                let poll = crate::netpoll::take_poll_role(sched, &mut l, self, may_time);
                let deadline = if may_time {
                    sched.timer_sleeper(&mut l, self)
                } else {
                    None
                };
                (deadline, poll)
            };
            // The poller M waits in epoll_wait (until the deadline, its note or I/O).
            let ready = if poll {
                match crate::netpoll::block(sched, self, deadline) {
                    Blocked::Woken => break,
                    Blocked::Timeout => Vec::new(),
                    Blocked::Ready(ws) => ws,
                }
            } else {
                let Some(deadline) = deadline else {
                    self.park.sleep();
                    break;
                };
                if self.park.sleep_until(deadline) {
                    break;
                }
                Vec::new()
            };
            match sched.timer_timeout(self) {
                Timeout::Run(p) => {
                    // Off the idle list: nobody will wake our note (still clear).
                    // SAFETY: own state.
                    let ml = unsafe { self.local() };
                    self.set_p(p);
                    ml.spinning = false;
                    // Goroutines whose I/O is ready go on our P, in order.
                    self.ready_polled(sched, || {
                        crate::netpoll::wake_all(ready);
                        true
                    });
                    return true;
                }
                Timeout::Exit => {
                    crate::netpoll::wake_all(ready); // global queue: shutdown cancels them
                    return false;
                }
                // No idle P: every P's holder runs its own timers (and takes the readied
                // goroutines from the global queue); sleep without a deadline.
                Timeout::NoP => {
                    crate::netpoll::wake_all(ready);
                    may_time = false;
                }
                Timeout::Handoff => {
                    // Someone took us off the list and is about to wake us with a P: the
                    // goroutines we polled go on that P (not to the global queue with a
                    // wake-up of yet another M each).
                    self.park.sleep();
                    handed_ready = ready;
                    break;
                }
            }
        }
        self.park.clear();
        let p = self.nextp.swap(ptr::null_mut(), Relaxed);
        if p.is_null() {
            crate::netpoll::wake_all(handed_ready); // global queue: shutdown cancels them
            return false;
        }
        // SAFETY: own state.
        let ml = unsafe { self.local() };
        self.set_p(p);
        ml.spinning = self.spin_on_wake.load(Relaxed);
        if !handed_ready.is_empty() {
            self.ready_polled(sched, || {
                crate::netpoll::wake_all(handed_ready);
                true
            });
        }
        true
    }
}
