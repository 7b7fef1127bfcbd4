//! Executing datapath actions on one packet.
//!
//! # What
//! [`execute`] runs an [`OdpAction`] list on a [`Packet`] (a window into a
//! frame with headroom in front of it) and hands each `output` to an
//! [`OutputSink`] with the packet's bytes at that point, so a packet
//! modified between two outputs leaves each port as the actions say.
//!
//! # How
//! * Set actions (plain or masked) on Ethernet, IPv4, IPv6, TCP, UDP and
//!   the outer VLAN TCI write the header fields in place. Checksums are
//!   updated incrementally (RFC 1624): the IPv4 header checksum for any
//!   IPv4 field, the TCP/UDP/ICMPv6 checksum for ports and for addresses
//!   (they are in the pseudo-header). A zero UDP-over-IPv4 checksum means
//!   "none" and stays zero.
//! * `push_vlan` moves the MAC addresses 4 bytes into the headroom and
//!   writes the tag; `pop_vlan` does the reverse. No copy of the payload.
//! * `clone(...)` runs its actions on a copy; the original continues.
//! * `tnl_push(...)` encapsulates and outputs to the underlay port, as
//!   Open vSwitch's userspace datapath does: on the packet itself when it
//!   is the last action, on a copy otherwise (a flood to several tunnels
//!   sends the same inner frame in each). `tnl_pop(port)` decapsulates and
//!   ends the list: the caller recirculates the inner packet with the
//!   tunnel metadata in [`ExecResult::popped`]. See [`crate::tunnel`].
//! * `userspace(...)` hands the packet as it is at that point, with the
//!   action's user data, to [`OutputSink::userspace`] (a packet-in).
//! * `push_mpls`, `pop_mpls` and `set(mpls(...))` edit the label stack
//!   ([`mpls`]). `recirc(ID)` ends the list: the caller runs the packet
//!   through the datapath again with that recirculation id
//!   ([`ExecResult::recirc`]).
//! * `meter(N)` asks [`OutputSink::meter`] what meter N does with the
//!   packet: nothing, drop it (the list ends), or raise its DSCP's drop
//!   precedence ([`dscp`]).
//! * Actions a userspace switch cannot or need not run here (conntrack,
//!   sampling)
//!   are counted as unsupported and end the action list for this packet,
//!   as a truncated action list would: what was output stays output.
//!
//! # Fast form
//! Every action is run through its [`Op`]: outputs, VLAN push/pop and the
//! Ethernet, IPv4, TCP/UDP and VLAN sets carry the few bytes they write
//! inline; everything else points back into the action list. A megaflow
//! holds a [`Program`] (its ops, inline for up to four, plus the list), made
//! when it is installed, so a hit reads its actions from the megaflow's own
//! cache lines instead of from two 200-byte keys per set action.
//! [`execute`] makes the ops on the fly, so both paths run the same code.
//!
//! # Cost
//! No allocation except for `clone`; fields are rewritten through
//! fixed-size stack buffers (no library calls per field). Header offsets
//! are found once per set action, except for Ethernet sets, which need
//! none.

mod dscp;
mod mpls;
mod nd;

use crate::meter::Verdict;
pub use crate::packet::{Packet, HEADROOM};
use crate::tunnel::{self, DecapDrop, EncapDrop, TunnelMeta};
use odpx_classifier::key::attr;
use odpx_classifier::layout::layout;
use odpx_classifier::odp::{OdpAction, SetAction};
use odpx_classifier::wire::{
    arp_field, checksum, eth_field, ethertype, icmp_field, ip_proto, ipv4_field, ipv6_field, sctp_field, tcp_field,
    udp_field, ArpPacket, IcmpHeader, Ipv4Header, Ipv6Header, VlanTag, IPV4_LEN, IPV6_LEN, VLAN_TAG_LEN,
};
use std::sync::Arc;

/// Where `output` actions go, and what they need to know about ports.
pub trait OutputSink {
    fn output(&mut self, port: u32, packet: &[u8]);

