//! Go's `sync.RWMutex`: many readers or one writer, writer-preferring.
//!
//! # Policy (Go's rwmutex.go)
//! - A writer that has to wait blocks **new readers** at once (they queue behind it), so a
//!   stream of overlapping readers cannot starve it: the readers already inside drain, and the
//!   last one hands the lock to the writer.
//! - When a writer unlocks, **the readers that queued meanwhile go first**, all at once, even if
//!   another writer waits; that writer keeps new readers out and gets the lock when those
//!   readers have left. So neither side starves.
//! - Writers are served FIFO. Taking a read lock while holding one (recursively) can deadlock
//!   if a writer arrives in between, as in Go.
//!
//! # State
//! One `AtomicUsize`: [`WRITER`] (a writer holds the lock), [`PENDING`] (writers are queued:
//! new readers must wait), [`RWAIT`] (readers are queued), and the number of active readers
//! in units of [`READER`]. The two queues live under one short std lock. Lock-free transitions
//! are only: a reader enters (`+READER`, when neither `WRITER` nor `PENDING` is set), a reader
//! leaves (`-READER`), a writer takes a free lock (`0 -> WRITER`) or releases one nobody waits
//! for (`WRITER -> 0`). Everything else happens under the queue lock, where `PENDING` always
//! equals "the writer queue is non-empty" and `RWAIT` "the reader queue is non-empty".
//!
//! Hand-offs: whoever releases the lock to a waiter updates the state for it (sets `WRITER`,
//! or adds the granted readers) before granting, so a granted waiter holds the lock outright.
//! A waiter cancelled after its grant just unlocks, passing the lock on.

use super::waitq::{self, OnUnwind, Token, WaitQueue};
use crate::sched::park::{WaitReason, Waiter};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Mutex as StdMutex;

/// A writer holds the lock.
const WRITER: usize = 1;
/// Writers are queued: readers arriving now must queue too.
const PENDING: usize = 2;
/// Readers are queued.
const RWAIT: usize = 4;
/// One active reader.
const READER: usize = 8;

/// Token value: the lock (shared or exclusive, as asked) was handed over.
const GRANTED: usize = 1;

struct Queues {
    readers: WaitQueue,
    writers: WaitQueue,
}

/// A reader-writer lock with Go's `sync.RWMutex` semantics: a waiting writer blocks new
/// readers, so writers are not starved. Blocking parks a goroutine (or blocks a plain thread).
/// No poisoning.
///
/// ```
/// use std::sync::Arc;
/// gort::run(|| {
///     let lock = Arc::new(gort::sync::RwLock::new(vec![1, 2]));
///     let l2 = lock.clone();
///     gort::go(move || l2.write().push(3)).join().unwrap();
///     let r1 = lock.read();
///     let r2 = lock.read(); // readers share
///     assert_eq!(r1.len() + r2.len(), 6);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    queues: StdMutex<Queues>,
    data: UnsafeCell<T>,
}

// SAFETY: a writer gets `&mut T` (possibly on another thread: needs `T: Send`), readers get
// `&T` on several threads at once (needs `T: Sync`); the rest is atomics and a std mutex.
// (`Send` is automatic: `UnsafeCell<T>` is `Send` when `T` is.)
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data; the read lock is released when dropped.
///
/// ```
/// let l = gort::sync::RwLock::new(5);
/// let r = l.read();
/// assert_eq!(*r, 5);
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a T>,
}

