//! The ODP text syntax: flow keys, masks and actions exactly as
//! `ovs-dpctl dump-flows` prints them.
//!
//! # What
//! * [`format_match`] / [`OdpKey`]'s `Display`: a key with its mask, printed
//!   the way OVS prints a datapath flow (non-verbose): attributes whose mask
//!   is all zero are left out, except the nested ones (`encap`, `tunnel`) and
//!   `eth()` (which says "this is an Ethernet packet"); fields with an empty
//!   mask are left out; full masks are not printed; partial masks are
//!   `value/mask`.
//! * [`format_exact_key`]: a packet's key (no mask), every field of every
//!   present attribute, as OVS prints a miss upcall's key.
//! * [`parse_key`], [`actions::parse_actions`], [`parse_flow_line`]: the
//!   reverse. A field left out of the text is wildcarded; a field without
//!   `/mask` is exact.
//!
//! # Canonical form
//! Parsing canonicalises: attributes whose fields are all wildcarded are
//! dropped (except `eth`, `encap`, `tunnel`), because OVS would not print
//! them. Hence `format(parse(line)) == line` for every line this module
//! prints, and `format(parse(format(parse(x)))) == format(parse(x))` for any
//! accepted `x` (tested).
//!
//! # Attribute order
//! Attributes print in the order the kernel emits them
//! (`__ovs_nla_put_key`): recirc_id, dp_hash, skb_priority, tunnel, in_port,
//! skb_mark, ct_*, eth, [eth_type(tpid),vlan,encap(...)], eth_type, L3, L4.
//! The parser accepts any order (ODP says order does not matter) and rejects
//! duplicates.
//!
//! # Attributes odpx does not interpret
//! `ct_state`, `ct_zone`, `ct_mark`, `ct_label`, the other known-but-unused
//! attributes and unknown `keyN(..)` numbers are kept as [`OpaqueAttr`]
//! bytes, printed back unchanged (`ct_*` in OVS's own notation, the others as
//! hex bytes) and never dropped.

pub mod actions;
mod format;
mod line;
mod parse;

pub use actions::{OdpAction, SetAction, TunnelPush};
pub use format::{fmt_tcp_flags, format_exact_key, format_exact_key_with, format_match};
pub use line::{parse_flow_line, FlowLine, FlowStatsText};
pub use parse::{parse_key, parse_key_exact};

use crate::key::{attr, FlowKey, Match};

/// ODP key attribute numbers (`OVS_KEY_ATTR_*`) that odpx keeps opaque.
pub mod opaque_id {
    pub const CT_STATE: u16 = 22;
    pub const CT_ZONE: u16 = 23;
    pub const CT_MARK: u16 = 24;
    pub const CT_LABELS: u16 = 25;
    pub const CT_ORIG_TUPLE_IPV4: u16 = 26;
    pub const CT_ORIG_TUPLE_IPV6: u16 = 27;
    pub const NSH: u16 = 28;
    pub const PACKET_TYPE: u16 = 29;
    pub const ND_EXTENSIONS: u16 = 30;
    /// IPv6 extension headers (kernel 5.19+); OVS 3.1 prints it as `key32`.
    pub const IPV6_EXTHDRS: u16 = 32;
    /// `OVS_KEY_ATTR_ETHERTYPE`, kept opaque only in its mask-only form
    /// (see [`crate::odp::OpaqueAttr::is_mask_only_ethertype`]).
    pub const ETHERTYPE: u16 = 6;
}

/// An attribute odpx carries without interpreting it: its ODP number, the
/// key bytes, and the mask bytes (`None`: exact) in netlink (host) order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpaqueAttr {
    pub attr: u16,
    pub key: Vec<u8>,
    pub mask: Option<Vec<u8>>,
}

impl OpaqueAttr {
    /// The kernel's way of saying "Ethernet frame, Ethertype masked": the
    /// key has no ETHERTYPE attribute (which the kernel reads as 802.2) and
    /// the mask has one. OVS prints it last, as `eth_type(0/0xMMMM)`, and
    /// so does odpx; a top-level `eth_type(0/M)` parses back to it. It has
    /// an empty key and a two-byte mask.
    pub fn mask_only_ethertype(mask: u16) -> OpaqueAttr {
        OpaqueAttr {
            attr: opaque_id::ETHERTYPE,
            key: Vec::new(),
            mask: Some(mask.to_be_bytes().to_vec()),
        }
    }