    /// The largest frame `port` sends (its MTU plus the Ethernet header).
    fn max_frame(&self, _port: u32) -> usize {
        usize::MAX
    }

    /// A `tnl_push` for tunnel port `tnl_port` encapsulated a frame (of
    /// this many bytes, outer headers included) or dropped it.
    fn encapsulated(&mut self, _tnl_port: u32, _outcome: Result<usize, EncapDrop>) {}

    /// A `userspace` action: the packet as it is now, with the action's
    /// user data, for the control layer (a packet-in). A sink that has no
    /// one to hand it to drops it.
    fn userspace(&mut self, _userdata: &[u8], _packet: &[u8]) {}

    /// A `meter(N)` action on a packet of `len` bytes: what meter N does
    /// with it. A sink without meters lets every packet pass.
    fn meter(&mut self, _id: u32, _len: usize) -> Verdict {
        Verdict::Pass
    }
}

impl<F: FnMut(u32, &[u8])> OutputSink for F {
    fn output(&mut self, port: u32, packet: &[u8]) {
        self(port, packet)
    }
}

/// What running the actions did besides outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// An action this datapath does not run ended the list.
    pub unsupported: bool,
    /// A set action found no header to write (e.g. a truncated frame):
    /// the packet went on unchanged, as a kernel datapath does.
    pub skipped_sets: u32,
    /// A VLAN push found no headroom: the packet was dropped.
    pub no_headroom: bool,
    /// `tnl_pop(port)` removed the outer headers: the packet is now the
    /// inner frame, to be recirculated with this metadata.
    pub popped: Option<(u32, TunnelMeta)>,
    /// `tnl_pop(port)` refused the outer headers: the packet was dropped.
    pub decap_drop: Option<(u32, DecapDrop)>,
    /// `recirc(ID)`: the packet, as the actions left it, is to go through
    /// the datapath again with this recirculation id.
    pub recirc: Option<u32>,
    /// A meter dropped the packet.
    pub metered: bool,
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn csum_replace_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut c = csum;
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        let ow = u16::from_be_bytes([o[0], *o.get(1).unwrap_or(&0)]);
        let nw = u16::from_be_bytes([n[0], *n.get(1).unwrap_or(&0)]);
        c = checksum::replace2(c, ow, nw);
    }
    c
}

/// Offset of the transport checksum, when the packet has one to maintain.
fn l4_csum_at(d: &[u8], proto: u8, l4: usize, ipv4: bool) -> Option<usize> {
    let at = match proto {
        ip_proto::TCP => l4 + tcp_field::CSUM,
        ip_proto::UDP => l4 + udp_field::CSUM,
        ip_proto::ICMPV6 if !ipv4 => l4 + icmp_field::CSUM,
        _ => return None,
    };
    if d.len() < at + 2 || (proto == ip_proto::UDP && ipv4 && be16(d, at) == 0) {
        return None;
    }
    Some(at)
}

/// Writes `(old & !mask) | (val & mask)` over `d[at..at + N]` (a MAC, an
/// address, a port: N is known at each call site, so the compiler turns
/// the compare and copy into a few moves instead of library calls) and
/// updates the checksums at the given offsets for the change. No
/// allocation: this runs per packet.
fn write_masked<const N: usize>(d: &mut [u8], at: usize, val: &[u8; N], mask: &[u8; N], csums: &[Option<usize>]) {
    let field = &mut d[at..at + N];
    let mut new = [0u8; N];
    for i in 0..N {
        new[i] = (field[i] & !mask[i]) | (val[i] & mask[i]);
    }
    if *field == new {
        return;
    }
    if csums.iter().all(Option::is_none) {
        field.copy_from_slice(&new);
        return;
    }
    // Checksums are over 16-bit words: align the changed range.
    let (s, e) = (at & !1, ((at + N + 1) & !1).min(d.len()));
    let mut before = [0u8; 18];
    before[..e - s].copy_from_slice(&d[s..e]);
    d[at..at + N].copy_from_slice(&new);
    for c in csums.iter().flatten() {
        let upd = csum_replace_bytes(be16(d, *c), &before[..e - s], &d[s..e]);
        d[*c..*c + 2].copy_from_slice(&upd.to_be_bytes());
    }
}

