//! The `select!` macro: crossbeam-channel's syntax over [`Select`](crate::chan::Select).
//!
//! Expansion, for `recv(r0) -> a => A, send(s1, v) -> b => B, default => D`:
//! ```text
//! let outcome = {
//!     let mut sel = Select::new();
//!     let r0 = &r0_expr; let i0 = sel.recv(r0);   // one nested block per case, so each
//!     let s1 = &s1_expr; let i1 = sel.send(s1);   // case's bindings are distinct (hygiene)
//!     match sel.try_select() {                    // select() without default,
//!         Ok(op) if op.index() == i0 => Ok(op.recv(r0)),        // select_timeout(t)
//!         Ok(op) if op.index() == i1 => Err(Ok(op.send(s1, v))),  // with default(t)
//!         Err(_) => Err(Err(())),
//!     }
//! };                                              // every borrow and temporary ends here
//! match outcome { Ok(a) => A, Err(Ok(b)) => B, Err(Err(())) => D }
//! ```
//! So case bodies run after the select's borrows end (a body may reassign a case's channel
//! variable, as Go code sets a channel to nil), and they are not closures: `break`,
//! `continue` and `return` act on the enclosing code. A send case's value expression is
//! evaluated only if that case is chosen; temporaries in a case's channel expression live until
//! the operation completes.

