//! Stack overflow detection, in child processes: the test binary re-runs itself with
//! `GORT_TEST_CHILD=<scenario>` and only the test `child`, which then crashes on purpose; the
//! parent checks how the child died and what it printed.

mod common;

use common::*;
use std::time::Duration;

const KIB: usize = 1024;

/// Recurses without bound; every frame keeps a `FRAME`-byte array alive.
#[inline(never)]
fn recurse<const FRAME: usize>(n: u64) -> u64 {
    let mut a = [0u8; FRAME];
    a[(n as usize) % FRAME] = n as u8;
    let a = std::hint::black_box(&mut a);
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    recurse::<FRAME>(n + 1) + a[FRAME / 2] as u64
}

/// A write to an unmapped address that is not any stack's guard page.
#[inline(never)]
fn wild_write() {
    let p = std::hint::black_box(std::ptr::without_provenance_mut::<u64>(64));
    // SAFETY: none; this crashes the child process on purpose.
    unsafe { p.write_volatile(1) };
}

/// Tells the parent the goroutine id, in one write(2) so that it cannot interleave with the
/// overflow report written from another thread.
fn announce(id: gort::GoId) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("CHILD-GOID={id}\n").as_bytes());
    ANNOUNCED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Set once the crashing goroutine's id is on stderr: with two Ps the goroutine could
/// otherwise crash the child before its parent printed the id.
static ANNOUNCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called by a goroutine before it crashes on purpose: waits until its id was announced.
fn after_announce<R>(crash: impl FnOnce() -> R) -> impl FnOnce() -> R {
    move || {
        while !ANNOUNCED.load(std::sync::atomic::Ordering::SeqCst) {
            gort::runtime::gosched();
        }
        crash()
    }
}

/// The child side of every scenario. In a normal test run (no GORT_TEST_CHILD) it does nothing.
#[test]
fn child() {
    let Some(role) = child_role() else { return };
    match role.as_str() {
        // A named goroutine with a 64 KiB stack.
        "named" => {
            let rt = gort::Builder::new().procs(2).build().unwrap();
            rt.run(|| {
                let h = gort::Goroutine::new()
                    .name("deep")
                    .stack_size(64 * KIB)
                    .spawn(after_announce(|| recurse::<512>(0)))
                    .unwrap();
                announce(h.id());
                let _ = h.join();
            });
        }
        // An unnamed goroutine with the runtime's default size, set to 16 KiB + 1 (rounds up
        // to 20 KiB).
        "unnamed-rounded" => {
            let rt = gort::Builder::new()
                .procs(2)
                .stack_size(16 * KIB + 1)
                .build()
                .unwrap();
            rt.run(|| {
                let h = gort::go(after_announce(|| recurse::<256>(0)));
                announce(h.id());
                let _ = h.join();
            });
        }
        // Stack size from GORT_STACK_SIZE; the overflowing goroutine is not the first one.
        "env" => {
            gort::run(|| {
                for _ in 0..10 {
                    gort::go(|| recurse::<64>(u64::MAX)).join().unwrap();
                }
                let h = gort::go(after_announce(|| recurse::<1024>(0)));
                announce(h.id());
                let _ = h.join();
            });
        }
        // The main goroutine itself.
        "main" => {
            gort::run(|| {
                announce(gort::runtime::goid());
                recurse::<512>(0)
            });
        }
        // Frames larger than the guard page: stack probes must still hit the guard.
        "bigframe" => {
            let rt = gort::Builder::new().procs(2).build().unwrap();
            rt.run(|| {
                // Neighbouring stacks in use, which a frame jumping the guard would corrupt.
                let g = std::sync::Arc::new(gort::sync::WaitGroup::new());
                g.add(1);
                for _ in 0..8 {
                    let g = g.clone();
                    gort::Goroutine::new()
                        .stack_size(128 * KIB)
                        .spawn(move || g.wait())
                        .unwrap();
                }
                let h = gort::Goroutine::new()
                    .name("big")
                    .stack_size(128 * KIB)
                    .spawn(after_announce(|| recurse::<{ 40 * 1024 }>(0)))
                    .unwrap();
                announce(h.id());
                let _ = h.join();
            });
        }
        // A plain thread overflowing after gort installed its handler: Rust's own report.
        "thread-overflow" => {
            let rt = gort::Builder::new().procs(1).build().unwrap();
            assert_eq!(rt.run(|| gort::go(|| 1).join().unwrap()), 1);
            let t = std::thread::Builder::new()
                .name("plain-deep".into())
                .stack_size(256 * KIB)
                .spawn(|| recurse::<512>(0))
                .unwrap();
            let _ = t.join();
        }
        // A wild write on a plain thread after gort installed its handler.
        "thread-segv" => {
            let rt = gort::Builder::new().procs(1).build().unwrap();
            assert_eq!(rt.run(|| 1), 1);
            wild_write();
        }
        // A wild write on a goroutine: a crash, but not a stack overflow.
        "goroutine-segv" => {
            let rt = gort::Builder::new().procs(2).build().unwrap();
            rt.run(|| {
                let h = gort::go(after_announce(wild_write));
                announce(h.id());
                let _ = h.join();
            });
        }
        _ => {}
    }
    if role != "none" {
        panic!("child scenario {role:?} did not crash");
    }
}