/// One action as the fast path runs it. The values a set writes are
/// copied out of the [`SetAction`] (two 200-byte keys) into a few bytes
/// here, so running a megaflow's actions reads one or two cache lines
/// instead of several scattered over the action list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Output(u32),
    SetEthernet {
        dst: [u8; 6],
        dst_mask: [u8; 6],
        src: [u8; 6],
        src_mask: [u8; 6],
    },
    SetIpv4 {
        src: [u8; 4],
        src_mask: [u8; 4],
        dst: [u8; 4],
        dst_mask: [u8; 4],
        tos: u8,
        tos_mask: u8,
        ttl: u8,
        ttl_mask: u8,
    },
    /// TCP (`proto` 6) or UDP (17) ports.
    SetPorts {
        proto: u8,
        src: [u8; 2],
        src_mask: [u8; 2],
        dst: [u8; 2],
        dst_mask: [u8; 2],
    },
    /// The outer VLAN TCI: `value` is already masked and has no CFI bit.
    SetVlanTci {
        value: u16,
        mask: u16,
    },
    PushVlan {
        tpid: u16,
        tci: u16,
    },
    PopVlan,
    /// Decapsulate (tunnel port number as the action names it).
    TunnelPop(u32),
    /// A set of kernel metadata (priority, mark, tunnel): nothing to write
    /// in a userspace frame.
    Nothing,
    /// Anything else (IPv6 sets, clone, actions odpx does not run) runs
    /// from the action list itself: entry `n`.
    FromList(u32),
}

impl Op {
    /// The fast form of `a`, which is entry `index` of its list.
    pub fn of(a: &OdpAction, index: usize) -> Op {
        let from_list = Op::FromList(u32::try_from(index).unwrap_or(u32::MAX));
        let s = match a {
            OdpAction::Output(port) => return Op::Output(*port),
            OdpAction::PushVlan { tpid, tci } => return Op::PushVlan { tpid: *tpid, tci: *tci },
            OdpAction::PopVlan => return Op::PopVlan,
            OdpAction::TunnelPop(port) => return Op::TunnelPop(*port),
            OdpAction::Set(s) | OdpAction::SetMasked(s) => s,
            _ => return from_list,
        };
        let (k, m) = (&s.key, &s.mask);
        match s.attr {
            attr::ETHERNET => Op::SetEthernet {
                dst: k.eth_dst,
                dst_mask: m.eth_dst,
                src: k.eth_src,
                src_mask: m.eth_src,
            },
            attr::IPV4 => Op::SetIpv4 {
                src: k.ipv4_src.to_be_bytes(),
                src_mask: m.ipv4_src.to_be_bytes(),
                dst: k.ipv4_dst.to_be_bytes(),
                dst_mask: m.ipv4_dst.to_be_bytes(),
                tos: k.ip_tos,
                tos_mask: m.ip_tos,
                ttl: k.ip_ttl,
                ttl_mask: m.ip_ttl,
            },
            attr::TCP | attr::UDP => Op::SetPorts {
                proto: if s.attr == attr::TCP { 6 } else { 17 },
                src: k.tp_src.to_be_bytes(),
                src_mask: m.tp_src.to_be_bytes(),
                dst: k.tp_dst.to_be_bytes(),
                dst_mask: m.tp_dst.to_be_bytes(),
            },
            attr::VLAN => Op::SetVlanTci {
                value: k.vlan_tci & m.vlan_tci & !odpx_classifier::key::VLAN_CFI,
                mask: m.vlan_tci,
            },
            attr::PRIORITY | attr::SKB_MARK | attr::TUNNEL => Op::Nothing,
            _ => from_list,
        }
    }
}

