//! A pipeline of goroutines connected by channels, as Go's concurrent prime sieve: a generator
//! sends 2, 3, 4, ...; each prime found adds a filter goroutine that drops its multiples; the
//! sink takes the first N numbers that make it through every filter.
//!
//! Run it with `cargo run --release --example pipeline [N]` (default 1000 primes).

use gort::chan::{self, Receiver, Sender};
use std::time::Instant;

/// Sends 2, 3, 4, ... until the receiving side goes away.
fn generate(out: Sender<u64>) {
    for i in 2.. {
        if out.send(i).is_err() {
            return; // the pipeline was torn down
        }
    }
}

/// Passes on the numbers that `prime` does not divide.
fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in input {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(1000);
    gort::run(move || {
        let t = Instant::now();
        let (tx, mut rx) = chan::bounded::<u64>(0);
        gort::go(move || generate(tx));
        let mut primes = Vec::with_capacity(n);
        for _ in 0..n {
            let prime = rx.recv().expect("the pipeline ended early");
            primes.push(prime);
            // The next stage: a filter goroutine between the current end and a new channel.
            let (tx, next) = chan::bounded::<u64>(0);
            let input = std::mem::replace(&mut rx, next);
            gort::go(move || filter(input, tx, prime));
        }
        // Dropping the last receiver makes each stage's send fail in turn: every goroutine
        // of the pipeline returns.
        drop(rx);
        let dt = t.elapsed();
        println!(
            "the first {n} primes through a pipeline of {n} goroutines in {:.1} ms; the last is {}",
            dt.as_secs_f64() * 1e3,
            primes[n - 1]
        );
        assert_eq!(&primes[..10], &[2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    });
}
