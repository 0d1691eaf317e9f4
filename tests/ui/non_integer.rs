#[gort::main(procs = "2", stack_size = 1.5)]
fn main() {}
