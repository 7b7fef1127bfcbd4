//! Ports: AF_XDP interfaces and in-memory ports behind one type.
//!
//! # What
//! A [`Port`] has a number (its ODP-style port number in flows), a name,
//! counters, and a backend: [`Backend::Xdp`] (one AF_XDP socket per rx
//! queue plus the redirect program) or [`Backend::Mem`] (queues of byte
//! vectors, for tests and for benchmarks without kernel I/O).
//!
//! # Threads
//! Ports are shared by the PMD threads (`Arc<Port>`). Each AF_XDP queue sits
//! behind its own mutex, taken once per batch by the PMD that polls it or
//! transmits on it; with one PMD per queue the lock is never contended.
//! Counters are relaxed atomics, written by PMDs and read by control.

use crate::exec::HEADROOM;
use crate::xdp::RedirectProgram;
use crate::xsk::{self, Desc, XskSocket};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Packets per batch.
pub const BATCH: usize = 32;
/// Bytes of one receive buffer (headroom included).
pub const BUF_SIZE: usize = 2048;

/// Per-port counters (relaxed atomics).
#[derive(Default, Debug)]
pub struct PortStats {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Transmit ring or frames exhausted.
    pub tx_dropped_full: AtomicU64,
    /// Frames larger than a buffer.
    pub rx_dropped_too_big: AtomicU64,
}

/// A snapshot of [`PortStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped_full: u64,
    pub rx_dropped_too_big: u64,
}

impl PortStats {
    pub fn snapshot(&self) -> PortCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PortCounters {
            rx_packets: l(&self.rx_packets),
            rx_bytes: l(&self.rx_bytes),
            tx_packets: l(&self.tx_packets),
            tx_bytes: l(&self.tx_bytes),
            tx_dropped_full: l(&self.tx_dropped_full),
            rx_dropped_too_big: l(&self.rx_dropped_too_big),
        }
    }
}

/// An in-memory port: frames pushed by a test come out of `recv`; frames
/// sent are kept (or only counted when `keep_tx` is off). A looping port
/// replays a fixed frame list forever (benchmarks).
#[derive(Default)]
pub struct MemPort {
    rx: Mutex<VecDeque<Vec<u8>>>,
    looped: Vec<Vec<u8>>,
    cursor: AtomicUsize,
    tx: Mutex<Vec<Vec<u8>>>,
    keep_tx: bool,
}

impl MemPort {
    pub fn push_rx(&self, frame: Vec<u8>) {
        self.rx.lock().expect("rx lock").push_back(frame);
    }

    /// Frames pushed and not yet received.
    pub fn rx_len(&self) -> usize {
        self.rx.lock().expect("rx lock").len()
    }

    /// Frames sent out of this port so far (drained).
    pub fn take_tx(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.tx.lock().expect("tx lock"))
    }
}

pub enum Backend {
    Xdp {
        queues: Vec<Mutex<XskSocket>>,
        _prog: RedirectProgram,
        ifindex: u32,
    },
    Mem(MemPort),
}

pub struct Port {
    pub no: u32,
    pub name: String,
    pub backend: Backend,
    pub stats: PortStats,
}

/// Receive buffers of one batch, owned by a PMD and reused.
pub struct RxBatch {
    bufs: Vec<[u8; BUF_SIZE]>,
    pub lens: [usize; BATCH],
    descs: [Desc; BATCH],
}

impl Default for RxBatch {
    fn default() -> Self {
        RxBatch {
            bufs: vec![[0u8; BUF_SIZE]; BATCH],
            lens: [0; BATCH],
            descs: [Desc::default(); BATCH],
        }
    }
}

impl RxBatch {
    /// Packet `i`: its frame buffer; the packet starts at [`HEADROOM`].
    pub fn buf_mut(&mut self, i: usize) -> &mut [u8; BUF_SIZE] {
        &mut self.bufs[i]
    }

    pub fn data(&self, i: usize) -> &[u8] {
        &self.bufs[i][HEADROOM..HEADROOM + self.lens[i]]
    }
}

/// Packets staged for one output port during a batch, copied once.
#[derive(Default)]
pub struct TxStage {
    data: Vec<u8>,
    pkts: Vec<(usize, usize)>,
}

