//! A parallel web crawler against a local server: the server (goroutines too) serves a site of
//! N pages that link to each other; the crawler fetches pages with a bounded number of fetcher
//! goroutines, follows every link once, and reports how many pages it found.
//!
//! Run it with `cargo run --release --example crawler [PAGES] [FETCHERS]` (default 500, 16).

use gort::chan;
use gort::net::{TcpListener, TcpStream};
use gort::sync::{Mutex, WaitGroup};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The page at `/n` links to `/2n+1`, `/2n+2` and `/n/3` (a tree with some back links).
fn page(n: usize, pages: usize) -> String {
    let mut body = format!("<h1>page {n}</h1>\n");
    for m in [2 * n + 1, 2 * n + 2, n / 3] {
        if m < pages {
            body += &format!("<a href=\"/{m}\">page {m}</a>\n");
        }
    }
    body
}

/// A tiny HTTP/1.1 server: one goroutine per connection, one request per connection.
fn serve(listener: TcpListener, pages: usize) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        gort::go(move || {
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            if r.read_line(&mut request).is_err() {
                return;
            }
            // Skip the headers.
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let reply = match path[1..].parse::<usize>() {
                Ok(n) if n < pages => {
                    let body = page(n, pages);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
                _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into(),
            };
            let _ = conn.write_all(reply.as_bytes());
        });
    }
}

/// Fetches `path` and returns the body (the server closes the connection after it).
fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut c = TcpStream::connect(addr)?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    c.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// The links of a page (`href="..."`).
fn links(body: &str) -> impl Iterator<Item = &str> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let pages = args.next().unwrap_or(500);
    let fetchers = args.next().unwrap_or(16);
    gort::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        gort::go(move || serve(listener, pages));

        let t = Instant::now();
        let seen = Arc::new(Mutex::new(HashSet::from(["/0".to_string()])));
        let pending = Arc::new(WaitGroup::new()); // pages found but not fetched yet
        let (todo_tx, todo_rx) = chan::unbounded::<String>();
        pending.add(1);
        todo_tx.send("/0".into()).unwrap();
        for _ in 0..fetchers {
            let (todo_rx, todo_tx) = (todo_rx.clone(), todo_tx.clone());
            let (seen, pending) = (seen.clone(), pending.clone());
            gort::go(move || {
                for path in todo_rx {
                    let body = fetch(addr, &path).expect("fetch");
                    for link in links(&body) {
                        if seen.lock().insert(link.to_string()) {
                            pending.add(1);
                            todo_tx.send(link.to_string()).unwrap();
                        }
                    }
                    pending.done();
                }
            });
        }
        // Every page found has been fetched: close the queue so the fetchers end.
        pending.wait();
        todo_tx.close();
        let found = seen.lock().len();
        assert_eq!(found, pages, "every page is reachable from /0");
        println!(
            "crawled {found} pages with {fetchers} fetcher goroutines in {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    });
}
