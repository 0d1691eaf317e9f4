//! The channel error types, shaped as crossbeam-channel's: the ones that carry the value give
//! it back (`into_inner`), and none needs `T: Debug` to be debugged.

use std::error::Error;
use std::fmt;

/// A [`send`](super::Sender::send) on a closed channel; the value comes back.
///
/// ```
/// let (tx, rx) = gort::chan::bounded::<i32>(1);
/// drop(rx);
/// assert_eq!(tx.send(7).unwrap_err().into_inner(), 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why a [`try_send`](super::Sender::try_send) failed; the value comes back.
///
/// ```
/// use gort::chan::{bounded, TrySendError};
/// let (tx, _rx) = bounded(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full (or, unbuffered, no receiver waits).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// Why a [`send_timeout`](super::Sender::send_timeout) failed; the value comes back.
///
/// ```
/// use gort::chan::{bounded, SendTimeoutError};
/// use std::time::Duration;
/// let (tx, _rx) = bounded(0);
/// let err = tx.send_timeout(5, Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err, SendTimeoutError::Timeout(5));
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// Nobody took the value in time.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

/// A [`recv`](super::Receiver::recv) on a channel that is closed and drained.
///
/// ```
/// let (tx, rx) = gort::chan::bounded::<i32>(1);
/// tx.close();
/// assert_eq!(rx.recv(), Err(gort::chan::RecvError));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why a [`try_recv`](super::Receiver::try_recv) found nothing.
///
/// ```
/// use gort::chan::{bounded, TryRecvError};
/// let (tx, rx) = bounded::<i32>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// tx.close();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// No value is ready.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

/// Why a [`recv_timeout`](super::Receiver::recv_timeout) failed.
///
/// ```
/// use gort::chan::{bounded, RecvTimeoutError};
/// use std::time::Duration;
/// let (_tx, rx) = bounded::<i32>(0);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// No value arrived in time.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

/// [`Select::try_select`](super::Select::try_select) found no ready case.
///
/// ```
/// let (_tx, rx) = gort::chan::bounded::<i32>(0);
/// let mut sel = gort::chan::Select::new();
/// sel.recv(&rx);
/// assert!(sel.try_select().is_err());
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct TrySelectError;

/// [`Select::select_timeout`](super::Select::select_timeout) timed out.
///
/// ```
/// use std::time::Duration;
/// let (_tx, rx) = gort::chan::bounded::<i32>(0);
/// let mut sel = gort::chan::Select::new();
/// sel.recv(&rx);
/// assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
/// ```
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct SelectTimeoutError;

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let e = gort::chan::SendError("hi");
    /// assert_eq!(e.into_inner(), "hi");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let e = gort::chan::TrySendError::Full(3);
    /// assert_eq!(e.into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// True for [`TrySendError::Full`].
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True for [`TrySendError::Closed`].
    ///
    /// ```
    /// assert!(gort::chan::TrySendError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let e = gort::chan::SendTimeoutError::Timeout(4);
    /// assert_eq!(e.into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }

    /// True for [`SendTimeoutError::Timeout`].
    ///
    /// ```
    /// assert!(gort::chan::SendTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// True for [`SendTimeoutError::Closed`].
    ///
    /// ```
    /// assert!(gort::chan::SendTimeoutError::Closed(()).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendTimeoutError::Closed(_))
    }
}

impl TryRecvError {
    /// True for [`TryRecvError::Empty`].
    ///
    /// ```
    /// assert!(gort::chan::TryRecvError::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// True for [`TryRecvError::Closed`].
    ///
    /// ```
    /// assert!(gort::chan::TryRecvError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }
}

impl RecvTimeoutError {
    /// True for [`RecvTimeoutError::Timeout`].
    ///
    /// ```
    /// assert!(gort::chan::RecvTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// True for [`RecvTimeoutError::Closed`].
    ///
    /// ```
    /// assert!(gort::chan::RecvTimeoutError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

macro_rules! display {
    ($($t:ty => |$s:ident| $msg:expr;)*) => {$(
        impl<T> fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $s = self;
                f.write_str($msg)
            }
        }
        impl<T> Error for $t {}
    )*};
}

display! {
    SendError<T> => |_s| "sending on a closed channel";
    TrySendError<T> => |s| match s {
        TrySendError::Full(_) => "sending on a full channel",
        TrySendError::Closed(_) => "sending on a closed channel",
    };
    SendTimeoutError<T> => |s| match s {
        SendTimeoutError::Timeout(_) => "timed out waiting on send operation",
        SendTimeoutError::Closed(_) => "sending on a closed channel",
    };
}

macro_rules! display_plain {
    ($($t:ty => |$s:ident| $msg:expr;)*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $s = self;
                f.write_str($msg)
            }
        }
        impl Error for $t {}
    )*};
}

display_plain! {
    RecvError => |_s| "receiving on a closed channel";
    TryRecvError => |s| match s {
        TryRecvError::Empty => "receiving on an empty channel",
        TryRecvError::Closed => "receiving on a closed channel",
    };
    RecvTimeoutError => |s| match s {
        RecvTimeoutError::Timeout => "timed out waiting on receive operation",
        RecvTimeoutError::Closed => "receiving on a closed channel",
    };
    TrySelectError => |_s| "all operations in select would block";
    SelectTimeoutError => |_s| "timed out waiting on select";
}