    pub fn is_mask_only_ethertype(&self) -> bool {
        self.attr == opaque_id::ETHERTYPE && self.key.is_empty() && self.mask.as_ref().is_some_and(|m| m.len() == 2)
    }

    /// The text name OVS uses for this attribute number.
    pub fn name(&self) -> String {
        opaque_name(self.attr).map_or_else(|| format!("key{}", self.attr), str::to_string)
    }

    /// A zero-length attribute has nothing to wildcard: never "zero".
    fn mask_is_zero(&self) -> bool {
        self.mask
            .as_ref()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|&b| b == 0))
    }

    /// Whether a masked print shows it: attributes OVS names (ct_*) are
    /// left out when wildcarded, like every known attribute; ones printed
    /// as `keyN` are always shown, as OVS does with attributes it does not
    /// know (kernel 6.1 dumps `key32(00 00/00 00)` on IPv6 flows).
    fn shown_when_masked(&self) -> bool {
        self.is_mask_only_ethertype() || opaque_name(self.attr).is_none() || !self.mask_is_zero()
    }

    /// Where the kernel emits it, hence where it prints.
    fn placement(&self) -> OpaquePlacement {
        match self.attr {
            opaque_id::CT_STATE..=opaque_id::CT_ORIG_TUPLE_IPV6 => OpaquePlacement::AfterSkbMark,
            opaque_id::IPV6_EXTHDRS => OpaquePlacement::AfterL3,
            _ => OpaquePlacement::Last,
        }
    }
}

pub(crate) fn opaque_name(id: u16) -> Option<&'static str> {
    Some(match id {
        opaque_id::CT_STATE => "ct_state",
        opaque_id::CT_ZONE => "ct_zone",
        opaque_id::CT_MARK => "ct_mark",
        opaque_id::CT_LABELS => "ct_label",
        opaque_id::CT_ORIG_TUPLE_IPV4 => "ct_tuple4",
        opaque_id::CT_ORIG_TUPLE_IPV6 => "ct_tuple6",
        opaque_id::NSH => "nsh",
        opaque_id::PACKET_TYPE => "packet_type",
        opaque_id::ND_EXTENSIONS => "nd_ext",
        opaque_id::ETHERTYPE => "eth_type",
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpaquePlacement {
    AfterSkbMark,
    AfterL3,
    Last,
}

/// A datapath flow match in ODP terms: the interpreted [`Match`] plus the
/// attributes odpx keeps opaque.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct OdpKey {
    pub matched: Match,
    pub opaque: Vec<OpaqueAttr>,
}

impl OdpKey {
    pub fn from_match(matched: Match) -> Self {
        OdpKey {
            matched,
            opaque: Vec::new(),
        }
    }
}

impl std::fmt::Display for OdpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format::format_key(
            &self.matched.key,
            &self.matched.mask,
            false,
            &self.opaque,
        ))
    }
}

