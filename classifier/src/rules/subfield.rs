//! Subfields: a bit range of one field, as Nicira extensions name them
//! (`NXM_NX_REG0[0..15]`, `NXM_OF_ETH_SRC[]`, `OXM_OF_METADATA[0..7]`, or
//! by the `ovs-ofctl` field name: `reg0[5]`, `in_port`).
//!
//! # What
//! [`Subfield`] is what `load`, `move`, `output:SUBFIELD` and `learn` read
//! and write. Parsing takes every NXM and OXM name odpx's fields have,
//! with the width that name gives the field (`NXM_OF_IN_PORT` is 16 bits,
//! `OXM_OF_IN_PORT` 32); formatting writes the first NXM name that fits,
//! `[]` for a whole field, as `ovs-ofctl` prints them.
//!
//! # Invariants
//! A parsed subfield lies inside its field's width and is 1 to 128 bits
//! wide; values read through it are right-aligned and never wider.

use super::field::Field;
use crate::key::FlowKey;
use crate::text::{Cursor, PResult};

/// Bits `ofs .. ofs + n_bits` of a field (bit 0 is the least significant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subfield {
    pub field: Field,
    pub ofs: u8,
    pub n_bits: u8,
}

/// NXM and OXM names, with the field and the width each gives it, in the
/// order formatting prefers (Open vSwitch prints a field's NXM name).
const NAMES: &[(&str, Field, u8)] = &[
    ("NXM_OF_IN_PORT", Field::InPort, 16),
    ("OXM_OF_IN_PORT", Field::InPort, 32),
    ("NXM_OF_ETH_DST", Field::DlDst, 48),
    ("OXM_OF_ETH_DST", Field::DlDst, 48),
    ("NXM_OF_ETH_SRC", Field::DlSrc, 48),
    ("OXM_OF_ETH_SRC", Field::DlSrc, 48),
    ("NXM_OF_ETH_TYPE", Field::DlType, 16),
    ("OXM_OF_ETH_TYPE", Field::DlType, 16),
    ("NXM_OF_VLAN_TCI", Field::VlanTci, 16),
    ("OXM_OF_VLAN_PCP", Field::DlVlanPcp, 3),
    ("NXM_OF_IP_TOS", Field::NwTos, 8),
    ("NXM_NX_IP_ECN", Field::NwEcn, 2),
    ("OXM_OF_IP_ECN", Field::NwEcn, 2),
    ("NXM_NX_IP_TTL", Field::NwTtl, 8),
    ("NXM_OF_IP_PROTO", Field::NwProto, 8),
    ("OXM_OF_IP_PROTO", Field::NwProto, 8),
    ("NXM_OF_IP_SRC", Field::NwSrc, 32),
    ("OXM_OF_IPV4_SRC", Field::NwSrc, 32),
    ("NXM_OF_ARP_SPA", Field::NwSrc, 32),
    ("OXM_OF_ARP_SPA", Field::NwSrc, 32),
    ("NXM_OF_IP_DST", Field::NwDst, 32),
    ("OXM_OF_IPV4_DST", Field::NwDst, 32),
    ("NXM_OF_ARP_TPA", Field::NwDst, 32),
    ("OXM_OF_ARP_TPA", Field::NwDst, 32),
    ("NXM_OF_TCP_SRC", Field::TpSrc, 16),
    ("NXM_OF_UDP_SRC", Field::TpSrc, 16),
    ("OXM_OF_TCP_SRC", Field::TpSrc, 16),
    ("OXM_OF_UDP_SRC", Field::TpSrc, 16),
    ("OXM_OF_SCTP_SRC", Field::TpSrc, 16),
    ("NXM_OF_TCP_DST", Field::TpDst, 16),
    ("NXM_OF_UDP_DST", Field::TpDst, 16),
    ("OXM_OF_TCP_DST", Field::TpDst, 16),
    ("OXM_OF_UDP_DST", Field::TpDst, 16),
    ("OXM_OF_SCTP_DST", Field::TpDst, 16),
    ("NXM_OF_ICMP_TYPE", Field::IcmpType, 8),
    ("NXM_NX_ICMPV6_TYPE", Field::IcmpType, 8),
    ("OXM_OF_ICMPV4_TYPE", Field::IcmpType, 8),
    ("OXM_OF_ICMPV6_TYPE", Field::IcmpType, 8),
    ("NXM_OF_ICMP_CODE", Field::IcmpCode, 8),
    ("NXM_NX_ICMPV6_CODE", Field::IcmpCode, 8),
    ("OXM_OF_ICMPV4_CODE", Field::IcmpCode, 8),
    ("OXM_OF_ICMPV6_CODE", Field::IcmpCode, 8),
    ("NXM_OF_ARP_OP", Field::ArpOp, 16),
    ("OXM_OF_ARP_OP", Field::ArpOp, 16),
    ("NXM_NX_ARP_SHA", Field::ArpSha, 48),
    ("OXM_OF_ARP_SHA", Field::ArpSha, 48),
    ("NXM_NX_ARP_THA", Field::ArpTha, 48),
    ("OXM_OF_ARP_THA", Field::ArpTha, 48),
    ("NXM_NX_IPV6_SRC", Field::Ipv6Src, 128),
    ("OXM_OF_IPV6_SRC", Field::Ipv6Src, 128),
    ("NXM_NX_IPV6_DST", Field::Ipv6Dst, 128),
    ("OXM_OF_IPV6_DST", Field::Ipv6Dst, 128),
    ("NXM_NX_IPV6_LABEL", Field::Ipv6Label, 20),
    ("OXM_OF_IPV6_FLABEL", Field::Ipv6Label, 20),
    ("NXM_NX_ND_TARGET", Field::NdTarget, 128),
    ("OXM_OF_IPV6_ND_TARGET", Field::NdTarget, 128),
    ("NXM_NX_ND_SLL", Field::NdSll, 48),
    ("OXM_OF_IPV6_ND_SLL", Field::NdSll, 48),
    ("NXM_NX_ND_TLL", Field::NdTll, 48),
    ("OXM_OF_IPV6_ND_TLL", Field::NdTll, 48),
    ("NXM_NX_TUN_ID", Field::TunId, 64),
    ("OXM_OF_TUNNEL_ID", Field::TunId, 64),
    ("NXM_NX_TUN_IPV4_SRC", Field::TunSrc, 32),
    ("NXM_NX_TUN_IPV4_DST", Field::TunDst, 32),
    ("NXM_NX_PKT_MARK", Field::PktMark, 32),
    ("OXM_OF_METADATA", Field::Metadata, 64),
    ("OXM_OF_MPLS_LABEL", Field::MplsLabel, 20),
    ("OXM_OF_MPLS_TC", Field::MplsTc, 3),
    ("OXM_OF_MPLS_BOS", Field::MplsBos, 1),
    ("NXM_NX_MPLS_TTL", Field::MplsTtl, 8),
];

