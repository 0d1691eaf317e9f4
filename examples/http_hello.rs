//! An HTTP/1.1 keep-alive "Hello, world!" server: one goroutine per connection, minimal
//! hand-written parsing (requests end at an empty line; pipelined requests are answered in
//! order; the connection closes at EOF).
//!
//! ```sh
//! cargo run --release --example http_hello                        # self-test, then exit
//! cargo run --release --example http_hello -- --serve 127.0.0.1:8080
//! wrk -t1 -c100 -d5s http://127.0.0.1:8080/
//! ```

use gort::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Instant;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";

fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                gort::go(move || handle(conn));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// The end of the first request head in `buf` (just past its `\r\n\r\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn handle(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut chunk = [0; 4096];
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Answer every complete request in the buffer (pipelining), in one write.
        let mut start = 0;
        while let Some(end) = head_end(&buf[start..]) {
            out.extend_from_slice(RESPONSE);
            start += end;
        }
        buf.drain(..start);
        if buf.len() > 64 * 1024 {
            return; // a head that never ends
        }
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn self_test(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    gort::go(move || serve(listener));
    let (clients, requests) = (50, 200);
    let start = Instant::now();
    let hs: Vec<_> = (0..clients)
        .map(|_| {
            gort::go(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
                let mut resp = vec![0; RESPONSE.len()];
                for _ in 0..requests / 2 {
                    // One request, then two pipelined ones.
                    c.write_all(req).unwrap();
                    c.read_exact(&mut resp).unwrap();
                    assert_eq!(resp, RESPONSE);
                    c.write_all(&[&req[..], &req[..]].concat()).unwrap();
                    for _ in 0..2 {
                        c.read_exact(&mut resp).unwrap();
                        assert_eq!(resp, RESPONSE);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let n = clients * (requests / 2) * 3;
    let took = start.elapsed();
    println!(
        "http_hello self-test: {n} requests on {clients} keep-alive connections in {took:.2?} ({:.0} req/s)",
        f64::from(n) / took.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    gort::run(move || match args.as_slice() {
        [flag, addr] if flag == "--serve" => {
            let l = TcpListener::bind(addr.as_str()).expect("bind");
            println!("http_hello: serving on http://{}/", l.local_addr().unwrap());
            serve(l);
        }
        [] => self_test(TcpListener::bind("127.0.0.1:0").expect("bind")),
        _ => {
            eprintln!("usage: http_hello [--serve ADDR]");
            std::process::exit(2);
        }
    });
}