/// The mask bits that belong to each attribute (in a [`FlowKey`] shape), used
/// to decide whether an attribute is wildcarded and to canonicalise.
pub fn attr_fields(bit: u32) -> FlowKey {
    let mut m = FlowKey::ZERO;
    match bit {
        attr::PRIORITY => m.skb_priority = !0,
        attr::SKB_MARK => m.skb_mark = !0,
        attr::IN_PORT => m.in_port = !0,
        attr::RECIRC_ID => m.recirc_id = !0,
        attr::DP_HASH => m.dp_hash = !0,
        attr::TUNNEL => {
            m.tun_id = !0;
            m.tun_ipv4_src = !0;
            m.tun_ipv4_dst = !0;
            m.tun_ipv6_src = [0xff; 16];
            m.tun_ipv6_dst = [0xff; 16];
            m.tun_flags = crate::key::tun_flag::ALL;
            m.tun_tp_src = !0;
            m.tun_tp_dst = !0;
            m.tun_tos = !0;
            m.tun_ttl = !0;
        }
        attr::ETHERNET => {
            m.eth_src = [0xff; 6];
            m.eth_dst = [0xff; 6];
        }
        attr::VLAN => {
            m.vlan_tci = !0;
            m.vlan_tpid = !0;
        }
        attr::CVLAN => {
            m.cvlan_tci = !0;
            m.cvlan_tpid = !0;
        }
        attr::ETHERTYPE => m.eth_type = !0,
        attr::IPV4 => {
            m.ipv4_src = !0;
            m.ipv4_dst = !0;
            m.ip_proto = !0;
            m.ip_tos = !0;
            m.ip_ttl = !0;
            m.ip_frag = !0;
        }
        attr::IPV6 => {
            m.ipv6_src = [0xff; 16];
            m.ipv6_dst = [0xff; 16];
            m.ipv6_label = 0x000f_ffff;
            m.ip_proto = !0;
            m.ip_tos = !0;
            m.ip_ttl = !0;
            m.ip_frag = !0;
        }
        attr::TCP | attr::UDP | attr::SCTP | attr::ICMP | attr::ICMPV6 => {
            m.tp_src = !0;
            m.tp_dst = !0;
        }
        attr::TCP_FLAGS => m.tcp_flags = 0x0fff,
        attr::ARP => {
            m.ipv4_src = !0;
            m.ipv4_dst = !0;
            m.arp_op = !0;
            m.arp_sha = [0xff; 6];
            m.arp_tha = [0xff; 6];
        }
        attr::ND => {
            m.nd_target = [0xff; 16];
            m.arp_sha = [0xff; 6];
            m.arp_tha = [0xff; 6];
        }
        attr::MPLS => {
            m.mpls_lse = [!0; 3];
            m.mpls_depth = !0;
        }
        _ => {}
    }
    m
}

/// The `eth_type`, `vlan` and `encap` attributes found at one level of an
/// ODP key (the top, inside the first `encap`, inside the second), each
/// as (value, mask). Text and netlink keys are read level by level, then
/// [`apply_encap_levels`] turns the levels into the key's VLAN fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct EncapLevel {
    pub eth_type: Option<(u16, u16)>,
    pub vlan: Option<(u16, u16)>,
    pub encap: bool,
}

/// A level structure that is not a valid ODP key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapError {
    /// A `vlan` without the `eth_type` (TPID) at its level.
    VlanWithoutTpid { inner: bool },
    /// An `encap` without a `vlan` at its level.
    EncapWithoutVlan,
}

impl std::fmt::Display for EncapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EncapError::VlanWithoutTpid { inner: false } => {
                "vlan() needs eth_type(0x8100) or eth_type(0x88a8) before it"
            }
            EncapError::VlanWithoutTpid { inner: true } => "the inner vlan() needs eth_type(0x8100) before it",
            EncapError::EncapWithoutVlan => "encap() is only valid after vlan()",
        })
    }
}

/// Sets the VLAN tags (outer, then 802.1ad inner), the encapsulation bits
/// and the innermost Ethertype of `key` and `mask` from the levels.
pub fn apply_encap_levels(levels: &[EncapLevel; 3], key: &mut FlowKey, mask: &mut FlowKey) -> Result<(), EncapError> {
    let mut depth = 0;
    for (i, l) in levels.iter().take(2).enumerate() {
        let Some((tci, tci_m)) = l.vlan else {
            if l.encap {
                return Err(EncapError::EncapWithoutVlan);
            }
            break;
        };
        let (tpid, tpid_m) = l.eth_type.ok_or(EncapError::VlanWithoutTpid { inner: i == 1 })?;
        let (vlan_bit, encap_bit) = if i == 0 {
            (key.vlan_tpid, key.vlan_tci, mask.vlan_tpid, mask.vlan_tci) = (tpid, tci, tpid_m, tci_m);
            (attr::VLAN, attr::ENCAP)
        } else {
            (key.cvlan_tpid, key.cvlan_tci, mask.cvlan_tpid, mask.cvlan_tci) = (tpid, tci, tpid_m, tci_m);
            (attr::CVLAN, attr::CENCAP)
        };
        let bits = vlan_bit | if l.encap { encap_bit } else { 0 };
        key.attrs |= bits;
        mask.attrs |= bits;
        depth = i + 1;
        if !l.encap {
            break;
        }
    }
    if let Some((v, m)) = levels[depth].eth_type {
        key.eth_type = v;
        mask.eth_type = m;
        key.attrs |= attr::ETHERTYPE;
        mask.attrs |= attr::ETHERTYPE;
    }
    Ok(())
}

