//! Where a PMD's packets go once classified: their actions run, what they
//! output is staged per port and sent with one kick per port a batch, and
//! a decapsulated or recirculated packet moves to the recirculation batch.
//!
//! # Ownership
//! [`Output`] is the PMD's own: its transmit stages, its per-batch tunnel
//! tallies (added to the ports' shared counters once a batch) and the map
//! from VXLAN (UDP port, VNI, remote) to the receiving port.

use super::counters::PmdCounters;
use super::PortTable;
use crate::exec::{ExecResult, OutputSink, Packet, Program};
use crate::meter::{Meters, Verdict};
use crate::port::{Again, RxBatch, TxStage};
use crate::tunnel::{DecapDrop, EncapDrop, Receivers, TunnelMeta};
use crate::upcalls::UserspaceSender;
use odpx_classifier::counters::add_single_writer as add;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Time since `used` (PMD clock, ns; 0 = never).
pub(super) fn idle_of(used: u64, now: u64) -> Option<Duration> {
    (used != 0).then(|| Duration::from_nanos(now.saturating_sub(used)))
}

/// A batch's encapsulations and decapsulations on one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TunnelTally {
    encap_packets: u64,
    encap_bytes: u64,
    decap_packets: u64,
    decap_bytes: u64,
}

/// The PMD's output side (see the module documentation).
pub(super) struct Output {
    pmd: usize,
    ports: PortTable,
    counters: Arc<PmdCounters>,
    /// Which VXLAN port receives a decapsulated packet.
    receivers: Receivers,
    /// By port number, for the ports that exist (numbers may be sparse:
    /// `ofport`).
    stages: Vec<Option<TxStage>>,
    tally: Vec<TunnelTally>,
    /// The numbers of the ports that exist: what a flush looks at.
    numbers: Vec<usize>,
    /// Where `userspace` actions hand their packets.
    to_userspace: UserspaceSender,
    /// The meters `meter` actions run through (shared with the other PMDs).
    pub(super) meters: Meters,
    /// Meter time now (nanoseconds since `crate::meter::epoch`), set once a
    /// pass ([`Output::set_time`]).
    meter_now: u64,
}

impl Output {
    pub(super) fn new(
        pmd: usize,
        ports: PortTable,
        counters: Arc<PmdCounters>,
        to_userspace: UserspaceSender,
    ) -> Output {
        let n = ports.len();
        let numbers = (0..n).filter(|&no| matches!(ports.get(no), Some(Some(_)))).collect();
        // A stage for each port that exists (numbers may be sparse).
        let stages = ports.iter().map(|p| p.as_ref().map(|_| TxStage::default())).collect();
        // Control validated the endpoints with the same constructor.
        let receivers = Receivers::new(
            ports
                .iter()
                .flatten()
                .filter_map(|p| p.vxlan_endpoint().map(|e| (p.no, *e))),
        )
        .unwrap_or_default();
        Output {
            pmd,
            ports,
            counters,
            receivers,
            stages,
            tally: vec![TunnelTally::default(); n],
            numbers,
            to_userspace,
            meters: Meters::default(),
            meter_now: 0,
        }
    }

    /// The time meters see until the next call: `ns` since
    /// `crate::meter::epoch`.
    pub(super) fn set_time(&mut self, ns: u64) {
        self.meter_now = ns;
    }

    /// Runs `program` on packet `i` of `cur`. A packet the actions
    /// decapsulated moves to slot `popped` of `next`, with its receiving
    /// VXLAN port and tunnel metadata, and one they recirculated with its
    /// port, metadata and recirculation id; returns whether it moved.
    pub(super) fn run(
        &mut self,
        program: &Program,
        cur: &mut RxBatch,
        i: usize,
        next: &mut RxBatch,
        popped: usize,
    ) -> bool {
        let (start, len) = (cur.starts[i], cur.lens[i]);
        let (in_port, tunnel) = (cur.in_ports[i], cur.tunnels[i]);
        let mut sink = Sink {
            stages: &mut self.stages,
            ports: &self.ports,
            tally: &mut self.tally,
            to_userspace: &self.to_userspace,
            counters: &self.counters,
            meters: &self.meters,
            meter_now: self.meter_now,
        };
        let mut p = Packet::new(&mut cur.buf_mut(i)[..], start, len);
        let result = program.run(&mut p, &mut sink);
        let at = (p.start(), p.len());
        self.count(&result);
        if let Some(recirc_id) = result.recirc {
            let again = Again {
                in_port,
                tunnel,
                recirc_id,
            };
            cur.move_to(i, next, popped, at, again);
            return true;
        }
        let Some((underlay, meta)) = result.popped else {
            return false;
        };
        match self.receiver_of(underlay, &meta, at.1) {
            Some(port) => {
                let again = Again {
                    in_port: port,
                    tunnel: Some(meta),
                    recirc_id: 0,
                };
                cur.move_to(i, next, popped, at, again);
                true
            }
            None => false,
        }
    }

