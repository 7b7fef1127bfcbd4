//! Match and set fields by their `ovs-ofctl` names, mapped onto [`FlowKey`].
//!
//! A [`Field`] knows how to read and write its bits in a key, its width,
//! its text form, and its OpenFlow prerequisites (`nw_src` needs `ip` or
//! `arp`, `tp_dst` needs a transport protocol, ...). Rules must satisfy the
//! prerequisites of every field they match or set: that keeps every
//! megaflow's mask self-describing (an L3/L4 bit never appears without the
//! Ethertype and protocol that give it meaning), which the ODP encoding and
//! the kernel's own mask validation rely on.

use crate::key::{FlowKey, VLAN_CFI};
use crate::text::{fmt_ipv4, fmt_ipv6, fmt_mac, Cursor, PResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// OpenFlow metadata (pipeline state, see [`FlowKey::metadata`]).
    Metadata,
    /// `regN` (0-15), 32 bits of pipeline state ([`FlowKey::regs`]).
    Reg(u8),
    /// `xregN` (0-7): `reg2N` (high) and `reg2N+1` (low) as 64 bits.
    Xreg(u8),
    /// `xxregN` (0-3): `reg4N` (highest) to `reg4N+3` as 128 bits.
    Xxreg(u8),
    InPort,
    SkbPriority,
    PktMark,
    TunId,
    TunSrc,
    TunDst,
    TunIpv6Src,
    TunIpv6Dst,
    TunTos,
    TunTtl,
    TunFlags,
    TunTpSrc,
    TunTpDst,
    DlSrc,
    DlDst,
    DlType,
    VlanTci,
    DlVlan,
    DlVlanPcp,
    NwSrc,
    NwDst,
    NwProto,
    NwTos,
    NwEcn,
    NwTtl,
    NwFrag,
    TpSrc,
    TpDst,
    TcpFlags,
    IcmpType,
    IcmpCode,
    ArpOp,
    ArpSha,
    ArpTha,
    Ipv6Src,
    Ipv6Dst,
    Ipv6Label,
    NdTarget,
    NdSll,
    NdTll,
    MplsLabel,
    MplsTc,
    MplsBos,
    MplsTtl,
}

/// How a field's value is written in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Int,
    Mac,
    Ipv4,
    Ipv6,
    Frag,
}

/// Prerequisite of a field (OpenFlow's "prerequisites").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    None,
    /// dl_type is IPv4 or IPv6.
    Ip,
    Ipv4,
    Ipv6,
    /// IPv4 or ARP/RARP (nw_src/nw_dst double as arp_spa/arp_tpa).
    Ipv4OrArp,
    Arp,
    /// nw_proto is TCP, UDP or SCTP.
    Transport,
    Tcp,
    /// nw_proto is ICMP (IPv4) or ICMPv6 (IPv6).
    Icmp,
    /// ICMPv6 neighbour solicitation/advertisement.
    Nd,
    Mpls,
}

