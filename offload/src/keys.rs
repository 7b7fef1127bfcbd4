//! Flow keys and masks ↔ `OVS_KEY_ATTR_*` netlink attributes.
//!
//! # What
//! [`encode_match`] turns an [`OdpKey`] (odpx's flow model, the same one the
//! ODP text syntax speaks) into the contents of `OVS_FLOW_ATTR_KEY` and
//! `OVS_FLOW_ATTR_MASK`; [`decode_match`] is the reverse, and
//! [`decode_packet_key`] / [`encode_packet_key`] handle the exact keys of
//! upcalls and packet execution.
//!
//! # Why it is shaped this way
//! A mask is a [`FlowKey`] with the same layout as the key, and a mask
//! attribute has the same layout as its key attribute, so one function
//! writes (or reads) an attribute's fields for both. VLAN tags follow the
//! kernel's nesting (`eth_type(TPID), vlan(TCI), encap(...)`, twice for
//! 802.1ad) through per-level state, exactly as the text parser does, so a
//! decoded key equals the key parsed from the text `ovs-dpctl` prints for it.
//!
//! # The kernel's rules this module follows
//! * Attribute order does not matter; duplicates are rejected (also across
//!   encapsulation levels, since each field exists once in the key).
//! * The kernel expects an attribute for every layer the key's *values*
//!   imply (`match_validate`): eth_type 0x0800 needs `ipv4`, proto 6 needs
//!   `tcp` and `tcp_flags`, ICMPv6 type 135/136 needs `nd`, and so on. The
//!   canonical text leaves wildcarded attributes out, so the encoder adds
//!   them back with zero key and zero mask.
//! * L3 masks are only allowed when eth_type is exact, L4 masks only when
//!   the IP protocol is exact, and in_port is matched exactly or not at all;
//!   the encoder refuses such matches with a reason instead of letting the
//!   kernel answer EINVAL (or, for in_port, silently narrow the match).
//! * Attributes odpx does not interpret (conntrack, NSH, IPv6 extension
//!   headers, numbers it does not know) are kept as [`OpaqueAttr`] bytes and
//!   encoded back unchanged. Callers that must reinstall a kernel flow keep
//!   the kernel's own key bytes ([`crate::client::Flow::key_raw`]).
//!
//! # Threads
//! Pure functions over caller-owned buffers.

use crate::error::{DecodeError, EncodeError};
use crate::nla::{self, Attr, Writer};
use crate::uapi::{key_attr, tun_key_attr};
use odpx_classifier::key::{attr, tun_flag, FlowKey, Match};
use odpx_classifier::odp::{
    apply_encap_levels, attr_fields, canonicalize, check_layers, opaque_id, EncapLevel, OdpKey, OpaqueAttr,
};

const KEY: &str = "flow key";
const TUN: &str = "tunnel key";

/// The contents of `OVS_FLOW_ATTR_KEY` and `OVS_FLOW_ATTR_MASK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedKey {
    pub key: Vec<u8>,
    pub mask: Vec<u8>,
}

/// The netlink attribute number of a presence bit (they coincide for every
/// ODP attribute; the two odpx-only inner-VLAN bits never reach here).
fn ty_of(bit: u32) -> u16 {
    bit.trailing_zeros() as u16
}

