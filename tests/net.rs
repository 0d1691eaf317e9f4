//! Sockets (`gort::net`): TCP, UDP and Unix sockets on goroutines and on plain threads;
//! timeouts, shutdown wake-ups, resource errors, 10,000 concurrent connections.
mod common;

use gort::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generous upper bound for "it returned when it should have": only a hang fails it.
const LATE: Duration = Duration::from_secs(10);

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a live struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
    r.rlim_cur
}

/// A TCP echo server on its own goroutine (one goroutine per connection); returns its address
/// and a counter of connections open right now plus the peak.
fn echo_server() -> (SocketAddr, Arc<(AtomicUsize, AtomicUsize)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let live = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let lv = live.clone();
    gort::go(move || {
        for c in l.incoming() {
            let mut c = match c {
                Ok(c) => c,
                Err(e) => panic!("accept: {e}"),
            };
            let lv = lv.clone();
            gort::go(move || {
                let now = lv.0.fetch_add(1, SeqCst) + 1;
                lv.1.fetch_max(now, SeqCst);
                let mut buf = [0; 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                lv.0.fetch_sub(1, SeqCst);
            });
        }
    });
    (addr, live)
}

fn roundtrip(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn tcp_echo_one_listener() {
    common::watchdog(60, || {
        gort::run(|| {
            let (addr, _) = echo_server();
            let mut hs = Vec::new();
            for i in 0..50u32 {
                hs.push(gort::go(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    for j in 0..100u32 {
                        roundtrip(&mut c, format!("{i}:{j};").as_bytes());
                    }
                    // A large message crosses many partial reads and writes.
                    let big: Vec<u8> = (0..300_000u32).map(|k| (k * 7 + i) as u8).collect();
                    let mut r = c.try_clone().unwrap();
                    let want = big.clone();
                    let reader = gort::go(move || {
                        let mut got = vec![0; want.len()];
                        r.read_exact(&mut got).unwrap();
                        assert!(got == want, "echoed bytes differ");
                    });
                    c.write_all(&big).unwrap();
                    reader.join().unwrap();
                }));
            }
            for h in hs {
                h.join().unwrap();
            }
        });
    });
}

/// The parent half: an echo server here, 10,000 clients in a child process (the fd limit is
/// 20,000 per process, and both ends of 10,000 connections need 20,000).
#[test]
fn tcp_10k_concurrent_connections() {
    if common::child_role().is_some() {
        return;
    }
    raise_nofile();
    let peak = gort::run(|| {
        let (addr, live) = echo_server();
        let out = gort::blocking(|| {
            common::run_child(
                "tcp_10k_clients_child",
                "tcp-10k-clients",
                &[("GORT_TEST_ADDR", &addr.to_string())],
                Duration::from_secs(240),
            )
        });
        out.assert_passed();
        live.1.load(SeqCst)
    });
    assert!(peak >= 10_000, "only {peak} connections were open at once");
}

#[test]
fn tcp_10k_clients_child() {
    if !common::is_child("tcp-10k-clients") {
        return;
    }
    let limit = raise_nofile();
    assert!(
        limit > 10_100,
        "RLIMIT_NOFILE hard limit {limit} is too low"
    );
    let addr: SocketAddr = std::env::var("GORT_TEST_ADDR").unwrap().parse().unwrap();
    const N: usize = 10_000;
    gort::run(move || {
        let barrier = Arc::new(gort::sync::Barrier::new(N));
        let mut hs = Vec::with_capacity(N);
        for i in 0..N {
            let barrier = barrier.clone();
            hs.push(gort::go(move || {
                let mut c = loop {
                    match TcpStream::connect(addr) {
                        Ok(c) => break c,
                        // The kernel may refuse bursts beyond the backlog; try again.
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                            gort::time::sleep(Duration::from_millis(10))
                        }
                        Err(e) => panic!("connect {i}: {e}"),
                    }
                };
                roundtrip(&mut c, format!("hello {i}").as_bytes());
                // Every connection is open and accepted at this point.
                barrier.wait();
                roundtrip(&mut c, format!("bye {i}").as_bytes());
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// Read and write timeouts on one stream; `on` names the caller for messages.
fn check_timeouts(l: &TcpListener, on: &str) {
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap(); // never reads nor writes
    let t = Duration::from_millis(50);
    c.set_read_timeout(Some(t)).unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(t));
    let start = Instant::now();
    let e = c.read(&mut [0; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{on}: read: {e}");
    let took = start.elapsed();
    assert!(
        took >= t && took < t + LATE,
        "{on}: read timed out after {took:?}"
    );
    // Fill the send buffers until a write times out.
    c.set_write_timeout(Some(t)).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let start = Instant::now();
    let e = loop {
        match c.write(&chunk) {
            Ok(n) => assert!(
                n > 0 && start.elapsed() < LATE,
                "{on}: writes never blocked"
            ),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{on}: write: {e}");
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn tcp_read_and_write_timeouts_on_goroutines_and_threads() {
    common::watchdog(60, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        check_timeouts(&l, "thread");
        let l = gort::run(move || {
            gort::go(move || {
                check_timeouts(&l, "goroutine");
                l
            })
            .join()
            .unwrap()
        });
        // A second runtime: its own poller, the same fd.
        gort::run(move || check_timeouts(&l, "second runtime"));
    });
}

/// A listener whose accept queue is full drops new SYNs: a connect to it can only time out.
#[test]
fn tcp_connect_timeout_on_a_full_backlog() {
    common::watchdog(60, || {
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: lowers the backlog of our own listening socket to 0 (one queued connection).
        assert_eq!(unsafe { libc::listen(std_l.as_raw_fd(), 0) }, 0);
        let addr = std_l.local_addr().unwrap();
        gort::run(move || {
            let mut held = Vec::new();
            let t = Duration::from_millis(200);
            for attempt in 0..20 {
                let start = Instant::now();
                match TcpStream::connect_timeout(&addr, t) {
                    Ok(c) => held.push(c), // queued: the backlog is not full yet
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::TimedOut, "attempt {attempt}: {e}");
                        let took = start.elapsed();
                        assert!(took >= t && took < t + LATE, "timed out after {took:?}");
                        assert!(
                            held.len() <= 4,
                            "{} connects fit a backlog of 0",
                            held.len()
                        );
                        return;
                    }
                }
            }
            panic!("20 connects to a listener with backlog 0 never timed out");
        });
        drop(std_l);
    });
}

#[test]
fn tcp_connection_refused_is_an_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed: nobody listens there now
    let on_thread = TcpStream::connect(addr).unwrap_err();
    assert_eq!(on_thread.kind(), ErrorKind::ConnectionRefused);
    let on_g = gort::run(move || TcpStream::connect(addr).unwrap_err());
    assert_eq!(on_g.kind(), ErrorKind::ConnectionRefused);
    let t = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
    assert_eq!(t.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn shutdown_from_another_goroutine_wakes_a_blocked_reader() {
    common::watchdog(60, || {
        gort::run(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = Arc::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
            let (_s, _) = l.accept().unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            let (a, _b) = (Arc::new(a), b);
            let parked = Arc::new(AtomicUsize::new(0));
            let readers: Vec<_> = (0..2)
                .map(|i| {
                    let (c, a, parked) = (c.clone(), a.clone(), parked.clone());
                    gort::go(move || {
                        parked.fetch_add(1, SeqCst);
                        if i == 0 {
                            (&*c).read(&mut [0; 8])
                        } else {
                            (&*a).read(&mut [0; 8])
                        }
                    })
                })
                .collect();
            while parked.load(SeqCst) < 2 {
                gort::runtime::gosched();
            }
            gort::time::sleep(Duration::from_millis(50)); // let them park in read
            c.shutdown(Shutdown::Read).unwrap();
            a.shutdown(Shutdown::Both).unwrap();
            for r in readers {
                assert_eq!(r.join().unwrap().unwrap(), 0);
            }
        });
    });
}

/// With one P, a goroutine parked in a socket read leaves the P to the others.
#[test]
fn a_blocked_reader_parks_only_its_goroutine() {
    common::watchdog(60, || {
        let rt = gort::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let (a, mut b) = UnixStream::pair().unwrap();
            let reader = gort::go(move || {
                let mut a = a;
                let mut buf = [0; 4];
                a.read_exact(&mut buf).unwrap();
                buf
            });
            let ran = gort::go(|| 42).join().unwrap(); // runs although the reader waits
            assert_eq!(ran, 42);
            b.write_all(b"done").unwrap();
            assert_eq!(&reader.join().unwrap(), b"done");
        });
    });
}

#[test]
fn plain_threads_use_the_types_too() {
    common::watchdog(60, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            // A thread blocked in read, woken by a shutdown from another thread.
            let s = Arc::new(s);
            let s2 = s.clone();
            let t = std::thread::spawn(move || (&*s2).read(&mut [0; 4]).unwrap());
            std::thread::sleep(Duration::from_millis(50));
            s.shutdown(Shutdown::Read).unwrap();
            assert_eq!(t.join().unwrap(), 0);
        });
        // The client is a goroutine talking to the thread.
        gort::run(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            roundtrip(&mut c, b"hello");
        });
        server.join().unwrap();
    });
}

#[test]
fn udp_send_to_recv_from_connect_and_timeout() {
    common::watchdog(60, || {
        gort::run(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            a.send_to(b"one", ba).unwrap();
            let mut buf = [0; 16];
            assert_eq!(b.recv_from(&mut buf).unwrap(), (3, aa));
            assert_eq!(&buf[..3], b"one");
            a.connect(ba).unwrap();
            b.connect(aa).unwrap();
            assert_eq!(a.peer_addr().unwrap(), ba);
            b.send(b"two").unwrap();
            assert_eq!(a.recv(&mut buf).unwrap(), 3);
            // Several goroutines receiving on one socket take turns; each datagram once.
            let got = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = gort::chan::unbounded();
            for _ in 0..4 {
                let (b, got, tx) = (b.clone(), got.clone(), tx.clone());
                gort::go(move || loop {
                    let mut buf = [0; 8];
                    let n = b.recv(&mut buf).unwrap();
                    if n == 0 {
                        return;
                    }
                    got.fetch_add(1, SeqCst);
                    tx.send(u32::from_le_bytes(buf[..4].try_into().unwrap()))
                        .unwrap();
                });
            }
            let mut seen = vec![false; 2000];
            for batch in 0..100u32 {
                for k in 0..20u32 {
                    a.send(&(batch * 20 + k).to_le_bytes()).unwrap();
                }
                for _ in 0..20 {
                    let v = rx.recv_timeout(LATE).expect("a datagram was lost") as usize;
                    assert!(!seen[v], "datagram {v} received twice");
                    seen[v] = true;
                }
            }
            for _ in 0..4 {
                a.send(&[]).unwrap(); // stops one receiver
            }
            b.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
            let start = Instant::now();
            // The four receivers may still hold the turn; wait for them to stop first.
            while got.load(SeqCst) < 2000 {
                gort::runtime::gosched();
            }
            gort::time::sleep(Duration::from_millis(20));
            let e = b.recv(&mut buf).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            assert!(start.elapsed() < LATE);
        });
    });
}

#[test]
fn unix_listener_stream_and_pair() {
    common::watchdog(60, || {
        let dir = std::env::temp_dir().join(format!("gort-net-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let p2 = path.clone();
        gort::run(move || {
            let l = UnixListener::bind(&p2).unwrap();
            assert_eq!(l.local_addr().unwrap().as_pathname(), Some(p2.as_path()));
            gort::go(move || {
                for c in l.incoming().take(3) {
                    let mut c = c.unwrap();
                    gort::go(move || {
                        let mut buf = [0; 64];
                        loop {
                            let n = c.read(&mut buf).unwrap();
                            if n == 0 {
                                return;
                            }
                            c.write_all(&buf[..n]).unwrap();
                        }
                    });
                }
            });
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let p = p2.clone();
                    gort::go(move || {
                        let mut c = UnixStream::connect(&p).unwrap();
                        for j in 0..50 {
                            let m = format!("{i}/{j}");
                            c.write_all(m.as_bytes()).unwrap();
                            let mut back = vec![0; m.len()];
                            c.read_exact(&mut back).unwrap();
                            assert_eq!(back, m.as_bytes());
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let (mut a, mut b) = UnixStream::pair().unwrap();
            a.write_all(b"pair").unwrap();
            drop(a);
            let mut s = String::new();
            b.read_to_string(&mut s).unwrap();
            assert_eq!(s, "pair");
            b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            assert_eq!(b.read(&mut [0; 1]).unwrap(), 0); // EOF, not a timeout
        });
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// accept under EMFILE returns the error (no hang, no spin, no panic), and accepts again once
/// descriptors are free. In a child process: it lowers its own fd limit.
#[test]
fn accept_under_emfile_returns_an_error_and_recovers() {
    if common::child_role().is_none() {
        common::run_child(
            "accept_under_emfile_returns_an_error_and_recovers",
            "emfile",
            &[],
            Duration::from_secs(60),
        )
        .assert_passed();
        return;
    }
    if !common::is_child("emfile") {
        return;
    }
    gort::run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _c = TcpStream::connect(addr).unwrap(); // queued, not accepted yet
        let _warm = l.accept().unwrap(); // the poller exists; the fd is registered
        let _c2 = TcpStream::connect(addr).unwrap();
        // Use up every descriptor below a lowered limit.
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a live struct.
        unsafe { assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0) };
        r.rlim_cur = 256;
        // SAFETY: as above.
        unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0) };
        let mut hog = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hog.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                    break;
                }
            }
        }
        let e = l.accept().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        drop(hog);
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, _c2.local_addr().unwrap());
        drop(s);
    });
}

