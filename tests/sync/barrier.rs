//! Barrier: one leader per generation over many generations, goroutines and threads together.

use super::*;

/// Two goroutines and two threads pass a barrier of 4 for many generations: exactly one
/// leader per generation, and nobody leaves a generation before all four arrived.
#[test]
fn barrier_one_leader_per_generation() {
    watchdog(120, || {
        const N: usize = 4;
        const GENS: usize = 50;
        struct S {
            b: Barrier,
            arrived: Vec<AtomicUsize>,
            leaders: Vec<AtomicUsize>,
        }
        let s = Arc::new(S {
            b: Barrier::new(N),
            arrived: (0..GENS).map(|_| AtomicUsize::new(0)).collect(),
            leaders: (0..GENS).map(|_| AtomicUsize::new(0)).collect(),
        });
        fn run(s: &S) {
            for gen in 0..GENS {
                s.arrived[gen].fetch_add(1, SeqCst);
                let r = s.b.wait();
                assert_eq!(
                    s.arrived[gen].load(SeqCst),
                    N,
                    "left generation {gen} early"
                );
                if r.is_leader() {
                    s.leaders[gen].fetch_add(1, SeqCst);
                }
            }
        }
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || run(&s))
            })
            .collect();
        let s2 = s.clone();
        rt(2).run(move || {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let s = s2.clone();
                    go(move || run(&s))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        for (gen, l) in s.leaders.iter().enumerate() {
            assert_eq!(l.load(SeqCst), 1, "generation {gen}");
        }
    });
}
