//! VXLAN on a packet in its frame: `tnl_push` (encapsulation) and
//! `tnl_pop` (decapsulation), as the actions of [`crate::exec`] run them.
//!
//! # Encapsulation
//! The translator hands over the whole outer header, built once per
//! megaflow by `classifier::wire::VxlanRepr::emit`: Ethernet, IPv4 or IPv6,
//! UDP, VXLAN, with zero lengths and (IPv4) the checksum of its own header
//! at a zero total length. Per packet, [`push`] only copies it into the
//! headroom in front of the inner frame and fills in what depends on the
//! packet:
//! * lengths (IPv4 total length, with the header checksum updated for it
//!   incrementally; IPv6 payload length; UDP length);
//! * the UDP source port, from a hash of the inner flow's addresses and
//!   ports (RFC 7348's entropy, in 49152-65535): one flow keeps one port,
//!   so the underlay's ECMP keeps its packets in order, and different flows
//!   spread;
//! * the UDP checksum: zero over IPv4 (RFC 7348), computed over IPv6
//!   (RFC 8200 forbids zero there unless the receiver opts in).
//!
//! So the megaflow never needs to match the inner ports for the source
//! port's sake: the hash is per packet, not per translation.
//!
//! # Decapsulation
//! [`pop`] checks the outer headers of a frame the underlay delivered (the
//! XDP filter already chose VXLAN for a local VTEP, but in-memory ports and
//! a changed VTEP set can still bring anything): Ethernet, IPv4 without
//! fragments and with a valid header checksum, or IPv6; UDP whose length
//! fits the frame and whose checksum (when present; always on IPv6) is
//! right; VXLAN with exactly the I flag. What passes is removed and
//! described as [`TunnelMeta`], which the PMD writes into the inner
//! packet's flow key before the second pass. What fails is a
//! [`DecapDrop`], counted by reason on the underlay port.
//!
//! # Which port receives
//! The inner packet enters the VXLAN port whose [`VxlanEndpoint`] claims
//! its outer headers ([`Receivers`]): the UDP port, then the VNI, the
//! remote VTEP and the local address, each either fixed or "flow" (any).
//! The most specific port wins, VNI before remote before local, as Open
//! vSwitch's tunnel port lookup orders them; two ports that claim exactly
//! the same are a configuration error. No port: the packet is dropped
//! and counted as an unknown VNI on the underlay port.

