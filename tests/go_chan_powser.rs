//! Go's power-series test, ported to gort: power series as demand-driven goroutines that
//! pass rational coefficients over unbuffered channels (Doug McIlroy's "Squinting at Power
//! Series", originally in Newsqueak).
//!
//! Source: the Go repository's `test/chan/powser1.go` at go1.19.8 (read from a local install
//! at `/usr/lib/go-1.19/test/chan/powser1.go`). Copyright 2009 The Go Authors; Go's tests are
//! under a BSD-style license (the LICENSE file of the Go repository).
//!
//! Ported: the test mode of `main` and everything it uses (Rep, Add, Cmul, Sub, Diff, Integ,
//! Mul, Split, Exp, MonSubst, their helpers and the checks). Left out: the printing mode and
//! the series it alone uses (Mon, Monmul, Xmul, Shift, Recip, Subst, Binom, eval). Go's
//! `dch2` is a pair of channels that every generation of `dosplit` shares and swaps in place;
//! here it is a `Mutex<[Dch; 2]>`, read at the same points as Go reads it. Go's global `seqno`
//! (the request tokens, never checked) is an atomic counter. The series' goroutines run
//! forever, as in Go; they are cancelled when the runtime stops.

mod common;

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use common::watchdog;
use gort::chan::{self, Receiver, Sender};
use gort::{go, select};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rat {
    num: i64,
    den: i64,
}

/// A demand channel: a request on `req`, then a coefficient on `dat`. Both ends of both
/// channels, like Go's bidirectional channels.
#[derive(Clone)]
struct Dch {
    req_tx: Sender<i64>,
    req_rx: Receiver<i64>,
    dat_tx: Sender<Rat>,
    dat_rx: Receiver<Rat>,
}

type Ps = Dch;
type Dch2 = Arc<Mutex<[Dch; 2]>>;

static SEQNO: AtomicI64 = AtomicI64::new(0);

fn next_seqno() -> i64 {
    SEQNO.fetch_add(1, Relaxed) + 1
}

fn mkdch() -> Dch {
    let (req_tx, req_rx) = chan::bounded(0);
    let (dat_tx, dat_rx) = chan::bounded(0);
    Dch {
        req_tx,
        req_rx,
        dat_tx,
        dat_rx,
    }
}

fn mkdch2() -> Dch2 {
    Arc::new(Mutex::new([mkdch(), mkdch()]))
}

fn out_of(out: &Dch2, i: usize) -> Dch {
    out.lock().unwrap()[i].clone()
}

// split reads a single demand channel and replicates its output onto two, which may be read
// at different rates. A process is created at first demand for a rat and dies after the rat
// has been sent to both outputs.
//
// When multiple generations of split exist, the newest will service requests on one channel,
// which is always renamed to be out[0]; the oldest will service requests on the other channel,
// out[1]. All generations but the newest hold queued data that has already been sent to
// out[0]. When data has finally been sent to out[1], a signal on the release-wait channel tells
// the next newer generation to begin servicing out[1].

fn dosplit(input: Dch, out: Dch2, wait: Receiver<i32>) {
    let mut both = false; // do not service both channels
    select! {
        recv(out_of(&out, 0).req_rx) -> _ => {}
        recv(wait) -> _ => {
            both = true;
            let (o0, o1) = (out_of(&out, 0), out_of(&out, 1));
            select! {
                recv(o0.req_rx) -> _ => {}
                recv(o1.req_rx) -> _ => out.lock().unwrap().swap(0, 1),
            }
        }
    }
    input.req_tx.send(next_seqno()).unwrap();
    let (release, release_rx) = chan::bounded(0);
    let (i, o) = (input.clone(), out.clone());
    go(move || dosplit(i, o, release_rx));
    let dat = input.dat_rx.recv().unwrap();
    out_of(&out, 0).dat_tx.send(dat).unwrap();
    if !both {
        wait.recv().unwrap();
    }
    out_of(&out, 1).req_rx.recv().unwrap();
    out_of(&out, 1).dat_tx.send(dat).unwrap();
    release.send(0).unwrap();
}

fn split(input: Dch, out: Dch2) {
    let (release, release_rx) = chan::bounded(0);
    go(move || dosplit(input, out, release_rx));
    release.send(0).unwrap();
}

fn put(dat: Rat, out: &Dch) {
    out.req_rx.recv().unwrap();
    out.dat_tx.send(dat).unwrap();
}

fn get(input: &Dch) -> Rat {
    input.req_tx.send(next_seqno()).unwrap();
    input.dat_rx.recv().unwrap()
}

