//! Ports: AF_XDP interfaces and in-memory ports behind one type.
//!
//! # What
//! A [`Port`] has a number (its ODP-style port number in flows), a name,
//! counters, an MTU, and a backend: [`Backend::Xdp`] (one AF_XDP socket
//! per rx queue plus its XDP program: the redirect program, or the
//! underlay filter of a tunnel underlay port), [`Backend::Mem`] (queues
//! of byte vectors, for tests and for benchmarks without kernel I/O), or
//! [`Backend::Vxlan`] (a VXLAN tunnel port: no I/O of its own; packets
//! enter it by decapsulation on an underlay port and leave it by
//! encapsulation onto one, and its counters say so: rx = decapsulated,
//! tx = encapsulated).
//!
//! # Threads
//! Ports are shared by the PMD threads (`Arc<Port>`). Each AF_XDP queue sits
//! behind its own mutex, taken once per batch by the PMD that polls it or
//! transmits on it; with one PMD per queue the lock is never contended.
//! Counters are relaxed atomics, written by PMDs and read by control.

use crate::exec::HEADROOM;
use crate::steer::{SteeredProgram, SteeringTable};
use crate::sys::bpf::{XdpAttach, XdpLink};
use crate::sys::fd;
use crate::sys::xsk::{self, XskSocket};
use crate::tunnel::{DecapDrop, EncapDrop, TunnelMeta, VxlanEndpoint};
use crate::xdp::{RedirectProgram, UnderlayProgram, VtepMaps};
use odpx_classifier::wire::ETHERNET_LEN;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Packets per batch.
pub const BATCH: usize = 32;
/// Bytes of one receive buffer (headroom included).
pub const BUF_SIZE: usize = 2048;
/// The MTU of a port whose device does not say (in-memory ports).
pub const DEFAULT_MTU: u32 = 1500;

odpx_classifier::counters! {
    /// A port's counters (relaxed atomics; PMDs, control and the link
    /// watch add to them).
    pub struct PortStats => PortCounters;
    /// Packets received (VXLAN ports: decapsulated).
    rx_packets: Counter(Packets) "rx packets" => "port_rx_packets";
    /// Bytes received, Ethernet header included.
    rx_bytes: Counter(Bytes) "bytes" => "port_rx_bytes";
    /// Packets sent (VXLAN ports: encapsulated).
    tx_packets: Counter(Packets) "tx packets" => "port_tx_packets";
    /// Bytes sent, Ethernet header included.
    tx_bytes: Counter(Bytes) "bytes" => "port_tx_bytes";
    /// Packets the port dropped, by reason: the transmit ring or frames were exhausted.
    tx_dropped_full: Counter(Packets) "dropped_full" => "port_dropped" reason "tx_ring_full";
    /// Frames larger than a buffer.
    rx_dropped_too_big: Counter(Packets) "dropped_too_big" => "port_dropped" reason "rx_too_big";
    /// Tunnel ports: frames not encapsulated because the result would exceed the underlay's MTU.
    encap_too_big: Counter(Packets) "dropped_mtu" => "port_dropped" reason "encap_too_big";
    /// Tunnel ports: frames not encapsulated (no headroom, or a header odpx did not build).
    encap_failed: Counter(Packets) "failed" => "port_dropped" reason "encap_failed";
    /// Underlay ports: frames not decapsulated: malformed.
    decap_malformed: Counter(Packets) "malformed" => "port_dropped" reason "decap_malformed";
    /// Underlay ports: frames not decapsulated: bad outer checksum.
    decap_bad_checksum: Counter(Packets) "bad_checksum" => "port_dropped" reason "decap_bad_checksum";
    /// Underlay ports: frames not decapsulated: bad VXLAN flags.
    decap_bad_flags: Counter(Packets) "bad_flags" => "port_dropped" reason "decap_bad_flags";
    /// Underlay ports: frames not decapsulated: no port has the VNI.
    decap_unknown_vni: Counter(Packets) "unknown_vni" => "port_dropped" reason "decap_unknown_vni";
    /// Times the port's link went down (or its interface away), came back, and its re-created interface was opened again.
    link_down: Counter(Events) "down" => "port_link_events" event "down";
    /// Times the port was back in the switch after its link came back.
    link_up: Counter(Events) "up" => "port_link_events" event "up";
    /// Times a re-created interface was opened again.
    link_reopened: Counter(Events) "opened again" => "port_link_events" event "reopened";
}