use crate::packet::Packet;
use hashbrown::HashMap;
use odpx_classifier::key::{attr, tun_flag, FlowKey};
use odpx_classifier::layout::layout;
use odpx_classifier::wire::{
    checksum, eth_field, ethertype, ip_proto, ipv4_field, ipv6_field, udp_field, EthernetFrame, Ipv4Header, Ipv6Header,
    TunnelIp, UdpHeader, VxlanError, VxlanRepr, ETHERNET_LEN, IPV4_LEN, IPV6_LEN, UDP_LEN, VXLAN_LEN,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The lowest UDP source port of a tunnel packet (RFC 7348: the dynamic
/// range); the hash picks one of the 2^14 above it.
pub const SOURCE_PORT_BASE: u16 = 49152;

/// What the outer headers of a decapsulated packet said, in the shape of
/// the flow key's tunnel fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelMeta {
    pub tun_id: u64,
    pub ipv4_src: u32,
    pub ipv4_dst: u32,
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    /// `key::tun_flag` bits.
    pub flags: u16,
    pub tp_src: u16,
    pub tp_dst: u16,
    pub tos: u8,
    pub ttl: u8,
}

impl TunnelMeta {
    fn of(r: &VxlanRepr) -> TunnelMeta {
        let mut m = TunnelMeta {
            tun_id: r.vni as u64,
            flags: tun_flag::KEY,
            tp_src: r.udp_src,
            tp_dst: r.udp_dst,
            ..TunnelMeta::default()
        };
        if r.udp_checksum != 0 {
            m.flags |= tun_flag::CSUM;
        }
        let (tos, ttl, df) = r.ip.tos_ttl_df();
        (m.tos, m.ttl) = (tos, ttl);
        if df {
            m.flags |= tun_flag::DF;
        }
        match r.ip {
            TunnelIp::V4 { src, dst, .. } => (m.ipv4_src, m.ipv4_dst) = (src, dst),
            TunnelIp::V6 { src, dst, .. } => (m.ipv6_src, m.ipv6_dst) = (src, dst),
        }
        m
    }

    /// The VNI.
    pub fn vni(&self) -> u32 {
        self.tun_id as u32
    }

    /// The outer (source, destination) addresses.
    pub fn addrs(&self) -> (IpAddr, IpAddr) {
        if self.ipv4_src == 0 && self.ipv4_dst == 0 {
            (
                IpAddr::V6(Ipv6Addr::from(self.ipv6_src)),
                IpAddr::V6(Ipv6Addr::from(self.ipv6_dst)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::from(self.ipv4_src)),
                IpAddr::V4(Ipv4Addr::from(self.ipv4_dst)),
            )
        }
    }

    /// Writes the tunnel fields of `key` (an inner packet's, freshly
    /// extracted).
    pub fn apply(&self, key: &mut FlowKey) {
        key.attrs |= attr::TUNNEL;
        key.tun_id = self.tun_id;
        key.tun_ipv4_src = self.ipv4_src;
        key.tun_ipv4_dst = self.ipv4_dst;
        key.tun_ipv6_src = self.ipv6_src;
        key.tun_ipv6_dst = self.ipv6_dst;
        key.tun_flags = self.flags;
        key.tun_tp_src = self.tp_src;
        key.tun_tp_dst = self.tp_dst;
        key.tun_tos = self.tos;
        key.tun_ttl = self.ttl;
    }
}

/// What a VXLAN port receives: the decapsulated packets whose outer
/// headers it claims. `None` is "flow": any VNI (`key = "flow"`) or any
/// remote VTEP (`remote_ip = "flow"`), for rules to match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VxlanEndpoint {
    pub dst_port: u16,
    pub vni: Option<u32>,
    pub remote: Option<IpAddr>,
    /// Only packets to this local address (`local_ip`), when given.
    pub local: Option<IpAddr>,
}

/// The ports that share a (UDP port, VNI) or a UDP port: (remote,
/// local, port number), most specific first.
type Claims = Vec<(Option<IpAddr>, Option<IpAddr>, u32)>;

/// Which VXLAN port receives a decapsulated packet (see the module
/// documentation). Built by whoever builds the port table; read by PMDs,
/// once per decapsulated packet: one small hash lookup and a scan of the
/// few ports that share a VNI.
#[derive(Clone, Debug, Default)]
pub struct Receivers {
    /// Ports with a fixed VNI, by (UDP port, VNI).
    by_vni: HashMap<(u16, u32), Claims>,
    /// Ports with `key = "flow"`, by UDP port.
    any_vni: HashMap<u16, Claims>,
}

fn claims(list: &[(Option<IpAddr>, Option<IpAddr>, u32)], src: IpAddr, dst: IpAddr) -> Option<u32> {
    list.iter()
        .find(|(r, l, _)| r.is_none_or(|r| r == src) && l.is_none_or(|l| l == dst))
        .map(|c| c.2)
}

impl Receivers {
    /// The receivers of `ports` (port number, endpoint); two ports that
    /// claim the same packets are an error naming both.
    pub fn new(ports: impl IntoIterator<Item = (u32, VxlanEndpoint)>) -> Result<Receivers, (u32, u32)> {
        let mut r = Receivers::default();
        for (no, e) in ports {
            let list = match e.vni {
                Some(v) => r.by_vni.entry((e.dst_port, v)).or_default(),
                None => r.any_vni.entry(e.dst_port).or_default(),
            };
            if let Some(other) = list.iter().find(|c| c.0 == e.remote && c.1 == e.local) {
                return Err((other.2, no));
            }
            list.push((e.remote, e.local, no));
            // Remote before local, fixed before "flow".
            list.sort_by_key(|c| std::cmp::Reverse((c.0.is_some(), c.1.is_some())));
        }
        Ok(r)
    }

    pub fn is_empty(&self) -> bool {
        self.by_vni.is_empty() && self.any_vni.is_empty()
    }

