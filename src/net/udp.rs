//! UDP: [`UdpSocket`], shaped like `std::net::UdpSocket`.

use super::addr::{each_addr, SockAddr};
use super::socket::{socket_fd_impls, Socket};
use crate::netpoll::Dir;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A UDP socket: `std::net::UdpSocket` for goroutines. Receiving parks the goroutine (or
/// blocks a plain thread) until a datagram arrives or the read timeout passes
/// (`ErrorKind::TimedOut`).
///
/// ```
/// use gort::net::UdpSocket;
///
/// gort::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b_addr = b.local_addr().unwrap();
///     gort::go(move || {
///         let mut buf = [0; 16];
///         let (n, from) = b.recv_from(&mut buf).unwrap();
///         b.send_to(&buf[..n], from).unwrap(); // echo
///     });
///     a.send_to(b"hi", b_addr).unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = a.recv_from(&mut buf).unwrap();
///     assert_eq!((&buf[..n], from), (&b"hi"[..], b_addr));
/// });
/// ```
#[derive(Debug)]
pub struct UdpSocket(Socket);

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let fam = if a.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let s = Socket::new(fam, libc::SOCK_DGRAM)?;
            s.bind(&SockAddr::from(a))?;
            Ok(UdpSocket(s))
        })
    }

    /// Sets the default destination for [`send`](UdpSocket::send) and the only source
    /// [`recv`](UdpSocket::recv) accepts.
    ///
    /// ```
    /// use gort::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.0.connect(&SockAddr::from(a), None))
    }

    /// Sends a datagram to the connected peer.
    ///
    /// ```
    /// use gort::net::UdpSocket;
    /// gort::run(|| {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     b.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"one").unwrap();
    ///     let mut buf = [0; 8];
    ///     assert_eq!(b.recv(&mut buf).unwrap(), 3);
    /// });
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    /// Receives a datagram from the connected peer (the rest of a datagram longer than `buf`
    /// is dropped).
    ///
    /// ```
    /// use gort::net::UdpSocket;
    /// gort::run(|| {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     b.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send_to(b"two", b.local_addr().unwrap()).unwrap();
    ///     let mut buf = [0; 8];
    ///     let n = b.recv(&mut buf).unwrap();
    ///     assert_eq!(&buf[..n], b"two");
    /// });
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    /// Sends a datagram to `addr` (its first address).
    ///
    /// ```
    /// use gort::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"x", b.local_addr().unwrap()).unwrap(), 1);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = super::addr::resolve(addr)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
            })?;
        self.0.send_to(buf, &SockAddr::from(&to))
    }

    /// Receives a datagram and its sender's address.
    ///
    /// ```
    /// use gort::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", b.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 4];
    /// let (n, from) = b.recv_from(&mut buf).unwrap();
    /// assert_eq!((n, from), (1, a.local_addr().unwrap()));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, a) = self.0.recv_from(buf, 0)?;
        Ok((n, a.to_inet()?))
    }

    /// Sets how long a receive may wait (None: forever); a receive that waits longer fails
    /// with `ErrorKind::TimedOut`. `Some(Duration::ZERO)` is an `InvalidInput` error.
    ///
    /// ```
    /// use std::time::Duration;
    /// gort::run(|| {
    ///     let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    ///     let e = s.recv_from(&mut [0; 8]).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// });
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Read, t)
    }

    /// Sets how long a send may wait for buffer space (None: forever).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.0.set_timeout(Dir::Write, t)
    }

    /// The read timeout.
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Read))
    }

    /// The write timeout.
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.0.timeout(Dir::Write))
    }

    /// The local address.
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local()?.to_inet()
    }

    /// The connected peer's address (`NotConnected` if not connected).
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer()?.to_inet()
    }

    /// A second handle to the same socket (a duplicated file descriptor).
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let t = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), t.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket(self.0.try_clone()?))
    }

    /// The pending socket error (`SO_ERROR`), cleared.
    ///
    /// ```
    /// let s = gort::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }
}

socket_fd_impls!(UdpSocket);

impl From<std::net::UdpSocket> for UdpSocket {
    /// Adopts a std socket (its file descriptor is made non-blocking).
    ///
    /// ```
    /// let std_s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = std_s.local_addr().unwrap();
    /// assert_eq!(gort::net::UdpSocket::from(std_s).local_addr().unwrap(), addr);
    /// ```
    fn from(s: std::net::UdpSocket) -> UdpSocket {
        UdpSocket(Socket::from_any(s.into()))
    }
}