pub const FIELDS: &[(&str, Field)] = &[
    ("metadata", Field::Metadata),
    ("reg0", Field::Reg(0)),
    ("reg1", Field::Reg(1)),
    ("reg2", Field::Reg(2)),
    ("reg3", Field::Reg(3)),
    ("reg4", Field::Reg(4)),
    ("reg5", Field::Reg(5)),
    ("reg6", Field::Reg(6)),
    ("reg7", Field::Reg(7)),
    ("reg8", Field::Reg(8)),
    ("reg9", Field::Reg(9)),
    ("reg10", Field::Reg(10)),
    ("reg11", Field::Reg(11)),
    ("reg12", Field::Reg(12)),
    ("reg13", Field::Reg(13)),
    ("reg14", Field::Reg(14)),
    ("reg15", Field::Reg(15)),
    ("xreg0", Field::Xreg(0)),
    ("xreg1", Field::Xreg(1)),
    ("xreg2", Field::Xreg(2)),
    ("xreg3", Field::Xreg(3)),
    ("xreg4", Field::Xreg(4)),
    ("xreg5", Field::Xreg(5)),
    ("xreg6", Field::Xreg(6)),
    ("xreg7", Field::Xreg(7)),
    ("xxreg0", Field::Xxreg(0)),
    ("xxreg1", Field::Xxreg(1)),
    ("xxreg2", Field::Xxreg(2)),
    ("xxreg3", Field::Xxreg(3)),
    ("in_port", Field::InPort),
    ("skb_priority", Field::SkbPriority),
    ("pkt_mark", Field::PktMark),
    ("tun_id", Field::TunId),
    ("tunnel_id", Field::TunId),
    ("tun_src", Field::TunSrc),
    ("tun_dst", Field::TunDst),
    ("tun_ipv6_src", Field::TunIpv6Src),
    ("tun_ipv6_dst", Field::TunIpv6Dst),
    ("tun_tos", Field::TunTos),
    ("tun_ttl", Field::TunTtl),
    ("tun_flags", Field::TunFlags),
    ("tun_tp_src", Field::TunTpSrc),
    ("tun_tp_dst", Field::TunTpDst),
    ("dl_src", Field::DlSrc),
    ("eth_src", Field::DlSrc),
    ("dl_dst", Field::DlDst),
    ("eth_dst", Field::DlDst),
    ("dl_type", Field::DlType),
    ("eth_type", Field::DlType),
    ("vlan_tci", Field::VlanTci),
    ("dl_vlan", Field::DlVlan),
    ("vlan_vid", Field::DlVlan),
    ("dl_vlan_pcp", Field::DlVlanPcp),
    ("vlan_pcp", Field::DlVlanPcp),
    ("nw_src", Field::NwSrc),
    ("ip_src", Field::NwSrc),
    ("nw_dst", Field::NwDst),
    ("ip_dst", Field::NwDst),
    ("nw_proto", Field::NwProto),
    ("ip_proto", Field::NwProto),
    ("nw_tos", Field::NwTos),
    ("nw_ecn", Field::NwEcn),
    ("nw_ttl", Field::NwTtl),
    ("ip_frag", Field::NwFrag),
    ("nw_frag", Field::NwFrag),
    ("tp_src", Field::TpSrc),
    ("tcp_src", Field::TpSrc),
    ("udp_src", Field::TpSrc),
    ("sctp_src", Field::TpSrc),
    ("tp_dst", Field::TpDst),
    ("tcp_dst", Field::TpDst),
    ("udp_dst", Field::TpDst),
    ("sctp_dst", Field::TpDst),
    ("tcp_flags", Field::TcpFlags),
    ("icmp_type", Field::IcmpType),
    ("icmpv6_type", Field::IcmpType),
    ("icmp_code", Field::IcmpCode),
    ("icmpv6_code", Field::IcmpCode),
    ("arp_op", Field::ArpOp),
    ("arp_spa", Field::NwSrc),
    ("arp_tpa", Field::NwDst),
    ("arp_sha", Field::ArpSha),
    ("arp_tha", Field::ArpTha),
    ("ipv6_src", Field::Ipv6Src),
    ("ipv6_dst", Field::Ipv6Dst),
    ("ipv6_label", Field::Ipv6Label),
    ("nd_target", Field::NdTarget),
    ("nd_sll", Field::NdSll),
    ("nd_tll", Field::NdTll),
    ("mpls_label", Field::MplsLabel),
    ("mpls_tc", Field::MplsTc),
    ("mpls_bos", Field::MplsBos),
    ("mpls_ttl", Field::MplsTtl),
];