    /// The port that receives a packet with these outer headers.
    pub fn resolve(&self, m: &TunnelMeta) -> Option<u32> {
        let (src, dst) = m.addrs();
        self.by_vni
            .get(&(m.tp_dst, m.vni()))
            .and_then(|l| claims(l, src, dst))
            .or_else(|| self.any_vni.get(&m.tp_dst).and_then(|l| claims(l, src, dst)))
    }
}

/// Why a frame was not decapsulated (each is a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecapDrop {
    /// Too short, not UDP over IPv4/IPv6, IPv4 options or fragments,
    /// lengths that do not add up.
    Malformed,
    /// An IPv4 header or UDP checksum that is wrong.
    BadChecksum,
    /// VXLAN flags other than exactly "VNI valid".
    BadFlags,
    /// No VXLAN port for the VNI (and remote address): counted by the PMD.
    UnknownVni,
}

/// Why a push did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapDrop {
    /// No room in front of the packet (a frame without headroom).
    NoHeadroom,
    /// The header is not a VXLAN header odpx built (never from the
    /// translator; a hand-written action list can carry anything).
    BadTemplate,
    /// Larger than the underlay port's MTU once encapsulated.
    TooBig,
}

/// A hash of the inner flow (addresses and, when there, transport ports)
/// as a UDP source port.
pub fn source_port(inner: &[u8]) -> u16 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut mix = |bytes: &[u8]| {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
        }
    };
    let l = layout(inner);
    // The addresses (source then destination, adjacent in both headers),
    // then the transport ports when the packet has them.
    let addresses = match (l.l3_of(ethertype::IPV4), l.l3_of(ethertype::IPV6)) {
        (Some(l3), _) if inner.len() >= l3 + IPV4_LEN => Some(l3 + ipv4_field::SRC..l3 + ipv4_field::DST + 4),
        (_, Some(l3)) if inner.len() >= l3 + IPV6_LEN => Some(l3 + ipv6_field::SRC..l3 + ipv6_field::DST + 16),
        _ => None,
    };
    match addresses {
        Some(at) => {
            mix(&inner[at]);
            if let Some((ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP, l4)) = l.l4() {
                mix(inner
                    .get(l4 + udp_field::SRC_PORT..l4 + udp_field::DST_PORT + 2)
                    .unwrap_or(&[]));
            }
        }
        None => mix(&inner[..inner.len().min(eth_field::TYPE)]),
    }
    SOURCE_PORT_BASE | (h as u16 & 0x3fff)
}

/// Encapsulates `p` in `header` (a template from `VxlanRepr::emit`),
/// unless the result would exceed `max_frame` bytes.
pub fn push(p: &mut Packet, header: &[u8], max_frame: usize) -> Result<(), EncapDrop> {
    let hlen = header.len();
    let eth = EthernetFrame::new_checked(header).map_err(|_| EncapDrop::BadTemplate)?;
    let (ip_len, v6) = match eth.ethertype() {
        ethertype::IPV4 if hlen == ETHERNET_LEN + IPV4_LEN + UDP_LEN + VXLAN_LEN => (IPV4_LEN, false),
        ethertype::IPV6 if hlen == ETHERNET_LEN + IPV6_LEN + UDP_LEN + VXLAN_LEN => (IPV6_LEN, true),
        _ => return Err(EncapDrop::BadTemplate),
    };
    if p.len() + hlen > max_frame {
        return Err(EncapDrop::TooBig);
    }
    let sport = source_port(p.data());
    if !p.push_front(hlen) {
        return Err(EncapDrop::NoHeadroom);
    }
    let total = p.len();
    let d = p.data_mut();
    d[..hlen].copy_from_slice(header);
    let (ip, rest) = d[ETHERNET_LEN..].split_at_mut(ip_len);
    let ip_total = (total - ETHERNET_LEN) as u16;
    let udp_len = ip_total - ip_len as u16;
    {
        let mut udp = UdpHeader::new_checked(&mut rest[..]).expect("length checked above");
        udp.set_src_port(sport);
        udp.set_len(udp_len);
    }
    if v6 {
        let mut ip6 = Ipv6Header::new_checked(&mut ip[..]).expect("length checked above");
        ip6.set_payload_len(udp_len);
        let sum = checksum::ipv6_pseudo(&ip6.src(), &ip6.dst(), udp_len as u32, ip_proto::UDP);
        let udp_view = |b: &mut [u8]| UdpHeader::new_checked(b).map(|mut u| u.set_checksum(0));
        let _ = udp_view(&mut rest[..]);
        let c = checksum::finish(checksum::add(sum, &rest[..udp_len as usize]));
        let mut udp = UdpHeader::new_checked(&mut rest[..]).expect("length checked above");
        // A computed zero is sent as all ones (RFC 768).
        udp.set_checksum(if c == 0 { 0xffff } else { c });
    } else {
        let mut ip4 = Ipv4Header::new_checked(&mut ip[..]).expect("length checked above");
        ip4.set_total_len(ip_total);
        let c = checksum::replace2(ip4.checksum(), 0, ip_total);
        ip4.set_checksum(c);
    }
    Ok(())
}

