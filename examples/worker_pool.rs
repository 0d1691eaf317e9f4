//! A worker pool: a fixed number of worker goroutines take jobs from one channel, send results
//! on another, and a `WaitGroup` tells the collector when every worker is done (Go's
//! "worker pools" pattern).
//!
//! Run it with `cargo run --release --example worker_pool`.

use gort::chan;
use gort::sync::WaitGroup;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A job that mixes a short block (a sleep, standing for I/O) with a little computation.
fn work(job: u64) -> u64 {
    gort::time::sleep(Duration::from_millis(job % 5));
    (1..=job % 1000).sum()
}

fn main() {
    gort::run(|| {
        let (workers, jobs) = (16, 2000u64);
        let (job_tx, job_rx) = chan::bounded::<u64>(64);
        let (res_tx, res_rx) = chan::bounded::<(usize, u64)>(64);
        let wg = Arc::new(WaitGroup::new());
        let t = Instant::now();
        wg.add(workers as isize);
        for id in 0..workers {
            let (job_rx, res_tx, wg) = (job_rx.clone(), res_tx.clone(), wg.clone());
            gort::go(move || {
                // Receives until the job channel is closed and drained.
                for job in job_rx {
                    res_tx.send((id, work(job))).unwrap();
                }
                wg.done();
            });
        }
        // Close the results once every worker has finished (Go's `wg.Wait(); close(results)`).
        gort::go(move || {
            wg.wait();
            res_tx.close();
        });
        gort::go(move || {
            for job in 0..jobs {
                job_tx.send(job).unwrap();
            }
            // Dropping the last sender closes the channel: the workers' loops end.
        });
        let mut per_worker = vec![0usize; workers];
        let mut total = 0u64;
        for (id, r) in res_rx {
            per_worker[id] += 1;
            total += r;
        }
        let expected: u64 = (0..jobs).map(|j| (1..=j % 1000).sum::<u64>()).sum();
        assert_eq!(total, expected);
        println!(
            "{jobs} jobs on {workers} workers in {:.0} ms (one after another they would sleep {} ms); jobs per worker: {:?}",
            t.elapsed().as_secs_f64() * 1e3,
            (0..jobs).map(|j| j % 5).sum::<u64>(),
            per_worker
        );
    });
}