fn child_goid(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("CHILD-GOID="))
        .unwrap_or_else(|| {
            panic!(
                "the child did not announce its goroutine id:\n{}",
                tail(stderr)
            )
        });
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad CHILD-GOID line {line:?}:\n{}", tail(stderr)))
}

/// Runs scenario `role` and checks it died of SIGABRT with gort's overflow report.
fn expect_overflow(role: &str, env: &[(&str, &str)], name: Option<&str>, kib: usize) {
    let out = run_child("child", role, env, Duration::from_secs(60));
    let err = &out.stderr;
    assert_eq!(
        out.signal(),
        Some(6),
        "{role}: expected death by SIGABRT, got {:?}\n--- stderr ---\n{}",
        out.status,
        tail(err)
    );
    let id = child_goid(err);
    let line = err
        .lines()
        .find(|l| l.contains("fatal error: stack overflow in goroutine"))
        .unwrap_or_else(|| panic!("{role}: no overflow report on stderr:\n{}", tail(err)));
    let head = match name {
        Some(n) => format!("fatal error: stack overflow in goroutine {id} \"{n}\" "),
        None => format!("fatal error: stack overflow in goroutine {id} ("),
    };
    assert!(
        line.starts_with(&head),
        "{role}: want a line starting {head:?}, got {line:?}"
    );
    assert!(
        line.contains(&format!("{kib} KiB")),
        "{role}: stack size {kib} KiB missing: {line:?}"
    );
    assert!(
        line.contains("GORT_STACK_SIZE"),
        "{role}: no hint how to raise it: {line:?}"
    );
    assert!(
        line.contains("Goroutine::stack_size"),
        "{role}: no hint how to raise it: {line:?}"
    );
    assert!(
        !err.contains("has overflowed its stack"),
        "{role}: also reported as a thread overflow:\n{}",
        tail(err)
    );
}

#[test]
fn overflow_of_a_named_goroutine() {
    let out = run_child("child", "named", &[], Duration::from_secs(60));
    let err = &out.stderr;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(6),
        "{:?}\n{}",
        out.status,
        tail(err)
    );
    let id = child_goid(err);
    assert!(
        err.contains("fatal error: stack overflow in goroutine"),
        "{}",
        tail(err)
    );
    assert!(
        err.contains(&format!("goroutine {id} ")),
        "goroutine id {id} missing:\n{}",
        tail(err)
    );
    assert!(err.contains("\"deep\""), "name missing:\n{}", tail(err));
    assert!(err.contains("64 KiB"), "stack size missing:\n{}", tail(err));
    assert!(
        err.contains("GORT_STACK_SIZE"),
        "hint missing:\n{}",
        tail(err)
    );
    // And the exact shape.
    expect_overflow("named", &[], Some("deep"), 64);
}

#[test]
fn overflow_of_an_unnamed_goroutine_with_a_rounded_stack() {
    expect_overflow("unnamed-rounded", &[], None, 20);
}

#[test]
fn overflow_with_stack_size_from_the_environment() {
    expect_overflow("env", &[("GORT_STACK_SIZE", "32K")], None, 32);
}

#[test]
fn overflow_of_the_main_goroutine() {
    let out = run_child(
        "child",
        "main",
        &[("GORT_STACK_SIZE", "48K")],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.signal(),
        Some(6),
        "{:?}\n{}",
        out.status,
        tail(&out.stderr)
    );
    assert!(
        out.stderr
            .contains("fatal error: stack overflow in goroutine 1 (stack 48 KiB)"),
        "{}",
        tail(&out.stderr)
    );
}

#[test]
fn overflow_with_frames_larger_than_the_guard_page() {
    expect_overflow("bigframe", &[], Some("big"), 128);
}

#[test]
fn thread_overflow_is_reported_by_rust_not_gort() {
    let out = run_child("child", "thread-overflow", &[], Duration::from_secs(60));
    let err = &out.stderr;
    assert_eq!(out.signal(), Some(6), "{:?}\n{}", out.status, tail(err));
    assert!(
        err.contains("has overflowed its stack"),
        "Rust's report missing:\n{}",
        tail(err)
    );
    assert!(err.contains("plain-deep"), "{}", tail(err));
    assert!(
        !err.contains("stack overflow in goroutine"),
        "a thread overflow reported as a goroutine's:\n{}",
        tail(err)
    );
}

/// Runs a child that makes a wild write and checks it died of SIGSEGV, not reported as an
/// overflow.
fn assert_segv_not_overflow(role: &str) {
    let out = run_child("child", role, &[], Duration::from_secs(60));
    let err = &out.stderr;
    assert_eq!(
        out.signal(),
        Some(11),
        "want SIGSEGV: {:?}\n{}",
        out.status,
        tail(err)
    );
    assert!(
        !err.contains("stack overflow"),
        "misreported as an overflow:\n{}",
        tail(err)
    );
}

#[test]
fn segfault_on_a_plain_thread_is_not_an_overflow() {
    assert_segv_not_overflow("thread-segv");
}

#[test]
fn segfault_on_a_goroutine_is_not_an_overflow() {
    assert_segv_not_overflow("goroutine-segv");
}

/// The harness itself: a child that does not crash is reported as such.
#[test]
fn child_harness_sanity() {
    let out = run_child("child", "none", &[], Duration::from_secs(60));
    out.assert_passed();
}
