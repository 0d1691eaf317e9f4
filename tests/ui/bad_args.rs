#[gort::main(procs = 0, procs = 2, stack_size)]
fn main() {}
