//! A TCP echo server: one goroutine per connection.
//!
//! ```sh
//! cargo run --release --example echo                      # self-test: serve, run clients, exit
//! cargo run --release --example echo -- --serve 127.0.0.1:7000   # serve forever
//! ```

use gort::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Instant;

fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                gort::go(move || handle(conn));
            }
            // Out of descriptors and the like: report and keep serving.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

fn handle(mut conn: TcpStream) {
    let mut buf = [0; 16 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn self_test(listener: TcpListener) {
    let addr = listener.local_addr().unwrap();
    gort::go(move || serve(listener));
    let (clients, rounds) = (100, 100);
    let start = Instant::now();
    let hs: Vec<_> = (0..clients)
        .map(|i| {
            gort::go(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                for r in 0..rounds {
                    let msg = format!("client {i} round {r}\n");
                    c.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let took = start.elapsed();
    println!(
        "echo self-test: {clients} clients x {rounds} round trips in {took:.2?} ({:.1} us per round trip)",
        took.as_secs_f64() * 1e6 / f64::from(clients * rounds)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    gort::run(move || match args.as_slice() {
        [flag, addr] if flag == "--serve" => {
            let l = TcpListener::bind(addr.as_str()).expect("bind");
            println!("echo: serving on {}", l.local_addr().unwrap());
            serve(l);
        }
        [] => self_test(TcpListener::bind("127.0.0.1:0").expect("bind")),
        _ => {
            eprintln!("usage: echo [--serve ADDR]");
            std::process::exit(2);
        }
    });
}
