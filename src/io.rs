//! File-descriptor I/O for goroutines: pipes, and any pollable descriptor through [`PollFd`].
//!
//! As with sockets (`crate::net`), a read or write that would block parks only the calling
//! goroutine (a plain OS thread blocks in poll(2)).

use crate::netpoll::{sys, Dir, PollIo};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

/// Creates a pipe (`pipe2`, non-blocking and close-on-exec): bytes written to the
/// [`PipeWriter`] come out of the [`PipeReader`]; once every writer is dropped, reads return
/// `Ok(0)` (end of file).
///
/// ```
/// use std::io::{Read, Write};
///
/// gort::run(|| {
///     let (mut r, mut w) = gort::io::pipe().unwrap();
///     gort::go(move || w.write_all(b"through the pipe").unwrap()); // then w drops
///     let mut s = String::new();
///     r.read_to_string(&mut s).unwrap();
///     assert_eq!(s, "through the pipe");
/// });
/// ```
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    sys::cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    let (r, w) = (sys::owned(fds[0]), sys::owned(fds[1]));
    Ok((PipeReader(Fd::new(r)), PipeWriter(Fd::new(w))))
}

/// The read end of a [`pipe`].
///
/// ```
/// use std::io::{Read, Write};
/// let (mut r, mut w) = gort::io::pipe().unwrap();
/// w.write_all(b"abc").unwrap();
/// drop(w);
/// let mut v = Vec::new();
/// r.read_to_end(&mut v).unwrap();
/// assert_eq!(v, b"abc");
/// ```
#[derive(Debug)]
pub struct PipeReader(Fd);

/// The write end of a [`pipe`].
///
/// ```
/// use std::io::{Read, Write};
/// let (mut r, mut w) = gort::io::pipe().unwrap();
/// (&w).write_all(b"x").unwrap();
/// let mut b = [0; 1];
/// r.read_exact(&mut b).unwrap();
/// assert_eq!(&b, b"x");
/// ```
#[derive(Debug)]
pub struct PipeWriter(Fd);

/// An owned non-blocking fd with its poll descriptor (`io` first: freed before the close).
#[derive(Debug)]
struct Fd {
    io: PollIo,
    fd: OwnedFd,
}

impl Fd {
    fn new(fd: OwnedFd) -> Fd {
        Fd {
            io: PollIo::new(fd.as_raw_fd()),
            fd,
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        self.io.io(fd, Dir::Read, None, || {
            // SAFETY: `buf` is valid for writes of its length.
            sys::cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        self.io.io(fd, Dir::Write, None, || {
            // SAFETY: `buf` is valid for reads of its length.
            sys::cvt_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
        })
    }

    fn into_fd(self) -> OwnedFd {
        let Fd { io, fd } = self;
        drop(io);
        fd
    }
}

macro_rules! pipe_impls {
    ($t:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.0.fd.as_raw_fd()
            }
        }
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.fd.as_fd()
            }
        }
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                self.0.into_fd().into_raw_fd()
            }
        }
        impl From<$t> for OwnedFd {
            fn from(p: $t) -> OwnedFd {
                p.0.into_fd()
            }
        }
    };
}
pipe_impls!(PipeReader);
pipe_impls!(PipeWriter);

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl Read for &PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Write for &PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Any pollable file descriptor (a tty, an eventfd, a pipe or socket made by another crate)
/// with goroutine-friendly I/O: [`PollFd::new`] makes it non-blocking, and `Read`/`Write`
/// (when `F` has them) park the goroutine while it is not ready. Regular files are not
/// pollable (epoll rejects them: `new` still works, but the first wait fails with `EPERM`).
///
/// ```
/// use gort::io::PollFd;
/// use std::io::{Read, Write};
/// use std::os::fd::FromRawFd;
///
/// gort::run(|| {
///     // An eventfd: reads block until someone adds to the counter.
///     // SAFETY: eventfd has no memory-safety preconditions.
///     let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
///     assert!(fd >= 0);
///     // SAFETY: fd is a fresh descriptor that nothing else owns.
///     let ev = PollFd::new(unsafe { std::fs::File::from_raw_fd(fd) }).unwrap();
///     let ev = std::sync::Arc::new(ev);
///     let e2 = ev.clone();
///     gort::go(move || (&*e2).write_all(&5u64.to_ne_bytes()).unwrap());
///     let mut b = [0; 8];
///     (&*ev).read_exact(&mut b).unwrap();
///     assert_eq!(u64::from_ne_bytes(b), 5);
/// });
/// ```
#[derive(Debug)]
pub struct PollFd<F: AsFd> {
    io: PollIo,
    inner: F,
    was_nonblocking: bool,
}

impl<F: AsFd> PollFd<F> {
    /// Wraps `f`, setting `O_NONBLOCK` on its descriptor.
    ///
    /// ```
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let p = gort::io::PollFd::new(r).unwrap();
    /// # drop(p);
    /// ```
    pub fn new(f: F) -> io::Result<PollFd<F>> {
        let fd = f.as_fd().as_raw_fd();
        let was_nonblocking = sys::set_nonblocking(fd, true)?;
        Ok(PollFd {
            io: PollIo::new(fd),
            inner: f,
            was_nonblocking,
        })
    }

    /// The wrapped value.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let raw = r.as_raw_fd();
    /// let p = gort::io::PollFd::new(r).unwrap();
    /// assert_eq!(p.get_ref().as_raw_fd(), raw);
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.inner
    }

    /// Unwraps the value, with `O_NONBLOCK` restored to what it was before [`PollFd::new`].
    ///
    /// ```
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let p = gort::io::PollFd::new(r).unwrap();
    /// let r: std::io::PipeReader = p.into_inner();
    /// # drop(r);
    /// ```
    pub fn into_inner(self) -> F {
        let PollFd {
            io,
            inner,
            was_nonblocking,
        } = self;
        drop(io);
        if !was_nonblocking {
            let _ = sys::set_nonblocking(inner.as_fd().as_raw_fd(), false);
        }
        inner
    }

    fn raw(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<F: AsFd + Read> Read for PollFd<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw();
        let inner = &mut self.inner;
        self.io.io(fd, Dir::Read, None, || inner.read(buf))
    }
}

impl<F: AsFd> Read for &PollFd<F>
where
    for<'a> &'a F: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.raw();
        let mut inner = &self.inner;
        self.io.io(fd, Dir::Read, None, || inner.read(buf))
    }
}

impl<F: AsFd + Write> Write for PollFd<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.raw();
        let inner = &mut self.inner;
        self.io.io(fd, Dir::Write, None, || inner.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        let fd = self.raw();
        let inner = &mut self.inner;
        self.io.io(fd, Dir::Write, None, || inner.flush())
    }
}

impl<F: AsFd> Write for &PollFd<F>
where
    for<'a> &'a F: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.raw();
        let mut inner = &self.inner;
        self.io.io(fd, Dir::Write, None, || inner.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        let fd = self.raw();
        let mut inner = &self.inner;
        self.io.io(fd, Dir::Write, None, || inner.flush())
    }
}

impl<F: AsFd> AsFd for PollFd<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<F: AsFd> AsRawFd for PollFd<F> {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}
