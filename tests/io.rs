//! `gort::io`: pipes and `PollFd`, on goroutines and plain threads.
mod common;

use gort::io::{pipe, PollFd};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::time::Duration;

fn is_nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL on an open fd.
    unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK != 0 }
}

#[test]
fn pipe_carries_bytes_and_ends_when_the_writer_drops() {
    common::watchdog(60, || {
        gort::run(|| {
            let (mut r, w) = pipe().unwrap();
            let writer = gort::go(move || {
                let mut w = w;
                // More than the pipe's 64 KiB buffer: the writer parks on a full pipe.
                for i in 0..1000u32 {
                    w.write_all(&[i as u8; 1000]).unwrap();
                }
            }); // w drops at the end: EOF
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            writer.join().unwrap();
            assert_eq!(all.len(), 1_000_000);
            for (i, chunk) in all.chunks(1000).enumerate() {
                assert!(chunk.iter().all(|&b| b == i as u8), "chunk {i} corrupted");
            }
            assert_eq!(r.read(&mut [0; 4]).unwrap(), 0);
        });
    });
}

#[test]
fn pipe_between_a_thread_and_a_goroutine() {
    common::watchdog(60, || {
        let (r, mut w) = pipe().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.write_all(b"from a thread").unwrap();
        });
        let got = gort::run(move || {
            let mut r = r;
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        });
        t.join().unwrap();
        assert_eq!(got, "from a thread");
        // And the other way round: a thread blocks on a pipe a goroutine writes.
        let (mut r, w) = pipe().unwrap();
        let t = std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        });
        gort::run(move || {
            gort::time::sleep(Duration::from_millis(20));
            (&w).write_all(b"from a goroutine").unwrap();
        });
        assert_eq!(t.join().unwrap(), "from a goroutine");
    });
}

/// With one P, a goroutine parked on a pipe read does not stop the others.
#[test]
fn a_blocked_pipe_reader_parks_only_its_goroutine() {
    common::watchdog(60, || {
        let rt = gort::Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            let (r, mut w) = pipe().unwrap();
            let reader = gort::go(move || {
                let mut b = [0; 1];
                (&r).read_exact(&mut b).unwrap();
                b[0]
            });
            for i in 0..100 {
                assert_eq!(gort::go(move || i * 2).join().unwrap(), i * 2);
            }
            w.write_all(&[9]).unwrap();
            assert_eq!(reader.join().unwrap(), 9);
        });
    });
}

#[test]
fn pollfd_on_a_pipe_and_an_eventfd() {
    common::watchdog(60, || {
        let (r, w) = std::io::pipe().unwrap();
        let raw = r.as_raw_fd();
        assert!(!is_nonblocking(raw));
        let p = PollFd::new(r).unwrap();
        assert!(is_nonblocking(raw));
        assert_eq!(p.get_ref().as_raw_fd(), raw);
        let (p, w) = gort::run(move || {
            let mut p = p;
            let mut w = w;
            let reader = gort::go(move || {
                let mut b = [0; 5];
                p.read_exact(&mut b).unwrap();
                assert_eq!(&b, b"hello");
                p
            });
            gort::time::sleep(Duration::from_millis(10));
            w.write_all(b"hello").unwrap();
            (reader.join().unwrap(), w)
        });
        let r = p.into_inner();
        assert!(
            !is_nonblocking(r.as_raw_fd()),
            "into_inner did not restore blocking mode"
        );
        drop((r, w));

        // An eventfd (blocking, semaphore mode): each read takes one from the counter and
        // parks while it is zero.
        // SAFETY: eventfd has no pointer arguments; we own the new fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_SEMAPHORE) };
        assert!(fd >= 0);
        // SAFETY: a fresh fd nothing else owns.
        let ev = Arc::new(PollFd::new(unsafe { std::fs::File::from_raw_fd(fd) }).unwrap());
        gort::run(move || {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let ev = ev.clone();
                    gort::go(move || {
                        let mut b = [0; 8];
                        (&*ev).read_exact(&mut b).unwrap();
                        u64::from_ne_bytes(b)
                    })
                })
                .collect();
            gort::time::sleep(Duration::from_millis(10)); // let them park
            (&*ev).write_all(&4u64.to_ne_bytes()).unwrap();
            let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, 4);
        });
    });
}
