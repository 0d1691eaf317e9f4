//! `#[gort::main]`: `main` runs as the main goroutine. `cargo run --example hello_main`.

use gort::chan;

#[gort::main]
fn main() {
    let (tx, rx) = chan::bounded(0);
    for i in 0..3 {
        let tx = tx.clone();
        gort::go(move || tx.send(format!("hello from goroutine {i}")).unwrap());
    }
    drop(tx);
    let mut lines: Vec<String> = rx.iter().collect();
    lines.sort();
    for line in lines {
        println!("{line}");
    }
    println!("main goroutine: {:?}", gort::runtime::goid());
}
