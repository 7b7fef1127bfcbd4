//! One controller connection: a thread that reads, frames, decodes and
//! answers (through its [`Session`]), and a thread that writes.
//!
//! # Liveness
//! A connection idle for the probe interval gets an ECHO_REQUEST; one
//! idle for twice that is closed, and a dialled controller is dialled
//! again. Reads time out every [`super::transport::READ_TICK`] so that the reader notices
//! both, and a stopping agent, without a message.
//!
//! # Backpressure
//! Answers go to the writer through a bounded queue and the reader waits
//! for room: a controller that does not read its answers slows down its
//! own requests, nobody else's. Asynchronous messages (packet-ins) never
//! wait: when the queue is full, or already holds 1 MiB of them, they are
//! dropped and counted. The writer
//! sends what has queued up in one write (up to 64 KiB), so that a burst
//! of packet-ins reaches the controller in few segments.
//!
//! # Bad input
//! A message that does not decode is answered with its error and the
//! connection goes on; only a stream that cannot be framed any more (a
//! header whose length is below 8) or a failed HELLO closes it.

use super::codec::message::{decode, encode, frame_len, DecodeError, Message, VERSION};
use super::ratelimit::TokenBucket;
use super::session::{ConnState, Inbound, Session, Verdict};
use super::transport::{Closer, Stream};
use super::Shared;
use crate::openflow_counters::OpenflowCounters;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use odpx_classifier::counters::add_shared;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Messages waiting for the writer, at most.
const QUEUE: usize = 4096;
/// Bytes of asynchronous messages (packet-ins) waiting for the writer,
/// at most: a slow controller gets fresh packet-ins, not a backlog that
/// grows with the batches the dispatcher queues.
const ASYNC_BYTES: usize = 1 << 20;
/// Bytes the writer gathers from its queue into one write, at most (a
/// message longer than that goes alone).
const WRITE_BATCH: usize = 64 * 1024;

/// A live connection, as the agent and the dispatcher see it.
pub struct ConnHandle {
    pub id: u64,
    pub peer: String,
    /// A controller odpx dialed (not a passive socket's peer).
    pub controller: bool,
    tx: Sender<Outgoing>,
    /// Bytes of asynchronous messages queued (see [`ASYNC_BYTES`]).
    async_bytes: Arc<AtomicUsize>,
    pub state: Arc<Mutex<ConnState>>,
    limiter: Mutex<TokenBucket>,
    closer: Closer,
}

impl ConnHandle {
    /// The connection's state now.
    pub fn state(&self) -> ConnState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues asynchronous messages unless the queue is full.
    pub fn offer(&self, bytes: Vec<u8>) -> bool {
        let len = bytes.len();
        if self.async_bytes.fetch_add(len, Ordering::Relaxed) + len > ASYNC_BYTES {
            self.async_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        let queued = !matches!(
            self.tx.try_send(Outgoing { bytes, is_async: true }),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
        );
        if !queued {
            self.async_bytes.fetch_sub(len, Ordering::Relaxed);
        }
        queued
    }

    /// Takes a packet-in token at `now`.
    pub fn packet_in_allowed(&self, now: Instant) -> bool {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner()).take(now)
    }

