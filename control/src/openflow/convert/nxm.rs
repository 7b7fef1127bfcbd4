//! NXM and OXM headers to odpx's subfields and back, for the Nicira
//! actions that name fields (`load`, `move`, `output:SUBFIELD`).
//!
//! A header is class (16 bits), field number (7), has-mask (1) and
//! length (8). The table below gives each name odpx's subfields know its
//! class and number; the field and its width come from the classifier's
//! subfield names, so the two never disagree on what a name means.

use odpx_classifier::rules::subfield::Subfield;

const NXM_0: u16 = 0x0000;
const NXM_1: u16 = 0x0001;
const BASIC: u16 = 0x8000;
/// `OFPXMC_PACKET_REGS`: the 64-bit `xreg`s.
const PACKET_REGS: u16 = 0x8001;

/// Every name with its class and field number.
const HEADERS: &[(&str, u16, u8)] = &[
    ("NXM_OF_IN_PORT", NXM_0, 0),
    ("NXM_OF_ETH_DST", NXM_0, 1),
    ("NXM_OF_ETH_SRC", NXM_0, 2),
    ("NXM_OF_ETH_TYPE", NXM_0, 3),
    ("NXM_OF_VLAN_TCI", NXM_0, 4),
    ("NXM_OF_IP_TOS", NXM_0, 5),
    ("NXM_OF_IP_PROTO", NXM_0, 6),
    ("NXM_OF_IP_SRC", NXM_0, 7),
    ("NXM_OF_IP_DST", NXM_0, 8),
    ("NXM_OF_TCP_SRC", NXM_0, 9),
    ("NXM_OF_TCP_DST", NXM_0, 10),
    ("NXM_OF_UDP_SRC", NXM_0, 11),
    ("NXM_OF_UDP_DST", NXM_0, 12),
    ("NXM_OF_ICMP_TYPE", NXM_0, 13),
    ("NXM_OF_ICMP_CODE", NXM_0, 14),
    ("NXM_OF_ARP_OP", NXM_0, 15),
    ("NXM_OF_ARP_SPA", NXM_0, 16),
    ("NXM_OF_ARP_TPA", NXM_0, 17),
    ("NXM_NX_TUN_ID", NXM_1, 16),
    ("NXM_NX_ARP_SHA", NXM_1, 17),
    ("NXM_NX_ARP_THA", NXM_1, 18),
    ("NXM_NX_IPV6_SRC", NXM_1, 19),
    ("NXM_NX_IPV6_DST", NXM_1, 20),
    ("NXM_NX_ICMPV6_TYPE", NXM_1, 21),
    ("NXM_NX_ICMPV6_CODE", NXM_1, 22),
    ("NXM_NX_ND_TARGET", NXM_1, 23),
    ("NXM_NX_ND_SLL", NXM_1, 24),
    ("NXM_NX_ND_TLL", NXM_1, 25),
    ("NXM_NX_IPV6_LABEL", NXM_1, 27),
    ("NXM_NX_IP_ECN", NXM_1, 28),
    ("NXM_NX_IP_TTL", NXM_1, 29),
    ("NXM_NX_MPLS_TTL", NXM_1, 30),
    ("NXM_NX_TUN_IPV4_SRC", NXM_1, 31),
    ("NXM_NX_TUN_IPV4_DST", NXM_1, 32),
    ("NXM_NX_PKT_MARK", NXM_1, 33),
    ("OXM_OF_IN_PORT", BASIC, 0),
    ("OXM_OF_METADATA", BASIC, 2),
    ("OXM_OF_ETH_DST", BASIC, 3),
    ("OXM_OF_ETH_SRC", BASIC, 4),
    ("OXM_OF_ETH_TYPE", BASIC, 5),
    ("OXM_OF_VLAN_PCP", BASIC, 7),
    ("OXM_OF_IP_ECN", BASIC, 9),
    ("OXM_OF_IP_PROTO", BASIC, 10),
    ("OXM_OF_IPV4_SRC", BASIC, 11),
    ("OXM_OF_IPV4_DST", BASIC, 12),
    ("OXM_OF_TCP_SRC", BASIC, 13),
    ("OXM_OF_TCP_DST", BASIC, 14),
    ("OXM_OF_UDP_SRC", BASIC, 15),
    ("OXM_OF_UDP_DST", BASIC, 16),
    ("OXM_OF_SCTP_SRC", BASIC, 17),
    ("OXM_OF_SCTP_DST", BASIC, 18),
    ("OXM_OF_ICMPV4_TYPE", BASIC, 19),
    ("OXM_OF_ICMPV4_CODE", BASIC, 20),
    ("OXM_OF_ARP_OP", BASIC, 21),
    ("OXM_OF_ARP_SPA", BASIC, 22),
    ("OXM_OF_ARP_TPA", BASIC, 23),
    ("OXM_OF_ARP_SHA", BASIC, 24),
    ("OXM_OF_ARP_THA", BASIC, 25),
    ("OXM_OF_IPV6_SRC", BASIC, 26),
    ("OXM_OF_IPV6_DST", BASIC, 27),
    ("OXM_OF_IPV6_FLABEL", BASIC, 28),
    ("OXM_OF_ICMPV6_TYPE", BASIC, 29),
    ("OXM_OF_ICMPV6_CODE", BASIC, 30),
    ("OXM_OF_IPV6_ND_TARGET", BASIC, 31),
    ("OXM_OF_IPV6_ND_SLL", BASIC, 32),
    ("OXM_OF_IPV6_ND_TLL", BASIC, 33),
    ("OXM_OF_MPLS_LABEL", BASIC, 34),
    ("OXM_OF_MPLS_TC", BASIC, 35),
    ("OXM_OF_MPLS_BOS", BASIC, 36),
    ("OXM_OF_TUNNEL_ID", BASIC, 38),
];

