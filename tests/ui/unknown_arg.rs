#[gort::main(foo = 1)]
fn main() {}
