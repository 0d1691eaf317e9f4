//! Channels with Go's semantics: unbuffered (rendezvous), buffered (FIFO) and unbounded;
//! multi-producer multi-consumer; closable from either side; usable from goroutines (which
//! park) and plain threads (which block) alike.
//!
//! - A send on a closed channel, or one with no receiver left, gives the value back
//!   ([`SendError`]); it never panics.
//! - After a close, receivers drain the buffered values, then get [`RecvError`].
//! - Dropping every [`Sender`] closes the channel; so does dropping every [`Receiver`].
//! - [`never()`] and [`never_sender()`] are Go's nil channel: never ready, for `select`.
//!
//! The machinery lives in `imp` (the channel), `waitq` (blocked operations) and `lock`; `select`
//! is in `crate::select`.
//!
//! ```
//! use gort::chan;
//! gort::run(|| {
//!     let (tx, rx) = chan::bounded(0);
//!     gort::go(move || {
//!         for i in 0..3 {
//!             tx.send(i).unwrap();
//!         }
//!     });
//!     assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
//! });
//! ```

mod error;
pub(crate) mod imp;
pub(crate) mod lock;
#[cfg(all(test, loom))]
mod loom_tests;
pub(crate) mod waitq;

pub use self::error::{
    RecvError, RecvTimeoutError, SelectTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySelectError, TrySendError,
};
#[doc(hidden)]
pub use crate::select::__select_no_case;
pub use crate::select::{Select, SelectedOperation};

use self::imp::{Chan, Wait};
use crate::sched::park::WaitReason;
use std::fmt;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A channel with a buffer of `cap` values; `cap == 0` makes it unbuffered (a send waits for
/// a receiver, as in Go).
///
/// ```
/// let (tx, rx) = gort::chan::bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap(); // the buffer holds two values; a third send would block
/// assert_eq!(rx.recv(), Ok(1));
/// assert_eq!(tx.capacity(), Some(2));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        cap < usize::MAX,
        "gort: channel capacity {cap} is too large"
    );
    let c = Arc::new(Chan::new(cap));
    (
        Sender {
            chan: Some(c.clone()),
        },
        Receiver { chan: Some(c) },
    )
}

/// A channel whose buffer grows without bound: sends never block.
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(rx.capacity(), None);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(usize::MAX));
    (
        Sender {
            chan: Some(c.clone()),
        },
        Receiver { chan: Some(c) },
    )
}

/// A receiver that is never ready: Go's nil channel, to switch a `select` case off.
///
/// ```
/// let rx = gort::chan::never::<i32>();
/// assert!(rx.try_recv().unwrap_err().is_empty());
/// assert!(!rx.close());
/// ```
pub fn never<T>() -> Receiver<T> {
    Receiver { chan: None }
}

/// A sender that is never ready: Go's nil channel, for `select` send cases.
///
/// ```
/// let tx = gort::chan::never_sender::<i32>();
/// assert!(tx.try_send(1).unwrap_err().is_full());
/// assert_eq!(tx.capacity(), Some(0));
/// ```
pub fn never_sender<T>() -> Sender<T> {
    Sender { chan: None }
}

/// The sending side of a channel. Clone it for more senders; dropping the last one closes the
/// channel.
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// let tx2 = tx.clone();
/// tx.send("a").unwrap();
/// tx2.send("b").unwrap();
/// drop((tx, tx2));
/// assert_eq!(rx.iter().collect::<Vec<_>>(), ["a", "b"]);
/// ```
pub struct Sender<T> {
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

/// The receiving side of a channel. Clone it for more receivers; dropping the last one closes
/// the channel (later sends give their value back).
///
/// ```
/// let (tx, rx) = gort::chan::bounded(1);
/// drop(rx);
/// assert!(tx.send(1).is_err());
/// ```
pub struct Receiver<T> {
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

fn capacity<T>(c: &Option<Arc<Chan<T>>>) -> Option<usize> {
    match c {
        None => Some(0),
        Some(c) if c.cap == usize::MAX => None,
        Some(c) => Some(c.cap),
    }
}

fn deadline(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Blocks forever (a nil channel): parks the goroutine (until its runtime shuts down) or the
/// thread, or waits out a timeout.
fn block_forever(timeout: Option<Duration>, reason: WaitReason) {
    match timeout {
        Some(d) => crate::time::sleep(d),
        None => loop {
            if crate::sched::park::current().is_some() {
                crate::sched::park::set_wait_reason(reason);
                crate::sched::park::park(&mut || true);
            } else {
                crate::sched::deadlock::park_thread();
            }
        },
    }
}

impl<T> Sender<T> {
    /// Sends `v`, waiting (parking the goroutine, or blocking the thread) for room or, on an
    /// unbuffered channel, for a receiver. Gives `v` back if the channel is closed.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     let h = gort::go(move || rx.recv().unwrap());
    ///     tx.send(42).unwrap();
    ///     assert_eq!(h.join().unwrap(), 42);
    /// });
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        match &self.chan {
            None => {
                block_forever(None, WaitReason::ChanSendNil);
                unreachable!()
            }
            Some(c) => c.send(v, Wait::Until(None)).map_err(|(v, _)| SendError(v)),
        }
    }

    /// Sends `v` if that can be done without waiting.
    ///
    /// ```
    /// use gort::chan::{bounded, TrySendError};
    /// let (tx, rx) = bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let Some(c) = &self.chan else {
            return Err(TrySendError::Full(v));
        };
        c.send(v, Wait::Now).map_err(|(v, full)| {
            if full {
                TrySendError::Full(v)
            } else {
                TrySendError::Closed(v)
            }
        })
    }

