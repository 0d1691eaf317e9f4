//! The loom facade: the lock-free parts of the runtime (run queue, M parking) take their atomics
//! from here, so that `RUSTFLAGS="--cfg loom"` model-checks them with `loom`'s versions.

#[cfg(loom)]
pub(crate) use loom::sync;

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::*;
    }
}