/// Gets one rat from each of 2 demand channels, in whatever order they become ready.
fn get2(in0: &Dch, in1: &Dch) -> [Rat; 2] {
    let (nil_req, nil_dat) = (chan::never_sender::<i64>(), chan::never::<Rat>());
    let mut req = [&in0.req_tx, &in1.req_tx];
    let mut dat = [&nil_dat, &nil_dat];
    let mut out = [zero(); 2];
    for _ in 0..4 {
        select! {
            send(req[0], next_seqno()) -> res => {
                res.unwrap();
                dat[0] = &in0.dat_rx;
                req[0] = &nil_req;
            }
            send(req[1], next_seqno()) -> res => {
                res.unwrap();
                dat[1] = &in1.dat_rx;
                req[1] = &nil_req;
            }
            recv(dat[0]) -> it => {
                out[0] = it.unwrap();
                dat[0] = &nil_dat;
            }
            recv(dat[1]) -> it => {
                out[1] = it.unwrap();
                dat[1] = &nil_dat;
            }
        }
    }
    out
}

fn copy(input: &Dch, out: &Dch) -> ! {
    loop {
        out.req_rx.recv().unwrap();
        out.dat_tx.send(get(input)).unwrap();
    }
}

fn repeat(dat: Rat, out: &Dch) -> ! {
    loop {
        put(dat, out);
    }
}

// Integer gcd and rational arithmetic.

fn gcd(u: i64, v: i64) -> i64 {
    if u < 0 {
        return gcd(-u, v);
    }
    if u == 0 {
        return v;
    }
    gcd(v % u, u)
}

fn i2tor(u: i64, v: i64) -> Rat {
    let g = gcd(u, v);
    if v > 0 {
        Rat {
            num: u / g,
            den: v / g,
        }
    } else {
        Rat {
            num: -u / g,
            den: -v / g,
        }
    }
}

fn itor(u: i64) -> Rat {
    i2tor(u, 1)
}

fn zero() -> Rat {
    itor(0)
}

fn one() -> Rat {
    itor(1)
}

/// The end mark: a denominator of zero.
fn finis() -> Rat {
    i2tor(1, 0)
}

fn end(u: Rat) -> i64 {
    i64::from(u.den == 0)
}

fn add(u: Rat, v: Rat) -> Rat {
    let g = gcd(u.den, v.den);
    i2tor(
        u.num * (v.den / g) + v.num * (u.den / g),
        u.den * (v.den / g),
    )
}

fn mul(u: Rat, v: Rat) -> Rat {
    let g1 = gcd(u.num, v.den);
    let g2 = gcd(u.den, v.num);
    Rat {
        num: (u.num / g1) * (v.num / g2),
        den: (u.den / g2) * (v.den / g1),
    }
}

fn neg(u: Rat) -> Rat {
    i2tor(-u.num, u.den)
}

// Power-series constructors return channels on which power series flow. They start an
// encapsulated generator that puts the terms of the series on the channel.

/// A pair of power series identical to `u`.
fn split_ps(u: Ps) -> Dch2 {
    let uu = mkdch2();
    let out = uu.clone();
    go(move || split(u, out));
    uu
}

/// Adds two power series.
fn add_ps(u: Ps, v: Ps) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || loop {
        zz.req_rx.recv().unwrap();
        let uv = get2(&u, &v);
        match end(uv[0]) + 2 * end(uv[1]) {
            0 => zz.dat_tx.send(add(uv[0], uv[1])).unwrap(),
            1 => {
                zz.dat_tx.send(uv[1]).unwrap();
                copy(&v, &zz);
            }
            2 => {
                zz.dat_tx.send(uv[0]).unwrap();
                copy(&u, &zz);
            }
            _ => zz.dat_tx.send(finis()).unwrap(),
        }
    });
    z
}

/// Multiplies a power series by a constant.
fn cmul(c: Rat, u: Ps) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || {
        loop {
            zz.req_rx.recv().unwrap();
            let v = get(&u);
            if end(v) != 0 {
                break;
            }
            zz.dat_tx.send(mul(c, v)).unwrap();
        }
        zz.dat_tx.send(finis()).unwrap();
    });
    z
}

fn sub_ps(u: Ps, v: Ps) -> Ps {
    add_ps(u, cmul(neg(one()), v))
}

fn rep(c: Rat) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || repeat(c, &zz));
    z
}

// Multiply. The algorithm is
//	let U = u + x*UU
//	let V = v + x*VV
//	then UV = u*v + x*(u*VV+v*UU) + x*x*UU*VV

fn mul_ps(u: Ps, v: Ps) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || {
        zz.req_rx.recv().unwrap();
        let uv = get2(&u, &v);
        if end(uv[0]) != 0 || end(uv[1]) != 0 {
            zz.dat_tx.send(finis()).unwrap();
        } else {
            zz.dat_tx.send(mul(uv[0], uv[1])).unwrap();
            let uu = split_ps(u);
            let vv = split_ps(v);
            let w = add_ps(cmul(uv[0], out_of(&vv, 0)), cmul(uv[1], out_of(&uu, 0)));
            zz.req_rx.recv().unwrap();
            zz.dat_tx.send(get(&w)).unwrap();
            copy(&add_ps(w, mul_ps(out_of(&uu, 1), out_of(&vv, 1))), &zz);
        }
    });
    z
}

