//! The Prometheus endpoint: `[metrics] listen = "127.0.0.1:9464"` (off by
//! default) serves the switch's [`Snapshot`](crate::snapshot::Snapshot) in
//! the Prometheus text format ([`crate::render::prometheus`]) at
//! `GET /metrics`.
//!
//! # Threads
//! One thread serves the listener, one request at a time: a scrape is a
//! snapshot and a few kilobytes of text. Each connection gets a second to
//! send its request and to take the answer, so a client that stalls holds
//! up other scrapes by at most that, and the switch not at all: the
//! snapshot never takes the owner's lock.

use crate::switch::Switch;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Time a client gets to send its request, and to take the answer.
const CLIENT_TIME: Duration = Duration::from_secs(1);
/// The longest request read (a GET line and headers).
const MAX_REQUEST: usize = 8 << 10;

/// Serves the endpoint on `addr` until the switch is dropped; returns the
/// address bound (port 0 picks one).
pub fn serve(sw: &Arc<Switch>, addr: SocketAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("metrics: {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("metrics: {addr}: {e}"))?;
    let weak: Weak<Switch> = Arc::downgrade(sw);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for c in listener.incoming() {
                let Ok(mut c) = c else { continue };
                let Some(sw) = weak.upgrade() else { return };
                answer(&sw, &mut c);
            }
        })
        .map_err(|e| format!("metrics thread: {e}"))?;
    Ok(bound)
}

/// Reads one HTTP request and answers it.
fn answer(sw: &Switch, c: &mut TcpStream) {
    let deadline = Instant::now() + CLIENT_TIME;
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && !req.windows(2).any(|w| w == b"\n\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || req.len() > MAX_REQUEST || c.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
            Err(_) => return,
        }
    }
    let line = String::from_utf8_lossy(&req);
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            crate::render::prometheus::render(&sw.snapshot()),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "odpx: metrics are at /metrics\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "odpx: only GET\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = c.set_write_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100)),
    ));
    let _ = c.write_all(head.as_bytes()).and_then(|()| c.write_all(body.as_bytes()));
}