/// Exclusive access to an [`RwLock`]'s data; the write lock is released when dropped.
///
/// ```
/// let l = gort::sync::RwLock::new(5);
/// *l.write() += 1;
/// assert_eq!(*l.read(), 6);
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a mut T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `t`.
    ///
    /// ```
    /// static CONFIG: gort::sync::RwLock<u32> = gort::sync::RwLock::new(7);
    /// assert_eq!(*CONFIG.read(), 7);
    /// ```
    pub const fn new(t: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            queues: StdMutex::new(Queues {
                readers: WaitQueue::new(),
                writers: WaitQueue::new(),
            }),
            data: UnsafeCell::new(t),
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// ```
    /// assert_eq!(gort::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a shared (read) lock, waiting while a writer holds the lock or waits for it.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(1);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 2);
    /// ```
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if self.try_read_fast().is_err() {
            self.read_slow();
        }
        RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes a read lock if that needs no waiting: None while a writer holds the lock or
    /// waits for it.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(1);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_read_fast().ok().map(|()| RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Takes the exclusive (write) lock, waiting for readers and writers to leave.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(String::new());
    /// l.write().push('x');
    /// assert_eq!(*l.read(), "x");
    /// ```
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        // Acquire pairs with the Release of the last unlock (reader or writer).
        if self
            .state
            .compare_exchange(0, WRITER, Acquire, Relaxed)
            .is_err()
        {
            self.write_slow();
        }
        RwLockWriteGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    /// Takes the write lock if it is free (no reader, no writer, nobody waiting).
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(1);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        // Acquire pairs with the Release of the last unlock.
        self.state
            .compare_exchange(0, WRITER, Acquire, Relaxed)
            .ok()
            .map(|_| RwLockWriteGuard {
                lock: self,
                _marker: PhantomData,
            })
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut l = gort::sync::RwLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// One lock-free attempt to enter as a reader.
    fn try_read_fast(&self) -> Result<(), ()> {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & (WRITER | PENDING) != 0 {
                return Err(());
            }
            // Acquire pairs with the Release of the last writer's unlock.
            match self
                .state
                .compare_exchange_weak(s, s + READER, Acquire, Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => s = now,
            }
        }
    }

    fn read_slow(&self) {
        let mut q = waitq::lock(&self.queues);
        let mut s = self.state.load(Relaxed);
        loop {
            // Acquire (on entering) pairs with the Release of the last writer's unlock.
            let (new, enter) = if s & (WRITER | PENDING) == 0 {
                (s + READER, true)
            } else {
                (s | RWAIT, false)
            };
            match self.state.compare_exchange(s, new, Acquire, Relaxed) {
                Ok(_) if enter => return,
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let token = Token::new();
        let w = Waiter::current(WaitReason::RwLockRead);
        let is_g = w.is_goroutine();
        q.readers.push_back(&token, w, ());
        let cancel = OnUnwind::new(|| self.abandon(&token, false));
        waitq::wait(&self.queues, q, &token, is_g, |q| &mut q.readers);
        cancel.disarm();
        // Granted: the writer that released us counted us in.
    }

    fn write_slow(&self) {
        let mut q = waitq::lock(&self.queues);
        let mut s = self.state.load(Relaxed);
        loop {
            // Free and nobody queued before us: take it. Otherwise keep new readers out.
            let free = s & WRITER == 0 && s < READER && q.writers.is_empty();
            let new = if free { s | WRITER } else { s | PENDING };
            // Acquire (on taking it) pairs with the Release of the last unlock.
            match self.state.compare_exchange(s, new, Acquire, Relaxed) {
                Ok(_) if free => return,
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        let token = Token::new();
        let w = Waiter::current(WaitReason::RwLockWrite);
        let is_g = w.is_goroutine();
        q.writers.push_back(&token, w, ());
        let cancel = OnUnwind::new(|| self.abandon(&token, true));
        waitq::wait(&self.queues, q, &token, is_g, |q| &mut q.writers);
        cancel.disarm();
        // Granted: the releaser set WRITER for us.
    }

    fn read_unlock(&self) {
        // Release pairs with the Acquire of the next writer's CAS (or its token).
        let s = self.state.fetch_sub(READER, Release) - READER;
        if s < READER && s & PENDING != 0 {
            // The last reader out while a writer waits: hand it the lock.
            let mut q = waitq::lock(&self.queues);
            let w = self.release(&mut q, false);
            drop(q);
            waitq::wake_all(w);
        }
    }

    fn write_unlock(&self) {
        // Release pairs with the Acquire of the next locker's CAS.
        if self
            .state
            .compare_exchange(WRITER, 0, Release, Relaxed)
            .is_err()
        {
            let mut q = waitq::lock(&self.queues);
            // Release: the writes under the lock reach whoever we grant it to (their token
            // loads pair with the grant's own Release store, which comes after this).
            self.state.fetch_and(!WRITER, Release);
            let w = self.release(&mut q, true);
            drop(q);
            waitq::wake_all(w);
        }
    }

    /// Under the queue lock, with no writer holding the lock: let in whoever is next.
    /// `readers_first` (after a writer's unlock): the queued readers go before the next
    /// writer. Returns the waiters to wake once the lock is dropped.
    fn release(&self, q: &mut Queues, readers_first: bool) -> Vec<Waiter> {
        let mut s = self.state.load(Relaxed);
        loop {
            debug_assert_eq!(s & PENDING != 0, !q.writers.is_empty());
            debug_assert_eq!(s & RWAIT != 0, !q.readers.is_empty());
            if s & WRITER != 0 {
                // Already handed on (a cancelled writer's clean-up got here first).
                return Vec::new();
            }
            let readers_go = !q.readers.is_empty() && (readers_first || q.writers.is_empty());
            let new = if readers_go {
                // Every queued reader enters; PENDING (if set) keeps newcomers out.
                (s & !RWAIT) + q.readers.len() * READER
            } else if s < READER && !q.writers.is_empty() {
                // No reader inside: the front writer gets it.
                let last = q.writers.len() == 1;
                (s | WRITER) & if last { !PENDING } else { !0 }
            } else {
                return Vec::new();
            };
            // Relaxed: the grant's token store (Release) publishes this to the waiters.
            match self.state.compare_exchange(s, new, Relaxed, Relaxed) {
                Ok(_) if readers_go => return q.readers.grant_all(GRANTED),
                Ok(_) => return q.writers.grant_front(GRANTED).into_iter().collect(),
                Err(now) => s = now,
            }
        }
    }

    /// Cancellation clean-up for a reader or writer unwinding out of its wait.
    fn abandon(&self, token: &Token, writer: bool) {
        let mut q = waitq::lock(&self.queues);
        let queue = if writer {
            &mut q.writers
        } else {
            &mut q.readers
        };
        if queue.remove(token).is_some() {
            let empty = queue.is_empty();
            let bit = if writer { PENDING } else { RWAIT };
            if empty {
                self.state.fetch_and(!bit, Relaxed);
            }
            // A writer that leaves may unblock the readers queued behind it (or the next
            // writer, if no reader is inside).
            let ws = if writer && self.state.load(Relaxed) & WRITER == 0 {
                self.release(&mut q, false)
            } else {
                Vec::new()
            };
            drop(q);
            waitq::wake_all(ws);
            return;
        }
        drop(q);
        debug_assert_eq!(token.get(), GRANTED);
        if writer {
            self.write_unlock();
        } else {
            self.read_unlock();
        }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the read lock is held: no writer exists, so shared access is sound.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other guard exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(t: T) -> RwLock<T> {
        RwLock::new(t)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