/// `NXM_NX_REGn`, `OXM_OF_PKT_REGn` (xregs) and `NXM_NX_XXREGn`.
fn register_name(name: &str) -> Option<(Field, u8)> {
    let number = |prefix: &str, max: u8| -> Option<u8> {
        let digits = name.strip_prefix(prefix)?;
        let n: u8 = digits.parse().ok().filter(|n| *n < max)?;
        (digits == n.to_string()).then_some(n)
    };
    if let Some(n) = number("NXM_NX_REG", 16) {
        return Some((Field::Reg(n), 32));
    }
    if let Some(n) = number("OXM_OF_PKT_REG", 8) {
        return Some((Field::Xreg(n), 64));
    }
    number("NXM_NX_XXREG", 4).map(|n| (Field::Xxreg(n), 128))
}

/// The field a subfield name stands for, and its width under that name.
fn by_name(name: &str) -> Option<(Field, u8)> {
    if let Some(&(_, f, w)) = NAMES.iter().find(|(n, _, _)| *n == name) {
        return Some((f, w));
    }
    if let Some(r) = register_name(name) {
        return Some(r);
    }
    // An ovs-ofctl name; `in_port` is OVS's 16-bit port, as NXM_OF_IN_PORT.
    let f = Field::by_name(name)?;
    let width = if f == Field::InPort { 16 } else { f.bits() as u8 };
    Some((f, width))
}

