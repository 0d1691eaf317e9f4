//! Architecture-specific context switching, one file per architecture.
//!
//! Each architecture module provides the same two primitives, `switch` and `init_stack`, and the
//! constant `INIT_FRAME`; see the module of your architecture for the stack layouts.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use self::x86_64::*;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("gort supports Linux on x86_64 only for now (aarch64 is planned)");
