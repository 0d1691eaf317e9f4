//! `#[gort::main]` and `#[gort::test]`: tests written with the attribute, the expansion's
//! behaviour (return values, panics, arguments, bad configuration in a child process), and the
//! compile errors for misuse (`tests/ui/*.rs` with their `.stderr`, checked by trybuild).

use std::process::Command;

#[gort::test]
fn runs_on_a_goroutine() {
    assert!(gort::runtime::goid().as_u64() >= 1);
    let h = gort::go(|| 20 + 22);
    assert_eq!(h.join().unwrap(), 42);
}

#[gort::test(procs = 3)]
fn procs_argument() {
    assert_eq!(gort::runtime::gomaxprocs(), 3);
}

#[gort::test(procs = 1, stack_size = 262144)]
fn both_arguments() {
    assert_eq!(gort::runtime::gomaxprocs(), 1);
    // A 100 KiB frame would overflow the 64 KiB default stack.
    let big = std::hint::black_box([1u8; 100 * 1024]);
    assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 100 * 1024);
}

#[gort::test]
fn result_ok() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "7".parse()?;
    assert_eq!(n, 7);
    Ok(())
}

#[gort::test]
#[should_panic(expected = "boom in the main goroutine")]
fn panics_propagate() {
    panic!("boom in the main goroutine");
}

#[gort::test]
#[ignore = "shows that #[ignore] is kept"]
fn ignored() {
    unreachable!();
}

#[gort::test]
fn channels_and_early_return() {
    let (tx, rx) = gort::chan::bounded(1);
    gort::go(move || tx.send("hi").unwrap());
    if rx.recv().unwrap() == "hi" {
        return;
    }
    unreachable!();
}

/// Not named `main`: allowed; calling it starts a runtime and returns the body's value.
#[gort::main(procs = 2)]
fn helper() -> usize {
    gort::runtime::gomaxprocs()
}

#[test]
fn main_attribute_on_another_fn() {
    assert_eq!(helper(), 2);
    assert_eq!(helper(), 2); // each call has its own runtime
}

/// Run by `bad_gortmaxprocs_panics_clearly` in a child process with a bad `GORTMAXPROCS`.
#[gort::test]
#[ignore = "run in a child process by bad_gortmaxprocs_panics_clearly"]
fn child_with_bad_gortmaxprocs() {
    unreachable!("the runtime must not start");
}

#[test]
fn bad_gortmaxprocs_panics_clearly() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_with_bad_gortmaxprocs",
            "--ignored",
            "--nocapture",
        ])
        .env("GORTMAXPROCS", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "#[gort::test]: cannot start the gort runtime: GORTMAXPROCS=\"lots\" is invalid"
        ),
        "{err}"
    );
}

#[test]
fn compile_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