/// Ping-pong over many Unix socket pairs on 2 Ps for a few seconds, every byte checked: a lost
/// wake-up hangs a pair (the watchdog fails the test).
#[test]
fn stress_unix_pair_ping_pong() {
    common::watchdog(120, || {
        let rt = gort::Builder::new().procs(2).build().unwrap();
        let total = rt.run(|| {
            let stop = Instant::now() + Duration::from_secs(3);
            let hs: Vec<_> = (0..200u32)
                .map(|p| {
                    let (a, b) = UnixStream::pair().unwrap();
                    let echo = gort::go(move || {
                        let mut b = b;
                        let mut buf = [0; 37];
                        loop {
                            match b.read(&mut buf) {
                                Ok(0) => return,
                                Ok(n) => b.write_all(&buf[..n]).unwrap(),
                                Err(e) => panic!("echo {p}: {e}"),
                            }
                        }
                    });
                    gort::go(move || {
                        let mut a = a;
                        let mut rounds = 0u64;
                        let mut x = p.wrapping_mul(2_654_435_761) | 1;
                        while Instant::now() < stop {
                            let len = 1 + (x % 200) as usize;
                            let msg: Vec<u8> = (0..len).map(|k| (x as usize + k) as u8).collect();
                            a.write_all(&msg).unwrap();
                            let mut back = vec![0; len];
                            a.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg, "pair {p} round {rounds}");
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            rounds += 1;
                        }
                        drop(a);
                        echo.join().unwrap();
                        rounds
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert!(total > 200, "only {total} round trips");
    });
}

/// A reply and the peer's close arriving together: the edge that wakes the reader carries both,
/// so after the (short) read of the data the end-of-file must still be seen, with no edge to
/// come. Each client reads with `read_to_string` (a probe read, a short read, then the EOF).
/// Found as a hang of the crawler example; a hang here fails on the read timeout.
#[test]
fn eof_right_after_the_last_data_is_seen() {
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        gort::go(move || {
            for c in l.incoming() {
                let mut c = c.unwrap();
                gort::go(move || {
                    let mut b = [0u8; 64];
                    let _ = c.read(&mut b);
                    let _ = c.write_all(&[b'x'; 200]);
                    // Dropped here: FIN right behind the data.
                });
            }
        });
        let hs: Vec<_> = (0..8)
            .map(|_| {
                gort::go(move || {
                    for _ in 0..500 {
                        let mut c = TcpStream::connect(addr).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        c.write_all(b"GET /\r\n\r\n").unwrap();
                        let mut s = String::new();
                        c.read_to_string(&mut s).expect("EOF was never seen");
                        assert_eq!(s.len(), 200);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}