/// Differentiates.
fn diff(u: Ps) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || {
        zz.req_rx.recv().unwrap();
        if end(get(&u)) == 0 {
            for i in 1.. {
                let v = get(&u);
                if end(v) != 0 {
                    break;
                }
                zz.dat_tx.send(mul(itor(i), v)).unwrap();
                zz.req_rx.recv().unwrap();
            }
        }
        zz.dat_tx.send(finis()).unwrap();
    });
    z
}

/// Integrates, with constant of integration `c`.
fn integ(c: Rat, u: Ps) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || {
        put(c, &zz);
        for i in 1.. {
            zz.req_rx.recv().unwrap();
            let v = get(&u);
            zz.dat_tx.send(mul(i2tor(1, i), v)).unwrap();
            if end(v) != 0 {
                break;
            }
        }
        zz.dat_tx.send(finis()).unwrap();
    });
    z
}

// Exponential of a power series with constant term 0 (the constant term is ignored):
//	Z = exp(U), DZ = Z*DU, integrate to get Z.
fn exp_ps(u: Ps) -> Ps {
    let zz = mkdch2();
    split(integ(one(), mul_ps(out_of(&zz, 0), diff(u))), zz.clone());
    out_of(&zz, 1)
}

// Monomial substitution: U(c x^n). Each Ui is multiplied by c^i and followed by n-1 zeros.
fn mon_subst(u: Ps, c0: Rat, n: usize) -> Ps {
    let z = mkdch();
    let zz = z.clone();
    go(move || {
        let mut c = one();
        loop {
            zz.req_rx.recv().unwrap();
            let v = get(&u);
            zz.dat_tx.send(mul(v, c)).unwrap();
            c = mul(c, c0);
            if end(v) != 0 {
                zz.dat_tx.send(finis()).unwrap();
                break;
            }
            for _ in 1..n {
                zz.req_rx.recv().unwrap();
                zz.dat_tx.send(zero()).unwrap();
            }
        }
    });
    z
}

fn check(u: &Ps, c: Rat, count: usize, what: &str) {
    for _ in 0..count {
        let r = get(u);
        assert_eq!(r, c, "{what}");
    }
}

const N: usize = 10;

fn checka(u: &Ps, a: &[Rat; N], what: &str) {
    for (i, &c) in a.iter().enumerate() {
        check(u, c, 1, &format!("{what}, term {i}"));
    }
}

#[test]
fn powser1() {
    watchdog(60, || {
        gort::run(|| {
            let ones = rep(one());
            let twos = rep(itor(2));
            check(&ones, one(), 5, "Ones");
            // Go checks 0 terms of these two (1 1 1 1 1 and 3 3 3 3 3): it only builds them.
            let (o, t) = (ones.clone(), twos.clone());
            check(&add_ps(o.clone(), o.clone()), itor(2), 0, "Add Ones Ones");
            check(&add_ps(o, t), itor(3), 0, "Add Ones Twos");
            let mut a = [zero(); N];
            let d = diff(ones.clone());
            for (i, x) in a.iter_mut().enumerate() {
                *x = itor(i as i64 + 1);
            }
            checka(&d, &a, "Diff"); // 1 2 3 4 5
            let inn = integ(zero(), ones.clone());
            a[0] = zero(); // integration constant
            for (i, x) in a.iter_mut().enumerate().skip(1) {
                *x = i2tor(1, i as i64);
            }
            checka(&inn, &a, "Integ"); // 0 1 1/2 1/3 1/4 1/5
            check(&cmul(neg(one()), twos.clone()), itor(-2), 10, "CMul"); // -1 -1 -1 -1 -1
            let (o, t) = (ones.clone(), twos.clone());
            check(&sub_ps(o, t), itor(-1), 0, "Sub Ones Twos"); // -1 -1 -1 -1 -1
            let m = mul_ps(ones.clone(), ones.clone());
            for (i, x) in a.iter_mut().enumerate() {
                *x = itor(i as i64 + 1);
            }
            checka(&m, &a, "Mul"); // 1 2 3 4 5
            let e = exp_ps(ones.clone());
            a = [
                itor(1),
                itor(1),
                i2tor(3, 2),
                i2tor(13, 6),
                i2tor(73, 24),
                i2tor(167, 40),
                i2tor(4051, 720),
                i2tor(37633, 5040),
                i2tor(43817, 4480),
                i2tor(4596553, 362880),
            ];
            checka(&e, &a, "Exp"); // 1 1 3/2 13/6 73/24
            let at = integ(zero(), mon_subst(ones, neg(one()), 2));
            let mut c = 1;
            for (i, x) in a.iter_mut().enumerate() {
                if i % 2 == 0 {
                    *x = zero();
                } else {
                    *x = i2tor(c, i as i64);
                    c *= -1;
                }
            }
            checka(&at, &a, "ATan"); // 0 -1 0 -1/3 0 -1/5
        })
    });
}