/// Runs one set op; false when the header it writes is not there.
fn apply_set(p: &mut Packet, op: &Op) -> bool {
    if let Op::SetEthernet {
        dst,
        dst_mask,
        src,
        src_mask,
    } = op
    {
        // The commonest rewrite (routing): no need to parse the headers.
        let d = p.data_mut();
        if d.len() < eth_field::TYPE {
            return false;
        }
        write_masked(d, eth_field::DST, dst, dst_mask, &[]);
        write_masked(d, eth_field::SRC, src, src_mask, &[]);
        return true;
    }
    let l = layout(p.data());
    let d = p.data_mut();
    match *op {
        Op::SetVlanTci { value, mask } => {
            if l.vlan_tags == 0 {
                return false;
            }
            let Ok(mut tag) = VlanTag::new_checked(&mut d[eth_field::TYPE..]) else {
                return false;
            };
            tag.set_tci((tag.tci() & !mask) | value);
            true
        }
        Op::SetIpv4 {
            src,
            src_mask,
            dst,
            dst_mask,
            tos,
            tos_mask,
            ttl,
            ttl_mask,
        } => {
            let Some(l3) = l.l3_of(ethertype::IPV4) else {
                return false;
            };
            if d.len() < l3 + IPV4_LEN {
                return false;
            }
            let ip_csum = Some(l3 + ipv4_field::CSUM);
            let l4c = l.l4().and_then(|(proto, l4)| l4_csum_at(d, proto, l4, true));
            write_masked(d, l3 + ipv4_field::TOS, &[tos], &[tos_mask], &[ip_csum]);
            write_masked(d, l3 + ipv4_field::TTL, &[ttl], &[ttl_mask], &[ip_csum]);
            write_masked(d, l3 + ipv4_field::SRC, &src, &src_mask, &[ip_csum, l4c]);
            write_masked(d, l3 + ipv4_field::DST, &dst, &dst_mask, &[ip_csum, l4c]);
            true
        }
        Op::SetPorts {
            proto: want,
            src,
            src_mask,
            dst,
            dst_mask,
        } => {
            let Some((proto, l4)) = l.l4() else { return false };
            // TCP, UDP and SCTP keep their ports at the same offsets.
            if proto != want || d.len() < l4 + udp_field::LEN {
                return false;
            }
            let ipv4 = l.l3_of(ethertype::IPV4).is_some();
            let c = l4_csum_at(d, proto, l4, ipv4);
            write_masked(d, l4 + udp_field::SRC_PORT, &src, &src_mask, &[c]);
            write_masked(d, l4 + udp_field::DST_PORT, &dst, &dst_mask, &[c]);
            true
        }
        _ => false,
    }
}

/// Applies a set action that has no fast form (IPv6, ARP, ICMP); false
/// when the header is not there or the attribute is not one odpx writes.
fn apply_set_from_list(p: &mut Packet, s: &SetAction) -> bool {
    match s.attr {
        attr::IPV6 => set_ipv6(p, s),
        attr::ARP => set_arp(p, s),
        attr::ICMP | attr::ICMPV6 => set_icmp(p, s),
        attr::SCTP => set_sctp(p, s),
        attr::MPLS => mpls::set(p, s),
        attr::ND => nd::set(p, s),
        _ => false,
    }
}

