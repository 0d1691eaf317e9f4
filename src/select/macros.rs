//! The `select!` macro: crossbeam-channel's syntax over [`Select`](crate::chan::Select).
//!
//! Expansion, for `recv(r0) -> a => A, send(s1, v) -> b => B, default => D`:
//! ```text
//! let mut sel = Select::new();
//! let r0 = &r0_expr; let i0 = sel.recv(r0);      // one nested block per case, so each
//! let s1 = &s1_expr; let i1 = sel.send(s1);      // case's bindings are distinct (hygiene)
//! match sel.try_select() {                       // select() without default,
//!     Ok(op) => if op.index() == i0 { let a = op.recv(r0); A }   // select_timeout(t) with
//!               else if op.index() == i1 { let b = op.send(s1, v); B }  // default(t)
//!               else { unreachable!() },
//!     Err(_) => D,
//! }
//! ```
//! Case bodies are not closures, so `break`/`continue`/`return` act on the enclosing code; a
//! send case's value expression is evaluated only if that case is chosen; temporaries in a
//! case's channel expression live until the select ends.

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
    (@start ($($cases:tt)*) $default:tt) => {{
        #[allow(unused_mut)]
        let mut __sel = $crate::chan::Select::new();
        $crate::__select_gen!(@reg __sel ($($cases)*) () $default)
    }};
    // Register one case per step: each step's `__h`/`__i` are distinct identifiers.
    (@reg $sel:ident ((recv ($r:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($done:tt)*) $default:tt) => {{
        let __h: &$crate::chan::Receiver<_> = &$r;
        let __i = $sel.recv(__h);
        $crate::__select_gen!(@reg $sel ($($cases)*) ($($done)* (recv __h __i ($res) ($body))) $default)
    }};
    (@reg $sel:ident ((send ($s:expr, $v:expr) ($res:pat) ($body:expr)) $($cases:tt)*) ($($done:tt)*) $default:tt) => {{
        let __h: &$crate::chan::Sender<_> = &$s;
        let __i = $sel.send(__h);
        $crate::__select_gen!(@reg $sel ($($cases)*) ($($done)* (send __h __i ($v) ($res) ($body))) $default)
    }};
    // All registered: choose, then dispatch.
    (@reg $sel:ident () ($($done:tt)*) (block)) => {{
        let __op = $sel.select();
        $crate::__select_gen!(@dispatch __op $($done)*)
    }};
    (@reg $sel:ident () ($($done:tt)*) (try ($dbody:expr))) => {{
        match $sel.try_select() {
            ::core::result::Result::Ok(__op) => $crate::__select_gen!(@dispatch __op $($done)*),
            ::core::result::Result::Err(_) => $dbody,
        }
    }};
    (@reg $sel:ident () ($($done:tt)*) (timeout ($t:expr) ($dbody:expr))) => {{
        match $sel.select_timeout($t) {
            ::core::result::Result::Ok(__op) => $crate::__select_gen!(@dispatch __op $($done)*),
            ::core::result::Result::Err(_) => $dbody,
        }
    }};
    (@dispatch $op:ident (recv $h:ident $i:ident ($res:pat) ($body:expr)) $($rest:tt)*) => {
        if $op.index() == $i {
            #[allow(unused_variables)]
            let $res = $op.recv($h);
            $body
        } else {
            $crate::__select_gen!(@dispatch $op $($rest)*)
        }
    };
    (@dispatch $op:ident (send $h:ident $i:ident ($v:expr) ($res:pat) ($body:expr)) $($rest:tt)*) => {
        if $op.index() == $i {
            #[allow(unused_variables)]
            let $res = $op.send($h, $v);
            $body
        } else {
            $crate::__select_gen!(@dispatch $op $($rest)*)
        }
    };
    (@dispatch $op:ident) => {{
        ::core::mem::drop($op);
        ::core::unreachable!("gort::select!: no case matches the selected index")
    }};
}
