//! Integration tests of gort's public API: starting runtimes, goroutines, join handles,
//! scopes, goroutine ids, the `runtime` package, cancellation on shutdown, and the
//! environment variables (the latter in child processes, since the environment is global).

mod common;

use common::*;
use gort::runtime;
use gort::sync::WaitGroup;
use gort::{Builder, GoId, Goroutine};
use std::collections::HashSet;
use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const GIB: usize = 1024 * 1024 * 1024;

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Counts its drops.
struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// On a goroutine: yields until `cond` holds or `timeout` passes; returns whether it held.
fn gosched_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            return false;
        }
        runtime::gosched();
    }
    true
}

/// On a goroutine: starts `n` goroutines that each spin (with no runtime call) until all `n`
/// are running at the same moment. True if they all met within `timeout`: proof that `n`
/// goroutines ran in parallel.
fn parallel_rendezvous(n: usize, timeout: Duration) -> bool {
    let arrived = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let arrived = arrived.clone();
            gort::go(move || {
                arrived.fetch_add(1, SeqCst);
                let start = Instant::now();
                while arrived.load(SeqCst) < n {
                    if start.elapsed() > timeout {
                        return false;
                    }
                    std::hint::spin_loop();
                }
                true
            })
        })
        .collect();
    hs.into_iter().all(|h| h.join().unwrap())
}

/// A gate: a WaitGroup at 1 that goroutines wait on until `open`.
fn gate() -> Arc<WaitGroup> {
    let g = Arc::new(WaitGroup::new());
    g.add(1);
    g
}

fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    quiet_expected_panics();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(p) => panic_msg(&*p),
    }
}

// ---------------------------------------------------------------------------------------------
// gort::run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_returns_the_main_goroutines_value() {
    assert_eq!(gort::run(|| 40 + 2), 42);
    let s = gort::run(|| {
        let h = gort::go(|| String::from("from a goroutine"));
        h.join().unwrap()
    });
    assert_eq!(s, "from a goroutine");
    // Runs on a goroutine, not on the caller's thread.
    let caller = tid();
    let (on_thread, id) = gort::run(|| (tid(), runtime::goid()));
    assert_ne!(
        on_thread, caller,
        "main goroutine ran on the caller's thread"
    );
    assert_eq!(id.as_u64(), 1);
}

#[test]
fn run_main_panic_resumes_in_caller() {
    let msg = expect_panic(|| gort::run(|| -> u32 { panic!("{EXPECTED} main boom") }));
    assert!(msg.contains("main boom"), "{msg}");
    // A non-string payload is resumed unchanged.
    quiet_expected_panics();
    let p = catch_unwind(|| gort::run(|| -> () { std::panic::resume_unwind(Box::new(1234u32)) }))
        .unwrap_err();
    assert_eq!(p.downcast_ref::<u32>(), Some(&1234));
    // A Runtime stays usable after its main goroutine panicked.
    let rt = Builder::new().procs(2).build().unwrap();
    let msg = expect_panic(|| rt.run(|| -> () { panic!("{EXPECTED} rt main boom") }));
    assert!(msg.contains("rt main boom"), "{msg}");
    assert_eq!(rt.run(|| gort::go(|| 5).join().unwrap()), 5);
}

#[test]
fn run_inside_a_goroutine_panics() {
    let rt2 = Arc::new(Builder::new().procs(1).build().unwrap());
    let rt2c = rt2.clone();
    let (m1, m2, m3) = gort::run(move || {
        let m1 = expect_panic(|| gort::run(|| 1));
        let m2 = expect_panic(|| rt2c.run(|| 1));
        // Also from a non-main goroutine.
        let m3 = gort::go(|| expect_panic(|| gort::run(|| 1)))
            .join()
            .unwrap();
        drop(rt2c);
        (m1, m2, m3)
    });
    for m in [m1, m2, m3] {
        assert!(m.contains("use gort::go"), "{m}");
    }
    // The second runtime was not damaged by the refused call.
    assert_eq!(rt2.run(|| 7), 7);
    // A plain thread started by a goroutine is not a goroutine: it may start its own runtime.
    let v = gort::run(|| {
        std::thread::spawn(|| gort::run(|| gort::go(|| 5).join().unwrap()))
            .join()
            .unwrap()
    });
    assert_eq!(v, 5);
}