/// SCTP's ports, and its CRC32c over the whole packet made again.
fn set_sctp(p: &mut Packet, s: &SetAction) -> bool {
    let (k, m) = (&s.key, &s.mask);
    let l = layout(p.data());
    let Some((ip_proto::SCTP, l4)) = l.l4() else {
        return false;
    };
    let d = p.data_mut();
    // The packet ends where the IP payload does, before any padding.
    let end = match (l.l3_of(ethertype::IPV4), l.l3_of(ethertype::IPV6)) {
        (Some(l3), _) => Ipv4Header::new_checked(&d[l3..]).map(|ip| l3 + usize::from(ip.total_len())),
        (_, Some(l3)) => Ipv6Header::new_checked(&d[l3..]).map(|ip| l3 + IPV6_LEN + usize::from(ip.payload_len())),
        _ => return false,
    };
    let Ok(end) = end else { return false };
    if end > d.len() || end < l4 + sctp_field::LEN {
        return false;
    }
    write_masked(
        d,
        l4 + sctp_field::SRC_PORT,
        &k.tp_src.to_be_bytes(),
        &m.tp_src.to_be_bytes(),
        &[],
    );
    write_masked(
        d,
        l4 + sctp_field::DST_PORT,
        &k.tp_dst.to_be_bytes(),
        &m.tp_dst.to_be_bytes(),
        &[],
    );
    let csum = l4 + sctp_field::CSUM..l4 + sctp_field::CSUM + 4;
    d[csum.clone()].fill(0);
    let crc = checksum::crc32c(&d[l4..end]);
    d[csum].copy_from_slice(&crc.to_le_bytes());
    true
}

/// ARP's operation, hardware and protocol addresses (no checksum).
fn set_arp(p: &mut Packet, s: &SetAction) -> bool {
    let (k, m) = (&s.key, &s.mask);
    let l = layout(p.data());
    let Some(l3) = l.l3_of(ethertype::ARP).or_else(|| l.l3_of(ethertype::RARP)) else {
        return false;
    };
    let d = p.data_mut();
    if ArpPacket::new_checked(&d[l3..]).is_err() {
        return false;
    }
    write_masked(
        d,
        l3 + arp_field::OP,
        &k.arp_op.to_be_bytes(),
        &m.arp_op.to_be_bytes(),
        &[],
    );
    write_masked(d, l3 + arp_field::SHA, &k.arp_sha, &m.arp_sha, &[]);
    write_masked(
        d,
        l3 + arp_field::SPA,
        &k.ipv4_src.to_be_bytes(),
        &m.ipv4_src.to_be_bytes(),
        &[],
    );
    write_masked(d, l3 + arp_field::THA, &k.arp_tha, &m.arp_tha, &[]);
    write_masked(
        d,
        l3 + arp_field::TPA,
        &k.ipv4_dst.to_be_bytes(),
        &m.ipv4_dst.to_be_bytes(),
        &[],
    );
    true
}

/// ICMP's or ICMPv6's type and code (the key's transport ports), with the
/// checksum updated for the change.
fn set_icmp(p: &mut Packet, s: &SetAction) -> bool {
    let (k, m) = (&s.key, &s.mask);
    let want = if s.attr == attr::ICMP {
        ip_proto::ICMP
    } else {
        ip_proto::ICMPV6
    };
    let l = layout(p.data());
    let Some((proto, l4)) = l.l4() else { return false };
    let d = p.data_mut();
    if proto != want || IcmpHeader::new_checked(&d[l4..]).is_err() {
        return false;
    }
    let csum = [Some(l4 + icmp_field::CSUM)];
    write_masked(d, l4 + icmp_field::TYPE, &[k.tp_src as u8], &[m.tp_src as u8], &csum);
    write_masked(d, l4 + icmp_field::CODE, &[k.tp_dst as u8], &[m.tp_dst as u8], &csum);
    true
}

/// IPv6's addresses (checksums updated), class, flow label and hop limit.
fn set_ipv6(p: &mut Packet, s: &SetAction) -> bool {
    let (k, m) = (&s.key, &s.mask);
    let l = layout(p.data());
    let d = p.data_mut();
    let Some(l3) = l.l3_of(ethertype::IPV6) else {
        return false;
    };
    let l4c = l.l4().and_then(|(proto, l4)| l4_csum_at(d, proto, l4, false));
    let Ok(mut ip) = Ipv6Header::new_checked(&mut d[l3..]) else {
        return false;
    };
    // Neither the traffic class, the flow label nor the hop limit is in
    // the pseudo-header: no checksum changes for them.
    let class = (ip.traffic_class() & !m.ip_tos) | (k.ip_tos & m.ip_tos);
    let label = (ip.flow_label() & !m.ipv6_label) | (k.ipv6_label & m.ipv6_label);
    ip.set_class_and_label(class, label);
    ip.set_hop_limit((ip.hop_limit() & !m.ip_ttl) | (k.ip_ttl & m.ip_ttl));
    write_masked(d, l3 + ipv6_field::SRC, &k.ipv6_src, &m.ipv6_src, &[l4c]);
    write_masked(d, l3 + ipv6_field::DST, &k.ipv6_dst, &m.ipv6_dst, &[l4c]);
    true
}

