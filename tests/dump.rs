//! Goroutine dumps: headers and wait reasons, parked backtraces, `created by`, SIGQUIT.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Sleeps until `cond` holds (at most ~10 s).
fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        gort::time::sleep(Duration::from_millis(1));
    }
    panic!("condition never held");
}

/// The block of goroutine `id` in a dump.
fn block(dump: &str, id: gort::GoId) -> &str {
    let head = format!("goroutine {id} ");
    dump.split("\n\n")
        .find(|b| b.starts_with(&head))
        .unwrap_or_else(|| panic!("no block for goroutine {id} in:\n{dump}"))
}

/// Dumps until goroutine `id`'s header shows `state`, and returns its block.
fn block_in_state(id: gort::GoId, state: &str) -> String {
    let want = format!("[{state}]:");
    let mut last = String::new();
    for _ in 0..5000 {
        let d = gort::runtime::stack_dump(true);
        let b = block(&d, id).to_string();
        if b.lines().next().unwrap().ends_with(&want) {
            return b;
        }
        last = b;
        gort::time::sleep(Duration::from_millis(2));
    }
    panic!("goroutine {id} never showed {want}; last:\n{last}");
}

#[inline(never)]
fn dump_test_receiver(rx: gort::chan::Receiver<u32>) -> u32 {
    rx.recv().unwrap()
}

#[test]
fn parked_recv_names_its_caller_and_creation_site() {
    gort::run(|| {
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let (line, h) = (line!(), gort::go(move || dump_test_receiver(rx)));
        let b = block_in_state(h.id(), "chan receive");
        assert!(b.starts_with(&format!("goroutine {} [chan receive]:\n", h.id())));
        // The walk reaches the user's function that called `recv`, and the bottom frames.
        assert!(b.contains("dump::dump_test_receiver"), "{b}");
        assert!(b.contains("gort::chan::Receiver<T>::recv"), "{b}");
        assert!(b.contains("/tests/dump.rs:"), "{b}");
        let last = b.lines().last().unwrap();
        assert!(
            last.starts_with(&format!("created by {}:{line}:", file!())),
            "{b}"
        );
        tx.send(1).unwrap();
        assert_eq!(h.join().unwrap(), 1);
    });
}

#[test]
fn named_goroutine_header() {
    gort::run(|| {
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let h = gort::Goroutine::new()
            .name("worker")
            .spawn(move || rx.recv().unwrap())
            .unwrap();
        let b = block_in_state(h.id(), "chan receive");
        assert!(
            b.starts_with(&format!(
                "goroutine {} \"worker\" [chan receive]:\n",
                h.id()
            )),
            "{b}"
        );
        tx.send(1).unwrap();
        h.join().unwrap();
    });
}