#[test]
fn goexit_on_main_panics() {
    let dropped = flag();
    let d = dropped.clone();
    let msg = expect_panic(move || {
        gort::run(move || {
            let _f = DropFlag(d);
            runtime::goexit();
        })
    });
    assert!(msg.to_lowercase().contains("goexit"), "{msg}");
    assert!(
        dropped.load(SeqCst),
        "goexit on main did not run main's destructors"
    );
    // Same through a Runtime.
    let rt = Builder::new().procs(1).build().unwrap();
    let msg = expect_panic(|| rt.run(|| runtime::goexit()));
    assert!(msg.to_lowercase().contains("goexit"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Builder and Runtime
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_procs() {
    for n in [1usize, 2, 3, 7] {
        let rt = Builder::new().procs(n).build().unwrap();
        assert_eq!(rt.run(runtime::gomaxprocs), n);
    }
    let rt = Builder::new().procs(1024).build().unwrap();
    assert_eq!(
        rt.run(|| gort::go(runtime::gomaxprocs).join().unwrap()),
        1024
    );
    for n in [0usize, 1025, 5000, usize::MAX] {
        let e = Builder::new().procs(n).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "procs({n})");
        assert!(!e.to_string().is_empty());
    }
    // The last setting wins.
    let rt = Builder::new().procs(0).procs(2).build().unwrap();
    assert_eq!(rt.run(runtime::gomaxprocs), 2);
}

#[test]
fn builder_default_procs() {
    if std::env::var_os("GORTMAXPROCS").is_some() {
        return; // the environment decides; covered by the child-process tests
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = Builder::new().build().unwrap();
    assert_eq!(rt.run(runtime::gomaxprocs), n);
    assert_eq!(gort::run(runtime::gomaxprocs), n);
    let rt = Builder::default().build().unwrap();
    assert_eq!(rt.run(runtime::gomaxprocs), n);
}

#[test]
fn builder_stack_size_limits() {
    for bad in [
        0usize,
        1,
        4096,
        16 * KIB - 1,
        GIB + 1,
        GIB + 4096,
        usize::MAX,
    ] {
        let e = Builder::new().procs(1).stack_size(bad).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "stack_size({bad})");
    }
    for good in [
        16 * KIB,
        16 * KIB + 1,
        20_000,
        64 * KIB,
        128 * KIB + 7,
        MIB,
        GIB - 1,
        GIB,
    ] {
        let rt = Builder::new().procs(1).stack_size(good).build();
        let rt = rt.unwrap_or_else(|e| panic!("stack_size({good}): {e}"));
        // Goroutines start and run with that default size (1 GiB is address space only).
        assert_eq!(rt.run(move || gort::go(move || good).join().unwrap()), good);
    }
}

#[test]
fn builder_and_runtime_traits() {
    let b = Builder::default().procs(2).stack_size(64 * KIB);
    let b2 = b.clone();
    assert!(!format!("{b2:?}").is_empty());
    let rt = b2.build().unwrap();
    assert!(!format!("{rt:?}").is_empty());
    fn send_sync<T: Send + Sync>() {}
    send_sync::<gort::Runtime>();
    send_sync::<gort::JoinHandle<u32>>();
    send_sync::<WaitGroup>();
}

#[test]
fn runtime_run_twice() {
    let rt = Builder::new().procs(2).build().unwrap();
    let a = rt.run(runtime::goid);
    assert_eq!(a.as_u64(), 1, "first main goroutine of a fresh runtime");
    let (b, kids) = rt.run(|| {
        let hs: Vec<_> = (0..100).map(|_| gort::go(runtime::goid)).collect();
        (
            runtime::goid(),
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    assert!(b > a, "second main goroutine id {b} not above {a}");
    let c = rt.run(runtime::goid);
    assert!(c > b);
    assert!(!kids.contains(&c) && !kids.contains(&b));
    assert_eq!(rt.run(|| 1 + 1), 2);
}

#[test]
fn runtime_run_from_several_threads_at_once() {
    watchdog(60, || {
        const T: usize = 8;
        let rt = Builder::new().procs(2).build().unwrap();
        // Every main goroutine waits for all of them: this only finishes if the T runs are
        // live at the same time.
        let all_here = Arc::new(WaitGroup::new());
        all_here.add(T as isize);
        let results: Vec<(GoId, u64)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..T as u64)
                .map(|t| {
                    let rt = &rt;
                    let all_here = all_here.clone();
                    s.spawn(move || {
                        rt.run(move || {
                            all_here.done();
                            all_here.wait();
                            let hs: Vec<_> =
                                (0..50u64).map(|i| gort::go(move || t * 1000 + i)).collect();
                            (
                                runtime::goid(),
                                hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
                            )
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ids: HashSet<GoId> = results.iter().map(|r| r.0).collect();
        assert_eq!(ids.len(), T, "main goroutines shared ids: {results:?}");
        let mut sums: Vec<u64> = results.iter().map(|r| r.1).collect();
        sums.sort();
        let want: Vec<u64> = (0..T as u64).map(|t| t * 1000 * 50 + 49 * 50 / 2).collect();
        assert_eq!(sums, want);
    });
}

#[test]
fn runtime_goroutines_outlive_run_until_drop() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        let g = gate();
        let g2 = g.clone();
        let h = rt.run(move || {
            gort::go(move || {
                g2.wait();
                7
            })
        });
        assert!(!h.is_finished());
        g.done(); // from a plain thread
        assert_eq!(h.join().unwrap(), 7); // joined from a plain thread after run returned
        drop(rt);
    });
}

#[test]
fn several_runtimes_at_once() {
    watchdog(60, || {
        const R: usize = 3;
        let runtimes: Vec<_> = (0..R)
            .map(|i| Builder::new().procs(1 + i % 2).build().unwrap())
            .collect();
        // One WaitGroup shared by goroutines of all runtimes.
        let shared = Arc::new(WaitGroup::new());
        shared.add(R as isize);
        let out: Vec<(u64, usize)> = std::thread::scope(|s| {
            let hs: Vec<_> = runtimes
                .iter()
                .map(|rt| {
                    let shared = shared.clone();
                    s.spawn(move || {
                        rt.run(move || {
                            let main_id = runtime::goid().as_u64();
                            let count = Arc::new(AtomicUsize::new(0));
                            let hs: Vec<_> = (0..1000)
                                .map(|_| {
                                    let c = count.clone();
                                    gort::go(move || {
                                        c.fetch_add(1, SeqCst);
                                    })
                                })
                                .collect();
                            for h in hs {
                                h.join().unwrap();
                            }
                            shared.done();
                            shared.wait(); // woken by a goroutine of another runtime
                            (main_id, count.load(SeqCst))
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (id, n) in out {
            assert_eq!(id, 1, "each fresh runtime's main goroutine is 1");
            assert_eq!(n, 1000);
        }
        // A goroutine of runtime A joined from a goroutine of runtime B, and vice versa.
        let g = gate();
        let g2 = g.clone();
        let ha = runtimes[0].run(move || {
            gort::go(move || {
                g2.wait();
                runtime::goid().as_u64() * 10
            })
        });
        let a_id = ha.id().as_u64();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let rb = &runtimes[1];
            let t = s.spawn(move || {
                rb.run(move || gort::go(move || ha.join().unwrap()).join().unwrap())
            });
            // Let B's goroutine park on A's handle, then open the gate from outside.
            std::thread::sleep(Duration::from_millis(20));
            g.done();
            tx.send(t.join().unwrap()).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), a_id * 10);
    });
}

// ---------------------------------------------------------------------------------------------
// Outside any runtime
// ---------------------------------------------------------------------------------------------

type Check = (&'static str, Box<dyn FnOnce() + std::panic::UnwindSafe>);

#[test]
fn runtime_calls_outside_a_runtime_panic() {
    let checks: Vec<Check> = vec![
        ("go", Box::new(|| drop(gort::go(|| ())))),
        (
            "Goroutine::spawn",
            Box::new(|| drop(Goroutine::new().spawn(|| ()))),
        ),
        (
            "goid",
            Box::new(|| {
                let _ = runtime::goid();
            }),
        ),
        (
            "gomaxprocs",
            Box::new(|| {
                let _ = runtime::gomaxprocs();
            }),
        ),
        (
            "set_gomaxprocs",
            Box::new(|| {
                let _ = runtime::set_gomaxprocs(2);
            }),
        ),
        (
            "set_gomaxprocs(0)",
            Box::new(|| {
                let _ = runtime::set_gomaxprocs(0);
            }),
        ),
        ("gosched", Box::new(runtime::gosched)),
        ("goexit", Box::new(|| runtime::goexit())),
        (
            "num_goroutine",
            Box::new(|| {
                let _ = runtime::num_goroutine();
            }),
        ),
        ("stack_dump", Box::new(|| drop(runtime::stack_dump(true)))),
        ("Scope::go", Box::new(|| gort::scope(|s| drop(s.go(|| ()))))),
    ];
    for (what, f) in checks {
        let msg = expect_panic(f);
        assert!(msg.contains("gort::run"), "{what}: {msg}");
    }
    // These are defined on plain threads.
    assert_eq!(runtime::name(), None);
    runtime::lock_os_thread();
    runtime::unlock_os_thread();
    runtime::unlock_os_thread();
    assert_eq!(gort::scope(|_| 5), 5);
}

// ---------------------------------------------------------------------------------------------
// Goroutine builder
// ---------------------------------------------------------------------------------------------

#[test]
fn goroutine_builder_name() {
    gort::run(|| {
        let h = Goroutine::new()
            .name("worker")
            .spawn(runtime::name)
            .unwrap();
        assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
        let h = Goroutine::new()
            .name(String::from("ünïcode \"q\""))
            .spawn(runtime::name)
            .unwrap();
        assert_eq!(h.join().unwrap().as_deref(), Some("ünïcode \"q\""));
        assert_eq!(
            Goroutine::new()
                .spawn(runtime::name)
                .unwrap()
                .join()
                .unwrap(),
            None
        );
        assert_eq!(gort::go(runtime::name).join().unwrap(), None);
        assert_eq!(runtime::name(), None, "main has no name");
        // A name does not leak into the next goroutine that reuses the G.
        for i in 0..200 {
            let named = Goroutine::new()
                .name(format!("n{i}"))
                .spawn(runtime::name)
                .unwrap();
            assert_eq!(named.join().unwrap(), Some(format!("n{i}")));
            assert_eq!(gort::go(runtime::name).join().unwrap(), None);
        }
        assert!(!format!("{:?}", Goroutine::new().name("x")).is_empty());
        let _ = Goroutine::default();
    });
}

#[test]
fn goroutine_builder_stack_size_errors() {
    gort::run(|| {
        let before = runtime::num_goroutine();
        for bad in [0usize, 1024, 16 * KIB - 1, GIB + 1, usize::MAX] {
            let e = Goroutine::new().stack_size(bad).spawn(|| ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "stack_size({bad})");
        }
        assert_eq!(
            runtime::num_goroutine(),
            before,
            "a refused spawn counted as a goroutine"
        );
        for good in [16 * KIB, 16 * KIB + 1, 100_000, MIB, GIB] {
            let h = Goroutine::new()
                .stack_size(good)
                .name("sized")
                .spawn(move || (good, runtime::name()))
                .unwrap();
            assert_eq!(h.join().unwrap(), (good, Some("sized".to_string())));
        }
    });
}

/// Big-stack scenarios run in a child: if a stack size were ignored, the goroutine would
/// overflow and abort the whole process.
#[test]
fn child_big_stack() {
    let Some(role) = child_role() else { return };
    #[inline(never)]
    fn use_stack(kib: usize) -> u64 {
        let mut buf = [0u8; 600 * 1024];
        let buf = std::hint::black_box(&mut buf);
        buf[0] = 1;
        buf[kib * 1024 - 1] = 2;
        std::hint::black_box(buf.iter().map(|&b| b as u64).sum())
    }
    match role.as_str() {
        "bigstack-goroutine" => {
            let rt = Builder::new().procs(2).build().unwrap();
            let v = rt.run(|| {
                Goroutine::new()
                    .stack_size(MIB)
                    .spawn(|| use_stack(600))
                    .unwrap()
                    .join()
                    .unwrap()
            });
            assert_eq!(v, 3);
        }
        "bigstack-builder" => {
            let rt = Builder::new().procs(2).stack_size(MIB).build().unwrap();
            assert_eq!(rt.run(|| use_stack(600)), 3, "main goroutine");
            assert_eq!(
                rt.run(|| gort::go(|| use_stack(600)).join().unwrap()),
                3,
                "go"
            );
            let s = rt.run(|| gort::scope(|s| s.go(|| use_stack(600)).join().unwrap()));
            assert_eq!(s, 3, "scope");
        }
        "bigstack-env" => {
            assert_eq!(gort::run(|| use_stack(600)), 3, "main goroutine");
            assert_eq!(
                gort::run(|| gort::go(|| use_stack(600)).join().unwrap()),
                3,
                "go"
            );
        }
        _ => {}
    }
}

/// Child: `stack_dump` on a goroutine with the smallest allowed stack (Go's runtime.Stack
/// works on any goroutine). A failure here is a stack-overflow abort.
#[test]
fn child_small_stack_dump() {
    if !is_child("small-stack-dump") {
        return;
    }
    let rt = Builder::new().procs(2).build().unwrap();
    let (one, all) = rt.run(|| {
        Goroutine::new()
            .stack_size(16 * KIB)
            .spawn(|| (runtime::stack_dump(false), runtime::stack_dump(true)))
            .unwrap()
            .join()
            .unwrap()
    });
    assert!(one.starts_with("goroutine 2 [running]:"), "{one}");
    assert!(all.starts_with("goroutine 2 [running]:"), "{all}");
}

#[test]
fn stack_dump_works_on_the_smallest_stack() {
    let out = run_child(
        "child_small_stack_dump",
        "small-stack-dump",
        &[],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "stack_dump on a 16 KiB goroutine: {:?}\n{}",
        out.status,
        tail(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("  "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    out.assert_passed();
}

#[test]
fn big_stacks_are_honoured() {
    for (role, env) in [
        ("bigstack-goroutine", vec![]),
        ("bigstack-builder", vec![]),
        ("bigstack-env", vec![("GORT_STACK_SIZE", "1M")]),
    ] {
        let out = run_child("child_big_stack", role, &env, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{role}: {:?}\n{}\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
        out.assert_passed();
    }
}

// ---------------------------------------------------------------------------------------------
// JoinHandle
// ---------------------------------------------------------------------------------------------

#[test]
fn join_handle_basics() {
    watchdog(60, || {
        gort::run(|| {
            let h = gort::go(|| (runtime::goid(), vec![1, 2, 3]));
            let id = h.id();
            assert!(format!("{h:?}").contains(&id.to_string()));
            let (inner, v) = h.join().unwrap();
            assert_eq!(inner, id);
            assert_eq!(v, vec![1, 2, 3]);

            // is_finished: false while blocked, true once done.
            let g = gate();
            let g2 = g.clone();
            let h = gort::go(move || {
                g2.wait();
                9
            });
            for _ in 0..100 {
                runtime::gosched();
                assert!(!h.is_finished());
            }
            g.done();
            assert!(gosched_until(Duration::from_secs(30), || h.is_finished()));
            assert!(h.is_finished());
            assert_eq!(h.join().unwrap(), 9);

            // Dropping a handle detaches: the goroutine still runs to completion.
            let ran = flag();
            let r = ran.clone();
            drop(gort::go(move || {
                for _ in 0..10 {
                    runtime::gosched();
                }
                r.store(true, SeqCst);
            }));
            assert!(gosched_until(Duration::from_secs(30), || ran.load(SeqCst)));

            // A result nobody joins is dropped: when the handle goes (goroutine done)...
            let res_dropped = flag();
            let rd = res_dropped.clone();
            let h = gort::go(move || DropFlag(rd));
            assert!(gosched_until(Duration::from_secs(30), || h.is_finished()));
            assert!(
                !res_dropped.load(SeqCst),
                "the result was dropped before its handle"
            );
            drop(h);
            assert!(
                res_dropped.load(SeqCst),
                "dropping the handle of a finished goroutine leaked its result"
            );
            // ...or when the goroutine finishes (handle already gone).
            let res_dropped = flag();
            let rd = res_dropped.clone();
            drop(gort::go(move || {
                runtime::gosched();
                DropFlag(rd)
            }));
            assert!(
                gosched_until(Duration::from_secs(30), || res_dropped.load(SeqCst)),
                "a detached goroutine's result was never dropped"
            );
        });
    });
}

#[test]
fn join_returns_a_panic_payload() {
    quiet_expected_panics();
    watchdog(60, || {
        gort::run(|| {
            let sibling_done = flag();
            let sd = sibling_done.clone();
            let sib = gort::go(move || {
                for _ in 0..50 {
                    runtime::gosched();
                }
                sd.store(true, SeqCst);
                1
            });
            let h = gort::go(|| -> u32 { panic!("{EXPECTED} boom {}", 7) });
            let e = h.join().unwrap_err();
            assert!(panic_msg(&*e).contains("boom 7"), "{:?}", panic_msg(&*e));
            let h = gort::go(|| -> u32 { panic!("{EXPECTED} static str") });
            let e = h.join().unwrap_err();
            assert_eq!(
                e.downcast_ref::<&str>().copied(),
                None,
                "formatted panics carry a String"
            );
            assert!(panic_msg(&*e).contains("static str"));
            let h = gort::go(|| -> u32 { std::panic::resume_unwind(Box::new(42u64)) });
            assert_eq!(h.join().unwrap_err().downcast_ref::<u64>(), Some(&42));
            // Other goroutines are unaffected.
            assert_eq!(sib.join().unwrap(), 1);
            assert!(sibling_done.load(SeqCst));
            // A panicking named goroutine, joined from another goroutine.
            let h = Goroutine::new()
                .name("p")
                .spawn(|| -> () { panic!("{EXPECTED} named") })
                .unwrap();
            let e = gort::go(move || h.join()).join().unwrap().unwrap_err();
            assert!(panic_msg(&*e).contains("named"));
        });
    });
}

#[test]
fn join_from_a_plain_thread_blocks_the_thread() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        let g = gate();
        let (tx, rx) = mpsc::channel();
        let g2 = g.clone();
        rt.run(move || {
            let h = gort::go(move || {
                g2.wait();
                42
            });
            tx.send(h).unwrap();
        });
        let h = rx.recv().unwrap();
        let t = std::thread::spawn(move || h.join());
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !t.is_finished(),
            "join on a plain thread returned before the goroutine finished"
        );
        g.done();
        assert_eq!(t.join().unwrap().unwrap(), 42);

        // The same with gort::run: main hands the handle to a std thread and waits for it.
        let v = gort::run(|| {
            let g = gate();
            let g2 = g.clone();
            let h = gort::go(move || {
                g2.wait();
                "joined"
            });
            let (tx, rx) = mpsc::channel();
            let done = Arc::new(WaitGroup::new());
            done.add(1);
            let d2 = done.clone();
            std::thread::spawn(move || {
                tx.send(h.join().unwrap()).unwrap();
                d2.done(); // wakes the main goroutine from a plain thread
            });
            g.done();
            done.wait();
            rx.recv().unwrap()
        });
        assert_eq!(v, "joined");
    });
}

// ---------------------------------------------------------------------------------------------
// scope
// ---------------------------------------------------------------------------------------------

#[test]
fn scope_borrows_and_waits() {
    watchdog(60, || {
        gort::run(|| {
            let mut counts = [0u64; 16];
            let shared = vec![10u64, 20, 30];
            let r = gort::scope(|s| {
                for (i, c) in counts.iter_mut().enumerate() {
                    let shared = &shared;
                    s.go(move || {
                        for _ in 0..i {
                            runtime::gosched();
                        }
                        *c = i as u64 + shared.iter().sum::<u64>();
                    });
                }
                "scope value"
            });
            assert_eq!(r, "scope value");
            for (i, c) in counts.iter().enumerate() {
                assert_eq!(
                    *c,
                    i as u64 + 60,
                    "scope returned before goroutine {i} finished"
                );
            }
            // Unjoined goroutines that park are waited for too.
            let n = AtomicUsize::new(0);
            let g = gate();
            gort::scope(|s| {
                for _ in 0..20 {
                    s.go(|| {
                        g.wait();
                        n.fetch_add(1, SeqCst);
                    });
                }
                let g = g.clone();
                s.go(move || {
                    for _ in 0..20 {
                        runtime::gosched();
                    }
                    g.done();
                });
            });
            assert_eq!(n.load(SeqCst), 20);
            // Nested scopes.
            let mut total = 0u64;
            gort::scope(|s| {
                s.go(|| {
                    let parts: Vec<u64> = gort::scope(|s2| {
                        let hs: Vec<_> = (0..10u64).map(|i| s2.go(move || i)).collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect()
                    });
                    total = parts.iter().sum();
                });
            });
            assert_eq!(total, 45);
        });
    });
}

#[test]
fn scope_join_inside() {
    quiet_expected_panics();
    watchdog(60, || {
        gort::run(|| {
            let data = [1, 2, 3];
            let (sum, id_ok, err) = gort::scope(|s| {
                let h = s.go(|| (runtime::goid(), data.iter().sum::<i32>()));
                let id = h.id();
                assert!(!format!("{h:?}").is_empty());
                assert!(!format!("{s:?}").is_empty());
                let (inner, sum) = h.join().unwrap();
                let p = s.go(|| -> () { panic!("{EXPECTED} joined scoped panic") });
                while !p.is_finished() {
                    runtime::gosched();
                }
                let err = panic_msg(&*p.join().unwrap_err());
                (sum, inner == id, err)
            });
            // A panic that was joined does not make the scope panic.
            assert_eq!(sum, 6);
            assert!(id_ok);
            assert!(err.contains("joined scoped panic"));
        });
    });
}

#[test]
fn scope_panics_for_an_unjoined_panicking_goroutine() {
    quiet_expected_panics();
    watchdog(60, || {
        gort::run(|| {
            let finished = AtomicUsize::new(0);
            let r = catch_unwind(AssertUnwindSafe(|| {
                gort::scope(|s| {
                    s.go(|| -> () { panic!("{EXPECTED} unjoined") });
                    for _ in 0..5 {
                        s.go(|| {
                            for _ in 0..20 {
                                runtime::gosched();
                            }
                            finished.fetch_add(1, SeqCst);
                        });
                    }
                })
            }));
            let msg = panic_msg(&*r.unwrap_err());
            assert!(msg.contains("scoped goroutine panicked"), "{msg}");
            assert_eq!(
                finished.load(SeqCst),
                5,
                "scope panicked before its goroutines finished"
            );

            // If the scope's closure panics, that panic resumes after the goroutines finished.
            let finished = AtomicUsize::new(0);
            let r = catch_unwind(AssertUnwindSafe(|| {
                gort::scope(|s| {
                    s.go(|| {
                        for _ in 0..50 {
                            runtime::gosched();
                        }
                        finished.fetch_add(1, SeqCst);
                    });
                    panic!("{EXPECTED} scope body")
                })
            }));
            assert!(panic_msg(&*r.unwrap_err()).contains("scope body"));
            assert_eq!(finished.load(SeqCst), 1);
        });
    });
}

/// Soundness: a scope must not be left (returned from or unwound out of) while one of its
/// goroutines still runs, even when the goroutine waiting in the scope is cancelled by a
/// runtime shutdown. Runs in a child process: if the scope is left early, the scoped
/// goroutine's borrows dangle.
#[test]
fn child_scope_cancel() {
    if !is_child("scope-cancel") {
        return;
    }
    watchdog(60, || {
        let child_started = flag();
        let child_done = flag();
        let left_early = flag();
        let (cs, cd, le) = (
            child_started.clone(),
            child_done.clone(),
            left_early.clone(),
        );
        gort::run(move || {
            let cs_main = cs.clone();
            gort::go(move || {
                struct Leave(Arc<AtomicBool>, Arc<AtomicBool>);
                impl Drop for Leave {
                    fn drop(&mut self) {
                        if !self.0.load(SeqCst) {
                            self.1.store(true, SeqCst);
                        }
                    }
                }
                let _leave = Leave(cd.clone(), le);
                let borrowed = [7u64; 8];
                let (cs, cd) = (cs.clone(), cd.clone());
                gort::scope(|s| {
                    let borrowed = &borrowed; // the scoped goroutine borrows this frame...
                    s.go(move || {
                        let _ = borrowed; // ...but never touches it, so an early exit is not UB here
                        cs.store(true, SeqCst);
                        // Busy for a while with no runtime call, then finish.
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_millis(400) {
                            std::hint::spin_loop();
                        }
                        cd.store(true, SeqCst);
                    });
                });
            });
            assert!(gosched_until(Duration::from_secs(30), || cs_main.load(SeqCst)));
            // main returns: the goroutine waiting in the scope is cancelled.
        });
        assert!(
            !left_early.load(SeqCst),
            "the scope's owner unwound out of gort::scope while a scoped goroutine was still running \
             (its borrows would dangle)"
        );
    });
}

#[test]
fn scope_is_not_left_early_on_cancellation() {
    let out = run_child(
        "child_scope_cancel",
        "scope-cancel",
        &[],
        Duration::from_secs(60),
    );
    out.assert_passed();
}

// ---------------------------------------------------------------------------------------------
// GoId
// ---------------------------------------------------------------------------------------------

#[test]
fn goid_traits_and_main_is_one() {
    fn traits<
        T: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug + std::fmt::Display + Send + Sync,
    >() {
    }
    traits::<GoId>();
    let (main, kid) = gort::run(|| (runtime::goid(), gort::go(runtime::goid).join().unwrap()));
    assert_eq!(main.as_u64(), 1);
    assert_eq!(main.to_string(), "1");
    assert!(format!("{main:?}").contains('1'));
    assert_eq!(kid.to_string(), kid.as_u64().to_string());
    let copy = main;
    assert_eq!(copy, main);
    assert!(main < kid);
    assert_eq!(main.cmp(&kid), std::cmp::Ordering::Less);
    let set: HashSet<GoId> = [main, kid, copy].into_iter().collect();
    assert_eq!(set.len(), 2);
}

#[test]
fn goids_increase_and_are_unique() {
    watchdog(120, || {
        let rt = Builder::new().procs(4).build().unwrap();
        rt.run(|| {
            let main = runtime::goid();
            // Spawned in a row by one goroutine (which does not park meanwhile): increasing.
            let hs: Vec<_> = (0..10_000).map(|_| gort::go(runtime::goid)).collect();
            let ids: Vec<GoId> = hs.iter().map(|h| h.id()).collect();
            for w in ids.windows(2) {
                assert!(w[0] < w[1], "ids not increasing: {} then {}", w[0], w[1]);
            }
            assert!(ids[0] > main);
            for h in hs {
                let id = h.id();
                assert_eq!(
                    h.join().unwrap(),
                    id,
                    "JoinHandle::id differs from runtime::goid"
                );
            }
            let mut seen: HashSet<GoId> = ids.into_iter().collect();
            seen.insert(main);
            // Spawned from many goroutines on several Ps, with Gs being reused: still unique.
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    gort::go(|| {
                        let mut v = Vec::new();
                        for _ in 0..100 {
                            let h = gort::go(runtime::goid);
                            let id = h.id();
                            assert_eq!(h.join().unwrap(), id);
                            v.push(id);
                        }
                        v.push(runtime::goid());
                        v
                    })
                })
                .collect();
            let mut n = 0;
            for h in hs {
                for id in h.join().unwrap() {
                    n += 1;
                    assert!(seen.insert(id), "goroutine id {id} handed out twice");
                }
            }
            assert_eq!(n, 10_100);
            assert_eq!(seen.len(), 20_101);
        });
        // A later main goroutine of the same runtime gets a fresh id too.
        let later = rt.run(runtime::goid);
        assert!(later.as_u64() > 20_000, "{later}");
    });
}

// ---------------------------------------------------------------------------------------------
// runtime::{gomaxprocs, set_gomaxprocs, gosched}
// ---------------------------------------------------------------------------------------------

#[test]
fn set_gomaxprocs_returns_previous_and_zero_queries() {
    let rt = Builder::new().procs(2).build().unwrap();
    rt.run(|| {
        assert_eq!(runtime::gomaxprocs(), 2);
        assert_eq!(runtime::set_gomaxprocs(0), 2);
        assert_eq!(runtime::gomaxprocs(), 2);
        assert_eq!(runtime::set_gomaxprocs(3), 2);
        assert_eq!(runtime::set_gomaxprocs(0), 3);
        assert_eq!(runtime::gomaxprocs(), 3);
        assert_eq!(runtime::set_gomaxprocs(5000), 3);
        assert_eq!(
            runtime::gomaxprocs(),
            1024,
            "values above 1024 clamp to 1024"
        );
        assert_eq!(runtime::set_gomaxprocs(2), 1024);
    });
    // The setting belongs to the runtime and persists across run calls.
    assert_eq!(rt.run(runtime::gomaxprocs), 2);
}

#[test]
fn set_gomaxprocs_shrink_to_one_then_grow_back() {
    watchdog(120, || {
        let rt = Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            assert!(parallel_rendezvous(2, Duration::from_secs(20)), "2 Ps did not run 2 goroutines at once");
            assert_eq!(runtime::set_gomaxprocs(1), 2);
            // Let the Ms notice.
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(50) {
                runtime::gosched();
            }
            // With one P, goroutines still all run, but never two at once.
            let active = Arc::new(AtomicUsize::new(0));
            let max = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let (active, max) = (active.clone(), max.clone());
                    gort::go(move || {
                        let now = active.fetch_add(1, SeqCst) + 1;
                        max.fetch_max(now, SeqCst);
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_millis(5) {
                            std::hint::spin_loop();
                        }
                        active.fetch_sub(1, SeqCst);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(max.load(SeqCst), 1, "two goroutines ran at once with gomaxprocs=1");
            let c = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let c = c.clone();
                    gort::go(move || {
                        runtime::gosched();
                        c.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(c.load(SeqCst), 1000);
            // Grow back: two goroutines must again be able to run at the same time.
            assert_eq!(runtime::set_gomaxprocs(2), 1);
            assert_eq!(runtime::gomaxprocs(), 2);
            assert!(
                parallel_rendezvous(2, Duration::from_secs(20)),
                "after set_gomaxprocs(1) then set_gomaxprocs(2), two goroutines never ran in parallel"
            );
        });
    });
}

#[test]
fn set_gomaxprocs_grow_from_one() {
    watchdog(120, || {
        let rt = Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            assert_eq!(runtime::set_gomaxprocs(3), 1);
            assert!(
                parallel_rendezvous(3, Duration::from_secs(20)),
                "3 Ps did not run 3 goroutines at once"
            );
        });
    });
}

#[test]
fn gosched_lets_others_run() {
    watchdog(60, || {
        let rt = Builder::new().procs(1).build().unwrap();
        rt.run(|| {
            runtime::gosched(); // alone: returns
            let b_ran = Arc::new(AtomicBool::new(false));
            let b2 = b_ran.clone();
            let a = gort::go(move || {
                let mut n = 0u64;
                while !b2.load(SeqCst) {
                    runtime::gosched();
                    n += 1;
                }
                n
            });
            let br = b_ran.clone();
            let b = gort::go(move || br.store(true, SeqCst));
            a.join().unwrap();
            b.join().unwrap();
            // Ping-pong on one P: each side only advances by yielding to the other.
            let turn = Arc::new(AtomicU64::new(0));
            let hs: Vec<_> = (0..2u64)
                .map(|me| {
                    let turn = turn.clone();
                    gort::go(move || {
                        let mut mine = 0;
                        while mine < 100 {
                            if turn.load(SeqCst) % 2 == me {
                                turn.fetch_add(1, SeqCst);
                                mine += 1;
                            }
                            runtime::gosched();
                        }
                    })
                })
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(turn.load(SeqCst), 200);
        });
    });
}

// ---------------------------------------------------------------------------------------------
// runtime::goexit
// ---------------------------------------------------------------------------------------------

#[test]
fn goexit_runs_destructors_and_join_sees_goexit() {
    watchdog(60, || {
        gort::run(|| {
            let dropped = flag();
            let after = flag();
            let (d, a) = (dropped.clone(), after.clone());
            let h = gort::go(move || -> u32 {
                let _f = DropFlag(d);
                #[inline(never)]
                fn deep(n: u32) -> u32 {
                    if n == 0 {
                        runtime::goexit();
                    }
                    deep(n - 1) + 1
                }
                let v = deep(10);
                a.store(true, SeqCst);
                v
            });
            let e = h.join().unwrap_err();
            assert!(e.is::<runtime::Goexit>(), "payload is not runtime::Goexit");
            assert_eq!(e.downcast_ref::<runtime::Goexit>(), Some(&runtime::Goexit));
            assert!(dropped.load(SeqCst), "goexit did not run destructors");
            assert!(!after.load(SeqCst), "code after goexit ran");
            // goexit in a goroutine does not disturb its parent or siblings.
            let hs: Vec<_> = (0..100u32)
                .map(|i| {
                    gort::go(move || {
                        if i % 2 == 0 {
                            runtime::goexit();
                        }
                        i
                    })
                })
                .collect();
            for (i, h) in hs.into_iter().enumerate() {
                match h.join() {
                    Ok(v) => assert_eq!(v as usize, i),
                    Err(e) => {
                        assert_eq!(i % 2, 0);
                        assert!(e.is::<runtime::Goexit>());
                    }
                }
            }
        });
    });
}

// ---------------------------------------------------------------------------------------------
// runtime::num_goroutine
// ---------------------------------------------------------------------------------------------

#[test]
fn num_goroutine_counts_live_goroutines() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            assert_eq!(runtime::num_goroutine(), 1, "only main");
            let g = gate();
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let g = g.clone();
                    gort::go(move || g.wait())
                })
                .collect();
            assert_eq!(runtime::num_goroutine(), 11);
            for _ in 0..20 {
                runtime::gosched();
            }
            assert_eq!(runtime::num_goroutine(), 11, "parked goroutines are live");
            g.done();
            for h in hs {
                h.join().unwrap();
            }
            assert!(
                gosched_until(Duration::from_secs(30), || runtime::num_goroutine() == 1),
                "num_goroutine stuck at {}",
                runtime::num_goroutine()
            );
            // Nested spawns from other Ps.
            let hs: Vec<_> = (0..50)
                .map(|_| gort::go(|| gort::go(|| ()).join().unwrap()))
                .collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
            assert!(gosched_until(
                Duration::from_secs(30),
                || runtime::num_goroutine() == 1
            ));
        });
        // Each run's main goroutine counts; once the previous main has fully exited, a new
        // run sees only itself. (Right after `run` returns, the previous main may still be
        // switching off its stack and be counted for a moment.)
        let n = rt.run(|| {
            gosched_until(Duration::from_secs(30), || runtime::num_goroutine() == 1);
            runtime::num_goroutine()
        });
        assert_eq!(n, 1);
    });
}

// ---------------------------------------------------------------------------------------------
// runtime::{lock_os_thread, unlock_os_thread}
// ---------------------------------------------------------------------------------------------

#[test]
fn lock_os_thread_pins_the_goroutine() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            // Background churn so that an unpinned goroutine would likely move.
            let stop = Arc::new(AtomicBool::new(false));
            let churn: Vec<_> = (0..4)
                .map(|_| {
                    let stop = stop.clone();
                    gort::go(move || {
                        while !stop.load(SeqCst) {
                            runtime::gosched();
                        }
                    })
                })
                .collect();
            let h = gort::go(|| {
                runtime::lock_os_thread();
                let t = tid();
                let wg = Arc::new(WaitGroup::new());
                for i in 0..200 {
                    match i % 3 {
                        0 => runtime::gosched(),
                        1 => gort::go(|| ()).join().unwrap(),
                        _ => {
                            wg.add(1);
                            let w = wg.clone();
                            gort::go(move || w.done());
                            wg.wait();
                        }
                    }
                    assert_eq!(
                        tid(),
                        t,
                        "a locked goroutine changed threads (iteration {i})"
                    );
                }
                // Nested locks need as many unlocks.
                runtime::lock_os_thread();
                runtime::unlock_os_thread();
                for _ in 0..50 {
                    runtime::gosched();
                    assert_eq!(tid(), t, "one unlock of two released the pin");
                }
                runtime::unlock_os_thread();
                runtime::unlock_os_thread(); // extra: harmless
            });
            h.join().unwrap();
            stop.store(true, SeqCst);
            churn.into_iter().for_each(|h| h.join().unwrap());
        });
    });
}