fn bit_of(ty: u16) -> Option<u32> {
    let b = match ty {
        key_attr::PRIORITY => attr::PRIORITY,
        key_attr::IN_PORT => attr::IN_PORT,
        key_attr::ETHERNET => attr::ETHERNET,
        key_attr::IPV4 => attr::IPV4,
        key_attr::IPV6 => attr::IPV6,
        key_attr::TCP => attr::TCP,
        key_attr::UDP => attr::UDP,
        key_attr::ICMP => attr::ICMP,
        key_attr::ICMPV6 => attr::ICMPV6,
        key_attr::ARP => attr::ARP,
        key_attr::ND => attr::ND,
        key_attr::SKB_MARK => attr::SKB_MARK,
        key_attr::TUNNEL => attr::TUNNEL,
        key_attr::SCTP => attr::SCTP,
        key_attr::TCP_FLAGS => attr::TCP_FLAGS,
        key_attr::DP_HASH => attr::DP_HASH,
        key_attr::RECIRC_ID => attr::RECIRC_ID,
        key_attr::MPLS => attr::MPLS,
        _ => return None,
    };
    Some(b)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The payload of one (non-nested, non-VLAN) attribute from a key or mask.
/// `mpls_depth` is the key's label count (a mask carries no count).
pub(crate) fn field_bytes(bit: u32, k: &FlowKey, mpls_depth: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(40);
    match bit {
        attr::PRIORITY => b.extend_from_slice(&k.skb_priority.to_ne_bytes()),
        attr::SKB_MARK => b.extend_from_slice(&k.skb_mark.to_ne_bytes()),
        attr::IN_PORT => b.extend_from_slice(&k.in_port.to_ne_bytes()),
        attr::DP_HASH => b.extend_from_slice(&k.dp_hash.to_ne_bytes()),
        attr::RECIRC_ID => b.extend_from_slice(&k.recirc_id.to_ne_bytes()),
        attr::ETHERNET => {
            b.extend_from_slice(&k.eth_src);
            b.extend_from_slice(&k.eth_dst);
        }
        attr::IPV4 => {
            b.extend_from_slice(&k.ipv4_src.to_be_bytes());
            b.extend_from_slice(&k.ipv4_dst.to_be_bytes());
            b.extend_from_slice(&[k.ip_proto, k.ip_tos, k.ip_ttl, k.ip_frag]);
        }
        attr::IPV6 => {
            b.extend_from_slice(&k.ipv6_src);
            b.extend_from_slice(&k.ipv6_dst);
            b.extend_from_slice(&k.ipv6_label.to_be_bytes());
            b.extend_from_slice(&[k.ip_proto, k.ip_tos, k.ip_ttl, k.ip_frag]);
        }
        attr::TCP | attr::UDP | attr::SCTP => {
            b.extend_from_slice(&k.tp_src.to_be_bytes());
            b.extend_from_slice(&k.tp_dst.to_be_bytes());
        }
        attr::TCP_FLAGS => b.extend_from_slice(&k.tcp_flags.to_be_bytes()),
        attr::ICMP | attr::ICMPV6 => b.extend_from_slice(&[k.tp_src as u8, k.tp_dst as u8]),
        attr::ARP => {
            b.extend_from_slice(&k.ipv4_src.to_be_bytes());
            b.extend_from_slice(&k.ipv4_dst.to_be_bytes());
            b.extend_from_slice(&k.arp_op.to_be_bytes());
            b.extend_from_slice(&k.arp_sha);
            b.extend_from_slice(&k.arp_tha);
            // struct ovs_key_arp is padded to 24 bytes.
            b.extend_from_slice(&[0, 0]);
        }
        attr::ND => {
            b.extend_from_slice(&k.nd_target);
            b.extend_from_slice(&k.arp_sha);
            b.extend_from_slice(&k.arp_tha);
        }
        attr::MPLS => {
            for lse in &k.mpls_lse[..(mpls_depth as usize).clamp(1, 3)] {
                b.extend_from_slice(&lse.to_be_bytes());
            }
        }
        attr::TUNNEL => {
            let mut w = Writer::new();
            write_tunnel(&mut w, k);
            return w.into_bytes();
        }
        _ => {}
    }
    b
}

/// Tunnel key attributes, as OVS emits them: the ID when the key flag (or
/// an ID) is there, addresses, TOS and ports when non-zero, TTL always
/// (the kernel requires it in a key), flags as flag attributes.
pub(crate) fn write_tunnel(w: &mut Writer, k: &FlowKey) {
    if k.tun_flags & tun_flag::KEY != 0 || k.tun_id != 0 {
        w.put_be64(tun_key_attr::ID, k.tun_id);
    }
    if k.tun_ipv4_src != 0 {
        w.put_be32(tun_key_attr::IPV4_SRC, k.tun_ipv4_src);
    }
    if k.tun_ipv4_dst != 0 {
        w.put_be32(tun_key_attr::IPV4_DST, k.tun_ipv4_dst);
    }
    if k.tun_tos != 0 {
        w.put_u8(tun_key_attr::TOS, k.tun_tos);
    }
    w.put_u8(tun_key_attr::TTL, k.tun_ttl);
    if k.tun_flags & tun_flag::DF != 0 {
        w.put_flag(tun_key_attr::DONT_FRAGMENT);
    }
    if k.tun_flags & tun_flag::CSUM != 0 {
        w.put_flag(tun_key_attr::CSUM);
    }
    if k.tun_tp_src != 0 {
        w.put_be16(tun_key_attr::TP_SRC, k.tun_tp_src);
    }
    if k.tun_tp_dst != 0 {
        w.put_be16(tun_key_attr::TP_DST, k.tun_tp_dst);
    }
    if k.tun_flags & tun_flag::OAM != 0 {
        w.put_flag(tun_key_attr::OAM);
    }
    if k.tun_ipv6_src != [0; 16] {
        w.put(tun_key_attr::IPV6_SRC, &k.tun_ipv6_src);
    }
    if k.tun_ipv6_dst != [0; 16] {
        w.put(tun_key_attr::IPV6_DST, &k.tun_ipv6_dst);
    }
}

/// Reads tunnel key attributes into `k`'s tunnel fields.
pub(crate) fn read_tunnel(buf: &[u8], k: &mut FlowKey) -> Result<(), DecodeError> {
    for a in nla::unique(buf, TUN)? {
        match a.ty {
            tun_key_attr::ID => {
                k.tun_id = a.be64(TUN)?;
                k.tun_flags |= tun_flag::KEY;
            }
            tun_key_attr::IPV4_SRC => k.tun_ipv4_src = a.be32(TUN)?,
            tun_key_attr::IPV4_DST => k.tun_ipv4_dst = a.be32(TUN)?,
            tun_key_attr::TOS => k.tun_tos = a.u8(TUN)?,
            tun_key_attr::TTL => k.tun_ttl = a.u8(TUN)?,
            tun_key_attr::DONT_FRAGMENT => flag(&a, k, tun_flag::DF)?,
            tun_key_attr::CSUM => flag(&a, k, tun_flag::CSUM)?,
            tun_key_attr::OAM => flag(&a, k, tun_flag::OAM)?,
            tun_key_attr::TP_SRC => k.tun_tp_src = a.be16(TUN)?,
            tun_key_attr::TP_DST => k.tun_tp_dst = a.be16(TUN)?,
            tun_key_attr::IPV6_SRC => k.tun_ipv6_src = a.array(TUN)?,
            tun_key_attr::IPV6_DST => k.tun_ipv6_dst = a.array(TUN)?,
            tun_key_attr::PAD => {}
            other => {
                let name = match other {
                    tun_key_attr::GENEVE_OPTS => "Geneve options",
                    tun_key_attr::VXLAN_OPTS => "VXLAN extension options",
                    15 => "ERSPAN options",
                    16 => "IPv4 info-bridge mode",
                    _ => "an unknown tunnel attribute",
                };
                return Err(DecodeError::Invalid {
                    what: TUN,
                    detail: format!("attribute {other} ({name}) is not supported by odpx's flow model"),
                });
            }
        }
    }
    Ok(())
}

fn flag(a: &Attr, k: &mut FlowKey, bit: u16) -> Result<(), DecodeError> {
    if !a.payload.is_empty() {
        return Err(DecodeError::Length {
            what: TUN,
            attr: a.ty,
            len: a.payload.len(),
            expected: 0,
        });
    }
    k.tun_flags |= bit;
    Ok(())
}

/// Reads one attribute's fields into `k` (a key, or a mask when `is_mask`).
pub(crate) fn read_fields(bit: u32, a: &Attr, k: &mut FlowKey, is_mask: bool) -> Result<(), DecodeError> {
    match bit {
        attr::PRIORITY => k.skb_priority = a.u32(KEY)?,
        attr::SKB_MARK => k.skb_mark = a.u32(KEY)?,
        attr::IN_PORT => k.in_port = a.u32(KEY)?,
        attr::DP_HASH => k.dp_hash = a.u32(KEY)?,
        attr::RECIRC_ID => k.recirc_id = a.u32(KEY)?,
        attr::ETHERNET => {
            let b: [u8; 12] = a.array(KEY)?;
            k.eth_src.copy_from_slice(&b[..6]);
            k.eth_dst.copy_from_slice(&b[6..]);
        }
        attr::IPV4 => {
            let b: [u8; 12] = a.array(KEY)?;
            k.ipv4_src = be32(&b[0..]);
            k.ipv4_dst = be32(&b[4..]);
            (k.ip_proto, k.ip_tos, k.ip_ttl, k.ip_frag) = (b[8], b[9], b[10], b[11]);
        }
        attr::IPV6 => {
            let b: [u8; 40] = a.array(KEY)?;
            k.ipv6_src.copy_from_slice(&b[..16]);
            k.ipv6_dst.copy_from_slice(&b[16..32]);
            k.ipv6_label = be32(&b[32..]);
            (k.ip_proto, k.ip_tos, k.ip_ttl, k.ip_frag) = (b[36], b[37], b[38], b[39]);
        }
        attr::TCP | attr::UDP | attr::SCTP => {
            let b: [u8; 4] = a.array(KEY)?;
            (k.tp_src, k.tp_dst) = (be16(&b), be16(&b[2..]));
        }
        attr::TCP_FLAGS => k.tcp_flags = a.be16(KEY)?,
        attr::ICMP | attr::ICMPV6 => {
            let b: [u8; 2] = a.array(KEY)?;
            (k.tp_src, k.tp_dst) = (b[0] as u16, b[1] as u16);
        }
        attr::ARP => {
            let b: [u8; 24] = a.array(KEY)?;
            k.ipv4_src = be32(&b);
            k.ipv4_dst = be32(&b[4..]);
            k.arp_op = be16(&b[8..]);
            k.arp_sha.copy_from_slice(&b[10..16]);
            k.arp_tha.copy_from_slice(&b[16..22]);
        }
        attr::ND => {
            let b: [u8; 28] = a.array(KEY)?;
            k.nd_target.copy_from_slice(&b[..16]);
            k.arp_sha.copy_from_slice(&b[16..22]);
            k.arp_tha.copy_from_slice(&b[22..28]);
        }
        attr::MPLS => {
            let n = a.payload.len() / 4;
            if !a.payload.len().is_multiple_of(4) || !(1..=3).contains(&n) {
                return Err(DecodeError::Invalid {
                    what: KEY,
                    detail: format!(
                        "mpls attribute has {} bytes, expected 1 to 3 label stack entries of 4 bytes",
                        a.payload.len()
                    ),
                });
            }
            for i in 0..n {
                k.mpls_lse[i] = be32(&a.payload[i * 4..]);
            }
            k.mpls_depth = if is_mask { 0xff } else { n as u8 };
        }
        attr::TUNNEL => read_tunnel(a.payload, k)?,
        _ => {}
    }
    Ok(())
}

/// Where an opaque attribute goes when encoding: the conntrack ones after
/// skb_mark, IPv6 extension headers at the innermost level (after ipv6),
/// the rest at the end of the top level.
fn is_innermost_opaque(id: u16) -> bool {
    id == opaque_id::IPV6_EXTHDRS
}

fn is_ct_opaque(id: u16) -> bool {
    (opaque_id::CT_STATE..=opaque_id::CT_ORIG_TUPLE_IPV6).contains(&id)
}

/// The L3/L4 attributes the kernel expects for a key's values
/// (`match_validate` in net/openvswitch/flow_netlink.c), as presence bits.
pub fn expected_attrs(k: &FlowKey) -> u32 {
    if !k.has(attr::ETHERTYPE) {
        return 0;
    }
    let mut e = 0;
    let l4 = |e: &mut u32, v6: bool| {
        if k.ip_frag == odpx_classifier::key::frag::LATER {
            return;
        }
        match k.ip_proto {
            6 => *e |= attr::TCP | attr::TCP_FLAGS,
            17 => *e |= attr::UDP,
            132 => *e |= attr::SCTP,
            1 if !v6 => *e |= attr::ICMP,
            58 if v6 => {
                *e |= attr::ICMPV6;
                if k.tp_src == 135 || k.tp_src == 136 {
                    *e |= attr::ND;
                }
            }
            _ => {}
        }
    };
    match k.eth_type {
        0x0806 | 0x8035 => e |= attr::ARP,
        0x8847 | 0x8848 => e |= attr::MPLS,
        0x0800 => {
            e |= attr::IPV4;
            l4(&mut e, false);
        }
        0x86dd => {
            e |= attr::IPV6;
            l4(&mut e, true);
        }
        _ => {}
    }
    e
}

/// Refuses matches the kernel would reject or silently change.
fn check_kernel_mask_rules(k: &FlowKey, m: &FlowKey) -> Result<(), EncodeError> {
    let wild = |bit: u32| m.masked(&attr_fields(bit)).is_zero();
    if k.has(attr::IN_PORT) && m.in_port != u32::MAX && m.in_port != 0 {
        return Err(EncodeError(format!(
            "in_port mask {:#x}: the kernel datapath matches in_port exactly or not at all",
            m.in_port
        )));
    }
    for bit in [attr::IPV4, attr::IPV6, attr::ARP, attr::MPLS] {
        if k.has(bit) && !wild(bit) && m.eth_type != 0xffff {
            return Err(EncodeError(format!(
                "{} fields are matched but eth_type is not matched exactly (the kernel requires it)",
                name(bit)
            )));
        }
    }
    for bit in [
        attr::TCP,
        attr::TCP_FLAGS,
        attr::UDP,
        attr::SCTP,
        attr::ICMP,
        attr::ICMPV6,
    ] {
        if k.has(bit) && !wild(bit) && m.ip_proto != 0xff {
            return Err(EncodeError(format!(
                "{} fields are matched but the IP protocol is not matched exactly (the kernel requires it)",
                name(bit)
            )));
        }
    }
    if k.has(attr::ND) && !wild(attr::ND) && m.tp_src & 0xff != 0xff {
        return Err(EncodeError(
            "nd fields are matched but the ICMPv6 type is not matched exactly (the kernel requires it)".into(),
        ));
    }
    if k.has(attr::VLAN) && (m.vlan_tpid != 0xffff || m.vlan_tci & odpx_classifier::key::VLAN_CFI == 0) {
        return Err(EncodeError(
            "a VLAN match needs an exact TPID (eth_type) and an exact tag-present bit (the kernel requires both)"
                .into(),
        ));
    }
    Ok(())
}

fn name(bit: u32) -> &'static str {
    match bit {
        attr::IPV4 => "ipv4",
        attr::IPV6 => "ipv6",
        attr::ARP => "arp",
        attr::MPLS => "mpls",
        attr::TCP => "tcp",
        attr::TCP_FLAGS => "tcp_flags",
        attr::UDP => "udp",
        attr::SCTP => "sctp",
        attr::ICMP => "icmp",
        attr::ICMPV6 => "icmpv6",
        _ => "?",
    }
}