/// Decapsulates a VXLAN frame in place: on success `p` is the inner frame.
pub fn pop(p: &mut Packet) -> Result<TunnelMeta, DecapDrop> {
    let d = p.data();
    let repr = VxlanRepr::parse(d).map_err(|e| match e {
        VxlanError::BadFlags => DecapDrop::BadFlags,
        _ => DecapDrop::Malformed,
    })?;
    repr.check().map_err(|e| match e {
        VxlanError::BadFlags => DecapDrop::BadFlags,
        _ => DecapDrop::Malformed,
    })?;
    // Where UDP starts and how long the IP packet says it is.
    let (l4, ip_end) = match repr.ip {
        TunnelIp::V4 { .. } => {
            let ip = Ipv4Header::new_checked(&d[ETHERNET_LEN..]).map_err(|_| DecapDrop::Malformed)?;
            if ip.header_len() != IPV4_LEN {
                return Err(DecapDrop::Malformed);
            }
            if !ip.checksum_ok() {
                return Err(DecapDrop::BadChecksum);
            }
            (ETHERNET_LEN + IPV4_LEN, ETHERNET_LEN + ip.total_len() as usize)
        }
        TunnelIp::V6 { .. } => {
            let ip = Ipv6Header::new_checked(&d[ETHERNET_LEN..]).map_err(|_| DecapDrop::Malformed)?;
            let l4 = ETHERNET_LEN + IPV6_LEN;
            (l4, l4 + ip.payload_len() as usize)
        }
    };
    let udp = UdpHeader::new_checked(&d[l4..]).map_err(|_| DecapDrop::Malformed)?;
    let udp_end = l4 + udp.len() as usize;
    // Ethernet padding may follow the IP packet; nothing may be missing.
    if ip_end > d.len() || udp_end != ip_end || udp_end < l4 + UDP_LEN + VXLAN_LEN + ETHERNET_LEN {
        return Err(DecapDrop::Malformed);
    }
    let csum = udp.checksum();
    match repr.ip {
        TunnelIp::V6 { src, dst, .. } => {
            let sum = checksum::ipv6_pseudo(&src, &dst, (udp_end - l4) as u32, ip_proto::UDP);
            if csum == 0 || checksum::finish(checksum::add(sum, &d[l4..udp_end])) != 0 {
                return Err(DecapDrop::BadChecksum);
            }
        }
        TunnelIp::V4 { src, dst, .. } if csum != 0 => {
            let mut sum = checksum::add(0, &src.to_be_bytes());
            sum = checksum::add(sum, &dst.to_be_bytes());
            sum += ip_proto::UDP as u32 + (udp_end - l4) as u32;
            if checksum::finish(checksum::add(sum, &d[l4..udp_end])) != 0 {
                return Err(DecapDrop::BadChecksum);
            }
        }
        TunnelIp::V4 { .. } => {}
    }
    let meta = TunnelMeta::of(&repr);
    let inner_start = l4 + UDP_LEN + VXLAN_LEN;
    p.trim_to(udp_end);
    p.pop_front(inner_start);
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::HEADROOM;
    use odpx_classifier::wire::{IPV4_DF, VXLAN_FLAGS_VNI, VXLAN_OVER_IPV4, VXLAN_OVER_IPV6, VXLAN_PORT};

    fn inner(sport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(sport, 80)
            .write(&mut f, b"inner payload")
            .unwrap();
        f
    }

    fn template(v6: bool, vni: u32) -> Vec<u8> {
        let ip = if v6 {
            TunnelIp::V6 {
                src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                class: 0,
                label: 0,
                hop_limit: 64,
            }
        } else {
            TunnelIp::V4 {
                src: 0xac1f_0001,
                dst: 0xac1f_0002,
                tos: 0,
                ttl: 64,
                frag: IPV4_DF,
            }
        };
        let r = VxlanRepr {
            eth_dst: [2, 0, 0, 0, 0, 0xbb],
            eth_src: [2, 0, 0, 0, 0, 0xaa],
            ip,
            udp_src: 0,
            udp_dst: VXLAN_PORT,
            udp_checksum: 0,
            flags: VXLAN_FLAGS_VNI,
            vni,
        };
        let mut h = vec![0u8; r.header_len()];
        r.emit(&mut h);
        h
    }

    /// Encapsulates `frame`; the outer frame.
    fn encap(frame: &[u8], header: &[u8]) -> Result<Vec<u8>, EncapDrop> {
        let mut buf = vec![0u8; HEADROOM + frame.len()];
        buf[HEADROOM..].copy_from_slice(frame);
        let mut p = Packet::new(&mut buf, HEADROOM, frame.len());
        push(&mut p, header, 1514)?;
        Ok(p.data().to_vec())
    }

    fn decap(frame: &[u8]) -> Result<(TunnelMeta, Vec<u8>), DecapDrop> {
        let mut buf = frame.to_vec();
        let mut p = Packet::new(&mut buf, 0, frame.len());
        let m = pop(&mut p)?;
        Ok((m, p.data().to_vec()))
    }

    #[test]
    fn pushed_ipv4_frames_are_valid_vxlan_that_linux_would_accept() {
        let f = inner(1000);
        let out = encap(&f, &template(false, 42)).unwrap();
        assert_eq!(out.len(), f.len() + VXLAN_OVER_IPV4);
        let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.total_len as usize, out.len() - ETHERNET_LEN);
        assert!(h.dont_fragment);
        let Some(etherparse::TransportSlice::Udp(udp)) = &p.transport else {
            panic!("UDP")
        };
        assert_eq!(udp.destination_port(), VXLAN_PORT);
        assert_eq!(udp.length() as usize, out.len() - ETHERNET_LEN - IPV4_LEN);
        assert_eq!(udp.checksum(), 0, "no UDP checksum over IPv4");
        assert!(udp.source_port() >= SOURCE_PORT_BASE);
        assert_eq!(&out[VXLAN_OVER_IPV4..], &f[..], "the inner frame follows untouched");
        // And back.
        let (m, back) = decap(&out).unwrap();
        assert_eq!(back, f);
        assert_eq!(m.vni(), 42);
        assert_eq!((m.ipv4_src, m.ipv4_dst, m.ttl), (0xac1f_0001, 0xac1f_0002, 64));
        assert_eq!(m.flags, tun_flag::KEY | tun_flag::DF);
        assert_eq!(m.tp_dst, VXLAN_PORT);
    }

    #[test]
    fn pushed_ipv6_frames_carry_a_valid_udp_checksum() {
        let f = inner(1000);
        let out = encap(&f, &template(true, 7)).unwrap();
        assert_eq!(out.len(), f.len() + VXLAN_OVER_IPV6);
        let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
            panic!("IPv6")
        };
        let Some(etherparse::TransportSlice::Udp(udp)) = &p.transport else {
            panic!("UDP")
        };
        let want = udp
            .to_header()
            .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), want);
        let (m, back) = decap(&out).unwrap();
        assert_eq!(back, f);
        assert_eq!((m.vni(), m.flags), (7, tun_flag::KEY | tun_flag::CSUM));
        // One flipped payload bit and the checksum catches it.
        let mut bad = out.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decap(&bad), Err(DecapDrop::BadChecksum));
    }

    #[test]
    fn source_ports_follow_the_inner_flow() {
        let h = template(false, 1);
        let sport = |f: &[u8]| u16::from_be_bytes([encap(f, &h).unwrap()[34], encap(f, &h).unwrap()[35]]);
        assert_eq!(sport(&inner(1000)), sport(&inner(1000)), "one flow, one port");
        let ports: std::collections::HashSet<u16> = (0..64).map(|s| sport(&inner(1000 + s))).collect();
        assert!(ports.len() > 48, "64 flows spread over {} ports", ports.len());
        assert!(ports.iter().all(|&p| p >= SOURCE_PORT_BASE));
    }

    #[test]
    fn frames_over_the_mtu_and_bad_templates_are_refused() {
        let f = inner(1);
        let mut buf = vec![0u8; HEADROOM + f.len()];
        buf[HEADROOM..].copy_from_slice(&f);
        let mut p = Packet::new(&mut buf, HEADROOM, f.len());
        assert_eq!(
            push(&mut p, &template(false, 1), f.len() + VXLAN_OVER_IPV4 - 1),
            Err(EncapDrop::TooBig)
        );
        assert_eq!(p.data(), &f[..], "left as it was");
        assert_eq!(push(&mut p, &[0u8; 20], 1514), Err(EncapDrop::BadTemplate));
        let mut tight = f.clone();
        let mut p = Packet::new(&mut tight, 0, f.len());
        assert_eq!(push(&mut p, &template(false, 1), 1514), Err(EncapDrop::NoHeadroom));
    }

    #[test]
    fn the_most_specific_vxlan_port_receives() {
        let ep = |vni: Option<u32>, remote: Option<&str>| VxlanEndpoint {
            dst_port: VXLAN_PORT,
            vni,
            remote: remote.map(|r| r.parse().unwrap()),
            local: None,
        };
        let r = Receivers::new([
            (3, ep(Some(42), Some("172.31.0.2"))),
            (4, ep(Some(42), None)),
            (5, ep(None, Some("172.31.0.2"))),
            (6, ep(None, None)),
        ])
        .unwrap();
        let meta = |vni: u64, src: u32| TunnelMeta {
            tun_id: vni,
            ipv4_src: src,
            ipv4_dst: 0xac1f_0001,
            tp_dst: VXLAN_PORT,
            ..TunnelMeta::default()
        };
        assert_eq!(r.resolve(&meta(42, 0xac1f_0002)), Some(3));
        assert_eq!(r.resolve(&meta(42, 0xac1f_0009)), Some(4));
        assert_eq!(r.resolve(&meta(7, 0xac1f_0002)), Some(5));
        assert_eq!(r.resolve(&meta(7, 0xac1f_0009)), Some(6));
        let other_port = TunnelMeta {
            tp_dst: 8472,
            ..meta(42, 0xac1f_0002)
        };
        assert_eq!(r.resolve(&other_port), None);
        let fixed = Receivers::new([(3, ep(Some(42), None))]).unwrap();
        assert_eq!(fixed.resolve(&meta(43, 1)), None, "unknown VNI");
        assert_eq!(
            Receivers::new([(3, ep(Some(1), None)), (4, ep(Some(1), None))]).unwrap_err(),
            (3, 4)
        );
    }

    #[test]
    fn malformed_outer_headers_are_refused_by_reason() {
        let good = encap(&inner(5), &template(false, 9)).unwrap();
        assert!(decap(&good).is_ok());
        // Every truncation.
        for n in 0..good.len() {
            assert!(decap(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut flags = good.clone();
        flags[VXLAN_OVER_IPV4 - VXLAN_LEN] = 0x0c;
        assert_eq!(decap(&flags), Err(DecapDrop::BadFlags));
        let mut csum = good.clone();
        csum[ETHERNET_LEN + 8] ^= 1; // TTL, without fixing the checksum
        assert_eq!(decap(&csum), Err(DecapDrop::BadChecksum));
        let mut frag = good.clone();
        frag[ETHERNET_LEN + 6] |= 0x20; // MF
        assert!(decap(&frag).is_err());
        let mut udp_len = good.clone();
        udp_len[ETHERNET_LEN + IPV4_LEN + 5] ^= 4;
        assert_eq!(decap(&udp_len), Err(DecapDrop::Malformed));
        // Ethernet padding after the IP packet is not part of the inner frame.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(decap(&padded).unwrap().1, inner(5));
    }
}
