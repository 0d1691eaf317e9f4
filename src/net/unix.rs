//! Unix domain stream sockets: [`UnixListener`] and [`UnixStream`], shaped like
//! `std::os::unix::net`'s (addresses are std's `SocketAddr`).

use super::addr::SockAddr;
use super::socket::{socket_fd_impls, socket_io_impls, Socket};
use crate::netpoll::{sys, Dir};
use std::io;
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A Unix socket server: `std::os::unix::net::UnixListener` for goroutines. It listens with
/// the kernel's `somaxconn` as backlog; dropping it closes the socket (the path stays, as in
/// std).
///
/// ```
/// use gort::net::{UnixListener, UnixStream};
/// use std::io::{Read, Write};
///
/// gort::run(|| {
///     let dir = std::env::temp_dir().join(format!("gort-doc-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     let path = dir.join("listener.sock");
///     let _ = std::fs::remove_file(&path);
///     let l = UnixListener::bind(&path).unwrap();
///     let p = path.clone();
///     gort::go(move || UnixStream::connect(p).unwrap().write_all(b"hi").unwrap());
///     let (mut s, _) = l.accept().unwrap();
///     let mut buf = String::new();
///     s.read_to_string(&mut buf).unwrap();
///     assert_eq!(buf, "hi");
///     std::fs::remove_dir_all(&dir).unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct UnixListener(Socket);

/// A Unix stream socket: `std::os::unix::net::UnixStream` for goroutines, with the same
/// waiting, timeout and shutdown behaviour as [`TcpStream`](super::TcpStream).
///
/// ```
/// use gort::net::UnixStream;
/// use std::io::{Read, Write};
///
/// gort::run(|| {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     gort::go(move || a.write_all(b"ping").unwrap());
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
#[derive(Debug)]
pub struct UnixStream(Socket);

/// An iterator over a Unix listener's connections ([`UnixListener::incoming`]); it never
/// ends.
///
/// ```
/// use gort::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("gort-doc-inc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let _c = UnixStream::connect(&path).unwrap();
/// assert!(l.incoming().next().unwrap().is_ok());
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Debug)]
pub struct Incoming<'a>(&'a UnixListener);

/// Runs `f` on a std view of `fd` (for address queries std already knows how to decode).
fn with_std<T: FromRawFd, R>(fd: RawFd, f: impl FnOnce(&T) -> R) -> R {
    // SAFETY: `fd` is an open Unix socket owned by the caller for the duration of the call;
    // ManuallyDrop keeps the view from closing it.
    let v = ManuallyDrop::new(unsafe { T::from_raw_fd(fd) });
    f(&v)
}

impl UnixListener {
    /// Binds to the filesystem path `path` (which must not exist) and listens.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-bind-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gort::net::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let a = SockAddr::unix(path.as_ref())?;
        let s = Socket::new(libc::AF_UNIX, libc::SOCK_STREAM)?;
        s.bind(&a)?;
        s.listen()?;
        Ok(UnixListener(s))
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// ```
    /// use gort::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("gort-doc-acc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path).unwrap();
    /// let _c = UnixStream::connect(&path).unwrap();
    /// let (_s, peer) = l.accept().unwrap();
    /// assert!(peer.is_unnamed());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, _) = self.0.accept()?;
        let a = with_std(s.raw(), std::os::unix::net::UnixStream::peer_addr)?;
        Ok((UnixStream(s), a))
    }

    /// An endless iterator of accepted connections. See [`Incoming`].
    ///
    /// ```
    /// use gort::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("gort-doc-inc2-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = UnixListener::bind(&path).unwrap();
    /// let _c = UnixStream::connect(&path).unwrap();
    /// assert_eq!(l.incoming().take(1).count(), 1);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming(self)
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-la-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gort::net::UnixListener::bind(&path).unwrap();
    /// assert!(l.local_addr().unwrap().as_pathname().is_some());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.0.raw(), std::os::unix::net::UnixListener::local_addr)
    }

    /// A second handle to the same listener (a duplicated file descriptor).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-tc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gort::net::UnixListener::bind(&path).unwrap();
    /// assert!(l.try_clone().is_ok());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener(self.0.try_clone()?))
    }
}

impl<'a> Iterator for Incoming<'a> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.0.accept().map(|(s, _)| s))
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. A listener whose backlog is full makes this fail
    /// with `WouldBlock` (`EAGAIN`), as in Go, rather than wait.
    ///
    /// ```
    /// use gort::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("gort-doc-con-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let _l = UnixListener::bind(&path).unwrap();
    /// let c = UnixStream::connect(&path).unwrap();
    /// assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let a = SockAddr::unix(path.as_ref())?;
        let s = Socket::new(libc::AF_UNIX, libc::SOCK_STREAM)?;
        s.connect(&a, None)?;
        Ok(UnixStream(s))
    }

    /// A connected pair of anonymous sockets (`socketpair`).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, mut b) = gort::net::UnixStream::pair().unwrap();
    /// a.write_all(b"x").unwrap();
    /// let mut buf = [0; 1];
    /// b.read_exact(&mut buf).unwrap();
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let mut fds = [0; 2];
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socketpair writes two descriptors into the array.
        sys::cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
        Ok((
            UnixStream(Socket::from_nonblocking(sys::owned(fds[0]))),
            UnixStream(Socket::from_nonblocking(sys::owned(fds[1]))),
        ))
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.0.raw(), std::os::unix::net::UnixStream::peer_addr)
    }

    /// The local address.
    ///
    /// ```
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        with_std(self.0.raw(), std::os::unix::net::UnixStream::local_addr)
    }

    /// Shuts down the read half, the write half or both; a goroutine blocked reading wakes
    /// up with `Ok(0)`.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Read).unwrap();
    /// assert_eq!((&a).read(&mut [0; 4]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// Sets how long a read may wait (None: forever); `ErrorKind::TimedOut` after that.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// gort::run(|| {
    ///     let (mut a, _b) = gort::net::UnixStream::pair().unwrap();
    ///     a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    ///     assert_eq!(a.read(&mut [0; 4]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// });
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Read, t)
    }

    /// Sets how long a write may wait for buffer space (None: forever).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// a.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(2)));
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Write, t)
    }

    /// The read timeout.
    ///
    /// ```
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Read))
    }

    /// The write timeout.
    ///
    /// ```
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Write))
    }

    /// A second handle to the same socket (a duplicated file descriptor).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (a, mut b) = gort::net::UnixStream::pair().unwrap();
    /// let mut a2 = a.try_clone().unwrap();
    /// drop(a);
    /// a2.write_all(b"x").unwrap();
    /// b.read_exact(&mut [0; 1]).unwrap();
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream(self.0.try_clone()?))
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    ///
    /// ```
    /// let (a, _b) = gort::net::UnixStream::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }
}

socket_io_impls!(UnixStream);
socket_fd_impls!(UnixStream);
socket_fd_impls!(UnixListener);

impl From<std::os::unix::net::UnixStream> for UnixStream {
    /// Adopts a std stream (its file descriptor is made non-blocking).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = gort::net::UnixStream::from(a);
    /// assert!(a.peer_addr().is_ok());
    /// ```
    fn from(s: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream(Socket::from_any(s.into()))
    }
}

impl From<std::os::unix::net::UnixListener> for UnixListener {
    /// Adopts a std listener (its file descriptor is made non-blocking).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gort-doc-from-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gort::net::UnixListener::from(std::os::unix::net::UnixListener::bind(&path).unwrap());
    /// assert!(l.local_addr().is_ok());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    fn from(l: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener(Socket::from_any(l.into()))
    }
}
