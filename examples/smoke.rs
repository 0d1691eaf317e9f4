fn main() {
    let t = std::time::Instant::now();
    let v = gort::run(|| {
        let hs: Vec<_> = (0..10).map(|i| gort::go(move || i * 2)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    });
    println!("sum {v} in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let n = 1_000_000;
    gort::run(move || {
        let wg = std::sync::Arc::new(gort::sync::WaitGroup::new());
        for _ in 0..n {
            wg.add(1);
            let wg = wg.clone();
            gort::go(move || wg.done());
        }
        wg.wait();
    });
    println!("spawn {:?}/g", t.elapsed() / n);
}
