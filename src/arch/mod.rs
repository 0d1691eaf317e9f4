//! Architecture-specific context switching, one file per architecture.
//!
//! Each architecture module provides the same two primitives, `switch` and `init_stack`, and the
//! constant `INIT_FRAME`; see the module of your architecture for the stack layouts. This file
//! adds the portable `prefetch` hint.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use self::x86_64::*;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("gort supports Linux on x86_64 only for now (aarch64 is planned)");

/// Asks the CPU to start loading the first cache lines (up to 4) of `*p`: the scheduler calls it
/// for the G it will most likely touch next, which another thread usually wrote last (a
/// spawner, a waker, the M that freed it). Only a hint: it never faults, whatever `p` is, so a
/// pointer that went stale meanwhile is harmless.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p.cast::<i8>();
        for line in 0..std::mem::size_of::<T>().div_ceil(64).min(4) {
            // SAFETY: a prefetch reads nothing architecturally and never faults, so any
            // address is allowed (`wrapping_add` keeps the arithmetic itself defined).
            unsafe { _mm_prefetch(p.wrapping_add(line * 64), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
