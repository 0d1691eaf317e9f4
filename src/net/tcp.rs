//! TCP: [`TcpListener`] and [`TcpStream`], shaped like `std::net`'s.

use super::addr::{each_addr, SockAddr};
use super::socket::{socket_fd_impls, socket_io_impls, Socket};
use crate::netpoll::{deadline, Dir};
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A TCP socket server, listening for connections: `std::net::TcpListener` for goroutines.
///
/// `bind` sets `SO_REUSEADDR` and listens with the kernel's `somaxconn` as backlog (as Go
/// does). [`accept`](TcpListener::accept) parks a goroutine (or blocks a plain thread) until a
/// connection arrives; running out of file descriptors (`EMFILE`) is an error it returns, and
/// the listener keeps working once descriptors are freed. Dropping the listener closes it.
///
/// ```
/// use gort::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// gort::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     gort::go(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap(); // echo
///     });
///     let mut c = TcpStream::connect(addr).unwrap();
///     c.write_all(b"hello").unwrap();
///     let mut back = [0; 5];
///     c.read_exact(&mut back).unwrap();
///     assert_eq!(&back, b"hello");
/// });
/// ```
#[derive(Debug)]
pub struct TcpListener(Socket);

/// A TCP connection: `std::net::TcpStream` for goroutines.
///
/// Reads and writes (through `Read`/`Write` for `TcpStream` and `&TcpStream`) park only the
/// calling goroutine while the socket is not ready; on a plain OS thread they block the
/// thread. With a read or write timeout set, a wait that outlasts it fails with
/// `ErrorKind::TimedOut`. [`shutdown`](TcpStream::shutdown) from another goroutine wakes a
/// blocked reader, whose read returns `Ok(0)`. Dropping a handle closes its file descriptor;
/// clones made by [`try_clone`](TcpStream::try_clone) have their own.
///
/// ```
/// use gort::net::{TcpListener, TcpStream};
/// use std::io::{Read, Write};
///
/// gort::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
///     let (mut s, peer) = l.accept().unwrap();
///     assert_eq!(peer, c.local_addr().unwrap());
///     c.write_all(b"ping").unwrap();
///     let mut buf = [0; 4];
///     s.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
#[derive(Debug)]
pub struct TcpStream(Socket);

/// An iterator over a listener's connections ([`TcpListener::incoming`]); it never ends.
///
/// ```
/// use gort::net::{TcpListener, TcpStream};
///
/// gort::run(|| {
///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = l.local_addr().unwrap();
///     gort::go(move || drop(TcpStream::connect(addr).unwrap()));
///     let first = l.incoming().next().unwrap().unwrap();
///     assert_eq!(first.local_addr().unwrap(), addr);
/// });
/// ```
#[derive(Debug)]
pub struct Incoming<'a>(&'a TcpListener);

fn family(a: &SocketAddr) -> libc::c_int {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works) and listens.
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let s = Socket::new(family(a), libc::SOCK_STREAM)?;
            s.setsockopt(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            s.bind(&SockAddr::from(a))?;
            s.listen()?;
            Ok(TcpListener(s))
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (_s, peer) = l.accept().unwrap();
    ///     assert_eq!(peer, c.local_addr().unwrap());
    /// });
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self.0.accept()?;
        Ok((TcpStream(s), a.to_inet()?))
    }

    /// An endless iterator of [`accept`](TcpListener::accept)ed connections (without their
    /// addresses). See [`Incoming`].
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     for s in l.incoming().take(1) {
    ///         assert!(s.is_ok());
    ///     }
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming(self)
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local()?.to_inet()
    }

    /// A second handle to the same listener (a duplicated file descriptor).
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert_eq!(l.local_addr().unwrap(), l2.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener(self.0.try_clone()?))
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    ///
    /// ```
    /// let l = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.0.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr` (each of its addresses in turn until one works). The name lookup
    /// runs inside [`crate::blocking`]; the connection wait parks only the goroutine.
    /// A refused connection is an `ErrorKind::ConnectionRefused` error.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
    /// });
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_deadline(a, None))
    }

    /// Connects to `addr`, giving up with `ErrorKind::TimedOut` after `timeout` (which must
    /// not be zero).
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    /// });
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_deadline(addr, deadline(Some(timeout)))
    }

    fn connect_deadline(
        a: &SocketAddr,
        deadline: Option<std::time::Instant>,
    ) -> io::Result<TcpStream> {
        let s = Socket::new(family(a), libc::SOCK_STREAM)?;
        s.connect(&SockAddr::from(a), deadline)?;
        Ok(TcpStream(s))
    }

    /// The remote address.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer()?.to_inet()
    }

    /// The local address.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(c.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local()?.to_inet()
    }

    /// Shuts down the read half, the write half or both. A goroutine blocked reading this
    /// socket wakes up and its read returns `Ok(0)`.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let _s = l.accept().unwrap();
    ///     c.shutdown(Shutdown::Read).unwrap();
    ///     assert_eq!((&c).read(&mut [0; 8]).unwrap(), 0);
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_nodelay(true).unwrap();
    /// assert!(c.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.0
            .setsockopt(libc::IPPROTO_TCP, libc::TCP_NODELAY, libc::c_int::from(on))
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!c.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.0.getsockopt(libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// Sets how long a read may wait (None: forever); a read that waits longer fails with
    /// `ErrorKind::TimedOut`. `Some(Duration::ZERO)` is an `InvalidInput` error.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    ///     let err = c.read(&mut [0; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// });
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Read, t)
    }

    /// Sets how long a write may wait for buffer space (None: forever); see
    /// [`set_read_timeout`](TcpStream::set_read_timeout).
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Write, t)
    }

    /// The read timeout.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(c.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Read))
    }

    /// The write timeout.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(c.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Write))
    }

    /// A second handle to the same connection: a duplicated file descriptor (closed when that
    /// handle drops) with the same timeouts at the time of the call.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// use std::io::{Read, Write};
    /// gort::run(|| {
    ///     let l = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (mut s, _) = l.accept().unwrap();
    ///     let mut w = c.try_clone().unwrap();
    ///     drop(c); // the clone keeps the connection open
    ///     w.write_all(b"x").unwrap();
    ///     let mut b = [0; 1];
    ///     s.read_exact(&mut b).unwrap();
    /// });
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream(self.0.try_clone()?))
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    ///
    /// ```
    /// use gort::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(c.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }
}

socket_io_impls!(TcpStream);
socket_fd_impls!(TcpStream);
socket_fd_impls!(TcpListener);

impl From<std::net::TcpStream> for TcpStream {
    /// Adopts a std stream (its file descriptor is made non-blocking).
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = gort::net::TcpStream::from(std_stream);
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    fn from(s: std::net::TcpStream) -> TcpStream {
        TcpStream(Socket::from_any(s.into()))
    }
}

impl From<std::net::TcpListener> for TcpListener {
    /// Adopts a std listener (its file descriptor is made non-blocking).
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = std_l.local_addr().unwrap();
    /// let l = gort::net::TcpListener::from(std_l);
    /// assert_eq!(l.local_addr().unwrap(), addr);
    /// ```
    fn from(l: std::net::TcpListener) -> TcpListener {
        TcpListener(Socket::from_any(l.into()))
    }
}