    pub fn close(&self) {
        self.closer.close();
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Bytes for the writer: an answer (the reader waits for room), or
/// asynchronous messages (dropped when there is none; counted against
/// [`ASYNC_BYTES`] until the writer takes them).
struct Outgoing {
    bytes: Vec<u8>,
    is_async: bool,
}

impl Outgoing {
    fn reply(bytes: Vec<u8>) -> Outgoing {
        Outgoing { bytes, is_async: false }
    }
}

/// Serves `stream` (from a `controller` odpx dialed, or a passive
/// socket's peer) until it closes or the agent stops; returns why it ended.
pub fn serve(stream: Stream, shared: &Arc<Shared>, controller: bool) -> String {
    let Stream {
        mut reader,
        writer,
        closer,
        peer,
    } = stream;
    let (tx, rx) = crossbeam_channel::bounded::<Outgoing>(QUEUE);
    let async_bytes = Arc::new(AtomicUsize::new(0));
    let state = shared.roles.join();
    let now = shared.bridge.now();
    let handle = Arc::new(ConnHandle {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        peer: peer.clone(),
        controller,
        tx: tx.clone(),
        async_bytes: async_bytes.clone(),
        state: state.clone(),
        limiter: Mutex::new(TokenBucket::new(shared.packet_in_rate, shared.packet_in_burst, now)),
        closer: closer.clone(),
    });
    let writer_thread = spawn_writer(writer, rx, async_bytes, closer);
    shared.register(handle.clone());
    tracing::info!("openflow: {peer}: connected");
    let hello = Message::Hello {
        bitmap: vec![1 << VERSION],
    };
    let _ = tx.send(Outgoing::reply(encode(0, &hello)));
    let why = read_loop(&mut *reader, &tx, Session::new(state, shared.roles.clone()), shared);
    shared.unregister(handle.id);
    handle.close();
    // The writer ends when the last sender goes: ours and the handle's.
    drop(handle);
    drop(tx);
    let _ = writer_thread.map(|j| j.join());
    tracing::info!("openflow: {peer}: {why}");
    why
}

/// The writing thread: until every sender is gone; a failed write
/// closes the connection (and the reader sees its end).
fn spawn_writer(
    mut writer: Box<dyn Write + Send>,
    rx: Receiver<Outgoing>,
    async_bytes: Arc<AtomicUsize>,
    closer: Closer,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("of-writer".into())
        .spawn(move || {
            // What is queued goes out in one write: a burst of packet-ins
            // costs the controller one read, not one per message.
            let mut batch = Vec::with_capacity(WRITE_BATCH);
            let take = |out: Outgoing, batch: &mut Vec<u8>| {
                if out.is_async {
                    async_bytes.fetch_sub(out.bytes.len(), Ordering::Relaxed);
                }
                batch.extend_from_slice(&out.bytes);
            };
            while let Ok(first) = rx.recv() {
                batch.clear();
                take(first, &mut batch);
                while batch.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(more) => take(more, &mut batch),
                        Err(_) => break,
                    }
                }
                if writer.write_all(&batch).is_err() {
                    closer.close();
                    return;
                }
            }
        })
        .ok()
}

/// Reads, frames, decodes and answers until the end (see the module
/// documentation).
fn read_loop(reader: &mut dyn Read, tx: &Sender<Outgoing>, mut session: Session, shared: &Arc<Shared>) -> String {
    let counters: &OpenflowCounters = &shared.counters;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut last_rx = Instant::now();
    let mut probed = false;
    loop {
        if shared.stopping() {
            return "closed: the switch is stopping".into();
        }
        match reader.read(&mut chunk) {
            Ok(0) => return "closed by the peer".into(),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                (last_rx, probed) = (Instant::now(), false);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                let idle = last_rx.elapsed();
                if idle >= 2 * shared.probe_interval {
                    return format!("closed: no message for {} s", idle.as_secs());
                }
                if idle >= shared.probe_interval && !probed {
                    probed = true;
                    let _ = tx.send(Outgoing::reply(encode(0, &Message::EchoRequest(Vec::new()))));
                }
                continue;
            }
            Err(e) => return format!("closed: {e}"),
        }
        let batch = match frame(&mut buf) {
            Ok(b) => b,
            Err(why) => return why,
        };
        add_shared(&counters.messages_received, batch.len() as u64);
        let mut out = Vec::new();
        let verdict = session.handle(batch, &*shared.bridge, &mut out);
        let errors = out.iter().filter(|m| m.get(1) == Some(&1)).count();
        add_shared(&counters.errors_sent, errors as u64);
        for m in out {
            if tx.send(Outgoing::reply(m)).is_err() {
                return "closed: the writer stopped".into();
            }
        }
        if verdict == Verdict::Close {
            return "closed: no common OpenFlow version".into();
        }
    }
}

/// Takes every whole message off the front of `buf`, decoded.
fn frame(buf: &mut Vec<u8>) -> Result<Vec<Inbound>, String> {
    let mut batch = Vec::new();
    let mut at = 0;
    loop {
        let n = match frame_len(&buf[at..]) {
            Ok(Some(n)) if buf.len() - at >= n => n,
            Ok(_) => break,
            Err(_) => return Err("closed: a message header with a length below 8".into()),
        };
        let raw = buf[at..at + n].to_vec();
        at += n;
        batch.push(match decode(&raw) {
            Ok((header, msg)) => Inbound {
                header,
                msg: Ok(msg),
                raw,
            },
            Err(DecodeError { header, error }) => Inbound {
                header,
                msg: Err(error),
                raw,
            },
        });
    }
    buf.drain(..at);
    Ok(batch)
}