impl PortStats {
    /// Counts encapsulation outcomes (on the tunnel port): `packets`
    /// frames of `bytes` in all, or dropped for `why`.
    pub fn count_encap(&self, outcome: Result<u64, EncapDrop>, packets: u64) {
        let c = match outcome {
            Ok(bytes) => {
                self.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
                &self.tx_packets
            }
            Err(EncapDrop::TooBig) => &self.encap_too_big,
            Err(EncapDrop::NoHeadroom | EncapDrop::BadTemplate) => &self.encap_failed,
        };
        c.fetch_add(packets, Ordering::Relaxed);
    }

    /// Counts a refused decapsulation (on the underlay port).
    pub fn count_decap_drop(&self, why: DecapDrop) {
        let c = match why {
            DecapDrop::Malformed => &self.decap_malformed,
            DecapDrop::BadChecksum => &self.decap_bad_checksum,
            DecapDrop::BadFlags => &self.decap_bad_flags,
            DecapDrop::UnknownVni => &self.decap_unknown_vni,
        };
        c.fetch_add(1, Ordering::Relaxed);
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

/// The XDP program of an AF_XDP port.
pub enum XdpProgramKind {
    /// Every packet to AF_XDP (a switched port).
    Redirect(RedirectProgram),
    /// VXLAN for a local VTEP to AF_XDP, the rest to the kernel (a tunnel
    /// underlay port).
    Underlay(UnderlayProgram),
    /// Offloaded megaflows to the kernel datapath, the rest to AF_XDP (a
    /// switched port in hybrid mode).
    Steered(SteeredProgram),
}

/// A socket for each of the `n` queues of interface `ifindex` (named
/// `name`, for errors), each registered with its program by `register`.
fn bind_queues(
    name: &str,
    ifindex: u32,
    n: usize,
    register: impl Fn(u32, &XskSocket) -> io::Result<()>,
) -> io::Result<Vec<XskSocket>> {
    (0..n as u32)
        .map(|q| {
            let s = XskSocket::bind(ifindex, q).map_err(|e| io::Error::new(e.kind(), format!("{name}: {e}")))?;
            register(q, &s)?;
            Ok(s)
        })
        .collect()
}

/// What [`Port::reopen`] attached to a re-created interface.
pub enum Reattached {
    /// A switched port: a new redirect program, with its own XSKMAP.
    Redirect(RedirectProgram),
    /// A switched port in hybrid mode: its steering program, linked to the
    /// new interface (same tables, same XSKMAP).
    Steered(XdpLink),
}

/// Which program an AF_XDP port attaches.
enum ProgramChoice<'a> {
    Redirect,
    Underlay,
    Steered(&'a SteeringTable, XdpAttach),
}

pub enum Backend {
    Xdp {
        queues: Vec<Mutex<XskSocket>>,
        prog: XdpProgramKind,
        /// The interface the sockets are bound to now.
        ifindex: AtomicU32,
        /// After [`Port::reopen`]: what is attached to the re-created
        /// interface (`prog`'s link went with the old one).
        reattached: Mutex<Option<Reattached>>,
        /// Bumped by each reopen: the sockets' descriptors changed.
        generation: AtomicU64,
    },
    Mem(MemPort),
    Vxlan(VxlanEndpoint),
}

pub struct Port {
    pub no: u32,
    pub name: String,
    pub backend: Backend,
    pub stats: PortStats,
    /// The device's MTU (IP bytes per frame); followed by control.
    pub mtu: AtomicU32,
}

/// Frame buffers of one batch with what is known of each packet before
/// its key is extracted, owned by a PMD and reused. A received batch has
/// one input port and no tunnel metadata; a recirculated one (inner
/// packets after `tnl_pop`) has them per packet.
pub struct RxBatch {
    /// Boxed so that a packet moves to the recirculation batch by
    /// swapping two pointers, not by copying 2 KiB.
    #[allow(clippy::vec_box)]
    bufs: Vec<Box<[u8; BUF_SIZE]>>,
    /// Where each packet starts in its buffer.
    pub starts: [usize; BATCH],
    pub lens: [usize; BATCH],
    pub in_ports: [u32; BATCH],
    pub tunnels: [Option<TunnelMeta>; BATCH],
    /// The recirculation id each packet goes round with (0: as received).
    pub recirc_ids: [u32; BATCH],
}

impl Default for RxBatch {
    fn default() -> Self {
        RxBatch {
            bufs: (0..BATCH).map(|_| Box::new([0u8; BUF_SIZE])).collect(),
            starts: [HEADROOM; BATCH],
            lens: [0; BATCH],
            in_ports: [0; BATCH],
            tunnels: [None; BATCH],
            recirc_ids: [0; BATCH],
        }
    }
}

impl RxBatch {
    /// Packet `i`'s frame buffer; the packet starts at `starts[i]`.
    pub fn buf_mut(&mut self, i: usize) -> &mut [u8; BUF_SIZE] {
        &mut self.bufs[i]
    }

    pub fn data(&self, i: usize) -> &[u8] {
        &self.bufs[i][self.starts[i]..self.starts[i] + self.lens[i]]
    }

    /// Puts a packet in slot `i` (a copy at [`HEADROOM`]; longer packets
    /// are cut to the buffer).
    pub fn fill(&mut self, i: usize, in_port: u32, packet: &[u8]) {
        let len = packet.len().min(BUF_SIZE - HEADROOM);
        self.bufs[i][HEADROOM..HEADROOM + len].copy_from_slice(&packet[..len]);
        self.starts[i] = HEADROOM;
        self.lens[i] = len;
        self.in_ports[i] = in_port;
        self.tunnels[i] = None;
        self.recirc_ids[i] = 0;
    }

    /// Moves packet `i` of `self`, now at `(start, len)` in its buffer, to
    /// slot `j` of `to` (the buffers trade places), to go round again as
    /// `again` says.
    pub fn move_to(&mut self, i: usize, to: &mut RxBatch, j: usize, at: (usize, usize), again: Again) {
        std::mem::swap(&mut self.bufs[i], &mut to.bufs[j]);
        (to.starts[j], to.lens[j]) = at;
        to.in_ports[j] = again.in_port;
        to.tunnels[j] = again.tunnel;
        to.recirc_ids[j] = again.recirc_id;
    }

    /// Marks the first `n` slots as received on `port` at [`HEADROOM`].
    fn received(&mut self, n: usize, port: u32) {
        self.starts[..n].fill(HEADROOM);
        self.in_ports[..n].fill(port);
        self.tunnels[..n].fill(None);
        self.recirc_ids[..n].fill(0);
    }
}

/// How a packet goes through the datapath again: after decapsulation, on
/// its VXLAN port with the tunnel's metadata; after `recirc(ID)`, on the
/// same port with the same metadata and that id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Again {
    pub in_port: u32,
    pub tunnel: Option<TunnelMeta>,
    pub recirc_id: u32,
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

fn device_mtu(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
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
        Port::open_afxdp(no, name, ProgramChoice::Redirect)
    }

    /// Opens a tunnel underlay interface: AF_XDP behind the underlay
    /// filter, which accepts nothing until VTEPs are added ([`Port::vteps`]).
    pub fn open_underlay(no: u32, name: &str) -> io::Result<Port> {
        Port::open_afxdp(no, name, ProgramChoice::Underlay)
    }

    /// Opens a switched interface of hybrid mode: AF_XDP behind the
    /// steering program over `table`, attached in `mode`.
    pub fn open_steered(no: u32, name: &str, table: &SteeringTable, mode: XdpAttach) -> io::Result<Port> {
        Port::open_afxdp(no, name, ProgramChoice::Steered(table, mode))
    }

    fn open_afxdp(no: u32, name: &str, program: ProgramChoice) -> io::Result<Port> {
        let ifindex = fd::ifindex(name)?;
        let n = rx_queue_count(name);
        let attached = match program {
            ProgramChoice::Underlay => UnderlayProgram::attach(ifindex, n as u32).map(XdpProgramKind::Underlay),
            ProgramChoice::Redirect => RedirectProgram::attach(ifindex, n as u32).map(XdpProgramKind::Redirect),
            ProgramChoice::Steered(t, mode) => {
                SteeredProgram::attach(ifindex, n as u32, t, no, mode).map(XdpProgramKind::Steered)
            }
        };
        let prog = attached.map_err(|e| io::Error::new(e.kind(), format!("{name}: attaching the XDP program: {e}")))?;
        let queues = bind_queues(name, ifindex, n, |q, s| match &prog {
            XdpProgramKind::Redirect(p) => p.register(q, s),
            XdpProgramKind::Underlay(p) => p.register(q, s),
            XdpProgramKind::Steered(p) => p.register(q, s),
        })?
        .into_iter()
        .map(Mutex::new)
        .collect();
        Ok(Port {
            no,
            name: name.to_string(),
            backend: Backend::Xdp {
                queues,
                prog,
                ifindex: AtomicU32::new(ifindex),
                reattached: Mutex::new(None),
                generation: AtomicU64::new(0),
            },
            stats: PortStats::default(),
            mtu: AtomicU32::new(device_mtu(name).unwrap_or(DEFAULT_MTU)),
        })
    }

    /// A VXLAN tunnel port.
    pub fn vxlan(no: u32, name: &str, endpoint: VxlanEndpoint) -> Port {
        Port {
            no,
            name: name.to_string(),
            backend: Backend::Vxlan(endpoint),
            stats: PortStats::default(),
            mtu: AtomicU32::new(DEFAULT_MTU),
        }
    }

    /// The VTEP set of an underlay port's filter.
    pub fn vteps(&self) -> Option<&VtepMaps> {
        match &self.backend {
            Backend::Xdp {
                prog: XdpProgramKind::Underlay(p),
                ..
            } => Some(&p.vteps),
            _ => None,
        }
    }

    /// Hybrid mode: whether the steering program runs in native XDP
    /// (`None`: not a steered port).
    pub fn steering_native(&self) -> Option<bool> {
        match &self.backend {
            Backend::Xdp {
                prog: XdpProgramKind::Steered(p),
                ..
            } => Some(p.native),
            _ => None,
        }
    }

    /// The largest frame this port sends: its MTU plus the Ethernet header.
    pub fn max_frame(&self) -> usize {
        self.mtu.load(Ordering::Relaxed) as usize + ETHERNET_LEN
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
            mtu: AtomicU32::new(DEFAULT_MTU),
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
            mtu: AtomicU32::new(DEFAULT_MTU),
        }
    }

