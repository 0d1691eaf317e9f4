//! Deadlock detection, scheduler traces and `GORT_DEBUG`, in child processes.
//!
//! This test has no libtest harness (`harness = false` in Cargo.toml): a harness keeps its own
//! threads alive beside the test, which (correctly) keeps any process from counting as
//! deadlocked. `main` runs every case by re-running this binary with `GORT_DEADLOCK_CASE=<case>`
//! and checks how the child ended and what it printed.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGE: &str = "fatal error: all goroutines are asleep - deadlock!";

fn main() {
    if let Ok(case) = std::env::var("GORT_DEADLOCK_CASE") {
        child(&case);
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    let mut ran = 0;
    for (name, check) in CASES {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| check(name));
        match r {
            Ok(()) => println!("test {name} ... ok ({:?})", t.elapsed()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("deadlock tests: {ran} run, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

type Check = fn(&str);

const CASES: &[(&str, Check)] = &[
    ("chan_recv", expect_deadlock),
    ("waitgroup", expect_deadlock),
    ("each_other", expect_deadlock),
    ("two_procs_many", expect_deadlock),
    ("panic_mode", expect_ok),
    ("timer", expect_ok),
    ("thread_sender", expect_ok),
    ("thread_pipe", expect_ok),
    ("process_pipe", expect_ok),
    ("thread_blocked_in_gort_then_deadlock", expect_deadlock),
    ("schedtrace", check_schedtrace),
    ("scheddetail", check_scheddetail),
    ("bad_debug", check_bad_debug),
    ("unknown_debug", check_unknown_debug),
    ("stats", expect_ok),
];

/// `schedtrace=100` over about a second: about ten lines, Go's shape.
fn check_schedtrace(case: &str) {
    let (code, out, err) = run_child("busy_second", &[("GORT_DEBUG", "schedtrace=100")]);
    assert_eq!(code, Some(0), "{case}: {out}\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(
        (5..=16).contains(&lines.len()),
        "{case}: {} lines in ~1 s:\n{err}",
        lines.len()
    );
    for l in &lines {
        assert!(
            l.contains("ms: gomaxprocs=2 idleprocs=")
                && l.contains(" threads=")
                && l.contains(" spinningthreads=")
                && l.contains(" idlethreads=")
                && l.contains(" runqueue=")
                && l.ends_with(']'),
            "{case}: {l}"
        );
        let brackets = &l[l.find('[').unwrap() + 1..l.len() - 1];
        assert_eq!(
            brackets.split(' ').count(),
            2,
            "{case}: one length per P: {l}"
        );
    }
    assert!(
        !err.contains("  P0: "),
        "{case}: detail without scheddetail"
    );
}

fn check_scheddetail(case: &str) {
    let (code, out, err) = run_child(
        "busy_second",
        &[("GORT_DEBUG", "schedtrace=200,scheddetail=1")],
    );
    assert_eq!(code, Some(0), "{case}: {out}\n{err}");
    assert!(
        err.lines().any(|l| l.starts_with("SCHED ")),
        "{case}: {err}"
    );
    for want in ["  P0: status=", "  P1: status=", "  M", "  G1: status="] {
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "{case}: no {want:?} line:\n{err}"
        );
    }
    assert!(
        err.contains(" runqsize=") && err.contains(" curg="),
        "{case}: {err}"
    );
}

fn check_bad_debug(case: &str) {
    for bad in ["schedtrace=abc", "scheddetail=yes", "schedtrace"] {
        let (code, out, err) = run_child(case, &[("GORT_DEBUG", bad)]);
        assert_eq!(code, Some(0), "{case} {bad}: {out}\n{err}");
        assert!(out.contains("DONE"), "{case} {bad}: {out}\n{err}");
    }
}

fn check_unknown_debug(case: &str) {
    let (code, out, err) = run_child(case, &[("GORT_DEBUG", "frobnicate=1,schedtrace=0")]);
    assert_eq!(code, Some(0), "{case}: {out}\n{err}");
    assert!(out.contains("DONE"), "{case}: {out}");
    assert_eq!(
        err.matches("frobnicate").count(),
        1,
        "{case}: the unknown key is reported once:\n{err}"
    );
}

/// Runs the child for `case` (with extra environment), killing it after 30 s.
fn run_child(case: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("GORT_DEADLOCK_CASE", case)
        .env_remove("GORT_DEBUG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (status.code(), o.join().unwrap(), e.join().unwrap())
}

fn expect_deadlock(case: &str) {
    let (code, out, err) = run_child(case, &[]);
    assert_eq!(
        code,
        Some(2),
        "{case}: status {code:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    let at = err
        .find(MESSAGE)
        .unwrap_or_else(|| panic!("{case}: no deadlock message:\n{err}"));
    let report = &err[at..];
    assert!(
        report.starts_with(&format!("{MESSAGE}\n\ngoroutine ")),
        "{case}: not message, blank line, dump:\n{report}"
    );
    // The child prints which goroutines it expects in the dump.
    let want = out
        .lines()
        .find_map(|l| l.strip_prefix("EXPECT "))
        .unwrap_or_else(|| panic!("{case}: the child printed no EXPECT line:\n{out}"));
    for id in want.split_whitespace() {
        assert!(
            report.contains(&format!("goroutine {id} [")),
            "{case}: goroutine {id} missing from the dump:\n{report}"
        );
    }
    assert!(!out.contains("UNREACHABLE"), "{case}: {out}");
}

fn expect_ok(case: &str) {
    let (code, out, err) = run_child(case, &[]);
    assert_eq!(
        code,
        Some(0),
        "{case}: status {code:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("DONE"), "{case}: {out}\n{err}");
    assert!(!err.contains(MESSAGE), "{case}: false positive:\n{err}");
}

fn expect(ids: &[u64]) {
    let s: Vec<String> = ids.iter().map(u64::to_string).collect();
    println!("EXPECT {}", s.join(" "));
    std::io::stdout().flush().unwrap();
}

fn child(case: &str) {
    match case {
        "chan_recv" => gort::run(|| {
            expect(&[1]);
            let (_tx, rx) = gort::chan::bounded::<u32>(0);
            let _ = rx.recv();
            println!("UNREACHABLE");
        }),
        "waitgroup" => gort::run(|| {
            let wg = std::sync::Arc::new(gort::sync::WaitGroup::new());
            wg.add(2);
            let w = wg.clone();
            let h = gort::go(move || {
                w.done();
                let (_tx, rx) = gort::chan::bounded::<u32>(1);
                rx.recv().ok();
            });
            expect(&[1, h.id().as_u64()]);
            wg.wait(); // one done() is missing
            println!("UNREACHABLE");
        }),
        "each_other" => gort::Builder::new().procs(2).build().unwrap().run(|| {
            let (atx, arx) = gort::chan::bounded::<u32>(0);
            let (btx, brx) = gort::chan::bounded::<u32>(0);
            let g1 = gort::go(move || {
                let v = arx.recv().unwrap();
                btx.send(v).unwrap();
            });
            let g2 = gort::go(move || {
                let v = brx.recv().unwrap();
                atx.send(v).unwrap();
            });
            expect(&[1, g1.id().as_u64(), g2.id().as_u64()]);
            g1.join().unwrap();
            println!("UNREACHABLE");
        }),
        "two_procs_many" => gort::Builder::new().procs(2).build().unwrap().run(|| {
            // Many goroutines that did real work (timers, channels) before they all stuck.
            let m = std::sync::Arc::new(gort::sync::Mutex::new(0u32));
            let mut ids = vec![1];
            let (_tx, rx) = gort::chan::unbounded::<u32>();
            for i in 0..50 {
                let rx = rx.clone();
                let m = m.clone();
                let h = gort::go(move || {
                    gort::time::sleep(Duration::from_millis(i % 7));
                    *m.lock() += 1;
                    rx.recv().ok();
                });
                ids.push(h.id().as_u64());
            }
            expect(&ids);
            gort::time::sleep(Duration::from_millis(50));
            let _ = rx.recv();
            println!("UNREACHABLE");
        }),
        "panic_mode" => {
            std::panic::set_hook(Box::new(|_| {})); // the report is checked below, not printed
            let rt = gort::Builder::new()
                .on_deadlock(gort::Deadlock::Panic)
                .build()
                .unwrap();
            let t = Instant::now();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.run(|| {
                    let (_tx, rx) = gort::chan::bounded::<u32>(0);
                    gort::go(move || rx.recv().ok());
                    let wg = gort::sync::WaitGroup::new();
                    wg.add(1);
                    wg.wait();
                })
            }));
            let payload = r.expect_err("run returned although main deadlocked");
            let msg = payload
                .downcast::<String>()
                .expect("the payload is not a String");
            assert!(
                msg.starts_with(&format!("{MESSAGE}\n\ngoroutine ")),
                "{msg}"
            );
            assert!(msg.contains("goroutine 1 ["), "{msg}");
            assert!(msg.contains("goroutine 2 ["), "{msg}");
            // The runtime is still usable, and drops without hanging.
            assert_eq!(rt.run(|| gort::go(|| 40).join().unwrap() + 2), 42);
            drop(rt);
            assert!(t.elapsed() < Duration::from_secs(10));
            println!("DONE");
        }
        "timer" => gort::run(|| {
            let (tx, rx) = gort::chan::bounded::<u32>(0);
            gort::go(move || {
                gort::time::sleep(Duration::from_millis(300));
                tx.send(1).unwrap();
            });
            let t = Instant::now();
            assert_eq!(rx.recv().unwrap(), 1);
            assert!(t.elapsed() >= Duration::from_millis(290));
            gort::time::sleep(Duration::from_millis(300));
            println!("DONE");
        }),
        "thread_sender" => gort::run(|| {
            let (tx, rx) = gort::chan::bounded::<u32>(0);
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                tx.send(7).unwrap();
            });
            assert_eq!(rx.recv().unwrap(), 7);
            t.join().unwrap();
            println!("DONE");
        }),
        "thread_pipe" => gort::run(|| {
            let (mut r, w) = gort::io::pipe().unwrap();
            let t = std::thread::spawn(move || {
                let mut w = w;
                std::thread::sleep(Duration::from_millis(300));
                w.write_all(b"hi").unwrap();
            });
            let mut buf = [0u8; 2];
            r.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hi");
            t.join().unwrap();
            println!("DONE");
        }),
        "process_pipe" => gort::run(|| {
            // Another process completes the read; this process has no other thread.
            let mut c = Command::new("sh")
                .args(["-c", "sleep 0.3; echo hello"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = gort::io::PollFd::new(c.stdout.take().unwrap()).unwrap();
            let mut s = String::new();
            out.read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello\n");
            c.wait().unwrap();
            println!("DONE");
        }),
        "thread_blocked_in_gort_then_deadlock" => gort::run(|| {
            // A plain thread asleep in a gort wait that only a deadlocked goroutine could end
            // does not prevent the report.
            let (tx, rx) = gort::chan::bounded::<u32>(0);
            let (_tx2, rx2) = gort::chan::bounded::<u32>(0);
            let _t = std::thread::spawn(move || {
                let _ = rx.recv();
            });
            let h = gort::go(move || {
                let _ = rx2.recv();
                tx.send(1).ok();
            });
            expect(&[1, h.id().as_u64()]);
            h.join().ok();
            println!("UNREACHABLE");
        }),
        "busy_second" => gort::Builder::new().procs(2).build().unwrap().run(|| {
            // About a second of mixed work: sleepers, a ping-pong pair, spawns.
            let t = Instant::now();
            let (tx, rx) = gort::chan::bounded::<u32>(0);
            let h = gort::go(move || while rx.recv().is_ok() {});
            while t.elapsed() < Duration::from_millis(1000) {
                for i in 0..10 {
                    tx.send(i).unwrap();
                }
                gort::go(|| gort::time::sleep(Duration::from_millis(3)));
                gort::time::sleep(Duration::from_millis(1));
            }
            drop(tx);
            h.join().unwrap();
            println!("DONE");
        }),
        "bad_debug" => {
            let e = gort::Builder::new().build().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("GORT_DEBUG"), "{e}");
            println!("DONE");
        }
        "unknown_debug" => {
            for _ in 0..2 {
                let rt = gort::Builder::new().build().unwrap();
                assert_eq!(rt.run(|| 1), 1);
            }
            println!("DONE");
        }
        "stats" => gort::Builder::new().procs(2).build().unwrap().run(|| {
            let s0 = gort::runtime::stats();
            let hs: Vec<_> = (0..1000).map(|i| gort::go(move || i)).collect();
            let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, 499_500);
            let (tx, rx) = gort::chan::bounded::<u32>(0);
            let p = gort::go(move || {
                for i in 0..100 {
                    tx.send(i).unwrap();
                }
            });
            for _ in 0..100 {
                rx.recv().unwrap();
            }
            p.join().unwrap();
            let s1 = gort::runtime::stats();
            assert!(s1.spawned >= s0.spawned + 1001, "{s0:?} {s1:?}");
            assert!(s1.context_switches >= s0.context_switches + 1001, "{s1:?}");
            assert!(s1.parks >= s0.parks + 50, "{s0:?} {s1:?}");
            assert_eq!(s1.gomaxprocs, 2);
            assert!(s1.threads >= 1 && s1.idle_threads <= s1.threads, "{s1:?}");
            assert!(s1.idle_procs <= 2, "{s1:?}");
            // A hog gets preempted (its P handed off) after 10 ms.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let st = stop.clone();
            let hog = gort::go(move || {
                while !st.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            gort::time::sleep(Duration::from_millis(100));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            hog.join().unwrap();
            let s2 = gort::runtime::stats();
            assert!(s2.preemptions > s1.preemptions, "{s1:?} {s2:?}");
            assert!(s2.handoffs > s1.handoffs, "{s1:?} {s2:?}");
            // Netpoll wake-ups.
            let (mut r, mut w) = gort::io::pipe().unwrap();
            let rd = gort::go(move || {
                let mut b = [0u8; 1];
                r.read_exact(&mut b).unwrap();
            });
            gort::time::sleep(Duration::from_millis(20));
            w.write_all(b"x").unwrap();
            rd.join().unwrap();
            let s3 = gort::runtime::stats();
            assert!(s3.netpoll_wakeups > s2.netpoll_wakeups, "{s2:?} {s3:?}");
            // A joined goroutine is counted until its M has buried it, which may come a moment
            // after its result woke the joiner (as with Go's NumGoroutine).
            let t = std::time::Instant::now();
            while gort::runtime::stats().goroutines != 1 {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "{:?}",
                    gort::runtime::stats()
                );
                gort::time::sleep(Duration::from_millis(1));
            }
            println!("DONE");
        }),
        other => panic!("unknown case {other}"),
    }
}