/// The numbered families: registers, xregs, xxregs.
const FAMILIES: &[(&str, u16, u8, u8)] = &[
    ("NXM_NX_REG", NXM_1, 0, 16),
    ("OXM_OF_PKT_REG", PACKET_REGS, 0, 8),
    ("NXM_NX_XXREG", NXM_1, 111, 4),
];

/// The name an NXM or OXM class and number stand for.
fn name_of(class: u16, number: u8) -> Option<String> {
    if let Some((n, ..)) = HEADERS.iter().find(|(_, c, f)| *c == class && *f == number) {
        return Some(n.to_string());
    }
    FAMILIES
        .iter()
        .find(|(_, c, first, count)| *c == class && (*first..first + count).contains(&number))
        .map(|(prefix, _, first, _)| format!("{prefix}{}", number - first))
}

/// The class and number of a name.
fn wire_of(name: &str) -> Option<(u16, u8)> {
    if let Some(&(_, c, f)) = HEADERS.iter().find(|(n, _, _)| *n == name) {
        return Some((c, f));
    }
    FAMILIES.iter().find_map(|(prefix, c, first, count)| {
        let i: u8 = name.strip_prefix(prefix)?.parse().ok()?;
        (i < *count).then_some((*c, first + i))
    })
}

/// Bits `ofs..ofs+n_bits` of the field an NXM header names; `None` for a
/// field odpx does not have, a masked header, or bits beyond the field.
pub fn subfield(header: u32, ofs: u16, n_bits: u16) -> Option<Subfield> {
    if header & 0x100 != 0 {
        return None;
    }
    let name = name_of((header >> 16) as u16, ((header >> 9) & 0x7f) as u8)?;
    Subfield::named(&name, u32::from(ofs), u32::from(n_bits))
}

/// The NXM header of the field `sf` is part of (`None` when the field
/// has no NXM or OXM name).
pub fn header(sf: &Subfield) -> Option<u32> {
    let (name, width) = sf.nxm_name();
    let (class, number) = wire_of(&name)?;
    Some((u32::from(class) << 16) | (u32::from(number) << 9) | width.div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::field::Field;

    #[test]
    fn headers_name_the_fields_ovs_names() {
        for (h, field, bits) in [
            (0x0001_0004, Field::Reg(0), 32),
            (0x0001_1e04, Field::Reg(15), 32),
            (0x0000_0002, Field::InPort, 16),
            (0x0000_0406, Field::DlSrc, 48),
            (0x0000_0802, Field::VlanTci, 16),
            (0x8000_0408, Field::Metadata, 64),
            (0x8001_0208, Field::Xreg(1), 64),
            (0x0001_de10, Field::Xxreg(0), 128),
        ] {
            let sf = subfield(h, 0, bits).unwrap_or_else(|| panic!("{h:#x}"));
            assert_eq!((sf.field, sf.n_bits as u16), (field, bits), "{h:#x}");
            assert_eq!(header(&sf), Some(h), "{h:#x}");
        }
        assert_eq!(subfield(0x0001_0004, 16, 17), None, "past the register");
        assert_eq!(subfield(0x0001_0108, 0, 32), None, "masked");
        assert_eq!(subfield(0x0001_3401, 0, 2), None, "NXM_NX_IP_FRAG: not odpx's");
    }
}
