//! A non-blocking socket with a poll descriptor: the syscalls every socket type shares
//! (connect, accept, read, write, send/recv with addresses, options, timeouts).
//!
//! Invariants: the fd is always `O_NONBLOCK` and close-on-exec; `io` is declared before `fd`,
//! so the poll descriptor is freed (and the fd taken out of every epoll set) before the fd is
//! closed. Timeouts live in this struct (not in the kernel's `SO_RCVTIMEO`); `try_clone`
//! copies them.

use super::addr::SockAddr;
use crate::netpoll::{sys, Dir, PollIo};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Socket {
    io: PollIo,
    fd: OwnedFd,
    /// Read and write timeouts in nanoseconds (0: none).
    rto: AtomicU64,
    wto: AtomicU64,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("fd", &self.raw()).finish()
    }
}

/// The kernel's `somaxconn` (read once), the backlog Go gives every listener; 4096 if unknown.
pub fn backlog() -> libc::c_int {
    static B: OnceLock<libc::c_int> = OnceLock::new();
    *B.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_int>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(4096)
    })
}

impl Socket {
    /// A new socket (`SOCK_NONBLOCK | SOCK_CLOEXEC`).
    pub fn new(family: libc::c_int, ty: libc::c_int) -> io::Result<Socket> {
        // SAFETY: no pointers involved.
        let fd = sys::cvt(unsafe {
            libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
        })?;
        Ok(Socket::from_nonblocking(sys::owned(fd)))
    }

    /// Wraps an fd that is already non-blocking.
    pub fn from_nonblocking(fd: OwnedFd) -> Socket {
        Socket {
            io: PollIo::new(fd.as_raw_fd()),
            fd,
            rto: AtomicU64::new(0),
            wto: AtomicU64::new(0),
        }
    }

