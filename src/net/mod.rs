//! Networking for goroutines: TCP, UDP and Unix sockets shaped like `std::net` and
//! `std::os::unix::net`, backed by the netpoller.
//!
//! Every socket is non-blocking underneath. An operation that would block parks only the
//! calling goroutine until epoll reports the socket ready (its thread runs other goroutines
//! meanwhile); called from a plain OS thread, it blocks that thread in poll(2) instead, so
//! threads and goroutines can share sockets. Errors are std's `io::Error`s: a refused
//! connection is `ConnectionRefused`, running out of descriptors `EMFILE`, and a read or write
//! timeout `TimedOut`.
//!
//! ```
//! use gort::net::{TcpListener, TcpStream};
//! use std::io::{BufRead, BufReader, Write};
//!
//! gort::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     gort::go(move || {
//!         for conn in listener.incoming() {
//!             let conn = conn.unwrap();
//!             gort::go(move || {
//!                 // One goroutine per connection: echo lines until EOF.
//!                 let mut lines = BufReader::new(&conn);
//!                 let mut line = String::new();
//!                 while lines.read_line(&mut line).unwrap() > 0 {
//!                     (&conn).write_all(line.as_bytes()).unwrap();
//!                     line.clear();
//!                 }
//!             });
//!         }
//!     });
//!     let conn = TcpStream::connect(addr).unwrap();
//!     (&conn).write_all(b"hello\n").unwrap();
//!     let mut back = String::new();
//!     BufReader::new(&conn).read_line(&mut back).unwrap();
//!     assert_eq!(back, "hello\n");
//! });
//! ```

mod addr;
pub(crate) mod socket;
mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{Incoming as UnixIncoming, UnixListener, UnixStream};