fn push_vlan(p: &mut Packet, tpid: u16, tci: u16) -> bool {
    if p.len() < eth_field::TYPE || !p.push_front(VLAN_TAG_LEN) {
        return false;
    }
    let d = p.data_mut();
    // The MAC addresses move to the new front; the tag goes between them
    // and the old Ethertype.
    d.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + eth_field::TYPE, 0);
    let Ok(mut tag) = VlanTag::new_checked(&mut d[eth_field::TYPE..]) else {
        unreachable!("the frame holds the MAC addresses and the new tag");
    };
    tag.set_tpid(tpid);
    // The CFI bit in ODP's TCI means "tag present"; on the wire it is DEI.
    tag.set_tci(tci & !odpx_classifier::key::VLAN_CFI);
    true
}

fn pop_vlan(p: &mut Packet) {
    if layout(p.data()).vlan_tags == 0 {
        return;
    }
    p.data_mut().copy_within(0..eth_field::TYPE, VLAN_TAG_LEN);
    p.pop_front(VLAN_TAG_LEN);
}

/// Runs `actions` on `p`; outputs go to `sink`. Each action is put in its
/// fast form on the way ([`Op::of`] only copies a few fields); a megaflow
/// runs a [`Program`] made once instead.
pub fn execute(actions: &[OdpAction], p: &mut Packet, sink: &mut dyn OutputSink) -> ExecResult {
    let mut r = ExecResult::default();
    run_list(actions, p, sink, &mut r);
    r
}

fn run_list(actions: &[OdpAction], p: &mut Packet, sink: &mut dyn OutputSink, r: &mut ExecResult) {
    for (i, a) in actions.iter().enumerate() {
        if !run_op(&Op::of(a, i), actions, p, sink, r) {
            return;
        }
    }
}

