//! Context switching for x86_64 (System V ABI).
//!
//! Two primitives, written in assembly with CFI so that unwinders and debuggers can walk a
//! goroutine stack:
//!
//! * [`switch`] saves the callee-saved state of the running context on its own stack, stores the
//!   stack pointer through `save`, loads `load` as the new stack pointer and restores the state
//!   saved there. To the caller it looks like an ordinary function call that returns when some
//!   other context switches back, with the `arg` that context passed.
//! * [`init_stack`] lays out a fresh stack so that the first `switch` to it "returns" into
//!   `gort_trampoline`, which calls `entry(data)`. `entry` must never return.
//!
//! The saved-state layout (must match between `gort_switch` and `init_stack`), highest address
//! first. `sp` is the value stored through `save`:
//!
//! ```text
//!   suspended stack                  fresh stack (init_stack)
//!   +----------------------+         +----------------------+  <- top (16-aligned)
//!   | caller's frames ...  |         | 0 (padding)          |  top-8
//!   |                      |         | 0 (fake return addr) |  top-16 (rsp in the trampoline)
//!   | return address       |         | gort_trampoline      |  top-24 (`ret` target)
//!   | rbp                  |         | rbp = 0              |  top-32
//!   | rbx                  |         | rbx = 0              |  top-40
//!   | r12                  |         | r12 = entry          |  top-48
//!   | r13                  |         | r13 = data           |  top-56
//!   | r14                  |         | r14 = 0              |  top-64
//!   | r15                  |         | r15 = 0              |  top-72
//!   | mxcsr | x87 cw       |  <- sp  | mxcsr | x87 cw       |  top-80 <- sp
//!   +----------------------+         +----------------------+
//! ```
//!
//! MXCSR and the x87 control word are callee-saved in the System V ABI, so they travel with the
//! context. Loading either stalls the pipeline (about 2.5 ns per switch on the benchmark
//! machine), so the switch loads them only when the incoming context's values differ from the
//! outgoing one's, which are the thread's current ones: in practice almost never. All other registers are caller-saved and the compiler has already spilled them.

use core::arch::global_asm;

// The assembly. Every instruction is commented; the CFI directives describe where the caller's
// registers live at each point so that a backtrace taken inside `gort_switch` (for example of a
// parked goroutine) can continue into the goroutine's frames.
global_asm!(
    ".text",
    ".globl gort_switch",
    ".type gort_switch,@function",
    ".p2align 4",
    "gort_switch:",
    ".cfi_startproc",
    // rdi = save (*mut *mut u8), rsi = load (*mut u8), rdx = arg (usize)
    "push rbp", // save callee-saved registers on the current stack
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbp, -16",
    "push rbx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbx, -24",
    "push r12",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r12, -32",
    "push r13",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r13, -40",
    "push r14",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r14, -48",
    "push r15",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset r15, -56",
    "sub rsp, 8", // room for MXCSR and the x87 control word
    ".cfi_adjust_cfa_offset 8",
    "stmxcsr [rsp]",    // save MXCSR (4 bytes)
    "fnstcw [rsp + 4]", // save the x87 control word (2 bytes)
    "mov [rdi], rsp",   // *save = sp: this context is now suspended
    "mov rcx, rsp",     // our frame, whose MXCSR and cw are the thread's current ones
    // A suspended context's "pc": a dump unwinds a parked goroutine from here, with rsp = its
    // saved sp (the CFI here says CFA = rsp + 64). Must stay between the last push and the
    // stack switch.
    ".globl gort_switch_suspended",
    "gort_switch_suspended:",
    "mov rsp, rsi",   // switch to the other context's stack
    "mov eax, [rsp]", // its MXCSR ...
    "cmp eax, [rcx]", // ... against the thread's current one (saved in our frame above)
    "je 2f",          // equal (almost always): skip the load, which stalls the pipeline
    "ldmxcsr [rsp]",  // restore its MXCSR
    "2:",
    "movzx eax, word ptr [rsp + 4]", // its x87 control word ...
    "cmp ax, [rcx + 4]",             // ... against the current one
    "je 3f",
    "fldcw [rsp + 4]", // restore its x87 control word
    "3:",
    "add rsp, 8",
    ".cfi_adjust_cfa_offset -8",
    "pop r15", // restore its callee-saved registers
    ".cfi_adjust_cfa_offset -8",
    "pop r14",
    ".cfi_adjust_cfa_offset -8",
    "pop r13",
    ".cfi_adjust_cfa_offset -8",
    "pop r12",
    ".cfi_adjust_cfa_offset -8",
    "pop rbx",
    ".cfi_adjust_cfa_offset -8",
    "pop rbp",
    ".cfi_adjust_cfa_offset -8",
    "mov rax, rdx", // hand `arg` over as the return value
    "ret",          // resume it (or enter gort_trampoline on a fresh stack)
    ".cfi_endproc",
    ".size gort_switch, .-gort_switch",
    "",
    ".globl gort_trampoline",
    ".type gort_trampoline,@function",
    ".p2align 4",
    "gort_trampoline:",
    ".cfi_startproc",
    ".cfi_undefined rip", // the bottom of a goroutine stack: unwinders stop here
    "mov rdi, r13",       // first argument: data
    "call r12",           // entry(data); rsp is 16-aligned here (see init_stack)
    "ud2",                // entry never returns
    ".cfi_endproc",
    ".size gort_trampoline, .-gort_trampoline",
);

extern "sysv64" {
    fn gort_switch(save: *mut *mut u8, load: *mut u8, arg: usize) -> usize;
    fn gort_trampoline();
    fn gort_switch_suspended();
}