impl Field {
    pub fn by_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The canonical name (the first in [`FIELDS`]).
    pub fn name(self) -> &'static str {
        FIELDS.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap_or("?")
    }

    pub fn syntax(self) -> Syntax {
        use Field::*;
        match self {
            TunSrc | TunDst | NwSrc | NwDst => Syntax::Ipv4,
            TunIpv6Src | TunIpv6Dst | Ipv6Src | Ipv6Dst | NdTarget => Syntax::Ipv6,
            DlSrc | DlDst | ArpSha | ArpTha | NdSll | NdTll => Syntax::Mac,
            NwFrag => Syntax::Frag,
            _ => Syntax::Int,
        }
    }

    /// Width in bits.
    pub fn bits(self) -> u32 {
        use Field::*;
        match self {
            InPort | SkbPriority | PktMark | TunSrc | TunDst | NwSrc | NwDst => 32,
            Reg(_) => 32,
            TunId | Metadata | Xreg(_) => 64,
            Xxreg(_) => 128,
            TunIpv6Src | TunIpv6Dst | Ipv6Src | Ipv6Dst | NdTarget => 128,
            DlSrc | DlDst | ArpSha | ArpTha | NdSll | NdTll => 48,
            DlType | VlanTci | TpSrc | TpDst | ArpOp | TunTpSrc | TunTpDst => 16,
            TcpFlags | DlVlan => 12,
            TunFlags => 4,
            Ipv6Label | MplsLabel => 20,
            NwTos => 8,
            NwProto | NwTtl | IcmpType | IcmpCode | TunTos | TunTtl | MplsTtl | NwFrag => 8,
            DlVlanPcp | MplsTc => 3,
            NwEcn => 2,
            MplsBos => 1,
        }
    }

    pub fn prereq(self) -> Prereq {
        use Field::*;
        match self {
            NwSrc | NwDst => Prereq::Ipv4OrArp,
            NwProto | NwTos | NwEcn | NwTtl | NwFrag => Prereq::Ip,
            TpSrc | TpDst => Prereq::Transport,
            TcpFlags => Prereq::Tcp,
            IcmpType | IcmpCode => Prereq::Icmp,
            ArpOp | ArpSha | ArpTha => Prereq::Arp,
            Ipv6Src | Ipv6Dst | Ipv6Label => Prereq::Ipv6,
            NdTarget | NdSll | NdTll => Prereq::Nd,
            MplsLabel | MplsTc | MplsBos | MplsTtl => Prereq::Mpls,
            _ => Prereq::None,
        }
    }

    /// Pipeline state (metadata and registers): never in a datapath key,
    /// written by actions without a datapath action.
    pub fn is_pipeline(self) -> bool {
        matches!(self, Field::Metadata | Field::Reg(_) | Field::Xreg(_) | Field::Xxreg(_))
    }

    /// The registers a register field spans, most significant first
    /// (`xreg1` is `reg2`, `reg3`); empty for other fields.
    fn reg_span(self) -> core::ops::Range<usize> {
        let (first, n) = match self {
            Field::Reg(i) => (i as usize, 1),
            Field::Xreg(i) => (2 * i as usize, 2),
            Field::Xxreg(i) => (4 * i as usize, 4),
            _ => (0, 0),
        };
        first.min(16)..(first + n).min(16)
    }

    /// Reads the field from `k` (right-aligned).
    pub fn get(self, k: &FlowKey) -> u128 {
        use Field::*;
        let mac = |m: &[u8; 6]| m.iter().fold(0u128, |a, &b| a << 8 | b as u128);
        match self {
            Metadata => k.metadata as u128,
            Reg(_) | Xreg(_) | Xxreg(_) => k.regs[self.reg_span()].iter().fold(0u128, |a, &r| a << 32 | r as u128),
            InPort => k.in_port as u128,
            SkbPriority => k.skb_priority as u128,
            PktMark => k.skb_mark as u128,
            TunId => k.tun_id as u128,
            TunSrc => k.tun_ipv4_src as u128,
            TunDst => k.tun_ipv4_dst as u128,
            TunIpv6Src => u128::from_be_bytes(k.tun_ipv6_src),
            TunIpv6Dst => u128::from_be_bytes(k.tun_ipv6_dst),
            TunTos => k.tun_tos as u128,
            TunTtl => k.tun_ttl as u128,
            TunFlags => k.tun_flags as u128 & 0xf,
            TunTpSrc => k.tun_tp_src as u128,
            TunTpDst => k.tun_tp_dst as u128,
            DlSrc => mac(&k.eth_src),
            DlDst => mac(&k.eth_dst),
            DlType => k.eth_type as u128,
            VlanTci => k.vlan_tci as u128,
            DlVlan => (k.vlan_tci & 0x0fff) as u128,
            DlVlanPcp => (k.vlan_tci >> 13) as u128,
            NwSrc => k.ipv4_src as u128,
            NwDst => k.ipv4_dst as u128,
            NwProto => k.ip_proto as u128,
            NwTos => k.ip_tos as u128 & 0xfc,
            NwEcn => k.ip_tos as u128 & 0x03,
            NwTtl => k.ip_ttl as u128,
            NwFrag => k.ip_frag as u128,
            TpSrc | IcmpType => k.tp_src as u128,
            TpDst | IcmpCode => k.tp_dst as u128,
            TcpFlags => k.tcp_flags as u128 & 0x0fff,
            ArpOp => k.arp_op as u128,
            ArpSha | NdSll => mac(&k.arp_sha),
            ArpTha | NdTll => mac(&k.arp_tha),
            Ipv6Src => u128::from_be_bytes(k.ipv6_src),
            Ipv6Dst => u128::from_be_bytes(k.ipv6_dst),
            Ipv6Label => k.ipv6_label as u128,
            NdTarget => u128::from_be_bytes(k.nd_target),
            MplsLabel => (k.mpls_lse[0] >> 12) as u128,
            MplsTc => ((k.mpls_lse[0] >> 9) & 7) as u128,
            MplsBos => ((k.mpls_lse[0] >> 8) & 1) as u128,
            MplsTtl => (k.mpls_lse[0] & 0xff) as u128,
        }
    }

    /// Writes `value` into the bits selected by `mask` (both right-aligned).
    pub fn put(self, k: &mut FlowKey, value: u128, mask: u128) {
        use Field::*;
        let merge = |old: u128| (old & !mask) | (value & mask);
        let to_mac = |v: u128| -> [u8; 6] {
            let b = v.to_be_bytes();
            b[10..16].try_into().unwrap_or_default()
        };
        let v = merge(self.get(k));
        match self {
            Metadata => k.metadata = v as u64,
            Reg(_) | Xreg(_) | Xxreg(_) => {
                let span = self.reg_span();
                let n = span.len();
                for (j, r) in k.regs[span].iter_mut().enumerate() {
                    *r = (v >> (32 * (n - 1 - j))) as u32;
                }
            }
            InPort => k.in_port = v as u32,
            SkbPriority => k.skb_priority = v as u32,
            PktMark => k.skb_mark = v as u32,
            TunId => k.tun_id = v as u64,
            TunSrc => k.tun_ipv4_src = v as u32,
            TunDst => k.tun_ipv4_dst = v as u32,
            TunIpv6Src => k.tun_ipv6_src = v.to_be_bytes(),
            TunIpv6Dst => k.tun_ipv6_dst = v.to_be_bytes(),
            TunTos => k.tun_tos = v as u8,
            TunTtl => k.tun_ttl = v as u8,
            TunFlags => k.tun_flags = (k.tun_flags & !0xf) | (v as u16 & 0xf),
            TunTpSrc => k.tun_tp_src = v as u16,
            TunTpDst => k.tun_tp_dst = v as u16,
            DlSrc => k.eth_src = to_mac(v),
            DlDst => k.eth_dst = to_mac(v),
            DlType => k.eth_type = v as u16,
            VlanTci => k.vlan_tci = v as u16,
            DlVlan => k.vlan_tci = (k.vlan_tci & !0x0fff) | (v as u16 & 0x0fff),
            DlVlanPcp => k.vlan_tci = (k.vlan_tci & 0x1fff) | ((v as u16 & 7) << 13),
            NwSrc => k.ipv4_src = v as u32,
            NwDst => k.ipv4_dst = v as u32,
            NwProto => k.ip_proto = v as u8,
            NwTos => k.ip_tos = (k.ip_tos & 0x03) | (v as u8 & 0xfc),
            NwEcn => k.ip_tos = (k.ip_tos & 0xfc) | (v as u8 & 0x03),
            NwTtl => k.ip_ttl = v as u8,
            NwFrag => k.ip_frag = v as u8,
            TpSrc | IcmpType => k.tp_src = v as u16,
            TpDst | IcmpCode => k.tp_dst = v as u16,
            TcpFlags => k.tcp_flags = v as u16 & 0x0fff,
            ArpOp => k.arp_op = v as u16,
            ArpSha | NdSll => k.arp_sha = to_mac(v),
            ArpTha | NdTll => k.arp_tha = to_mac(v),
            Ipv6Src => k.ipv6_src = v.to_be_bytes(),
            Ipv6Dst => k.ipv6_dst = v.to_be_bytes(),
            Ipv6Label => k.ipv6_label = v as u32 & 0x000f_ffff,
            NdTarget => k.nd_target = v.to_be_bytes(),
            MplsLabel => k.mpls_lse[0] = (k.mpls_lse[0] & 0xfff) | ((v as u32 & 0xfffff) << 12),
            MplsTc => k.mpls_lse[0] = (k.mpls_lse[0] & !0xe00) | ((v as u32 & 7) << 9),
            MplsBos => k.mpls_lse[0] = (k.mpls_lse[0] & !0x100) | ((v as u32 & 1) << 8),
            MplsTtl => k.mpls_lse[0] = (k.mpls_lse[0] & !0xff) | (v as u32 & 0xff),
        }
    }

    /// All-ones over the field's bits (right-aligned), e.g. 0xfc for nw_tos.
    pub fn full_mask(self) -> u128 {
        let mut k = FlowKey::ZERO;
        self.put(&mut k, u128::MAX, u128::MAX);
        self.get(&k)
    }

    /// A FlowKey mask with this field's bits set.
    pub fn key_mask(self) -> FlowKey {
        let mut k = FlowKey::ZERO;
        self.put(&mut k, u128::MAX, u128::MAX);
        k
    }

    /// Parses `VALUE[/MASK]` in this field's syntax; returns right-aligned
    /// value and mask. `dl_vlan` values also carry the tag-present meaning
    /// (see [`Field::match_bits`]).
    pub fn parse_value(self, c: &mut Cursor) -> PResult<(u128, u128)> {
        let full = self.full_mask();
        let start = c.pos;
        let (v, m) = match self.syntax() {
            Syntax::Ipv4 => {
                let (v, m) = c.ipv4_masked()?;
                (v as u128, m as u128)
            }
            Syntax::Ipv6 => {
                let (v, m) = c.ipv6_masked()?;
                (u128::from_be_bytes(v), u128::from_be_bytes(m))
            }
            Syntax::Mac => {
                let (v, m) = c.mac_masked()?;
                let f = |a: [u8; 6]| a.iter().fold(0u128, |acc, &b| acc << 8 | b as u128);
                (f(v), f(m))
            }
            Syntax::Frag => {
                let w = c.ident();
                let (v, m) = match w {
                    "no" => (0, 0xff),
                    "first" => (1, 0xff),
                    "later" => (2, 0xff),
                    "yes" => (1, 0x03),
                    "not_later" => (0, 0x02),
                    _ => {
                        return c.err_at(
                            start,
                            format!("ip_frag must be no, yes, first, later or not_later, not '{w}'"),
                        )
                    }
                };
                // "yes" = first or later; "not_later" = no or first: bit tricks on the ODP enum.
                if w == "yes" {
                    return c.err_at(
                        start,
                        "ip_frag=yes cannot be expressed on the ODP frag enumeration; use first or later",
                    );
                }
                (v, m)
            }
            Syntax::Int => {
                let (v, m) = c.uint_masked(u64::MAX)?;
                (v as u128, m as u128)
            }
        };
        if self == Field::NwTos {
            if v & !0xfc != 0 {
                return c.err_at(start, "nw_tos must be a DSCP value: a multiple of 4 up to 252");
            }
        } else if v & !full != 0 {
            return c.err_at(
                start,
                format!("value too large for {} ({} bits)", self.name(), self.bits()),
            );
        }
        Ok((v & full, m & full))
    }

    /// The (value, mask) bits a match on this field adds to a key and mask.
    /// `dl_vlan=N` and `dl_vlan_pcp=N` also require a tag (CFI set); the rule
    /// parser handles `dl_vlan=0xffff` ("no tag") itself.
    pub fn match_bits(self, v: u128, m: u128) -> (FlowKey, FlowKey) {
        let mut key = FlowKey::ZERO;
        let mut mask = FlowKey::ZERO;
        self.put(&mut key, v, u128::MAX);
        self.put(&mut mask, m, u128::MAX);
        if matches!(self, Field::DlVlan | Field::DlVlanPcp) {
            key.vlan_tci |= VLAN_CFI;
            mask.vlan_tci |= VLAN_CFI;
        }
        (key, mask)
    }

    /// Text of a value, for dump-flows.
    pub fn format_value(self, v: u128, m: u128) -> String {
        let full = self.full_mask();
        let val = match self.syntax() {
            Syntax::Ipv4 => {
                if m == full {
                    return fmt_ipv4(v as u32);
                }
                let plen = (m as u32).leading_ones();
                if (m as u32).checked_shl(plen).unwrap_or(0) == 0 {
                    return format!("{}/{plen}", fmt_ipv4(v as u32));
                }
                return format!("{}/{}", fmt_ipv4(v as u32), fmt_ipv4(m as u32));
            }
            Syntax::Ipv6 => {
                let b = |x: u128| fmt_ipv6(&x.to_be_bytes());
                if m == full {
                    return b(v);
                }
                let plen = m.leading_ones();
                if m.checked_shl(plen).unwrap_or(0) == 0 {
                    return format!("{}/{plen}", b(v));
                }
                return format!("{}/{}", b(v), b(m));
            }
            Syntax::Mac => {
                let to = |x: u128| -> [u8; 6] { x.to_be_bytes()[10..16].try_into().unwrap_or_default() };
                if m == full {
                    return fmt_mac(&to(v));
                }
                return format!("{}/{}", fmt_mac(&to(v)), fmt_mac(&to(m)));
            }
            Syntax::Frag => {
                return match v {
                    0 => "no",
                    1 => "first",
                    _ => "later",
                }
                .into()
            }
            Syntax::Int => {
                // Like ovs-ofctl: masked values, and hex-natured fields, in hex.
                if m != full
                    || matches!(
                        self,
                        Field::DlType
                            | Field::TunId
                            | Field::VlanTci
                            | Field::TcpFlags
                            | Field::PktMark
                            | Field::Metadata
                            | Field::Reg(_)
                            | Field::Xreg(_)
                            | Field::Xxreg(_)
                    )
                {
                    // C's `%#x`, as ovs-ofctl prints: `0`, not `0x0`.
                    crate::text::hexc(v)
                } else {
                    v.to_string()
                }
            }
        };
        if m == full {
            val
        } else {
            format!("{val}/{m:#x}")
        }
    }
}
