//! Helpers shared by every Rust benchmark binary (tokio, may, gort).
//! Included with `#[path = "../../common/common.rs"] mod common;` so the
//! separate Cargo projects need no shared crate.
//!
//! Command line of every benchmark binary (Go's too):
//!     <binary> <workload> [n]
//! It prints exactly one line `RESULT <number>` on stdout.
//! Exit codes: 0 ok, 2 usage error, 3 workload not implemented (shown as "n/a").

#![allow(dead_code)]

use std::time::Duration;

/// Number of goroutines for spawn / memory.
pub const N_GOROUTINES: usize = 1_000_000;
/// Yields per goroutine in gosched (two goroutines).
pub const N_YIELDS: usize = 1_000_000;

/// Round trips in pingpong.
pub const N_ROUND_TRIPS: usize = 1_000_000;
/// Leaves of skynet's 10-ary tree (a power of 10).
pub const N_LEAVES: u64 = 1_000_000;
/// Token passes in threadring.
pub const N_HOPS: usize = 10_000_000;
/// Goroutines in threadring's ring.
pub const N_RING: usize = 503;
/// Items in prodcons, all producers together.
pub const N_ITEMS: usize = 10_000_000;
/// Producers and consumers in prodcons.
pub const N_PRODUCERS: usize = 4;
pub const N_CONSUMERS: usize = 4;
/// Capacity of prodcons's channel.
pub const PRODCONS_CAP: usize = 128;

/// hog: sleeps of this length, each measured for lateness ...
pub const HOG_SLEEP: Duration = Duration::from_millis(20);
/// ... this many times.
pub const HOG_SLEEPS: usize = 50;
/// hog: the spinner stops after this long even if the sleeper never got to run (a plain OS
/// thread, outside the runtime, raises the stop flag), so a runtime that starves still ends.
pub const HOG_CAP: Duration = Duration::from_secs(3);

/// Parsed command line: workload name and an optional size override.
pub struct Args {
    pub workload: String,
    pub n: Option<usize>,
    /// The listen address of `serve-http` (its only argument).
    pub addr: Option<String>,
}

pub fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let workload = match it.next() {
        Some(w) => w,
        None => {
            eprintln!("usage: <binary> <workload> [n]");
            std::process::exit(2);
        }
    };
    if workload == "serve-http" {
        let addr = it.next().unwrap_or_else(|| {
            eprintln!("usage: <binary> serve-http <addr:port>");
            std::process::exit(2)
        });
        return Args {
            workload,
            n: None,
            addr: Some(addr),
        };
    }
    let n = it.next().map(|s| {
        s.replace('_', "").parse::<usize>().unwrap_or_else(|_| {
            eprintln!("bad n: {s}");
            std::process::exit(2)
        })
    });
    Args {
        workload,
        n,
        addr: None,
    }
}

/// Reports a wrong answer and exits non-zero, so the harness shows "fails".
pub fn fail(msg: &str) -> ! {
    eprintln!("wrong result: {msg}");
    std::process::exit(1)
}

/// Checks an answer; a wrong one ends the process with [`fail`].
pub fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) {
    if got != want {
        fail(&format!("{what}: got {got:?}, want {want:?}"));
    }
}

/// skynet's leaf count: `n` from the command line if it is a power of 10, else a usage error.
pub fn skynet_leaves(n: Option<usize>) -> u64 {
    let n = n.map_or(N_LEAVES, |n| n as u64);
    let mut m = n;
    while m % 10 == 0 && m > 1 {
        m /= 10;
    }
    if m != 1 {
        eprintln!("skynet: n must be a power of 10");
        std::process::exit(2);
    }
    n
}

/// Sum of 0..n, the answer of skynet (n leaves) and prodcons (n items).
pub fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Milliseconds.
pub fn ms(elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / 1e6
}

/// Called for a workload this runtime does not implement.
pub fn not_implemented(workload: &str) -> ! {
    eprintln!("workload not implemented: {workload}");
    std::process::exit(3)
}

/// VmRSS + VmPTE of this process in kB, from /proc/self/status.
pub fn rss_pte_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let mut total = 0;
    for line in status.lines() {
        if line.starts_with("VmRSS:") || line.starts_with("VmPTE:") {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .expect("parse /proc/self/status");
            total += kb;
        }
    }
    total
}

/// Bytes per goroutine from two `rss_pte_kb` readings.
pub fn bytes_per(before_kb: u64, after_kb: u64, n: usize) -> f64 {
    (after_kb as f64 - before_kb as f64) * 1024.0 / n as f64
}

/// Nanoseconds per operation.
pub fn ns_per(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

/// Prints the single result line the harness parses.
pub fn report(value: f64) {
    println!("RESULT {value:.2}");
}

/// The answer to every HTTP request of the http workloads.
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";

/// Size of a connection's read buffer in the http servers; a request head that does not fit
/// closes the connection.
pub const HTTP_BUF: usize = 4096;

/// The http servers' parser, shared by every Rust program (the Go one does the same): takes
/// every complete request head (up to and including `\r\n\r\n`) from the front of
/// `buf[..*len]`, appends one [`HTTP_RESPONSE`] per request to `out`, and moves what is left
/// (the start of the next request) to the front, updating `*len`. Requests are assumed to have
/// no body (wrk sends `GET`s).
pub fn http_take_requests(buf: &mut [u8], len: &mut usize, out: &mut Vec<u8>) {
    let mut start = 0;
    while let Some(end) = find_head_end(&buf[start..*len]) {
        out.extend_from_slice(HTTP_RESPONSE);
        start += end;
    }
    if start > 0 {
        buf.copy_within(start..*len, 0);
        *len -= start;
    }
}

/// Length of the request head at the front of `b` (through `\r\n\r\n`), if it is complete.
fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}