    pub fn mem(&self) -> Option<&MemPort> {
        match &self.backend {
            Backend::Mem(m) => Some(m),
            _ => None,
        }
    }

    pub fn vxlan_endpoint(&self) -> Option<&VxlanEndpoint> {
        match &self.backend {
            Backend::Vxlan(e) => Some(e),
            _ => None,
        }
    }

    pub fn queues(&self) -> usize {
        match &self.backend {
            Backend::Xdp { queues, .. } => queues.len(),
            Backend::Mem(_) => 1,
            Backend::Vxlan(_) => 0,
        }
    }

    /// Whether the interface still exists (an AF_XDP port whose device was
    /// deleted stops receiving; control reports it).
    pub fn is_alive(&self) -> bool {
        match &self.backend {
            Backend::Xdp { ifindex, .. } => fd::ifindex(&self.name).is_ok_and(|i| i == ifindex.load(Ordering::Relaxed)),
            Backend::Mem(_) | Backend::Vxlan(_) => true,
        }
    }

    /// Whether the link is up (an interface's `operstate`; devices that do
    /// not report one count as up). Ports without an interface are up.
    pub fn link_up(&self) -> bool {
        match &self.backend {
            Backend::Xdp { .. } => std::fs::read_to_string(format!("/sys/class/net/{}/operstate", self.name))
                .is_ok_and(|s| matches!(s.trim(), "up" | "unknown")),
            Backend::Mem(_) | Backend::Vxlan(_) => true,
        }
    }

