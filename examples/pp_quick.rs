//! Quick pingpong timing (development aid; the real benchmark is bench/compare.sh).
use gort::chan::bounded;
use std::time::Instant;
fn main() {
    gort::run(|| {
        let (a_tx, a_rx) = bounded::<u64>(0);
        let (b_tx, b_rx) = bounded::<u64>(0);
        gort::go(move || {
            for v in a_rx.iter() {
                b_tx.send(v + 1).unwrap();
            }
        });
        let n: u64 = std::env::var("N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        let t = Instant::now();
        let mut x = 0;
        for _ in 0..n {
            a_tx.send(x).unwrap();
            x = b_rx.recv().unwrap();
        }
        println!(
            "pingpong {:.1} ns/rt",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    });
}