#[test]
fn lock_os_thread_excludes_other_goroutines_from_the_thread() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        rt.run(|| {
            let locked_tid = Arc::new(AtomicU64::new(0));
            let locked = flag();
            let unlocking = flag();
            let violations = Arc::new(AtomicUsize::new(0));
            let stop = flag();
            let workers: Vec<_> = (0..6)
                .map(|_| {
                    let (lt, l, u, v, stop) = (
                        locked_tid.clone(),
                        locked.clone(),
                        unlocking.clone(),
                        violations.clone(),
                        stop.clone(),
                    );
                    gort::go(move || {
                        while !stop.load(SeqCst) {
                            let me = tid() as u64;
                            if l.load(SeqCst) && !u.load(SeqCst) && me == lt.load(SeqCst) {
                                v.fetch_add(1, SeqCst);
                            }
                            runtime::gosched();
                        }
                    })
                })
                .collect();
            let (lt, l, u) = (locked_tid.clone(), locked.clone(), unlocking.clone());
            gort::go(move || {
                runtime::lock_os_thread();
                lt.store(tid() as u64, SeqCst);
                l.store(true, SeqCst);
                for _ in 0..300 {
                    runtime::gosched();
                }
                u.store(true, SeqCst);
                runtime::unlock_os_thread();
            })
            .join()
            .unwrap();
            stop.store(true, SeqCst);
            workers.into_iter().for_each(|h| h.join().unwrap());
            assert_eq!(
                violations.load(SeqCst),
                0,
                "another goroutine ran on a locked goroutine's thread"
            );
        });
    });
}