#[test]
fn wait_reasons() {
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let mut gs = Vec::new();

        let (stx, _srx) = gort::chan::bounded::<u32>(0);
        gs.push((
            gort::go(move || {
                let _ = stx.send(1);
            })
            .id(),
            "chan send",
        ));

        let (_tx1, rx1) = gort::chan::bounded::<u32>(0);
        let (_tx2, rx2) = gort::chan::bounded::<u32>(0);
        let sel = gort::go(move || {
            let mut s = gort::chan::Select::new();
            s.recv(&rx1);
            s.recv(&rx2);
            let _ = s.select();
        });
        gs.push((sel.id(), "select"));

        gs.push((
            gort::go(|| gort::time::sleep(Duration::from_secs(3600))).id(),
            "sleep",
        ));

        let mu = Arc::new(gort::sync::Mutex::new(()));
        let held = mu.lock();
        let mu2 = mu.clone();
        gs.push((gort::go(move || drop(mu2.lock())).id(), "sync.Mutex.Lock"));

        let rw = Arc::new(gort::sync::RwLock::new(()));
        let w = rw.write();
        let rw2 = rw.clone();
        gs.push((
            gort::go(move || drop(rw2.read())).id(),
            "sync.RWMutex.RLock",
        ));

        let wg = Arc::new(gort::sync::WaitGroup::new());
        wg.add(1);
        let wg2 = wg.clone();
        gs.push((gort::go(move || wg2.wait()).id(), "semacquire"));

        let (r, mut pw) = gort::io::pipe().unwrap();
        gs.push((
            gort::go(move || {
                let mut b = [0u8; 1];
                let _ = (&r).read(&mut b);
            })
            .id(),
            "IO wait",
        ));

        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        gs.push((
            gort::go(move || {
                gort::blocking(|| {
                    while !s2.load(SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .id(),
            "syscall",
        ));

        let (jtx, jrx) = gort::chan::bounded::<u32>(0);
        let inner = gort::go(move || jrx.recv().unwrap());
        gs.push((gort::go(move || inner.join().unwrap()).id(), "join"));

        let rw3 = rw.clone();
        gs.push((
            gort::go(move || drop(rw3.write())).id(),
            "sync.RWMutex.Lock",
        ));

        let cv = Arc::new((gort::sync::Mutex::new(false), gort::sync::Condvar::new()));
        let cv2 = cv.clone();
        gs.push((
            gort::go(move || {
                let mut g = cv2.0.lock();
                while !*g {
                    g = cv2.1.wait(g);
                }
            })
            .id(),
            "sync.Cond.Wait",
        ));

        let sem = Arc::new(gort::sync::Semaphore::new(0));
        let sem2 = sem.clone();
        gs.push((gort::go(move || drop(sem2.acquire())).id(), "semacquire"));

        let bar = Arc::new(gort::sync::Barrier::new(2));
        let bar2 = bar.clone();
        gs.push((
            gort::go(move || {
                bar2.wait();
            })
            .id(),
            "barrier",
        ));

        let once = Arc::new(gort::sync::Once::new());
        let (otx, orx) = gort::chan::bounded::<u32>(0);
        let once2 = once.clone();
        let runner = gort::go(move || {
            once2.call_once(|| {
                let _ = orx.recv();
            })
        });
        block_in_state(runner.id(), "chan receive");
        let once3 = once.clone();
        gs.push((gort::go(move || once3.call_once(|| {})).id(), "sync.Once"));

        gs.push((
            gort::go(|| {
                let _ = gort::chan::never::<u32>().recv();
            })
            .id(),
            "chan receive (nil chan)",
        ));
        gs.push((
            gort::go(|| drop(gort::chan::Select::new().select())).id(),
            "select (no cases)",
        ));

        for (id, state) in &gs {
            let b = block_in_state(*id, state);
            if *state == "syscall" {
                assert!(b.contains("stack unavailable"), "{b}");
            } else {
                // A parked goroutine: a walked backtrace (through the park) and `created by`.
                assert!(b.contains("gort::sched::park::park_"), "{state}: {b}");
                assert!(b.lines().last().unwrap().starts_with("created by "), "{b}");
            }
        }

        drop(held);
        drop(w);
        wg.done();
        pw.write_all(b"x").unwrap();
        stop.store(true, SeqCst);
        jtx.send(1).unwrap();
        *cv.0.lock() = true;
        cv.1.notify_all();
        sem.add_permits(1);
        bar.wait();
        otx.send(1).unwrap();
        runner.join().unwrap();
    });
}

#[test]
fn runnable_goroutine() {
    // One P, and the dump runs on it before anything else can: the new goroutine never ran.
    gort::Builder::new().procs(1).build().unwrap().run(|| {
        let h = gort::go(|| 1);
        let d = gort::runtime::stack_dump(true);
        let b = block(&d, h.id());
        assert!(
            b.starts_with(&format!("goroutine {} [runnable]:\n", h.id())),
            "{b}"
        );
        assert!(b.contains("stack unavailable"), "{b}");
        h.join().unwrap();
    });
}

#[test]
fn running_goroutine() {
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let (started, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (s1, s2) = (started.clone(), stop.clone());
        let h = gort::go(move || {
            s1.store(true, SeqCst);
            while !s2.load(SeqCst) {
                std::hint::spin_loop();
            }
        });
        wait_until(|| started.load(SeqCst));
        let b = block_in_state(h.id(), "running");
        assert!(
            b.contains("goroutine running on other thread; stack unavailable"),
            "{b}"
        );
        stop.store(true, SeqCst);
        h.join().unwrap();
    });
}

/// Parked goroutines are pinned while their stacks are walked, and woken as usual: dumps in
/// a loop while goroutines ping-pong must neither lose a wake-up nor crash.
#[test]
fn dumps_race_with_wakeups() {
    gort::Builder::new().procs(2).build().unwrap().run(|| {
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let (tx2, rx2) = gort::chan::bounded::<u32>(0);
        let a = gort::go(move || {
            for i in 0..20_000 {
                tx.send(i).unwrap();
                rx2.recv().unwrap();
            }
        });
        let b = gort::go(move || {
            for _ in 0..20_000 {
                let v = rx.recv().unwrap();
                tx2.send(v).unwrap();
            }
        });
        while !a.is_finished() || !b.is_finished() {
            let d = gort::runtime::stack_dump(true);
            assert!(d.starts_with("goroutine 1 [running]:"));
            gort::runtime::gosched();
        }
        a.join().unwrap();
        b.join().unwrap();
    });
}

const CHILD: &str = "GORT_DUMP_TEST_SIGQUIT_CHILD";

#[test]
fn sigquit_prints_a_dump_and_keeps_running() {
    if std::env::var_os(CHILD).is_some() {
        return sigquit_child();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigquit_prints_a_dump_and_keeps_running",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("child ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
    }
    // SAFETY: sending a signal to our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) }, 0);
    // Read stderr until the parked goroutine's block has been printed in full.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut dump = String::new();
    loop {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "no dump; got:\n{dump}");
        dump.push_str(&l);
        if dump.contains("sigquit_child_receiver") && l.starts_with("created by ") {
            break;
        }
    }
    child.stdin.take().unwrap().write_all(b"go on\n").unwrap();
    line.clear();
    out.read_to_string(&mut line).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    assert!(line.contains("child still running"), "{line}");
    assert!(
        dump.contains("SIGQUIT: goroutine dump of runtime"),
        "{dump}"
    );
    assert!(dump.contains(" [chan receive]:\n"), "{dump}");
}

#[inline(never)]
fn sigquit_child_receiver(rx: gort::chan::Receiver<u32>) -> u32 {
    rx.recv().unwrap()
}

fn sigquit_child() {
    gort::run(|| {
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let h = gort::go(move || sigquit_child_receiver(rx));
        let _ = block_in_state(h.id(), "chan receive");
        println!("child ready");
        let mut l = String::new();
        gort::blocking(|| std::io::stdin().read_line(&mut l)).unwrap();
        tx.send(1).unwrap();
        h.join().unwrap();
        println!("child still running");
    });
}