/// Key and mask writers advanced together: every key attribute gets its
/// mask attribute at the same place.
struct Pair {
    key: Writer,
    mask: Writer,
}

impl Pair {
    fn put(&mut self, ty: u16, key: &[u8], mask: &[u8]) {
        self.key.put(ty, key);
        self.mask.put(ty, mask);
    }

    fn field(&mut self, bit: u32, k: &FlowKey, m: &FlowKey) {
        let ty = ty_of(bit);
        self.key.put(ty, &field_bytes(bit, k, k.mpls_depth));
        self.mask.put(ty, &field_bytes(bit, m, k.mpls_depth));
    }

    fn begin(&mut self, ty: u16) -> (usize, usize) {
        (self.key.begin_nested(ty), self.mask.begin_nested(ty))
    }

    fn end(&mut self, at: (usize, usize)) {
        self.key.end_nested(at.0);
        self.mask.end_nested(at.1);
    }

    fn opaque(&mut self, o: &OpaqueAttr) {
        // A mask-only attribute (the kernel's 802.2 Ethertype form): the
        // key leaves it out, the mask carries it.
        if o.is_mask_only_ethertype() {
            if let Some(m) = &o.mask {
                self.mask.put(o.attr, m);
            }
            return;
        }
        let full;
        let mask = match &o.mask {
            Some(m) => m.as_slice(),
            None => {
                full = vec![0xff; o.key.len()];
                &full
            }
        };
        self.put(o.attr, &o.key, mask);
    }
}