    /// The VXLAN port that receives a packet decapsulated on `underlay`
    /// (`len` bytes left), with the decapsulation counted there; `None`,
    /// with the drop counted on the underlay port, when no port has its VNI.
    fn receiver_of(&mut self, underlay: u32, meta: &TunnelMeta, len: usize) -> Option<u32> {
        let Some(port) = self.receivers.resolve(meta) else {
            port_stats(&self.ports, underlay, |s| s.count_decap_drop(DecapDrop::UnknownVni));
            return None;
        };
        if let Some(t) = self.tally.get_mut(port as usize) {
            t.decap_packets += 1;
            t.decap_bytes += len as u64;
        }
        Some(port)
    }

    /// Counts what running a packet's actions reported.
    fn count(&self, r: &ExecResult) {
        if r.unsupported {
            add(&self.counters.unsupported_actions, 1);
        }
        if r.no_headroom {
            add(&self.counters.drops_no_headroom, 1);
        }
        if r.metered {
            add(&self.counters.drops_meter, 1);
        }
        if let Some((underlay, why)) = r.decap_drop {
            port_stats(&self.ports, underlay, |s| s.count_decap_drop(why));
        }
    }

    /// Sends every staged packet (one kick per port) and adds the batch's
    /// tunnel tallies to the ports' counters.
    pub(super) fn flush(&mut self) {
        for &no in &self.numbers {
            let Some(stage) = self.stages[no].as_mut().filter(|s| !s.is_empty()) else {
                continue;
            };
            if let Some(Some(p)) = self.ports.get(no) {
                p.send(self.pmd, stage);
            }
            stage.clear();
        }
        for &no in &self.numbers {
            let t = &mut self.tally[no];
            if *t == TunnelTally::default() {
                continue;
            }
            if let Some(Some(p)) = self.ports.get(no) {
                let r = Ordering::Relaxed;
                p.stats.count_encap(Ok(t.encap_bytes), t.encap_packets);
                p.stats.rx_packets.fetch_add(t.decap_packets, r);
                p.stats.rx_bytes.fetch_add(t.decap_bytes, r);
            }
            *t = TunnelTally::default();
        }
    }
}

/// Where a packet's actions output: the batch's transmit stages, with the
/// ports' MTUs and the tunnel tallies.
struct Sink<'a> {
    stages: &'a mut [Option<TxStage>],
    ports: &'a PortTable,
    tally: &'a mut [TunnelTally],
    to_userspace: &'a UserspaceSender,
    counters: &'a PmdCounters,
    meters: &'a Meters,
    meter_now: u64,
}

impl OutputSink for Sink<'_> {
    fn output(&mut self, port: u32, packet: &[u8]) {
        // A port that does not exist has no stage.
        if let Some(Some(s)) = self.stages.get_mut(port as usize) {
            s.push(packet);
        }
    }

    fn max_frame(&self, port: u32) -> usize {
        match self.ports.get(port as usize) {
            Some(Some(p)) => p.max_frame(),
            _ => usize::MAX,
        }
    }

    fn encapsulated(&mut self, tnl_port: u32, outcome: Result<usize, EncapDrop>) {
        match (outcome, self.tally.get_mut(tnl_port as usize)) {
            (Ok(bytes), Some(t)) => {
                t.encap_packets += 1;
                t.encap_bytes += bytes as u64;
            }
            (Err(why), _) => port_stats(self.ports, tnl_port, |s| s.count_encap(Err(why), 1)),
            (Ok(_), None) => {}
        }
    }

    fn userspace(&mut self, userdata: &[u8], packet: &[u8]) {
        if self.to_userspace.send(userdata, packet) {
            add(&self.counters.to_controller, 1);
        } else {
            add(&self.counters.to_controller_lost, 1);
        }
    }

    fn meter(&mut self, id: u32, len: usize) -> Verdict {
        self.meters.run(id, len, self.meter_now)
    }
}

/// Runs `f` on the counters of port `no`, if it exists.
fn port_stats(ports: &PortTable, no: u32, f: impl FnOnce(&crate::port::PortStats)) {
    if let Some(Some(p)) = ports.get(no as usize) {
        f(&p.stats);
    }
}