/// Waits on several channel operations and runs the body of the one that completes, as Go's
/// `select` (crossbeam-channel's syntax). Ready cases are chosen uniformly at random; a closed
/// channel counts as ready; [`never()`](crate::chan::never) never does.
///
/// Cases: `recv(r) -> res => body` (`res: Result<T, RecvError>`), `send(s, v) -> res => body`
/// (`res: Result<(), SendError<T>>`), and at most one of `default => body` (taken when no case
/// is ready) or `default(timeout) => body` (taken when none became ready in time). Bodies are
/// blocks or expressions followed by a comma.
///
/// ```
/// use gort::chan::bounded;
/// use std::time::Duration;
/// gort::run(|| {
///     let (tx, rx) = bounded::<i32>(0);
///     let (quit_tx, quit_rx) = bounded::<()>(0);
///     gort::go(move || {
///         for i in 0..3 {
///             tx.send(i).unwrap();
///         }
///         quit_tx.send(()).unwrap();
///     });
///     let mut got = Vec::new();
///     loop {
///         gort::select! {
///             recv(rx) -> v => got.push(v.unwrap()),
///             recv(quit_rx) -> _ => break,
///             default(Duration::from_secs(10)) => panic!("stuck"),
///         }
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@cases () ($($tokens)*))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // Done: no default.
    (@cases ($($cases:tt)*) ()) => {
        $crate::__select_gen!(@start ($($cases)*) (block))
    };
    (@cases ($($cases:tt)*) (,)) => {
        $crate::__select_parse!(@cases ($($cases)*) ())
    };
    // recv
    (@cases ($($cases:tt)*) (recv($r:expr) -> $res:pat => $body:block $(,)? $($rest:tt)*)) => {
        $crate::__select_parse!(@cases ($($cases)* (recv ($r) ($res) ($body))) ($($rest)*))
    };
    (@cases ($($cases:tt)*) (recv($r:expr) -> $res:pat => $body:expr, $($rest:tt)*)) => {
        $crate::__select_parse!(@cases ($($cases)* (recv ($r) ($res) ($body))) ($($rest)*))
    };
    (@cases ($($cases:tt)*) (recv($r:expr) -> $res:pat => $body:expr)) => {
        $crate::__select_parse!(@cases ($($cases)* (recv ($r) ($res) ($body))) ())
    };
    // send
    (@cases ($($cases:tt)*) (send($s:expr, $v:expr) -> $res:pat => $body:block $(,)? $($rest:tt)*)) => {
        $crate::__select_parse!(@cases ($($cases)* (send ($s, $v) ($res) ($body))) ($($rest)*))
    };
    (@cases ($($cases:tt)*) (send($s:expr, $v:expr) -> $res:pat => $body:expr, $($rest:tt)*)) => {
        $crate::__select_parse!(@cases ($($cases)* (send ($s, $v) ($res) ($body))) ($($rest)*))
    };
    (@cases ($($cases:tt)*) (send($s:expr, $v:expr) -> $res:pat => $body:expr)) => {
        $crate::__select_parse!(@cases ($($cases)* (send ($s, $v) ($res) ($body))) ())
    };
    // default: must come last.
    (@cases ($($cases:tt)*) (default => $body:expr $(,)?)) => {
        $crate::__select_gen!(@start ($($cases)*) (try ($body)))
    };
    (@cases ($($cases:tt)*) (default($t:expr) => $body:expr $(,)?)) => {
        $crate::__select_gen!(@start ($($cases)*) (timeout ($t) ($body)))
    };
    (@cases ($($cases:tt)*) (default $($rest:tt)*)) => {
        ::core::compile_error!("gort::select!: `default` must be the last case, and come at most once (`default => body` or `default(timeout) => body`)")
    };
    (@cases ($($cases:tt)*) ($($rest:tt)*)) => {
        ::core::compile_error!(::core::concat!(
            "gort::select!: expected `recv(r) -> res => body`, `send(s, v) -> res => body`, ",
            "`default => body` or `default(timeout) => body`, found: ",
            ::core::stringify!($($rest)*)
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    // The selection runs in an inner block that completes the chosen operation and yields its
    // result wrapped as `Ok(res)` for case 0, `Err(Ok(res))` for case 1, ..., and `Err(..Err(()))`
    // for the default; the bodies run afterwards, in a `match` outside that block, so no borrow
    // of a case's channel (nor any temporary) is alive while a body runs.
    (@start ($($cases:tt)*) $mode:tt) => {{
        let __outcome = {
            #[allow(unused_mut)]
            let mut __sel = $crate::chan::Select::new();
            $crate::__select_gen!(@reg __sel ($($cases)*) () $mode)
        };
        $crate::__select_gen!(@bodies __outcome ($($cases)*) $mode)
    }};
    // Register one case per step: each step's `__h`/`__i` are distinct identifiers.
    (@reg $sel:ident ((recv ($r:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($done:tt)*) $mode:tt) => {{
        let __h: &$crate::chan::Receiver<_> = &$r;
        let __i = $sel.recv(__h);
        $crate::__select_gen!(@reg $sel ($($cases)*) ($($done)* (recv __h __i)) $mode)
    }};
    (@reg $sel:ident ((send ($s:expr, $v:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($done:tt)*) $mode:tt) => {{
        let __h: &$crate::chan::Sender<_> = &$s;
        let __i = $sel.send(__h);
        $crate::__select_gen!(@reg $sel ($($cases)*) ($($done)* (send __h __i ($v))) $mode)
    }};
    // All registered: choose and complete. (Results are bound with `let`: a tail expression's
    // temporaries would outlive the block.)
    (@reg $sel:ident () ($($done:tt)*) (block)) => {{
        let __op = $sel.select();
        let __v = $crate::__select_gen!(@complete __op $($done)*);
        __v
    }};
    (@reg $sel:ident () ($($done:tt)*) (try ($dbody:expr))) => {{
        let __v = match $sel.try_select() {
            ::core::result::Result::Ok(__op) => $crate::__select_gen!(@complete __op $($done)*),
            ::core::result::Result::Err(_) => $crate::__select_gen!(@nocase $($done)*),
        };
        __v
    }};
    (@reg $sel:ident () ($($done:tt)*) (timeout ($t:expr) ($dbody:expr))) => {{
        let __v = match $sel.select_timeout($t) {
            ::core::result::Result::Ok(__op) => $crate::__select_gen!(@complete __op $($done)*),
            ::core::result::Result::Err(_) => $crate::__select_gen!(@nocase $($done)*),
        };
        __v
    }};
    (@complete $op:ident (recv $h:ident $i:ident) $($rest:tt)*) => {
        if $op.index() == $i {
            ::core::result::Result::Ok($op.recv($h))
        } else {
            ::core::result::Result::Err($crate::__select_gen!(@complete $op $($rest)*))
        }
    };
    (@complete $op:ident (send $h:ident $i:ident ($v:expr)) $($rest:tt)*) => {
        if $op.index() == $i {
            ::core::result::Result::Ok($op.send($h, $v))
        } else {
            ::core::result::Result::Err($crate::__select_gen!(@complete $op $($rest)*))
        }
    };
    (@complete $op:ident) => {
        $crate::chan::__select_no_case($op)
    };
    // The default's outcome: `Err` once per case around `()`.
    (@nocase $case:tt $($rest:tt)*) => {
        ::core::result::Result::Err($crate::__select_gen!(@nocase $($rest)*))
    };
    (@nocase) => {
        ()
    };
    // Run the body of whichever case (or default) completed.
    (@bodies $out:ident ((recv ($r:expr) ($res:pat) ($body:expr)) $($cases:tt)*) $mode:tt) => {
        match $out {
            ::core::result::Result::Ok($res) => $body,
            ::core::result::Result::Err(__rest) => $crate::__select_gen!(@bodies __rest ($($cases)*) $mode),
        }
    };
    (@bodies $out:ident ((send ($s:expr, $v:expr) ($res:pat) ($body:expr)) $($cases:tt)*) $mode:tt) => {
        match $out {
            ::core::result::Result::Ok($res) => $body,
            ::core::result::Result::Err(__rest) => $crate::__select_gen!(@bodies __rest ($($cases)*) $mode),
        }
    };
    (@bodies $out:ident () (block)) => {{
        let () = $out;
        ::core::unreachable!("gort::select!: no case was chosen")
    }};
    (@bodies $out:ident () (try ($dbody:expr))) => {{
        let () = $out;
        $dbody
    }};
    (@bodies $out:ident () (timeout ($t:expr) ($dbody:expr))) => {{
        let () = $out;
        $dbody
    }};
}
