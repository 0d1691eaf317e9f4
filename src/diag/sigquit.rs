//! SIGQUIT: dump every goroutine of every live runtime to stderr, and keep running.
//!
//! Go prints the dump and exits with status 2; gort's API keeps the program running, so that
//! a stuck service can be inspected (`kill -QUIT <pid>`) without being lost.
//!
//! The handler does only async-signal-safe work: it writes one byte to a pipe (non-blocking:
//! a signal that finds the pipe full is folded into the dump already pending) and, if the
//! program had installed a handler of its own before gort, calls it. A dedicated thread,
//! `gort-sigquit`, blocks reading the pipe and produces the dumps with ordinary code
//! (allocation, locks, symbolising): for each live runtime (the registry in `diag/mod.rs`), a
//! line `SIGQUIT: goroutine dump of runtime N` and every goroutine's block (as
//! `runtime::stack_dump(true)` without a "current" goroutine: the dumping thread is none).
//!
//! Chaining: the handler found at install time is called after ours when it is a real
//! function (the program wanted to hear of SIGQUIT too). If SIGQUIT was ignored (`SIG_IGN`,
//! as `nohup` and some supervisors set it), gort leaves it ignored, as Go does for the
//! signals it finds ignored. The default action (core dump) is never chained: it would end the
//! program the dump is meant to keep.

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, Ordering::*};
use std::sync::Once;

static INSTALL: Once = Once::new();
/// The pipe's write end, for the handler (-1 until installed).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The disposition found at install time; written once before our handler is installed and
/// only read by the handler afterwards.
static mut PREV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

/// Installs the SIGQUIT handler and starts the dump thread, once per process.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: querying the current disposition into PREV, which nobody reads yet.
        let ignored = unsafe {
            if libc::sigaction(libc::SIGQUIT, std::ptr::null(), (&raw mut PREV).cast()) != 0 {
                return;
            }
            (*(&raw const PREV).cast::<libc::sigaction>()).sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            return;
        }
        let mut fds = [0; 2];
        // SAFETY: pipe2 with a valid two-int array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return;
        }
        // The read end blocks: the thread sleeps in read(2) until a signal arrives.
        // SAFETY: fcntl on the fd we just made.
        unsafe { libc::fcntl(fds[0], libc::F_SETFL, 0) };
        let rd = fds[0];
        let spawned = std::thread::Builder::new()
            .name("gort-sigquit".into())
            .spawn(move || dump_loop(rd));
        if spawned.is_err() {
            return; // no thread, no handler: SIGQUIT keeps its previous meaning
        }
        WAKE_FD.store(fds[1], Release);
        // SAFETY: installing a handler with a zeroed, then filled, sigaction.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGQUIT, &sa, std::ptr::null_mut());
        }
    });
}

/// The signal handler: async-signal-safe only (a `write(2)`, then the chained handler).
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local and we restore it; write(2) is async-signal-safe and the
    // fd is our pipe (a full pipe just fails with EAGAIN: a dump is already pending).
    unsafe {
        let errno = *libc::__errno_location();
        let fd = WAKE_FD.load(Acquire);
        if fd >= 0 {
            libc::write(fd, [0u8].as_ptr().cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
    // SAFETY: PREV was written before this handler was installed and is never written again.
    let prev = unsafe { *(&raw const PREV).cast::<libc::sigaction>() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return;
    }
    // SAFETY: calling the program's own handler as the kernel would have, with the flavour
    // (one or three arguments) its flags name.
    unsafe {
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(h);
            f(sig, info, uctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

/// The dump thread: one round of dumps per wake-up (several signals may share one).
fn dump_loop(rd: libc::c_int) {
    // Deadlock detection counts this thread as gort's own: it only prints dumps and never
    // wakes a goroutine, so it cannot end a deadlock.
    let _internal = crate::sched::deadlock::Internal::enter();
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a local buffer from our pipe.
        let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let _ = std::io::stderr().write_all(dump_all().as_bytes());
    }
}

/// The dump SIGQUIT prints: every goroutine of every live runtime.
pub fn dump_all() -> String {
    let mut out = String::new();
    for sched in super::live_runtimes() {
        out.push_str(&format!(
            "SIGQUIT: goroutine dump of runtime {}\n\n",
            sched.id
        ));
        super::dump_others(&sched, None, &mut out);
    }
    out
}