/// Encodes a match as flow KEY and MASK attribute contents, in the order
/// the kernel itself emits them.
pub fn encode_match(odp: &OdpKey) -> Result<EncodedKey, EncodeError> {
    let (k, m) = (&odp.matched.key, &odp.matched.mask);
    check_kernel_mask_rules(k, m)?;
    // The attributes the values imply must agree with those present
    // (e.g. not `ipv4(proto=1)` with `tcp()`).
    check_layers(k.attrs | expected_attrs(k)).map_err(|e| {
        EncodeError(format!(
            "the key's eth_type and IP protocol imply other attributes: {e}"
        ))
    })?;
    let mut p = Pair {
        key: Writer::new(),
        mask: Writer::new(),
    };
    for bit in [
        attr::RECIRC_ID,
        attr::DP_HASH,
        attr::PRIORITY,
        attr::TUNNEL,
        attr::IN_PORT,
        attr::SKB_MARK,
    ] {
        if k.has(bit) {
            p.field(bit, k, m);
        }
    }
    for o in odp.opaque.iter().filter(|o| is_ct_opaque(o.attr)) {
        p.opaque(o);
    }
    if k.has(attr::ETHERNET) {
        p.field(attr::ETHERNET, k, m);
    }
    let inner = |p: &mut Pair| {
        if k.has(attr::ETHERTYPE) {
            p.put(
                key_attr::ETHERTYPE,
                &k.eth_type.to_be_bytes(),
                &m.eth_type.to_be_bytes(),
            );
        }
        let want = k.attrs | expected_attrs(k);
        for bit in [
            attr::IPV4,
            attr::IPV6,
            attr::ARP,
            attr::MPLS,
            attr::TCP,
            attr::TCP_FLAGS,
            attr::UDP,
            attr::SCTP,
            attr::ICMP,
            attr::ICMPV6,
            attr::ND,
        ] {
            if want & bit != 0 {
                p.field(bit, k, m);
            }
            if bit == attr::IPV6 {
                for o in odp.opaque.iter().filter(|o| is_innermost_opaque(o.attr)) {
                    p.opaque(o);
                }
            }
        }
    };
    // A tag is the TPID as an Ethertype, then the TCI.
    let tag = |p: &mut Pair, (tpid, tpid_m): (u16, u16), (tci, tci_m): (u16, u16)| {
        p.put(key_attr::ETHERTYPE, &tpid.to_be_bytes(), &tpid_m.to_be_bytes());
        p.put(key_attr::VLAN, &tci.to_be_bytes(), &tci_m.to_be_bytes());
    };
    if k.has(attr::VLAN) {
        tag(&mut p, (k.vlan_tpid, m.vlan_tpid), (k.vlan_tci, m.vlan_tci));
        if k.has(attr::ENCAP) {
            let outer = p.begin(key_attr::ENCAP);
            if k.has(attr::CVLAN) {
                tag(&mut p, (k.cvlan_tpid, m.cvlan_tpid), (k.cvlan_tci, m.cvlan_tci));
                if k.has(attr::CENCAP) {
                    let at = p.begin(key_attr::ENCAP);
                    inner(&mut p);
                    p.end(at);
                }
            } else {
                inner(&mut p);
            }
            p.end(outer);
        }
    } else {
        inner(&mut p);
    }
    for o in odp
        .opaque
        .iter()
        .filter(|o| !is_ct_opaque(o.attr) && !is_innermost_opaque(o.attr))
    {
        p.opaque(o);
    }
    Ok(EncodedKey {
        key: p.key.into_bytes(),
        mask: p.mask.into_bytes(),
    })
}

