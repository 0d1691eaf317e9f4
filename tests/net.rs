//! Sockets (`gort::net`): TCP, UDP, Unix; goroutines and plain threads.
mod common;

use gort::net::{TcpListener, TcpStream};
use std::io::{Read, Write};

#[test]
fn tcp_echo_one_listener() {
    common::watchdog(30, || {
        gort::run(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            gort::go(move || {
                for c in l.incoming() {
                    let mut c = c.unwrap();
                    gort::go(move || {
                        let mut buf = [0; 1024];
                        loop {
                            let n = c.read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            c.write_all(&buf[..n]).unwrap();
                        }
                    });
                }
            });
            let mut hs = Vec::new();
            for i in 0..50u32 {
                hs.push(gort::go(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    for j in 0..100u32 {
                        let msg = format!("{i}:{j};");
                        c.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0; msg.len()];
                        c.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes());
                    }
                }));
            }
            for h in hs {
                h.join().unwrap();
            }
        });
    });
}