#[test]
fn goroutine_exiting_while_locked_is_ok() {
    watchdog(60, || {
        let rt = Builder::new().procs(1).build().unwrap();
        let tids = rt.run(|| {
            let mut tids = Vec::new();
            for _ in 0..5 {
                let h = gort::go(|| {
                    runtime::lock_os_thread();
                    runtime::gosched();
                    tid()
                });
                tids.push(h.join().unwrap());
                // The runtime continues on its one P.
                let hs: Vec<_> = (0..100).map(|i| gort::go(move || i)).collect();
                assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 4950);
            }
            tids
        });
        // As in Go, the locked goroutine's thread exits with it.
        for t in &tids {
            assert!(
                wait_until(Duration::from_secs(10), || !thread_alive(*t)),
                "thread {t} of an exited locked goroutine lives on"
            );
        }
        // The main goroutine may exit locked too; the runtime stays usable.
        rt.run(runtime::lock_os_thread);
        rt.run(runtime::lock_os_thread);
        assert_eq!(rt.run(|| gort::go(|| 3).join().unwrap()), 3);
    });
}

// ---------------------------------------------------------------------------------------------
// runtime::{goid, name, stack_dump}
// ---------------------------------------------------------------------------------------------

#[test]
fn stack_dump_current_goroutine() {
    gort::run(|| {
        let d = runtime::stack_dump(false);
        assert!(d.starts_with("goroutine 1 [running]:"), "{}", tail(&d));
        assert!(
            !d.contains("goroutine 2 "),
            "a one-goroutine dump shows other goroutines"
        );
        let h = Goroutine::new()
            .name("dumper")
            .spawn(|| (runtime::goid(), runtime::stack_dump(false)))
            .unwrap();
        let (id, d) = h.join().unwrap();
        let head = format!("goroutine {id} \"dumper\" [running]:");
        assert!(
            d.starts_with(&head),
            "want {head:?}, got {:?}",
            d.lines().next()
        );
    });
}

