//! Packet key extraction: frame bytes to [`FlowKey`], by the ODP rules.
//!
//! # What
//! [`extract`] fills a flow key from an Ethernet frame the way the kernel's
//! `key_extract()` does, so a key odpx builds in userspace and the key the
//! kernel reports in a miss upcall agree attribute for attribute.
//!
//! # The ODP flow-key rules this follows
//! * Malformed or truncated headers are never a reason to drop. The
//!   attribute whose header is incomplete is still present, with zero
//!   content: a TCP packet cut after its IP header has `tcp(src=0,dst=0)`;
//!   an 802.1Q frame cut after its TPID has `vlan(vid=0,pcp=0,cfi=0)` and an
//!   empty `encap()`; an IPv4 header shorter than 20 bytes (or with an IHL
//!   that does not fit) gives an all-zero `ipv4(...)`.
//! * IPv4 fragments are `frag=first` (offset 0, MF set) or `frag=later`;
//!   later fragments carry no L4 attribute.
//! * IPv6 extension headers (hop-by-hop, routing, destination options, AH,
//!   fragment) are skipped; a fragment header gives `frag=first|later`, and a
//!   later fragment has `proto=44` and no L4 attribute. An extension header
//!   that is cut short ends the walk with `proto=59` (no next header).
//! * Frames with a length field instead of an Ethertype are 802.2: the
//!   `eth_type` attribute is absent (as in kernel keys) and the field holds
//!   0x05ff so rules can still match `dl_type=0x05ff`; SNAP frames with a
//!   zero OUI take the SNAP Ethertype.
//! * A runt frame (under 14 bytes) keeps what it has: `eth()` with the bytes
//!   present, and no `eth_type`.
//! * ARP op codes above 255 read as 0, as in the kernel.
//!
//! Metadata attributes (`recirc_id`, `dp_hash`, `skb_priority`, `in_port`,
//! `skb_mark`) are always present, as in the kernel's upcall keys.
//!
//! # Cost
//! No allocation; one walk over the headers ([`crate::layout`], the same
//! one the datapath's actions use), then bounds-checked reads through the
//! views in [`crate::wire`]. Never panics on any input (fuzzed, and
//! property-tested).

use crate::key::{attr, FlowKey, ETH_TYPE_802_2, VLAN_CFI};
use crate::layout::{layout, IpLayout};
use crate::wire::{
    eth_field, ethertype, ip_proto, ArpPacket, EthernetFrame, IcmpHeader, Ipv4Header, Ipv6Header, TcpHeader, UdpHeader,
    VlanTag, VLAN_TAG_LEN,
};

/// Extracts the flow key of `frame` received on `in_port`.
pub fn extract(frame: &[u8], in_port: u32) -> FlowKey {
    let mut key = FlowKey::ZERO;
    extract_into(frame, in_port, &mut key);
    key
}

/// As [`extract`], writing into `key` (the fast path reuses a batch array).
#[inline]
pub fn extract_into(frame: &[u8], in_port: u32, key: &mut FlowKey) {
    *key = FlowKey::ZERO;
    key.in_port = in_port;
    key.attrs = attr::RECIRC_ID | attr::DP_HASH | attr::PRIORITY | attr::IN_PORT | attr::SKB_MARK | attr::ETHERNET;
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        // Runt: keep the address bytes that are there.
        let n = frame.len().min(6);
        key.eth_dst[..n].copy_from_slice(&frame[..n]);
        if frame.len() > 6 {
            let m = (frame.len() - 6).min(6);
            key.eth_src[..m].copy_from_slice(&frame[6..6 + m]);
        }
        return;
    };
    key.eth_src = eth.src();
    key.eth_dst = eth.dst();
    let l = layout(frame);

    // Up to two VLAN tags; a cut one gives vlan(0) and an empty encap().
    let tags = l.tpids.iter().take(l.vlan_tags as usize).chain(l.cut_tag.as_ref());
    for (i, &tpid) in tags.enumerate() {
        let at = eth_field::TYPE + i * VLAN_TAG_LEN;
        let tci = VlanTag::new_checked(&frame[at..])
            .ok()
            .filter(|_| i < l.vlan_tags as usize)
            .map_or(0, |t| t.tci() | VLAN_CFI);
        if i == 0 {
            key.attrs |= attr::VLAN | attr::ENCAP;
            (key.vlan_tpid, key.vlan_tci) = (tpid, tci);
        } else {
            key.attrs |= attr::CVLAN | attr::CENCAP;
            (key.cvlan_tpid, key.cvlan_tci) = (tpid, tci);
        }
    }
    if l.ethertype_at.is_none() {
        return;
    }
    key.eth_type = l.eth_type;
    if l.eth_type == ETH_TYPE_802_2 {
        return;
    }
    key.attrs |= attr::ETHERTYPE;
    let net = &frame[l.l3.min(frame.len())..];
    match l.eth_type {
        ethertype::IPV4 => {
            key.attrs |= attr::IPV4;
            if let (Some(ip), Ok(h)) = (l.ip, Ipv4Header::new_checked(net)) {
                key.ipv4_src = h.src();
                key.ipv4_dst = h.dst();
                key.ip_tos = h.tos();
                key.ip_ttl = h.ttl();
                extract_ip(frame, ip, key, false);
            }
        }
        ethertype::IPV6 => {
            key.attrs |= attr::IPV6;
            if let (Some(ip), Ok(h)) = (l.ip, Ipv6Header::new_checked(net)) {
                key.ipv6_src = h.src();
                key.ipv6_dst = h.dst();
                key.ipv6_label = h.flow_label();
                key.ip_tos = h.traffic_class();
                key.ip_ttl = h.hop_limit();
                extract_ip(frame, ip, key, true);
            }
        }
        ethertype::ARP | ethertype::RARP => {
            key.attrs |= attr::ARP;
            if let Ok(arp) = ArpPacket::new_checked(net) {
                if arp.hardware_type() == 1
                    && arp.protocol_type() == ethertype::IPV4
                    && arp.hardware_len() == 6
                    && arp.protocol_len() == 4
                {
                    let op = arp.operation();
                    key.arp_op = if op <= 0xff { op } else { 0 };
                    key.ipv4_src = arp.sender_ip();
                    key.ipv4_dst = arp.target_ip();
                    key.arp_sha = arp.sender_hw();
                    key.arp_tha = arp.target_hw();
                }
            }
        }
        ethertype::MPLS | ethertype::MPLS_MC => {
            key.attrs |= attr::MPLS;
            let mut depth = 0;
            for chunk in net.chunks_exact(4).take(3) {
                let lse = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                key.mpls_lse[depth] = lse;
                depth += 1;
                if lse & 0x100 != 0 {
                    break;
                }
            }
            key.mpls_depth = depth as u8;
        }
        _ => {}
    }
}