/// The name a subfield prints with, and the width under that name.
fn name_of(field: Field, top: u32) -> (String, u32) {
    if let Some(&(n, _, w)) = NAMES.iter().find(|(_, f, w)| *f == field && top <= *w as u32) {
        return (n.to_string(), w as u32);
    }
    match field {
        Field::Reg(n) => (format!("NXM_NX_REG{n}"), 32),
        Field::Xreg(n) => (format!("OXM_OF_PKT_REG{n}"), 64),
        Field::Xxreg(n) => (format!("NXM_NX_XXREG{n}"), 128),
        f => (f.name().to_string(), f.bits()),
    }
}

/// All-ones over the low `n` bits (`n` ≤ 128).
pub fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

impl Subfield {
    /// The whole of `field` (as its ovs-ofctl name gives it).
    pub fn whole(field: Field) -> Subfield {
        let n_bits = if field == Field::InPort { 16 } else { field.bits() as u8 };
        Subfield { field, ofs: 0, n_bits }
    }

    /// Bits `ofs..ofs+n_bits` of the field NXM or OXM name `name` stands
    /// for, if they lie inside the width that name gives it.
    pub fn named(name: &str, ofs: u32, n_bits: u32) -> Option<Subfield> {
        let (field, width) = by_name(name)?;
        (n_bits >= 1 && ofs + n_bits <= width as u32).then_some(Subfield {
            field,
            ofs: ofs as u8,
            n_bits: n_bits as u8,
        })
    }

    /// The NXM or OXM name this subfield is written with, and the width
    /// that name gives the field.
    pub fn nxm_name(&self) -> (String, u32) {
        name_of(self.field, self.ofs as u32 + self.n_bits as u32)
    }

    /// Parses `NAME`, `NAME[]`, `NAME[BIT]` or `NAME[START..END]`.
    pub fn parse(c: &mut Cursor) -> PResult<Subfield> {
        let at = c.pos;
        let name = c.ident();
        if name.is_empty() {
            return c.err("expected a field name");
        }
        let Some((field, width)) = by_name(name) else {
            return c.err_at(at, format!("unknown field '{name}'"));
        };
        let (mut ofs, mut end) = (0u32, width as u32 - 1);
        if c.eat("[") && !c.eat("]") {
            let bit_at = c.pos;
            ofs = c.uint(255)? as u32;
            end = if c.eat("..") { c.uint(255)? as u32 } else { ofs };
            c.expect("]")?;
            if ofs > end {
                return c.err_at(bit_at, format!("{name}: starting bit {ofs} is after ending bit {end}"));
            }
            if end >= width as u32 {
                return c.err_at(bit_at, format!("{name}[{ofs}..{end}]: the field has only {width} bits"));
            }
        }
        Ok(Subfield {
            field,
            ofs: ofs as u8,
            n_bits: (end - ofs + 1) as u8,
        })
    }

    /// The field's bits this subfield covers, right-aligned at `ofs`.
    pub fn mask(&self) -> u128 {
        ones(self.n_bits as u32) << self.ofs
    }

    /// The subfield's value in `k`, right-aligned.
    pub fn get(&self, k: &FlowKey) -> u128 {
        (self.field.get(k) >> self.ofs) & ones(self.n_bits as u32)
    }

    /// Writes the low `n_bits` of `value` into the subfield of `k`.
    pub fn put(&self, k: &mut FlowKey, value: u128) {
        self.field.put(k, value << self.ofs, self.mask());
    }