/// Encodes a packet's exact key (for `OVS_PACKET_CMD_EXECUTE`).
pub fn encode_packet_key(key: &FlowKey, opaque: &[OpaqueAttr]) -> Vec<u8> {
    let mut mask = FlowKey::exact_mask();
    mask.attrs = key.attrs;
    let odp = OdpKey {
        matched: Match { key: *key, mask },
        opaque: opaque.to_vec(),
    };
    // An exact mask satisfies every mask rule, so this cannot fail.
    encode_match(&odp).map(|e| e.key).unwrap_or_default()
}

struct Decoder {
    key: FlowKey,
    mask: FlowKey,
    levels: [EncapLevel; 3],
    opaque: Vec<OpaqueAttr>,
    /// No MASK attribute: the flow is an exact match.
    exact: bool,
}

impl Decoder {
    fn walk(&mut self, key: &[u8], mask: Option<&[u8]>, level: usize) -> Result<(), DecodeError> {
        let keys = nla::unique(key, KEY)?;
        let masks = match mask {
            Some(m) => nla::unique(m, "flow mask")?,
            None => Vec::new(),
        };
        if level == 0 && nla::find(&keys, key_attr::ETHERTYPE).is_none() {
            if let Some(m) = nla::find(&masks, key_attr::ETHERTYPE) {
                self.opaque.push(OpaqueAttr::mask_only_ethertype(m.be16("flow mask")?));
            }
        }
        for a in &keys {
            let m = nla::find(&masks, a.ty);
            let mask16 = |m: Option<&Attr>| -> Result<u16, DecodeError> {
                match m {
                    Some(m) => m.be16("flow mask"),
                    None if self.exact => Ok(0xffff),
                    None => Ok(0),
                }
            };
            match a.ty {
                key_attr::ENCAP => {
                    if level >= 2 {
                        return Err(DecodeError::Invalid {
                            what: KEY,
                            detail: "more than two VLAN encapsulations".into(),
                        });
                    }
                    self.levels[level].encap = true;
                    let inner_mask = m.map(|m| m.payload).or(if self.exact { None } else { Some(&[]) });
                    self.walk(a.payload, inner_mask, level + 1)?;
                }
                key_attr::ETHERTYPE => self.levels[level].eth_type = Some((a.be16(KEY)?, mask16(m)?)),
                key_attr::VLAN => self.levels[level].vlan = Some((a.be16(KEY)?, mask16(m)?)),
                ty => match bit_of(ty) {
                    Some(bit) => {
                        if self.key.has(bit) {
                            return Err(DecodeError::Duplicate { what: KEY, attr: ty });
                        }
                        read_fields(bit, a, &mut self.key, false)?;
                        match m {
                            Some(m) => read_fields(bit, m, &mut self.mask, true)?,
                            None if self.exact => self.mask.or_assign(&attr_fields(bit)),
                            None => {}
                        }
                        self.key.attrs |= bit;
                        self.mask.attrs |= bit;
                    }
                    None => {
                        if self.opaque.iter().any(|o| o.attr == ty) {
                            return Err(DecodeError::Duplicate { what: KEY, attr: ty });
                        }
                        let mask = match m {
                            Some(m) => Some(m.payload.to_vec()),
                            None if self.exact => None,
                            None => Some(vec![0; a.payload.len()]),
                        };
                        self.opaque.push(OpaqueAttr {
                            attr: ty,
                            key: a.payload.to_vec(),
                            mask,
                        });
                    }
                },
            }
        }
        Ok(())
    }