/// The IP protocol, fragment kind and transport fields.
fn extract_ip(frame: &[u8], ip: IpLayout, key: &mut FlowKey, v6: bool) {
    key.ip_proto = ip.proto;
    key.ip_frag = ip.frag;
    if let Some(at) = ip.l4 {
        extract_l4(&frame[at.min(frame.len())..], key, v6);
    }
}

fn extract_l4(l4: &[u8], key: &mut FlowKey, v6: bool) {
    match key.ip_proto {
        ip_proto::TCP => {
            key.attrs |= attr::TCP | attr::TCP_FLAGS;
            if let Ok(tcp) = TcpHeader::new_checked(l4) {
                let hl = tcp.header_len();
                if hl >= TcpHeader::<&[u8]>::LEN && hl <= l4.len() {
                    key.tp_src = tcp.src_port();
                    key.tp_dst = tcp.dst_port();
                    key.tcp_flags = tcp.flags();
                }
            }
        }
        ip_proto::UDP | ip_proto::SCTP => {
            key.attrs |= if key.ip_proto == ip_proto::UDP {
                attr::UDP
            } else {
                attr::SCTP
            };
            // SCTP's common header is 12 bytes; UDP's 8.
            let need = if key.ip_proto == ip_proto::UDP { 8 } else { 12 };
            if l4.len() >= need {
                if let Ok(udp) = UdpHeader::new_checked(l4) {
                    key.tp_src = udp.src_port();
                    key.tp_dst = udp.dst_port();
                }
            }
        }
        ip_proto::ICMP if !v6 => {
            key.attrs |= attr::ICMP;
            if let Ok(icmp) = IcmpHeader::new_checked(l4) {
                key.tp_src = icmp.icmp_type() as u16;
                key.tp_dst = icmp.code() as u16;
            }
        }
        ip_proto::ICMPV6 if v6 => {
            key.attrs |= attr::ICMPV6;
            if let Ok(icmp) = IcmpHeader::new_checked(l4) {
                key.tp_src = icmp.icmp_type() as u16;
                key.tp_dst = icmp.code() as u16;
            }
            if key.tp_src == 135 || key.tp_src == 136 {
                key.attrs |= attr::ND;
                if key.tp_dst == 0 {
                    extract_nd(l4, key);
                }
            }
        }
        _ => {}
    }
}

/// Neighbour discovery target and link-layer options; any inconsistency
/// leaves all three ND fields zero (as the kernel does).
fn extract_nd(l4: &[u8], key: &mut FlowKey) {
    let Some(target) = l4.get(8..24) else { return };
    let mut sll = [0u8; 6];
    let mut tll = [0u8; 6];
    let mut off = 24;
    while off + 2 <= l4.len() {
        let (ty, len) = (l4[off], l4[off + 1] as usize * 8);
        if len == 0 || off + len > l4.len() {
            return;
        }
        if len == 8 {
            let lla: [u8; 6] = l4[off + 2..off + 8].try_into().unwrap_or_default();
            match ty {
                1 if sll == [0; 6] => sll = lla,
                2 if tll == [0; 6] => tll = lla,
                1 | 2 => return,
                _ => {}
            }
        }
        off += len;
    }
    key.nd_target.copy_from_slice(target);
    key.arp_sha = sll;
    key.arp_tha = tll;
}
