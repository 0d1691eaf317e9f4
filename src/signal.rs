//! Stack-overflow detection: a SIGSEGV/SIGBUS handler on an alternate signal stack.
//!
//! A goroutine that overflows its stack touches the guard page below it (Rust's stack probes
//! touch every page of a large frame, so no frame can jump over the guard). The handler checks
//! whether the fault address lies in the guard page of the goroutine running on this thread;
//! if so it prints `fatal error: stack overflow in goroutine 12 "parser" (stack 256 KiB); ...`
//! and aborts. Any other fault goes to the handler that was installed before ours (Rust's own,
//! which reports main-thread overflows, or the default action): we restore it and return, so the
//! faulting instruction runs again under it.
//!
//! # What may run here
//! Only async-signal-safe work: no allocation, no locks, no panics. The handler reads the
//! current M through its `#[inline(never)]` TLS accessor (the thread is the one that faulted,
//! so it is the right one), formats into a stack buffer and calls `write(2)` and `abort(3)`.

use crate::sched::m::current_m;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::sync::Once;

static INSTALL: Once = Once::new();
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

/// Size of the alternate signal stack we give Ms that lack one.
const ALTSTACK: usize = 64 * 1024;

/// Installs the handlers once per process.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with valid arguments. PREV_* are filled by the first two calls,
        // before our handler is installed by the last two, and only read afterwards.
        unsafe {
            libc::sigaction(libc::SIGSEGV, std::ptr::null(), (&raw mut PREV_SEGV).cast());
            libc::sigaction(libc::SIGBUS, std::ptr::null(), (&raw mut PREV_BUS).cast());
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
}

/// Gives the calling M an alternate signal stack if it has none (the handler must not run on
/// the overflowed stack).
pub fn init_thread() {
    // SAFETY: querying and setting this thread's signal stack with valid arguments; the stack
    // we map is leaked on purpose (it must outlive the thread's last signal).
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut old) == 0
            && old.ss_flags & libc::SS_DISABLE == 0
        {
            return; // std already gave this thread one
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            ALTSTACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        let st = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: ALTSTACK,
        };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

/// A fixed buffer implementing `fmt::Write`, so the handler formats without allocating.
struct Buf {
    b: [u8; 512],
    n: usize,
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let take = s.len().min(self.b.len() - self.n);
        self.b[self.n..self.n + take].copy_from_slice(&s.as_bytes()[..take]);
        self.n += take;
        Ok(())
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let m = current_m();
    if !m.is_null() {
        // SAFETY: this thread's own M; the running G (if any) is alive while it runs. We only
        // read plain fields.
        unsafe {
            let ml = &*(*m).local.get();
            if let Some(g) = ml.curg.as_deref() {
                let ctx = &*g.ctx.get();
                if let Some(stack) = ctx.stack.as_ref() {
                    let (lo, hi) = stack.guard();
                    if addr >= lo && addr < hi {
                        let mut b = Buf { b: [0; 512], n: 0 };
                        let id = g.id();
                        let _ = write!(b, "fatal error: stack overflow in goroutine {id}");
                        if let Some(n) = g.name() {
                            let _ = write!(b, " {n:?}");
                        }
                        let _ = writeln!(
                            b,
                            " (stack {} KiB); raise it with Goroutine::stack_size or GORT_STACK_SIZE",
                            stack.size() / 1024
                        );
                        libc::write(2, b.b.as_ptr().cast(), b.n);
                        libc::abort();
                    }
                }
            }
        }
    }
    // Not ours: reinstate the previous handler and return; the fault repeats under it.
    // SAFETY: PREV_* were filled by install() before this handler could run.
    unsafe {
        let prev = if sig == libc::SIGBUS {
            (&raw const PREV_BUS).cast()
        } else {
            (&raw const PREV_SEGV).cast()
        };
        libc::sigaction(sig, prev, std::ptr::null_mut());
    }
}
