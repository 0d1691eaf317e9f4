//! The raw system calls of the netpoller and of the fd-backed types: epoll, eventfd, poll(2),
//! `O_NONBLOCK`. Each wrapper is safe: it takes file descriptors the caller keeps open for the
//! duration of the call and turns a -1 return into an `io::Error` (EINTR included: callers
//! decide whether to retry).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// -1 -> the thread's `errno` as an error.
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// [`cvt`] for `ssize_t` returns (read, write, send, recv).
pub fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Takes ownership of a descriptor a syscall just returned.
pub fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: callers pass a fresh descriptor (the non-negative result of socket, accept4,
    // epoll_create1, ...) that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A new close-on-exec epoll instance.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers involved.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(owned(fd))
}

/// A new non-blocking, close-on-exec eventfd with counter 0.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers involved.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    Ok(owned(fd))
}

/// `EPOLL_CTL_ADD` of `fd` with `events`, tagged with `data`.
pub fn epoll_add(ep: RawFd, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` lives for the call; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

/// `EPOLL_CTL_DEL` of `fd`.
pub fn epoll_del(ep: RawFd, fd: RawFd) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: as in `epoll_add` (Linux ignores the event for DEL; old kernels want non-null).
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
    Ok(())
}

/// Waits for events on `ep` for up to `timeout` (None: forever), filling `buf`; returns how
/// many. EINTR counts as zero events. Uses `epoll_pwait2` (nanosecond timeouts, Linux 5.11)
/// and falls back to `epoll_wait` (milliseconds, rounded up) where it is missing.
pub fn epoll_wait(ep: RawFd, buf: &mut [libc::epoll_event], timeout: Option<Duration>) -> usize {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
    let max = buf.len().min(i32::MAX as usize) as libc::c_int;
    if !NO_PWAIT2.load(Relaxed) {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `buf` is valid for `max` events, `tsp` is null or points to `ts`, which
        // lives for the call; a null sigmask leaves the mask alone.
        let n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                ep,
                buf.as_mut_ptr(),
                max,
                tsp,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if n >= 0 {
            return n as usize;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
            return 0;
        }
        NO_PWAIT2.store(true, Relaxed);
    }
    let ms = timeout.map_or(-1, duration_ms);
    // SAFETY: `buf` is valid for `max` events.
    let n = unsafe { libc::epoll_wait(ep, buf.as_mut_ptr(), max, ms) };
    n.max(0) as usize
}

/// A timeout in whole milliseconds for poll(2)/epoll_wait, rounded up so a wait never ends
/// before its deadline.
pub fn duration_ms(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    ms.min(libc::c_int::MAX as u128) as libc::c_int
}

/// Adds one to an eventfd's counter (makes it readable).
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64. EAGAIN (counter at its maximum) still leaves it
    // readable, which is all a signal needs.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets an eventfd's counter to zero (non-blocking read).
pub fn eventfd_drain(fd: RawFd) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// Blocks the calling thread in poll(2) until `fd` reports one of `events` (or an error or
/// hang-up) or `deadline` passes. Ok(true): ready; Ok(false): the deadline passed.
pub fn poll_fd(fd: RawFd, events: libc::c_short, deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                duration_ms(d - now)
            }
        };
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        match cvt(unsafe { libc::poll(&mut p, 1, ms) }) {
            Ok(0) => {}
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sets or clears `O_NONBLOCK` on `fd`; returns whether it was set before.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<bool> {
    // SAFETY: F_GETFL/F_SETFL take no pointers.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let was = flags & libc::O_NONBLOCK != 0;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(was)
}
