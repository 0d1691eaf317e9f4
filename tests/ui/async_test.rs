#[gort::test]
async fn not_async() {}

fn main() {}
