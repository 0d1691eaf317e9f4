//! gort's http server for the `http100` / `http1000` workloads: `gort serve-http <addr>`.
//!
//! Same server as the other runtimes: one goroutine per connection, TCP_NODELAY set, the
//! parser shared with the tokio and may programs (`http_take_requests` in common.rs).

use std::io::{Read, Write};

use crate::common::*;
use gort::net::{TcpListener, TcpStream};

/// One connection: answers every complete request (pipelined ones included) with one write,
/// closes on EOF or error.
fn conn(mut s: TcpStream) {
    let mut buf = vec![0u8; HTTP_BUF];
    let mut len = 0;
    let mut out = Vec::with_capacity(HTTP_BUF);
    loop {
        let n = match s.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        len += n;
        http_take_requests(&mut buf, &mut len, &mut out);
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if len == buf.len() {
            return; // a request head larger than the buffer
        }
    }
}

/// Serves until the process is killed. Runs as the main goroutine of `gort::run` (default
/// procs = number of CPUs).
pub fn serve(addr: String) -> f64 {
    let l = TcpListener::bind(addr.as_str()).expect("bind");
    loop {
        let (s, _) = match l.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        s.set_nodelay(true).unwrap();
        gort::go(move || conn(s));
    }
}