/// Where a suspended context stands, for unwinding it: the address of `gort_switch_suspended`
/// inside `gort_switch`. With `rip` = this, `rsp` = the saved stack pointer and `rbp` = the
/// saved rbp (at `sp + 48`), the CFI of `gort_switch` leads an unwinder into the suspended
/// context's own frames.
pub fn suspended_pc() -> usize {
    gort_switch_suspended as *const () as usize
}

/// Offset of the saved `rbp` from a suspended context's stack pointer (see the layout above).
pub const SAVED_RBP: usize = 48;

/// Size in bytes of the frame [`init_stack`] writes.
#[allow(dead_code)] // documents the layout; checked by the test below
pub const INIT_FRAME: usize = 80;

/// Suspends the current context and resumes the one whose stack pointer is `load`.
///
/// Returns the `arg` passed by whichever context later switches back to this one.
///
/// # Safety
/// `save` must be valid for a write. `load` must be a stack pointer stored by an earlier
/// `switch` (of a context that has not been resumed since) or returned by [`init_stack`], on a
/// stack that stays mapped while that context runs.
#[inline(always)]
pub unsafe fn switch(save: *mut *mut u8, load: *mut u8, arg: usize) -> usize {
    // SAFETY: forwarded contract; gort_switch follows the sysv64 ABI and preserves every
    // callee-saved register across the switch.
    unsafe { gort_switch(save, load, arg) }
}

/// Writes the initial frame at the top of a fresh stack and returns its stack pointer.
///
/// # Safety
/// `top` must be the 16-byte-aligned, exclusive upper end of writable memory with at least
/// [`INIT_FRAME`] bytes below it. `entry` must never return.
pub unsafe fn init_stack(
    top: *mut u8,
    entry: unsafe extern "sysv64" fn(usize) -> !,
    data: usize,
) -> *mut u8 {
    debug_assert_eq!(top as usize % 16, 0);
    let top = top as *mut u64;
    // SAFETY: the caller guarantees INIT_FRAME writable bytes below `top`.
    unsafe {
        top.sub(1).write(0); // padding
        top.sub(2).write(0); // fake return address seen by the trampoline's frame
        top.sub(3)
            .write(gort_trampoline as *const () as usize as u64); // `ret` target
        top.sub(4).write(0); // rbp
        top.sub(5).write(0); // rbx
        top.sub(6).write(entry as *const () as usize as u64); // r12
        top.sub(7).write(data as u64); // r13
        top.sub(8).write(0); // r14
        top.sub(9).write(0); // r15
                             // MXCSR default (all exceptions masked, round to nearest) | x87 control word default.
        top.sub(10).write(0x1F80 | (0x037F << 32));
        top.sub(10) as *mut u8
    }
}

/// Asks the CPU to start moving the cache lines of `[p, p + len)` into this core's cache
/// for writing (`prefetchw`, or a plain `prefetcht0` on a CPU without it), so that a later
/// store to memory another core wrote last does not stall. A hint only: it never faults,
/// whatever the address.
#[inline(always)]
pub fn prefetch_write(p: *const u8, len: usize) {
    let write = has_prefetchw();
    let mut a = (p as usize) & !63;
    let end = p as usize + len;
    while a < end {
        if write {
            // SAFETY: the CPU has PREFETCHW (CPUID, see `has_prefetchw`), which reads no memory
            // architecturally and cannot fault.
            unsafe {
                core::arch::asm!("prefetchw [{}]", in(reg) a, options(nostack, preserves_flags, readonly))
            };
        } else {
            // SAFETY: SSE's prefetch is baseline on x86_64 and cannot fault.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    a as *const i8,
                )
            };
        }
        a += 64;
    }
}

/// Whether the CPU has `prefetchw` (CPUID 0x8000_0001, ECX bit 8: PRFCHW, which AMD calls
/// 3DNowPrefetch). Asked once; 0 = not asked yet, 1 = no, 2 = yes.
#[inline(always)]
fn has_prefetchw() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
    static HAS: AtomicU8 = AtomicU8::new(0);
    match HAS.load(Relaxed) {
        0 => {
            // `__cpuid` is a safe function since Rust 1.89; the block is for older compilers.
            #[allow(unused_unsafe)]
            // SAFETY: CPUID is baseline on x86_64, and leaf 0x8000_0001 exists on every x86_64
            // CPU (it carries the long-mode bit).
            let ecx = unsafe { core::arch::x86_64::__cpuid(0x8000_0001) }.ecx;
            let yes = ecx & (1 << 8) != 0;
            HAS.store(1 + u8::from(yes), Relaxed);
            yes
        }
        v => v == 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "sysv64" fn never(_: usize) -> ! {
        unreachable!()
    }

    #[test]
    fn init_frame_matches_the_layout() {
        let mut buf = [0u64; 32];
        // SAFETY: the buffer is ours, 16-aligned at its end (u64 array at an even index), and
        // holds more than INIT_FRAME bytes below `top`.
        unsafe {
            let base = buf.as_mut_ptr();
            let top = base.add(32 - (base.add(32) as usize % 16) / 8) as *mut u8;
            let sp = init_stack(top, never, 7);
            assert_eq!(top as usize - sp as usize, INIT_FRAME);
            let words = sp as *const u64;
            assert_eq!(words.add(3).read(), 7, "r13 = data");
            assert_eq!(
                words.add(4).read(),
                never as *const () as usize as u64,
                "r12 = entry"
            );
            assert_eq!(
                words.add(7).read(),
                gort_trampoline as *const () as usize as u64,
                "ret"
            );
            // After the trampoline's `ret`, rsp must be 16-aligned for its `call`.
            assert_eq!((sp as usize + INIT_FRAME - 16) % 16, 0);
        }
    }
}