    /// Opens the port again on a re-created interface of the same name
    /// (a veth deleted and added again): its program and a socket per queue
    /// on the new device, swapped in under the queues' locks, so a PMD's
    /// next batch uses them. Switched ports (the redirect program, or
    /// hybrid mode's steering program, whose kernel vport the caller adds
    /// again); not underlay ports. The interface must have at least as
    /// many receive queues.
    pub fn reopen(&self) -> io::Result<()> {
        let Backend::Xdp {
            queues,
            prog,
            ifindex,
            reattached,
            generation,
        } = &self.backend
        else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: only AF_XDP ports are opened again", self.name),
            ));
        };
        if matches!(prog, XdpProgramKind::Underlay(_)) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: underlay ports are not opened again (restart odpx)", self.name),
            ));
        }
        let new = fd::ifindex(&self.name)?;
        let n = queues.len();
        if rx_queue_count(&self.name) < n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: fewer receive queues than the port had ({n})", self.name),
            ));
        }
        let attaching =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: attaching the XDP program: {e}", self.name));
        let (attached, sockets) = match prog {
            XdpProgramKind::Steered(p) => {
                let link = p.attach_again(new).map_err(attaching)?;
                (
                    Reattached::Steered(link),
                    bind_queues(&self.name, new, n, |q, s| p.register(q, s))?,
                )
            }
            _ => {
                let r = RedirectProgram::attach(new, n as u32).map_err(attaching)?;
                let sockets = bind_queues(&self.name, new, n, |q, s| r.register(q, s))?;
                (Reattached::Redirect(r), sockets)
            }
        };
        for (slot, s) in queues.iter().zip(sockets) {
            *slot.lock().expect("queue lock") = s;
        }
        *reattached.lock().expect("program lock") = Some(attached);
        ifindex.store(new, Ordering::Relaxed);
        generation.fetch_add(1, Ordering::Release);
        if let Some(mtu) = device_mtu(&self.name) {
            self.mtu.store(mtu, Ordering::Relaxed);
        }
        self.stats.link_reopened.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many times the port's sockets were replaced ([`Port::reopen`]):
    /// descriptors taken before a change are stale after it.
    pub fn generation(&self) -> u64 {
        match &self.backend {
            Backend::Xdp { generation, .. } => generation.load(Ordering::Acquire),
            Backend::Mem(_) | Backend::Vxlan(_) => 0,
        }
    }

    /// The socket of AF_XDP queue `q`, for waiting on it (none for other
    /// ports).
    pub fn rx_fd(&self, q: usize) -> Option<std::os::fd::RawFd> {
        match &self.backend {
            Backend::Xdp { queues, .. } => queues.get(q).map(|s| s.lock().expect("queue lock").fd()),
            Backend::Mem(_) | Backend::Vxlan(_) => None,
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
                s.receive(BATCH, |f| {
                    if f.len() > max {
                        self.stats.rx_dropped_too_big.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    b.bufs[n][HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                    b.lens[n] = f.len();
                    bytes += f.len() as u64;
                    n += 1;
                });
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
            Backend::Vxlan(_) => {}
        }
        b.received(n, self.no);
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
                let mut staged = stage.iter();
                sent = s.transmit(stage.len(), |_, frame| {
                    let p = staged.next()?;
                    let len = p.len().min(frame.len());
                    frame[..len].copy_from_slice(&p[..len]);
                    bytes += len as u64;
                    Some(len)
                });
            }
            Backend::Mem(m) => {
                if m.keep_tx {
                    let mut tx = m.tx.lock().expect("tx lock");
                    tx.extend(stage.iter().map(<[u8]>::to_vec));
                }
                bytes = stage.iter().map(|p| p.len() as u64).sum();
                sent = stage.len();
            }
            // Nothing is output to a tunnel port itself (the translator
            // turns that into an encapsulation): what a hand-written
            // action list sends there is dropped.
            Backend::Vxlan(_) => {}
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