    /// Wraps any socket fd, making it non-blocking (for `From<std::net::...>`). `fcntl` on an
    /// open fd cannot fail; if it somehow did, the fd stays blocking and I/O on it blocks its
    /// thread rather than failing.
    pub fn from_any(fd: OwnedFd) -> Socket {
        let _ = sys::set_nonblocking(fd.as_raw_fd(), true);
        Socket::from_nonblocking(fd)
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Gives the fd up (deregistered, still non-blocking).
    pub fn into_fd(self) -> OwnedFd {
        let Socket { io, fd, .. } = self;
        drop(io);
        fd
    }

    /// A second handle to the same socket (`F_DUPFD_CLOEXEC`), with the same timeouts.
    pub fn try_clone(&self) -> io::Result<Socket> {
        let fd = self.fd.try_clone()?;
        let s = Socket::from_nonblocking(fd);
        s.rto.store(self.rto.load(Relaxed), Relaxed);
        s.wto.store(self.wto.load(Relaxed), Relaxed);
        Ok(s)
    }

    pub fn bind(&self, a: &SockAddr) -> io::Result<()> {
        // SAFETY: `a` holds a valid address of `a.len` bytes.
        sys::cvt(unsafe { libc::bind(self.raw(), a.as_ptr(), a.len) })?;
        Ok(())
    }

    pub fn listen(&self) -> io::Result<()> {
        // SAFETY: no pointers involved.
        sys::cvt(unsafe { libc::listen(self.raw(), backlog()) })?;
        Ok(())
    }

    /// Connects, waiting (until `deadline`) for a connection in progress to complete.
    pub fn connect(&self, a: &SockAddr, deadline: Option<Instant>) -> io::Result<()> {
        // SAFETY: `a` holds a valid address of `a.len` bytes.
        match sys::cvt(unsafe { libc::connect(self.raw(), a.as_ptr(), a.len) }) {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
        let fd = self.raw();
        self.io.io_until(fd, Dir::Write, deadline, || {
            match self.take_error()? {
                Some(e) => Err(e),
                // Writable with no error: connected, unless the wake-up was spurious (then
                // getpeername says ENOTCONN and we wait again, as Go does).
                None => match self.peer() {
                    Ok(_) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            }
        })
    }

    /// Accepts a connection (`accept4`, non-blocking and close-on-exec), waiting for one.
    pub fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        let fd = self.raw();
        self.io.io(fd, Dir::Read, None, || loop {
            let mut a = SockAddr::empty();
            // SAFETY: `a` is a buffer of `a.len` bytes for the peer address.
            let r = unsafe {
                libc::accept4(
                    fd,
                    a.as_mut_ptr(),
                    &mut a.len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            match sys::cvt(r) {
                Ok(nfd) => return Ok((Socket::from_nonblocking(sys::owned(nfd)), a)),
                // The peer gave up before we took it: take the next one (Go does too).
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) => return Err(e),
            }
        })
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw();
        self.io.io(fd, Dir::Read, self.timeout(Dir::Read), || {
            // SAFETY: `buf` is valid for writes of its length.
            sys::cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    /// [`Socket::read`] for a stream socket (TCP, Unix stream): see `PollIo::read_stream`.
    pub fn read_stream(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw();
        let len = buf.len();
        self.io.read_stream(fd, self.timeout(Dir::Read), len, || {
            // SAFETY: `buf` is valid for writes of its length.
            sys::cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.raw();
        self.io.io(fd, Dir::Write, self.timeout(Dir::Write), || {
            // SAFETY: `buf` is valid for reads of its length. MSG_NOSIGNAL: a closed peer is
            // an EPIPE error, not a SIGPIPE.
            sys::cvt_size(unsafe {
                libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
            })
        })
    }

    /// `recvfrom`: the bytes and the sender's address.
    pub fn recv_from(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, SockAddr)> {
        let fd = self.raw();
        self.io.io(fd, Dir::Read, self.timeout(Dir::Read), || {
            let mut a = SockAddr::empty();
            // SAFETY: `buf` is valid for writes of its length; `a` is an address buffer.
            let n = sys::cvt_size(unsafe {
                libc::recvfrom(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    a.as_mut_ptr(),
                    &mut a.len,
                )
            })?;
            Ok((n, a))
        })
    }

    pub fn send_to(&self, buf: &[u8], to: &SockAddr) -> io::Result<usize> {
        let fd = self.raw();
        self.io.io(fd, Dir::Write, self.timeout(Dir::Write), || {
            // SAFETY: `buf` is valid for reads of its length; `to` holds a valid address.
            sys::cvt_size(unsafe {
                libc::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    to.as_ptr(),
                    to.len,
                )
            })
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: no pointers involved.
        sys::cvt(unsafe { libc::shutdown(self.raw(), how) })?;
        Ok(())
    }

    /// Sets a direction's timeout; `Some(0)` is an error, as in std.
    pub fn set_timeout(&self, dir: Dir, t: Option<Duration>) -> io::Result<()> {
        let ns = match t {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        };
        match dir {
            Dir::Read => self.rto.store(ns, Relaxed),
            Dir::Write => self.wto.store(ns, Relaxed),
        }
        Ok(())
    }

    pub fn timeout(&self, dir: Dir) -> Option<Duration> {
        let ns = match dir {
            Dir::Read => self.rto.load(Relaxed),
            Dir::Write => self.wto.load(Relaxed),
        };
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    pub fn setsockopt(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        v: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: passes a live c_int and its size.
        sys::cvt(unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    pub fn getsockopt(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: passes a live c_int buffer and its size.
        sys::cvt(unsafe {
            libc::getsockopt(
                self.raw(),
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(v)
    }

    /// `SO_ERROR`: the pending error, cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }

    /// `getsockname`.
    pub fn local(&self) -> io::Result<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: `a` is an address buffer of `a.len` bytes.
        sys::cvt(unsafe { libc::getsockname(self.raw(), a.as_mut_ptr(), &mut a.len) })?;
        Ok(a)
    }

    /// `getpeername`.
    pub fn peer(&self) -> io::Result<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: as in `local`.
        sys::cvt(unsafe { libc::getpeername(self.raw(), a.as_mut_ptr(), &mut a.len) })?;
        Ok(a)
    }
}

/// `Read`, `Write` and the fd traits for a type wrapping a stream [`Socket`] as field `.0`.
macro_rules! socket_io_impls {
    ($t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read_stream(buf)
            }
        }
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read_stream(buf)
            }
        }
        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// `AsRawFd`, `AsFd`, `IntoRawFd`, `FromRawFd` and `From<OwnedFd>`-style conversions for a
/// type wrapping a [`Socket`] as field `.0`.
macro_rules! socket_fd_impls {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0.raw()
            }
        }
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(self.0.fd())
            }
        }
        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.0.into_fd())
            }
        }
        impl std::os::fd::FromRawFd for $t {
            /// Takes ownership of `fd` and makes it non-blocking.
            ///
            /// # Safety
            /// `fd` must be an open socket of the right kind that nothing else owns.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: forwarded contract: `fd` is open and ours.
                let fd =
                    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                Self($crate::net::socket::Socket::from_any(fd))
            }
        }
    };
}

pub(crate) use socket_fd_impls;
pub(crate) use socket_io_impls;
