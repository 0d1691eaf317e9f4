//! Once: runs once, callers park until it finishes, a panicking function counts as done.

use super::*;

/// f runs once; concurrent callers (goroutines and threads) park until it has finished.
#[test]
fn once_runs_once_and_callers_wait_for_it() {
    watchdog(60, || {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let call = {
            let (once, runs, finished) = (once.clone(), runs.clone(), finished.clone());
            move |on_goroutine: bool| {
                once.call_once(|| {
                    runs.fetch_add(1, SeqCst);
                    if on_goroutine {
                        gosched_for(50 * MS);
                    } else {
                        thread::sleep(50 * MS);
                    }
                    finished.store(true, SeqCst);
                });
                assert!(
                    finished.load(SeqCst),
                    "call_once returned before f finished"
                );
            }
        };
        let c = call.clone();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || c(false))
            })
            .collect();
        rt(2).run(move || {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let c = call.clone();
                    go(move || c(true))
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(runs.load(SeqCst), 1);
        assert!(once.is_completed());
    });
}

/// If f panics, the panic reaches its caller only; the Once counts as done, callers that
/// waited return normally, and f never runs again.
#[test]
fn once_with_a_panicking_function_counts_as_done() {
    quiet_expected_panics();
    watchdog(60, || {
        let once = Arc::new(Once::new());
        let o = once.clone();
        rt(2).run(move || {
            let started = Arc::new(AtomicBool::new(false));
            let (o1, s1) = (o.clone(), started.clone());
            let first = go(move || {
                o1.call_once(|| {
                    s1.store(true, SeqCst);
                    gosched_for(50 * MS);
                    panic!("{EXPECTED} once's function");
                })
            });
            gosched_until("f to start", || started.load(SeqCst));
            assert!(!o.is_completed());
            let others: Vec<_> = (0..4)
                .map(|_| {
                    let o = o.clone();
                    go(move || o.call_once(|| panic!("f ran twice")))
                })
                .collect();
            let err = first.join().unwrap_err();
            assert!(panic_msg(&*err).contains("once's function"));
            others.into_iter().for_each(|h| h.join().unwrap());
            assert!(o.is_completed());
        });
        once.call_once(|| panic!("f ran again"));
        assert!(catch_unwind(AssertUnwindSafe(|| once.call_once(|| {}))).is_ok());
    });
}
