//! Synchronisation primitives that park the goroutine, not the thread (and block a plain
//! thread when used from one), with Go's `sync` semantics. No poisoning: a panic while a lock
//! is held just releases it.
//!
//! | type | Go | notes |
//! |---|---|---|
//! | [`Mutex`] | `sync.Mutex` | normal and starvation modes |
//! | [`RwLock`] | `sync.RWMutex` | writer-preferring |
//! | [`Condvar`] | `sync.Cond` | no spurious wake-ups, FIFO `notify_one` |
//! | [`Once`] | `sync.Once` | a panicking function still counts as done |
//! | [`WaitGroup`] | `sync.WaitGroup` | a negative counter panics |
//! | [`Semaphore`] | `x/sync/semaphore` | FIFO |
//! | [`Barrier`] | (`std::sync::Barrier`) | reusable |
//!
//! Every blocking wait except `WaitGroup`'s goes through one protocol, in `waitq.rs`: a waiter
//! record with a per-waiter token in a FIFO under a short std lock, granted by the waker under
//! that lock and woken after it. A goroutine cancelled by its runtime's shutdown while it waits
//! leaves its queue on the way out, and passes on whatever it had already been granted (lock
//! ownership, a permit, a `notify_one`).

mod barrier;
mod condvar;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;
mod waitq;

pub use self::barrier::{Barrier, BarrierWaitResult};
pub use self::condvar::Condvar;
pub use self::mutex::{Mutex, MutexGuard};
pub use self::once::Once;
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{Semaphore, SemaphorePermit};
pub use self::waitgroup::WaitGroup;