impl TxStage {
    pub fn push(&mut self, pkt: &[u8]) {
        let at = self.data.len();
        self.data.extend_from_slice(pkt);
        self.pkts.push((at, pkt.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.pkts.iter().map(|&(at, len)| &self.data[at..at + len])
    }
}

fn rx_queue_count(name: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

impl Port {
    /// Opens an interface with AF_XDP: the redirect program and one
    /// socket per receive queue.
    pub fn open_xdp(no: u32, name: &str) -> io::Result<Port> {
        let ifindex = xsk::ifindex(name)?;
        let n = rx_queue_count(name);
        let prog = RedirectProgram::attach(ifindex, n as u32)
            .map_err(|e| io::Error::new(e.kind(), format!("{name}: attaching the XDP program: {e}")))?;
        let mut queues = Vec::with_capacity(n);
        for q in 0..n {
            let s = XskSocket::bind(ifindex, q as u32).map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
            prog.register(q as u32, &s)?;
            queues.push(Mutex::new(s));
        }
        Ok(Port {
            no,
            name: name.to_string(),
            backend: Backend::Xdp {
                queues,
                _prog: prog,
                ifindex,
            },
            stats: PortStats::default(),
        })
    }

    /// An in-memory port; `keep_tx` keeps sent frames for `take_tx`.
    pub fn memory(no: u32, name: &str, keep_tx: bool) -> Port {
        Port {
            no,
            name: name.to_string(),
            backend: Backend::Mem(MemPort {
                keep_tx,
                ..Default::default()
            }),
            stats: PortStats::default(),
        }
    }

    /// An in-memory port that receives `frames` round-robin, forever.
    pub fn looping(no: u32, name: &str, frames: Vec<Vec<u8>>) -> Port {
        Port {
            no,
            name: name.to_string(),
            backend: Backend::Mem(MemPort {
                looped: frames,
                ..Default::default()
            }),
            stats: PortStats::default(),
        }
    }

    pub fn mem(&self) -> Option<&MemPort> {
        match &self.backend {
            Backend::Mem(m) => Some(m),
            Backend::Xdp { .. } => None,
        }
    }

    pub fn queues(&self) -> usize {
        match &self.backend {
            Backend::Xdp { queues, .. } => queues.len(),
            Backend::Mem(_) => 1,
        }
    }

    /// Whether the interface still exists (an AF_XDP port whose device was
    /// deleted stops receiving; control reports it).
    pub fn is_alive(&self) -> bool {
        match &self.backend {
            Backend::Xdp { ifindex, .. } => xsk::ifindex(&self.name).is_ok_and(|i| i == *ifindex),
            Backend::Mem(_) => true,
        }
    }

    /// Receives up to [`BATCH`] frames from queue `q` into `b` (each
    /// copied to its buffer at [`HEADROOM`]). Returns the count.
    pub fn recv(&self, q: usize, b: &mut RxBatch) -> usize {
        let max = BUF_SIZE - HEADROOM;
        let mut n = 0;
        let mut bytes = 0u64;
        match &self.backend {
            Backend::Xdp { queues, .. } => {
                let mut s = queues[q].lock().expect("queue lock");
                let got = s.recv(&mut b.descs);
                for i in 0..got {
                    let d = b.descs[i];
                    let f = s.frame(d.addr, d.len);
                    if f.len() > max {
                        self.stats.rx_dropped_too_big.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    b.bufs[n][HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                    b.lens[n] = f.len();
                    bytes += f.len() as u64;
                    n += 1;
                }
                s.release(&b.descs[..got]);
            }
            Backend::Mem(m) => {
                if m.looped.is_empty() {
                    let mut rx = m.rx.lock().expect("rx lock");
                    while n < BATCH {
                        let Some(f) = rx.pop_front() else { break };
                        let len = f.len().min(max);
                        b.bufs[n][HEADROOM..HEADROOM + len].copy_from_slice(&f[..len]);
                        b.lens[n] = len;
                        bytes += len as u64;
                        n += 1;
                    }
                } else {
                    let c = m.cursor.fetch_add(BATCH, Ordering::Relaxed);
                    for i in 0..BATCH {
                        let f = &m.looped[(c + i) % m.looped.len()];
                        let len = f.len().min(max);
                        b.bufs[i][HEADROOM..HEADROOM + len].copy_from_slice(&f[..len]);
                        b.lens[i] = len;
                        bytes += len as u64;
                    }
                    n = BATCH;
                }
            }
        }
        if n > 0 {
            self.stats.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
            self.stats.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        n
    }

    /// Transmits the staged packets on queue `q` (modulo the queue count)
    /// with one kick; returns how many went out.
    pub fn send(&self, q: usize, stage: &TxStage) -> usize {
        if stage.is_empty() {
            return 0;
        }
        let mut sent = 0;
        let mut bytes = 0u64;
        match &self.backend {
            Backend::Xdp { queues, .. } => {
                let mut s = queues[q % queues.len()].lock().expect("queue lock");
                let mut frames = [(0u64, 0u32); BATCH * 4];
                let mut k = 0;
                for p in stage.iter() {
                    if k == frames.len() {
                        sent += s.send(&frames[..k]);
                        k = 0;
                    }
                    let Some(addr) = s.tx_frame() else { break };
                    let len = p.len().min(xsk::FRAME_SIZE);
                    s.frame_mut(addr, len as u32).copy_from_slice(&p[..len]);
                    frames[k] = (addr, len as u32);
                    bytes += len as u64;
                    k += 1;
                }
                sent += s.send(&frames[..k]);
            }
            Backend::Mem(m) => {
                if m.keep_tx {
                    let mut tx = m.tx.lock().expect("tx lock");
                    tx.extend(stage.iter().map(<[u8]>::to_vec));
                }
                bytes = stage.iter().map(|p| p.len() as u64).sum();
                sent = stage.len();
            }
        }
        let dropped = stage.len() - sent;
        self.stats.tx_packets.fetch_add(sent as u64, Ordering::Relaxed);
        self.stats.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
        if dropped > 0 {
            self.stats.tx_dropped_full.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        sent
    }

    /// The kernel's drop counters of an AF_XDP port, summed over its
    /// sockets (`None` for an in-memory port). Drops the kernel makes before
    /// a frame reaches odpx (RX ring full, no fill buffer) show only here.
    pub fn kernel_stats(&self) -> Option<xsk::XskStats> {
        let Backend::Xdp { queues, .. } = &self.backend else {
            return None;
        };
        let mut sum = xsk::XskStats::default();
        for q in queues {
            sum += q.lock().expect("queue lock").stats().unwrap_or_default();
        }
        Some(sum)
    }

    /// Keeps an AF_XDP port's completion ring drained (frames sent earlier
    /// become reusable) and its transmissions going.
    pub fn poll_tx(&self, q: usize) {
        if let Backend::Xdp { queues, .. } = &self.backend {
            if let Ok(mut s) = queues[q % queues.len()].try_lock() {
                s.reap_completions();
            }
        }
    }
}
