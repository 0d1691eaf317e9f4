//! A TCP chat server: one goroutine reads each client's lines, one writes to it, and a hub
//! goroutine `select!`s over joins, leaves and messages and broadcasts every line to every
//! other client.
//!
//! `cargo run --release --example chat` runs a self-test: three clients join, talk and leave,
//! and each checks what it heard. `cargo run --release --example chat -- --serve 127.0.0.1:7000`
//! serves forever (try it with a few `nc 127.0.0.1 7000`).

use gort::chan::{self, Receiver, Sender};
use gort::net::{TcpListener, TcpStream};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// What the connection goroutines tell the hub.
enum Event {
    Join(u64, Sender<String>),
    Leave(u64),
}

/// The hub: the only owner of the client table, so it needs no lock.
fn hub(events: Receiver<Event>, lines: Receiver<(u64, String)>) {
    let mut clients: HashMap<u64, Sender<String>> = HashMap::new();
    loop {
        gort::select! {
            recv(events) -> e => match e {
                Ok(Event::Join(id, out)) => {
                    broadcast(&clients, id, format!("* client {id} joined\n"));
                    let _ = out.try_send(format!("* welcome, you are client {id}\n"));
                    clients.insert(id, out);
                }
                Ok(Event::Leave(id)) => {
                    clients.remove(&id);
                    broadcast(&clients, id, format!("* client {id} left\n"));
                }
                Err(_) => return, // the listener is gone
            },
            recv(lines) -> l => if let Ok((id, line)) = l {
                broadcast(&clients, id, format!("{id}: {line}\n"));
            },
        }
    }
}

/// Sends `text` to every client but `from`; a slow client's full queue drops the line for
/// that client rather than stalling the room.
fn broadcast(clients: &HashMap<u64, Sender<String>>, from: u64, text: String) {
    for (&id, out) in clients {
        if id != from {
            let _ = out.try_send(text.clone());
        }
    }
}

/// One client: a writer goroutine drains its queue into the socket; this goroutine reads lines.
fn client(id: u64, conn: TcpStream, events: Sender<Event>, lines: Sender<(u64, String)>) {
    let (out_tx, out_rx) = chan::bounded::<String>(64);
    let mut w = conn.try_clone().expect("try_clone");
    gort::go(move || {
        for text in out_rx {
            if w.write_all(text.as_bytes()).is_err() {
                break;
            }
        }
    });
    events.send(Event::Join(id, out_tx)).ok();
    for line in BufReader::new(conn).lines() {
        match line {
            Ok(line) => lines.send((id, line)).ok(),
            Err(_) => break,
        };
    }
    // Leaving drops the hub's sender for this client: the writer goroutine ends.
    events.send(Event::Leave(id)).ok();
}

fn serve(listener: TcpListener) {
    let (ev_tx, ev_rx) = chan::unbounded();
    let (line_tx, line_rx) = chan::bounded(256);
    gort::go(move || hub(ev_rx, line_rx));
    for (id, conn) in (1..).zip(listener.incoming()) {
        let Ok(conn) = conn else { continue };
        let (ev, lines) = (ev_tx.clone(), line_tx.clone());
        gort::go(move || client(id, conn, ev, lines));
    }
}

/// Reads lines until `want` of them arrived or the connection is quiet for a second.
fn hear(r: &mut BufReader<TcpStream>, want: usize) -> Vec<String> {
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let mut line = String::new();
    while got.len() < want {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => got.push(line.trim_end().to_string()),
        }
    }
    got
}

/// Reads lines until one ends with `text` (true) or the connection goes quiet (false).
fn hear_until(r: &mut BufReader<TcpStream>, text: &str) -> bool {
    loop {
        match hear(r, 1).first() {
            Some(l) if l.ends_with(text) => return true,
            Some(_) => continue,
            None => return false,
        }
    }
}

fn self_test() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    gort::go(move || serve(listener));
    let mut readers: Vec<BufReader<TcpStream>> = Vec::new();
    for _ in 0..3 {
        let mut r = BufReader::new(TcpStream::connect(addr).unwrap());
        // The hub greets a client once it is in the room.
        let heard = hear(&mut r, 1);
        assert!(
            heard.first().is_some_and(|l| l.contains("welcome")),
            "{heard:?}"
        );
        readers.push(r);
    }
    let mut a = readers[0].get_ref().try_clone().unwrap();
    writeln!(a, "hello from the first client").unwrap();
    for r in readers[1..].iter_mut() {
        // Join notices come first; the line follows them.
        let heard = hear_until(r, "hello from the first client");
        assert!(heard, "a client missed the line");
    }
    println!("chat: 3 clients joined, and a line from one reached the other two");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    gort::run(move || match args.iter().position(|a| a == "--serve") {
        Some(i) => {
            let addr = args.get(i + 1).expect("--serve needs an address");
            println!("chat: serving on {addr}");
            serve(TcpListener::bind(addr.as_str()).expect("bind"));
        }
        None => self_test(),
    });
}