#[test]
fn stack_dump_all_goroutines() {
    watchdog(60, || {
        gort::run(|| {
            let g = gate();
            let g1 = g.clone();
            let parked = gort::go(move || g1.wait());
            let g2 = g.clone();
            let named = Goroutine::new()
                .name("sleeper")
                .spawn(move || g2.wait())
                .unwrap();
            let dead = gort::go(|| ());
            let dead_id = dead.id();
            dead.join().unwrap();
            // Let the parked ones park and the dead one be recycled.
            assert!(gosched_until(
                Duration::from_secs(30),
                || runtime::num_goroutine() == 3
            ));
            let d = runtime::stack_dump(true);
            assert!(d.starts_with("goroutine 1 [running]:"), "{}", tail(&d));
            assert!(
                d.contains(&format!("goroutine {} [", parked.id())),
                "parked goroutine missing:\n{}",
                tail(&d)
            );
            assert!(
                d.contains("created by"),
                "no `created by` line:\n{}",
                tail(&d)
            );
            assert!(
                d.contains("api.rs"),
                "`created by` does not name the go call site:\n{}",
                tail(&d)
            );
            assert!(
                !d.contains(&format!("goroutine {dead_id} ")),
                "a finished goroutine is in the dump:\n{}",
                tail(&d)
            );
            let want = format!("goroutine {} \"sleeper\" [", named.id());
            let ok = d.contains(&want);
            g.done();
            parked.join().unwrap();
            named.join().unwrap();
            assert!(
                ok,
                "named goroutine's header should read {want:?}:\n{}",
                tail(&d)
            );
        });
    });
}

