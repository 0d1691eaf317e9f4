//! Helpers shared by the integration tests: re-running the test binary as a child process,
//! a watchdog for tests that could hang, a quiet panic hook for expected panics, and
//! small process probes (thread ids, thread names, mapping counts).
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Once;
use std::time::{Duration, Instant};

/// Environment variable that tells a child test which scenario to run.
pub const CHILD_ENV: &str = "GORT_TEST_CHILD";

/// The scenario this process was started for, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// True if this process is a child started for `role`. Child tests return early otherwise,
/// so they pass trivially in a normal `cargo test` run.
pub fn is_child(role: &str) -> bool {
    child_role().as_deref() == Some(role)
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ChildOutput {
    /// The signal that killed the child, if any.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }

    /// Panics (with the child's output) unless the child's test passed: exit 0 and exactly one
    /// test ran (so the filter matched).
    pub fn assert_passed(&self) {
        assert!(
            self.status.success() && self.stdout.contains("1 passed"),
            "child failed: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        );
    }
}

/// The last few KiB of a child's output, for assertion messages.
pub fn tail(s: &str) -> &str {
    let n = s.len();
    let mut start = n.saturating_sub(6000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Re-runs this test binary with only the test `test_name`, `GORT_TEST_CHILD=role` and the given
/// extra environment (gort's own variables are removed unless given). Kills the child and panics
/// if it runs longer than `timeout`.
pub fn run_child(
    test_name: &str,
    role: &str,
    envs: &[(&str, &str)],
    timeout: Duration,
) -> ChildOutput {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .env_remove("GORTMAXPROCS")
        .env_remove("GORT_STACK_SIZE")
        .env_remove("GORT_DEBUG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the test binary");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = t_out.join().unwrap_or_default();
            let stderr = t_err.join().unwrap_or_default();
            panic!(
                "child {test_name} ({role}) did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                tail(&stdout),
                tail(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    ChildOutput {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        elapsed,
    }
}

/// Marker for panics the tests provoke on purpose; the quiet hook does not print them.
pub const EXPECTED: &str = "[expected panic]";

/// Panic messages gort itself produces that the tests provoke on purpose (and assert on).
const QUIET_GORT_MESSAGES: &[&str] = &[
    "called from inside a goroutine",
    "called outside a gort runtime",
    "ended the main goroutine",
    "a scoped goroutine panicked",
];

/// Installs (once per process) a panic hook that stays silent for payloads containing
/// [`EXPECTED`] and defers to the previous hook otherwise.
pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
                .unwrap_or("");
            if !msg.contains(EXPECTED) && !QUIET_GORT_MESSAGES.iter().any(|m| msg.contains(m)) {
                prev(info);
            }
        }));
    });
}

/// The message of a panic payload (`&str` or `String`), or "" for other payloads.
pub fn panic_msg(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f` on a helper thread and panics if it does not finish within `secs` seconds (the
/// thread is then abandoned). A panic in `f` is resumed here.
pub fn watchdog<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("watchdog-body".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("test body did not finish within {secs} s (hang?)"),
    }
}

extern "C" {
    fn gettid() -> i32;
}

/// The calling OS thread's kernel id. Out of line and TLS-free, so it is right even on a
/// goroutine that has just migrated.
#[inline(never)]
pub fn tid() -> i32 {
    // SAFETY: gettid(2) has no preconditions (glibc >= 2.30).
    unsafe { gettid() }
}

/// Names (comm) of this process's threads.
pub fn thread_names() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("comm")) {
                v.push(s.trim_end().to_string());
            }
        }
    }
    v
}

/// Number of threads of this process named `gort-m*` (the runtime's Ms).
pub fn gort_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("gort-m"))
        .count()
}

/// Whether the thread with kernel id `tid` still exists in this process.
pub fn thread_alive(tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// Lines in /proc/self/maps: the number of kernel mappings.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
