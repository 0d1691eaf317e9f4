//! Synchronisation primitives that park the goroutine, not the thread (and block a plain
//! thread when used from one). No poisoning.
//!
//! This module grows with the channels issue (Mutex, RwLock, Condvar, Once, Semaphore,
//! Barrier); [`WaitGroup`] comes first because the runtime's own benchmarks need it.

mod waitgroup;

pub use self::waitgroup::WaitGroup;