/// Runs one op (`list` is the action list it came from); false when the
/// rest of the list must not run.
#[inline]
fn run_op(op: &Op, list: &[OdpAction], p: &mut Packet, sink: &mut dyn OutputSink, r: &mut ExecResult) -> bool {
    match op {
        Op::Output(port) => sink.output(*port, p.data()),
        Op::SetEthernet { .. } | Op::SetIpv4 { .. } | Op::SetPorts { .. } | Op::SetVlanTci { .. } => {
            if !apply_set(p, op) {
                r.skipped_sets += 1;
            }
        }
        Op::PushVlan { tpid, tci } => {
            if !push_vlan(p, *tpid, *tci) {
                r.no_headroom = true;
                return false;
            }
        }
        Op::PopVlan => pop_vlan(p),
        Op::TunnelPop(port) => {
            match tunnel::pop(p) {
                Ok(meta) => r.popped = Some((*port, meta)),
                Err(why) => r.decap_drop = Some((*port, why)),
            }
            return false;
        }
        Op::Nothing => {}
        Op::FromList(i) => match list.get(*i as usize) {
            Some(OdpAction::Set(s) | OdpAction::SetMasked(s)) => {
                if !apply_set_from_list(p, s) {
                    r.skipped_sets += 1;
                }
            }
            Some(OdpAction::TunnelPush(t)) => {
                let last = *i as usize + 1 == list.len();
                let max = sink.max_frame(t.out_port);
                let outcome = if last {
                    tunnel::push(p, &t.header, max).map(|()| {
                        sink.output(t.out_port, p.data());
                        p.len()
                    })
                } else {
                    let mut copy = vec![0u8; HEADROOM + p.len()];
                    copy[HEADROOM..].copy_from_slice(p.data());
                    let mut cp = Packet::new(&mut copy, HEADROOM, p.len());
                    tunnel::push(&mut cp, &t.header, max).map(|()| {
                        sink.output(t.out_port, cp.data());
                        cp.len()
                    })
                };
                sink.encapsulated(t.tnl_port, outcome);
            }
            Some(OdpAction::Userspace { userdata, .. }) => {
                sink.userspace(userdata.as_deref().unwrap_or_default(), p.data());
            }
            Some(OdpAction::PushMpls { lse, ethertype }) => match mpls::push(p, *lse, *ethertype) {
                mpls::Pushed::Done => {}
                mpls::Pushed::NoHeader => r.skipped_sets += 1,
                mpls::Pushed::NoHeadroom => {
                    r.no_headroom = true;
                    return false;
                }
            },
            Some(OdpAction::PopMpls(ethertype)) => {
                if !mpls::pop(p, *ethertype) {
                    r.skipped_sets += 1;
                }
            }
            Some(OdpAction::Recirc(id)) => {
                r.recirc = Some(*id);
                return false;
            }
            Some(OdpAction::Meter(id)) => match sink.meter(*id, p.len()) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    r.metered = true;
                    return false;
                }
                Verdict::Remark(levels) => {
                    dscp::remark(p, levels);
                }
            },
            Some(OdpAction::Clone(inner)) => {
                let mut copy = vec![0u8; HEADROOM + p.len()];
                copy[HEADROOM..].copy_from_slice(p.data());
                let len = p.len();
                let mut cp = Packet::new(&mut copy, HEADROOM, len);
                let recirc = r.recirc;
                run_list(inner, &mut cp, sink, r);
                // A copy cannot go round again (translation never asks).
                if r.recirc != recirc {
                    r.recirc = recirc;
                    r.unsupported = true;
                }
            }
            _ => {
                r.unsupported = true;
                return false;
            }
        },
    }
    true
}

/// Ops a [`Program`] keeps inline; longer lists go to the heap.
const INLINE_OPS: usize = 4;

#[derive(Clone, Debug)]
enum Ops {
    Inline(u8, [Op; INLINE_OPS]),
    Heap(Box<[Op]>),
}

/// An action list made ready to run per packet: its [`Op`]s, inline when
/// there are at most four (a route is a set and an output), with the list
/// kept for what has no fast form and for dumps.
///
/// Made once, when a megaflow is installed (by the PMD, between batches).
#[derive(Clone, Debug)]
pub struct Program {
    ops: Ops,
    list: Arc<[OdpAction]>,
}

impl Program {
    pub fn new(list: Arc<[OdpAction]>) -> Program {
        let ops = if list.len() <= INLINE_OPS {
            let mut inline = [Op::Nothing; INLINE_OPS];
            for (i, a) in list.iter().enumerate() {
                inline[i] = Op::of(a, i);
            }
            Ops::Inline(list.len() as u8, inline)
        } else {
            Ops::Heap(list.iter().enumerate().map(|(i, a)| Op::of(a, i)).collect())
        };
        Program { ops, list }
    }

    /// The action list this program runs.
    pub fn actions(&self) -> &Arc<[OdpAction]> {
        &self.list
    }

    pub fn ops(&self) -> &[Op] {
        match &self.ops {
            Ops::Inline(n, ops) => &ops[..*n as usize],
            Ops::Heap(ops) => ops,
        }
    }

    /// Runs the program on `p`, exactly as [`execute`] runs its list.
    #[inline]
    pub fn run(&self, p: &mut Packet, sink: &mut dyn OutputSink) -> ExecResult {
        let mut r = ExecResult::default();
        for op in self.ops() {
            if !run_op(op, &self.list, p, sink, &mut r) {
                break;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests;