    /// Applies the VLAN levels, as the text parser does.
    fn finish(mut self) -> Result<(FlowKey, FlowKey, Vec<OpaqueAttr>), DecodeError> {
        apply_encap_levels(&self.levels, &mut self.key, &mut self.mask).map_err(|e| DecodeError::Invalid {
            what: KEY,
            detail: e.to_string(),
        })?;
        check_layers(self.key.attrs).map_err(|detail| DecodeError::Invalid { what: KEY, detail })?;
        Ok((self.key, self.mask, self.opaque))
    }
}

/// Decodes a flow's KEY and MASK contents (`mask: None`: an exact-match
/// flow) into the canonical model, equal to what parsing the text
/// `ovs-dpctl dump-flows` prints for the flow gives.
pub fn decode_match(key: &[u8], mask: Option<&[u8]>) -> Result<OdpKey, DecodeError> {
    let mut d = Decoder {
        key: FlowKey::ZERO,
        mask: FlowKey::ZERO,
        levels: [EncapLevel::default(); 3],
        opaque: Vec::new(),
        exact: mask.is_none(),
    };
    d.walk(key, mask, 0)?;
    let (k, m, opaque) = d.finish()?;
    Ok(OdpKey {
        matched: canonicalize(&Match::new(k, m)),
        opaque,
    })
}

/// Decodes a packet's key as the kernel reports it in an upcall.
pub fn decode_packet_key(key: &[u8]) -> Result<(FlowKey, Vec<OpaqueAttr>), DecodeError> {
    let mut d = Decoder {
        key: FlowKey::ZERO,
        mask: FlowKey::ZERO,
        levels: [EncapLevel::default(); 3],
        opaque: Vec::new(),
        exact: true,
    };
    d.walk(key, None, 0)?;
    let (k, _, opaque) = d.finish()?;
    Ok((k, opaque))
}