/// Refuses keys that describe no packet: two network-layer attributes
/// (ipv4, ipv6, arp, mpls), two transport-layer ones (tcp, udp, sctp, icmp,
/// icmpv6), or nd with arp. Such attributes would also share fields in
/// [`FlowKey`] (ICMP type lives in `tp_src`, ARP addresses in `ipv4_*`).
pub fn check_layers(attrs: u32) -> Result<(), String> {
    let names = |bits: u32| -> Vec<&'static str> {
        [
            (attr::IPV4, "ipv4"),
            (attr::IPV6, "ipv6"),
            (attr::ARP, "arp"),
            (attr::MPLS, "mpls"),
            (attr::TCP, "tcp"),
            (attr::UDP, "udp"),
            (attr::SCTP, "sctp"),
            (attr::ICMP, "icmp"),
            (attr::ICMPV6, "icmpv6"),
            (attr::ND, "nd"),
        ]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
    };
    for group in [
        attr::IPV4 | attr::IPV6 | attr::ARP | attr::MPLS,
        attr::TCP | attr::UDP | attr::SCTP | attr::ICMP | attr::ICMPV6,
        attr::ND | attr::ARP,
    ] {
        if (attrs & group).count_ones() > 1 {
            return Err(format!(
                "{}() cannot appear together: a packet has one of them",
                names(attrs & group).join("() and ")
            ));
        }
    }
    Ok(())
}

/// Attributes that are printed even when fully wildcarded.
const ALWAYS_PRINTED: u32 = attr::ETHERNET | attr::ENCAP | attr::CENCAP | attr::TUNNEL;

/// Every attribute bit that has fields of its own.
const FIELD_ATTRS: [u32; 21] = [
    attr::PRIORITY,
    attr::SKB_MARK,
    attr::IN_PORT,
    attr::RECIRC_ID,
    attr::DP_HASH,
    attr::TUNNEL,
    attr::ETHERNET,
    attr::VLAN,
    attr::CVLAN,
    attr::ETHERTYPE,
    attr::IPV4,
    attr::IPV6,
    attr::TCP,
    attr::UDP,
    attr::SCTP,
    attr::ICMP,
    attr::ICMPV6,
    attr::TCP_FLAGS,
    attr::ARP,
    attr::ND,
    attr::MPLS,
];

/// Brings a match to canonical form: drops the presence of attributes whose
/// fields are all wildcarded (OVS does not print them), masks ICMP type and
/// code to their 8 bits, pins recirc_id to 0 when it is not given, then
/// normalises.
pub fn canonicalize(m: &Match) -> Match {
    let mut mask = m.mask;
    for bit in FIELD_ATTRS {
        if ALWAYS_PRINTED & bit != 0 {
            continue;
        }
        // VLAN attributes carry the encap structure: keep them while the
        // encap that follows them is kept.
        if bit == attr::VLAN && m.key.has(attr::ENCAP) || bit == attr::CVLAN && m.key.has(attr::CENCAP) {
            continue;
        }
        if m.key.has(bit) && mask.masked(&attr_fields(bit)).is_zero() {
            mask.attrs &= !bit;
        }
    }
    // ICMP type and code are 8-bit fields stored in 16: mask only 8 bits,
    // so every way of matching them has one form (the kernel's and the
    // text's).
    if m.key.attrs & (attr::ICMP | attr::ICMPV6) != 0 {
        mask.tp_src &= 0xff;
        mask.tp_dst &= 0xff;
    }
    // A match without recirc_id is for packets not recirculated: the
    // kernel's rule ("always exact match recirc_id if it is not
    // specified"), so that no such flow takes a recirculated packet. The
    // kernel cannot leave it wild either.
    if !mask.has(attr::RECIRC_ID) || mask.recirc_id == 0 {
        mask.recirc_id = !0;
        mask.attrs &= !attr::RECIRC_ID;
    }
    let mut key = m.key;
    key.recirc_id &= mask.recirc_id;
    Match::new(key, mask)
}