    /// Sets every bit of the subfield in `mask` (a key used as a mask).
    pub fn mark(&self, mask: &mut FlowKey) {
        self.field.put(mask, u128::MAX, self.mask());
    }
}

impl std::fmt::Display for Subfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let top = self.ofs as u32 + self.n_bits as u32;
        let (name, width) = self.nxm_name();
        if self.ofs == 0 && self.n_bits as u32 == width {
            write!(f, "{name}[]")
        } else if self.n_bits == 1 {
            write!(f, "{name}[{}]", self.ofs)
        } else {
            write!(f, "{name}[{}..{}]", self.ofs, top - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Subfield, String> {
        let mut c = Cursor::new(s);
        Subfield::parse(&mut c).map_err(|e| e.msg)
    }

    #[test]
    fn names_widths_and_round_trips() {
        for (text, printed, field, ofs, n) in [
            ("NXM_NX_REG0[0..15]", "NXM_NX_REG0[0..15]", Field::Reg(0), 0, 16),
            ("NXM_OF_IN_PORT[]", "NXM_OF_IN_PORT[]", Field::InPort, 0, 16),
            ("in_port", "NXM_OF_IN_PORT[]", Field::InPort, 0, 16),
            (
                "NXM_OF_VLAN_TCI[0..11]",
                "NXM_OF_VLAN_TCI[0..11]",
                Field::VlanTci,
                0,
                12,
            ),
            ("NXM_OF_ETH_SRC[]", "NXM_OF_ETH_SRC[]", Field::DlSrc, 0, 48),
            ("reg15[31]", "NXM_NX_REG15[31]", Field::Reg(15), 31, 1),
            ("xreg3[]", "OXM_OF_PKT_REG3[]", Field::Xreg(3), 0, 64),
            (
                "OXM_OF_METADATA[8..15]",
                "OXM_OF_METADATA[8..15]",
                Field::Metadata,
                8,
                8,
            ),
            ("tcp_dst[]", "NXM_OF_TCP_DST[]", Field::TpDst, 0, 16),
        ] {
            let sf = parse(text).unwrap();
            assert_eq!((sf.field, sf.ofs, sf.n_bits), (field, ofs, n), "{text}");
            assert_eq!(sf.to_string(), printed, "{text}");
            assert_eq!(parse(printed).unwrap(), sf, "{printed}");
        }
    }

    #[test]
    fn bad_subfields_say_why() {
        assert!(parse("NXM_NX_REG0[16..40]").unwrap_err().contains("only 32 bits"));
        assert!(parse("NXM_NX_REG0[5..2]").unwrap_err().contains("after ending bit"));
        assert!(parse("NXM_NX_REG16[]").unwrap_err().contains("unknown field"));
        assert!(parse("NXM_NX_REG01[]").unwrap_err().contains("unknown field"));
        assert!(parse("NXM_OF_IN_PORT[0..16]").unwrap_err().contains("only 16 bits"));
    }

    #[test]
    fn get_and_put_touch_only_their_bits() {
        let mut k = FlowKey::ZERO;
        k.regs[1] = 0xffff_ffff;
        let sf = parse("NXM_NX_REG1[8..15]").unwrap();
        sf.put(&mut k, 0x1a5);
        assert_eq!(k.regs[1], 0xffff_a5ff);
        assert_eq!(sf.get(&k), 0xa5);
        let x = parse("xreg0[]").unwrap();
        x.put(&mut k, 0x1111_2222_3333_4444);
        assert_eq!((k.regs[0], k.regs[1]), (0x1111_2222, 0x3333_4444));
        let mut m = FlowKey::ZERO;
        parse("NXM_OF_ETH_SRC[0..7]").unwrap().mark(&mut m);
        assert_eq!(m.eth_src, [0, 0, 0, 0, 0, 0xff]);
    }
}