#[test]
fn goid_and_name_from_goroutines() {
    gort::run(|| {
        let me = runtime::goid();
        assert_eq!(me.as_u64(), 1);
        let h = Goroutine::new()
            .name("a")
            .spawn(|| (runtime::goid(), runtime::name()))
            .unwrap();
        let id = h.id();
        assert_eq!(h.join().unwrap(), (id, Some("a".into())));
        // goid is stable across parks and migrations.
        let h = gort::go(|| {
            let first = runtime::goid();
            for _ in 0..100 {
                runtime::gosched();
                gort::go(|| ()).join().unwrap();
                assert_eq!(runtime::goid(), first);
            }
            first
        });
        let id = h.id();
        assert_eq!(h.join().unwrap(), id);
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation on shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_runs_destructors_of_parked_goroutines() {
    watchdog(60, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let (d, f) = (drops.clone(), finished.clone());
        gort::run(move || {
            let never = gate();
            let parked = Arc::new(WaitGroup::new());
            for i in 0..100 {
                parked.add(1);
                let (d, f, never, parked) = (d.clone(), f.clone(), never.clone(), parked.clone());
                let h = gort::go(move || {
                    let _c = DropCount(d);
                    parked.done();
                    if i % 2 == 0 {
                        never.wait();
                    } else {
                        // Parked in a join of a goroutine that is parked forever.
                        let n2 = never.clone();
                        gort::go(move || n2.wait()).join().unwrap();
                    }
                    f.fetch_add(1, SeqCst);
                });
                tx.send(h).unwrap();
            }
            parked.wait();
            for _ in 0..10 {
                runtime::gosched();
            }
        });
        assert_eq!(
            drops.load(SeqCst),
            100,
            "destructors of parked goroutines had not run when run returned"
        );
        assert_eq!(
            finished.load(SeqCst),
            0,
            "a cancelled goroutine went on past its park"
        );
        for h in rx.try_iter() {
            assert!(h.is_finished());
            let e = h.join().unwrap_err();
            assert!(
                e.is::<runtime::Cancelled>(),
                "join of a cancelled goroutine: {:?}",
                panic_msg(&*e)
            );
        }
    });
}

#[test]
fn cancel_unwinds_a_goroutine_at_its_next_runtime_call() {
    watchdog(60, || {
        let dropped = flag();
        let d = dropped.clone();
        let started = flag();
        let s = started.clone();
        gort::run(move || {
            gort::go(move || {
                let _f = DropFlag(d);
                s.store(true, SeqCst);
                loop {
                    runtime::gosched();
                }
            });
            while !started.load(SeqCst) {
                runtime::gosched();
            }
        });
        assert!(dropped.load(SeqCst));
    });
}

#[test]
fn cancel_every_closure_runs_or_is_dropped() {
    watchdog(60, || {
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let (r, d) = (ran.clone(), drops.clone());
        gort::run(move || {
            for _ in 0..1000 {
                let c = DropCount(d.clone());
                let r = r.clone();
                gort::go(move || {
                    let _c = c;
                    r.fetch_add(1, SeqCst);
                });
            }
            // main returns at once: many are still runnable.
        });
        assert_eq!(
            drops.load(SeqCst),
            1000,
            "not every goroutine closure was dropped before run returned"
        );
        assert!(ran.load(SeqCst) <= 1000);
    });
}

#[test]
fn cancel_drops_a_runnable_goroutine_that_never_started() {
    watchdog(60, || {
        let rt = Builder::new().procs(1).build().unwrap();
        let ran = flag();
        let dropped = flag();
        let dropping = flag();
        let (r, d, dr) = (ran.clone(), dropped.clone(), dropping.clone());
        let h = rt.run(move || {
            let guard = DropFlag(d);
            let b = gort::go(move || {
                let _g = guard;
                r.store(true, SeqCst);
            });
            // S takes the only P (runnext) as soon as main returns and keeps it, making no
            // runtime call, until the runtime is being dropped; B waits behind it.
            gort::go(move || {
                while !dr.load(SeqCst) {
                    std::hint::spin_loop();
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(300) {
                    std::hint::spin_loop();
                }
                runtime::gosched(); // cancelled by now: unwinds here
            });
            b
        });
        dropping.store(true, SeqCst);
        drop(rt);
        assert!(
            dropped.load(SeqCst),
            "the never-started goroutine's closure was not dropped"
        );
        assert!(
            !ran.load(SeqCst),
            "a goroutine runnable at shutdown ran its body"
        );
        let e = h.join().unwrap_err();
        assert!(e.is::<runtime::Cancelled>());
    });
}

/// Child (a failure here aborts the process): destructors that park while a cancelled
/// goroutine unwinds.
#[test]
fn child_blocking_destructors() {
    if !is_child("blocking-dtor") {
        return;
    }
    watchdog(60, || {
        let inner_dropped = flag();
        let outer_dropped = flag();
        let spawned_dropped = flag();
        let (i, o, sp) = (
            inner_dropped.clone(),
            outer_dropped.clone(),
            spawned_dropped.clone(),
        );
        let t = Instant::now();
        gort::run(move || {
            let never = gate();
            let n1 = never.clone();
            let ready = Arc::new(WaitGroup::new());
            ready.add(2);
            let (r1, r2) = (ready.clone(), ready.clone());
            let inner = gort::go(move || {
                // Takes a while to unwind, so the goroutine joining it stays parked across
                // several of the shutdown's cancellation passes.
                struct Slow;
                impl Drop for Slow {
                    fn drop(&mut self) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                let _f = DropFlag(i);
                let _s = Slow;
                r1.done();
                n1.wait();
            });
            let n2 = never.clone();
            gort::go(move || {
                // A destructor that makes runtime calls (and parks) while unwinding.
                struct Blocking(
                    Option<gort::JoinHandle<()>>,
                    Arc<AtomicBool>,
                    Arc<AtomicBool>,
                );
                impl Drop for Blocking {
                    fn drop(&mut self) {
                        runtime::gosched();
                        let sp = self.2.clone();
                        let late = gort::go(move || drop(sp));
                        let _ = late.join();
                        let r = self.0.take().unwrap().join();
                        assert!(r.is_err());
                        self.1.store(true, SeqCst);
                    }
                }
                let _b = Blocking(Some(inner), o, sp);
                r2.done();
                n2.wait();
            });
            ready.wait();
            for _ in 0..20 {
                runtime::gosched();
            }
        });
        assert!(t.elapsed() < Duration::from_secs(30));
        assert!(inner_dropped.load(SeqCst));
        assert!(
            outer_dropped.load(SeqCst),
            "a destructor that parks during cancellation did not complete"
        );
        // The goroutine spawned during shutdown was born cancelled: its closure is dropped.
        assert!(wait_until(Duration::from_secs(10), || Arc::strong_count(
            &spawned_dropped
        ) == 1));
    });
}

#[test]
fn cancel_tolerates_blocking_destructors() {
    let out = run_child(
        "child_blocking_destructors",
        "blocking-dtor",
        &[],
        Duration::from_secs(60),
    );
    out.assert_passed();
}

#[test]
fn dropping_a_runtime_cancels_its_goroutines() {
    watchdog(60, || {
        let rt = Builder::new().procs(2).build().unwrap();
        let dropped = flag();
        let d = dropped.clone();
        let h = rt.run(move || {
            let never = gate();
            let started = flag();
            let s = started.clone();
            let h = gort::go(move || {
                let _f = DropFlag(d);
                s.store(true, SeqCst);
                never.wait();
            });
            assert!(gosched_until(Duration::from_secs(30), || started.load(SeqCst)));
            h
        });
        assert!(
            !dropped.load(SeqCst),
            "Runtime::run cancelled a goroutine (only drop should)"
        );
        drop(rt);
        assert!(
            dropped.load(SeqCst),
            "dropping the runtime did not unwind its parked goroutine"
        );
        assert!(h.join().unwrap_err().is::<runtime::Cancelled>());
    });
}

/// Child: a goroutine spins forever without a runtime call; run must still return.
#[test]
fn child_spinner() {
    if !is_child("spinner") {
        return;
    }
    let spin = Arc::new(AtomicBool::new(true));
    let s = spin.clone();
    let t = Instant::now();
    gort::run(move || {
        let started = Arc::new(AtomicBool::new(false));
        let st = started.clone();
        gort::go(move || {
            st.store(true, SeqCst);
            while s.load(SeqCst) {
                std::hint::spin_loop();
            }
        });
        while !started.load(SeqCst) {
            runtime::gosched();
        }
    });
    let e = t.elapsed();
    eprintln!("SPINNER-RUN-RETURNED-AFTER-MS={}", e.as_millis());
    assert!(
        e < Duration::from_secs(10),
        "run took {e:?} with a spinning goroutine"
    );
    // The process can still start and use another runtime.
    assert_eq!(gort::run(|| gort::go(|| 5).join().unwrap()), 5);
}

#[test]
fn run_returns_despite_a_spinning_goroutine() {
    // Two Ps whatever the machine: without preemption (no sysmon yet) main could not run again
    // beside the spinner on a single P.
    let out = run_child(
        "child_spinner",
        "spinner",
        &[("GORTMAXPROCS", "2")],
        Duration::from_secs(60),
    );
    out.assert_passed();
}

// ---------------------------------------------------------------------------------------------
// Threads: dropping a runtime stops them (child process, so no other runtime is around)
// ---------------------------------------------------------------------------------------------

#[test]
fn child_threads() {
    if !is_child("threads") {
        return;
    }
    assert_eq!(gort_threads(), 0, "{:?}", thread_names());
    // gort::run leaves no thread behind.
    gort::run(|| assert!(parallel_rendezvous(2, Duration::from_secs(20))));
    assert!(
        wait_until(Duration::from_secs(10), || gort_threads() == 0),
        "after gort::run: {:?}",
        thread_names()
    );

    let rt = Builder::new().procs(4).build().unwrap();
    rt.run(|| {
        let hs: Vec<_> = (0..200)
            .map(|_| {
                gort::go(|| {
                    for _ in 0..10 {
                        runtime::gosched();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert!(parallel_rendezvous(2, Duration::from_secs(20)));
    });
    let during = gort_threads();
    assert!(during >= 2, "expected at least 2 Ms, saw {during}");
    // Leave a parked goroutine and a parked goroutine locked to its thread behind.
    let parked = rt.run(|| {
        let never = gate();
        let n2 = never.clone();
        let ready = Arc::new(WaitGroup::new());
        ready.add(2);
        let (r1, r2) = (ready.clone(), ready.clone());
        gort::go(move || {
            r1.done();
            never.wait()
        });
        gort::go(move || {
            runtime::lock_os_thread();
            r2.done();
            n2.wait();
        });
        ready.wait();
        // main + the two parked ones (the previous run's main may take a moment to exit).
        gosched_until(Duration::from_secs(10), || runtime::num_goroutine() == 3);
        runtime::num_goroutine()
    });
    assert_eq!(parked, 3);
    let t = Instant::now();
    drop(rt);
    let drop_time = t.elapsed();
    assert!(
        wait_until(Duration::from_secs(10), || gort_threads() == 0),
        "threads left after dropping the runtime: {:?}",
        thread_names()
    );
    eprintln!("THREADS-DURING={during} DROP-MS={}", drop_time.as_millis());
}

#[test]
fn dropping_a_runtime_stops_its_threads() {
    // Two Ps whatever the machine: the child's rendezvous needs two goroutines running at once.
    let out = run_child(
        "child_threads",
        "threads",
        &[("GORTMAXPROCS", "2")],
        Duration::from_secs(60),
    );
    out.assert_passed();
}

// ---------------------------------------------------------------------------------------------
// Environment variables (child processes)
// ---------------------------------------------------------------------------------------------

#[test]
fn child_env() {
    if !is_child("env") {
        return;
    }
    let expect_ok = std::env::var("GORT_TEST_EXPECT").unwrap() == "ok";
    let var = if std::env::var_os("GORTMAXPROCS").is_some() {
        "GORTMAXPROCS"
    } else {
        "GORT_STACK_SIZE"
    };
    let value = std::env::var(var).unwrap();
    let built = Builder::new().build();
    let run = {
        quiet_expected_panics();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = catch_unwind(|| gort::run(runtime::gomaxprocs));
        std::panic::set_hook(prev);
        r
    };
    if expect_ok {
        let rt = built.unwrap_or_else(|e| panic!("{var}={value:?} refused: {e}"));
        let n = rt.run(runtime::gomaxprocs);
        let r = run.unwrap_or_else(|p| {
            panic!(
                "gort::run with {var}={value:?} panicked: {}",
                panic_msg(&*p)
            )
        });
        if var == "GORTMAXPROCS" {
            let want: usize = value.trim().parse().unwrap();
            assert_eq!(n, want);
            assert_eq!(r, want);
            // An explicit procs() overrides the environment.
            assert_eq!(
                Builder::new()
                    .procs(1)
                    .build()
                    .unwrap()
                    .run(runtime::gomaxprocs),
                1
            );
        }
    } else {
        let e = built.expect_err(&format!("{var}={value:?} accepted by Builder::build"));
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{var}={value:?}: {e}");
        assert!(
            e.to_string().contains(var),
            "error does not name {var}: {e}"
        );
        let p = run.expect_err(&format!("gort::run accepted {var}={value:?}"));
        let msg = panic_msg(&*p);
        assert!(
            msg.contains(var),
            "gort::run's panic does not name {var}: {msg}"
        );
    }
}

#[test]
fn environment_variables() {
    let cases: &[(&str, &str, bool)] = &[
        ("GORTMAXPROCS", "0", false),
        ("GORTMAXPROCS", "abc", false),
        ("GORTMAXPROCS", "-1", false),
        ("GORTMAXPROCS", "", false),
        ("GORTMAXPROCS", "1.5", false),
        ("GORTMAXPROCS", "99999", false),
        ("GORTMAXPROCS", "3", true),
        ("GORTMAXPROCS", "1", true),
        ("GORT_STACK_SIZE", "abc", false),
        ("GORT_STACK_SIZE", "1K", false),
        ("GORT_STACK_SIZE", "4096", false),
        ("GORT_STACK_SIZE", "0", false),
        ("GORT_STACK_SIZE", "-64K", false),
        ("GORT_STACK_SIZE", "2G", false),
        ("GORT_STACK_SIZE", "2048M", false),
        ("GORT_STACK_SIZE", "64K", true),
        ("GORT_STACK_SIZE", "1M", true),
        ("GORT_STACK_SIZE", "16384", true),
        ("GORT_STACK_SIZE", "20000", true),
    ];
    for &(var, value, ok) in cases {
        let expect = if ok { "ok" } else { "err" };
        let out = run_child(
            "child_env",
            "env",
            &[(var, value), ("GORT_TEST_EXPECT", expect)],
            Duration::from_secs(60),
        );
        assert!(
            out.status.success() && out.stdout.contains("1 passed"),
            "{var}={value:?} (expect {expect}): {:?}\n{}\n{}",
            out.status,
            tail(&out.stdout),
            tail(&out.stderr)
        );
    }
}