    /// [`send`](Sender::send), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = gort::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// assert!(tx.send_timeout(2, Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        let Some(c) = &self.chan else {
            block_forever(Some(timeout), WaitReason::ChanSendNil);
            return Err(SendTimeoutError::Timeout(v));
        };
        c.send(v, Wait::Until(deadline(timeout)))
            .map_err(|(v, timed_out)| {
                if timed_out {
                    SendTimeoutError::Timeout(v)
                } else {
                    SendTimeoutError::Closed(v)
                }
            })
    }

    /// Closes the channel (Go's `close`): true if this call closed it. Blocked senders get
    /// their values back; receivers drain the buffer, then get an error.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// assert!(tx.close());
    /// assert!(!tx.close());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.close())
    }

    /// True once the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded::<()>(0);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// The number of buffered values.
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded(4);
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// True if no value is buffered.
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded::<u8>(4);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer size: `Some(0)` for an unbuffered channel, `None` for an unbounded one.
    ///
    /// ```
    /// assert_eq!(gort::chan::bounded::<u8>(0).0.capacity(), Some(0));
    /// assert_eq!(gort::chan::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting (parking the goroutine, or blocking the thread) until one
    /// comes; `Err` once the channel is closed and drained.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     gort::go(move || tx.send("hello").unwrap());
    ///     assert_eq!(rx.recv(), Ok("hello"));
    ///     assert!(rx.recv().is_err()); // the sender is gone: closed
    /// });
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        match &self.chan {
            None => {
                block_forever(None, WaitReason::ChanReceiveNil);
                unreachable!()
            }
            Some(c) => c.recv(Wait::Until(None)).map_err(|_| RecvError),
        }
    }

    /// Receives a value if one is ready now.
    ///
    /// ```
    /// use gort::chan::{bounded, TryRecvError};
    /// let (tx, rx) = bounded(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let Some(c) = &self.chan else {
            return Err(TryRecvError::Empty);
        };
        // (A select's send case that is ready delivers as soon as it runs: see `Chan::pair`.)
        c.recv(Wait::Now).map_err(|empty| {
            if empty {
                TryRecvError::Empty
            } else {
                TryRecvError::Closed
            }
        })
    }

    /// [`recv`](Receiver::recv), giving up after `timeout`.
    ///
    /// ```
    /// use gort::chan::RecvTimeoutError;
    /// use std::time::Duration;
    /// let (tx, rx) = gort::chan::bounded::<i32>(0);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// drop(tx);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Closed));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let Some(c) = &self.chan else {
            block_forever(Some(timeout), WaitReason::ChanReceiveNil);
            return Err(RecvTimeoutError::Timeout);
        };
        c.recv(Wait::Until(deadline(timeout))).map_err(|timed_out| {
            if timed_out {
                RecvTimeoutError::Timeout
            } else {
                RecvTimeoutError::Closed
            }
        })
    }

    /// A blocking iterator over received values; it ends when the channel is closed and
    /// drained (Go's `for v := range ch`).
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// (1..=3).for_each(|i| tx.send(i).unwrap());
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<i32>(), 6);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values ready now.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().count(), 2);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Closes the channel from the receiving side: true if this call closed it.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// assert!(rx.close());
    /// assert!(tx.send(1).is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.close())
    }

    /// True once the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded::<()>(0);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// The number of buffered values.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(2);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// True if no value is buffered.
    ///
    /// ```
    /// let (_tx, rx) = gort::chan::bounded::<u8>(2);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer size: `Some(0)` for an unbuffered channel, `None` for an unbounded one.
    ///
    /// ```
    /// assert_eq!(gort::chan::bounded::<u8>(3).1.capacity(), Some(3));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        if let Some(c) = &self.chan {
            c.senders.fetch_add(1, Relaxed);
        }
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        if let Some(c) = &self.chan {
            c.receivers.fetch_add(1, Relaxed);
        }
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(c) = &self.chan {
            if c.senders.fetch_sub(1, AcqRel) == 1 {
                c.close();
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some(c) = &self.chan {
            if c.receivers.fetch_sub(1, AcqRel) == 1 {
                c.close();
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// A blocking iterator over a receiver's values (see [`Receiver::iter`]).
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// A non-blocking iterator over a receiver's ready values (see [`Receiver::try_iter`]).
///
/// ```
/// let (tx, rx) = gort::chan::unbounded::<u8>();
/// assert_eq!(rx.try_iter().next(), None);
/// drop(tx);
/// ```
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// An owning blocking iterator (see `impl IntoIterator for Receiver`).
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// tx.send('x').unwrap();
/// drop(tx);
/// let v: Vec<char> = rx.into_iter().collect();
/// assert_eq!(v, ['x']);
/// ```
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Iter { .. }")
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("TryIter { .. }")
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("IntoIter { .. }")
    }
}
