//! OXM: OpenFlow 1.3's type-length-value match fields (`ofp_match`,
//! and the field of a `set_field` action).
//!
//! An [`Oxm`] is a field of the basic class (or a register, from
//! Nicira's NXM_1 class, as Open vSwitch takes them) with its value and, where
//! the field may be masked, its mask, both as unsigned integers of the
//! field's width (MAC addresses are 48-bit, IPv6 addresses 128-bit). The
//! decoder checks what the wire alone can show: the length of each TLV
//! and of the match, fields known and not repeated, masks only where a
//! mask is allowed, no value bit outside its mask, values in range.
//! Whether the fields' prerequisites are met is the rule converter's
//! business, which knows the other fields.

use super::error::{BadMatch, OfError};
use super::wire::{Reader, Writer};

/// The basic class (`OFPXMC_OPENFLOW_BASIC`).
pub const CLASS_BASIC: u16 = 0x8000;
/// The experimenter class (`OFPXMC_EXPERIMENTER`).
pub const CLASS_EXPERIMENTER: u16 = 0xffff;
/// Nicira's second NXM class (`OFPXMC_NXM_1`), which Open vSwitch also
/// accepts in OpenFlow 1.3 matches: the registers live there.
pub const CLASS_NXM_1: u16 = 0x0001;
/// [`OxmField`] numbers from here on are fields of [`CLASS_NXM_1`]
/// (number − `NXM_1_BASE`), not of the basic class.
const NXM_1_BASE: u8 = 64;

/// Defines [`OxmField`]: number, width in bytes, maskable, name.
macro_rules! fields {
    ($($variant:ident = $num:literal, $bytes:literal, $maskable:literal, $name:literal;)*) => {
        /// A field of the basic OXM class.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum OxmField { $($variant = $num),* }

        impl OxmField {
            /// Every field, by number.
            pub const ALL: &'static [OxmField] = &[$(OxmField::$variant),*];

            pub fn from_number(n: u8) -> Option<OxmField> {
                match n { $($num => Some(OxmField::$variant),)* _ => None }
            }

            /// Width of the value in bytes.
            pub fn bytes(self) -> usize {
                match self { $(OxmField::$variant => $bytes),* }
            }

            /// Whether a mask is allowed (as Open vSwitch allows them in
            /// OpenFlow 1.3: the spec's maskable fields and L4 ports).
            pub fn maskable(self) -> bool {
                match self { $(OxmField::$variant => $maskable),* }
            }

            /// The spec's name (`OXM_OF_` + this in upper case).
            pub fn name(self) -> &'static str {
                match self { $(OxmField::$variant => $name),* }
            }
        }
    };
}

fields! {
    InPort = 0, 4, false, "in_port";
    InPhyPort = 1, 4, false, "in_phy_port";
    Metadata = 2, 8, true, "metadata";
    EthDst = 3, 6, true, "eth_dst";
    EthSrc = 4, 6, true, "eth_src";
    EthType = 5, 2, false, "eth_type";
    VlanVid = 6, 2, true, "vlan_vid";
    VlanPcp = 7, 1, false, "vlan_pcp";
    IpDscp = 8, 1, false, "ip_dscp";
    IpEcn = 9, 1, false, "ip_ecn";
    IpProto = 10, 1, false, "ip_proto";
    Ipv4Src = 11, 4, true, "ipv4_src";
    Ipv4Dst = 12, 4, true, "ipv4_dst";
    TcpSrc = 13, 2, true, "tcp_src";
    TcpDst = 14, 2, true, "tcp_dst";
    UdpSrc = 15, 2, true, "udp_src";
    UdpDst = 16, 2, true, "udp_dst";
    SctpSrc = 17, 2, true, "sctp_src";
    SctpDst = 18, 2, true, "sctp_dst";
    Icmpv4Type = 19, 1, false, "icmpv4_type";
    Icmpv4Code = 20, 1, false, "icmpv4_code";
    ArpOp = 21, 2, false, "arp_op";
    ArpSpa = 22, 4, true, "arp_spa";
    ArpTpa = 23, 4, true, "arp_tpa";
    ArpSha = 24, 6, true, "arp_sha";
    ArpTha = 25, 6, true, "arp_tha";
    Ipv6Src = 26, 16, true, "ipv6_src";
    Ipv6Dst = 27, 16, true, "ipv6_dst";
    Ipv6Flabel = 28, 4, true, "ipv6_flabel";
    Icmpv6Type = 29, 1, false, "icmpv6_type";
    Icmpv6Code = 30, 1, false, "icmpv6_code";
    Ipv6NdTarget = 31, 16, true, "ipv6_nd_target";
    Ipv6NdSll = 32, 6, true, "ipv6_nd_sll";
    Ipv6NdTll = 33, 6, true, "ipv6_nd_tll";
    MplsLabel = 34, 4, false, "mpls_label";
    MplsTc = 35, 1, false, "mpls_tc";
    MplsBos = 36, 1, false, "mpls_bos";
    PbbIsid = 37, 3, true, "pbb_isid";
    TunnelId = 38, 8, true, "tunnel_id";
    Ipv6Exthdr = 39, 2, true, "ipv6_exthdr";
    Reg0 = 64, 4, true, "reg0";
    Reg1 = 65, 4, true, "reg1";
    Reg2 = 66, 4, true, "reg2";
    Reg3 = 67, 4, true, "reg3";
    Reg4 = 68, 4, true, "reg4";
    Reg5 = 69, 4, true, "reg5";
    Reg6 = 70, 4, true, "reg6";
    Reg7 = 71, 4, true, "reg7";
    Reg8 = 72, 4, true, "reg8";
    Reg9 = 73, 4, true, "reg9";
    Reg10 = 74, 4, true, "reg10";
    Reg11 = 75, 4, true, "reg11";
    Reg12 = 76, 4, true, "reg12";
    Reg13 = 77, 4, true, "reg13";
    Reg14 = 78, 4, true, "reg14";
    Reg15 = 79, 4, true, "reg15";
}

impl OxmField {
    /// The OXM class and field number on the wire.
    pub fn class_and_number(self) -> (u16, u8) {
        let n = self as u8;
        if n >= NXM_1_BASE {
            (CLASS_NXM_1, n - NXM_1_BASE)
        } else {
            (CLASS_BASIC, n)
        }
    }

    /// The field a class and number stand for, if odpx knows it.
    pub fn from_wire(class: u16, number: u8) -> Option<OxmField> {
        match class {
            CLASS_BASIC if number < NXM_1_BASE => OxmField::from_number(number),
            CLASS_NXM_1 if number < NXM_1_BASE => OxmField::from_number(number + NXM_1_BASE),
            _ => None,
        }
    }

    /// Register `n` (0-15), or `None`.
    pub fn reg(n: u8) -> Option<OxmField> {
        OxmField::from_wire(CLASS_NXM_1, n).filter(|_| n < 16)
    }

    /// The largest value the field takes (narrower than its bytes for
    /// VLAN VID, PCP, DSCP, ECN, flow label, MPLS and the IPv6 extension
    /// header flags).
    pub fn max_value(self) -> u128 {
        match self {
            OxmField::VlanVid => 0x1fff,
            OxmField::VlanPcp | OxmField::MplsTc => 7,
            OxmField::IpDscp => 0x3f,
            OxmField::IpEcn => 3,
            OxmField::Ipv6Flabel | OxmField::MplsLabel => 0xf_ffff,
            OxmField::MplsBos => 1,
            OxmField::Ipv6Exthdr => 0x1ff,
            f => u128::MAX >> (128 - 8 * f.bytes()),
        }
    }
}

/// One match field (or the field a `set_field` writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Oxm {
    pub field: OxmField,
    pub value: u128,
    /// `None`: exact; `Some(m)`: only the bits set in `m` matter.
    pub mask: Option<u128>,
}

impl Oxm {
    pub fn exact(field: OxmField, value: u128) -> Oxm {
        Oxm {
            field,
            value,
            mask: None,
        }
    }

    pub fn masked(field: OxmField, value: u128, mask: u128) -> Oxm {
        Oxm {
            field,
            value,
            mask: Some(mask),
        }
    }

    /// The TLV header: class, field, has-mask, length.
    fn header(&self) -> u32 {
        let len = self.field.bytes() * if self.mask.is_some() { 2 } else { 1 };
        let (class, number) = self.field.class_and_number();
        (u32::from(class) << 16) | (u32::from(number) << 9) | (u32::from(self.mask.is_some()) << 8) | len as u32
    }

    /// Encoded length (header, value, mask).
    pub fn wire_len(&self) -> usize {
        4 + (self.header() & 0xff) as usize
    }

    /// Appends the TLV.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.header());
        put_uint(out, self.value, self.field.bytes());
        if let Some(m) = self.mask {
            put_uint(out, m, self.field.bytes());
        }
    }

    /// Reads one TLV; its errors are the match's (`OFPBMC_*`).
    pub fn decode(r: &mut Reader) -> Result<Oxm, OfError> {
        let bad = |c| OfError::BadMatch(c);
        let header = r.u32()?;
        let class = (header >> 16) as u16;
        let has_mask = header & 0x100 != 0;
        let len = (header & 0xff) as usize;
        let Some(field) = OxmField::from_wire(class, ((header >> 9) & 0x7f) as u8) else {
            // Experimenter fields, and NXM fields but the registers.
            r.skip(len).map_err(|_| bad(BadMatch::BadLen))?;
            return Err(bad(BadMatch::BadField));
        };
        let width = field.bytes();
        if len != width * if has_mask { 2 } else { 1 } {
            return Err(bad(BadMatch::BadLen));
        }
        let value = get_uint(r.bytes(width)?);
        let mask = if has_mask {
            Some(get_uint(r.bytes(width)?))
        } else {
            None
        };
        if mask.is_some() && !field.maskable() {
            return Err(bad(BadMatch::BadMask));
        }
        if let Some(m) = mask {
            if value & !m != 0 {
                return Err(bad(BadMatch::BadWildcards));
            }
        }
        if value > field.max_value() || mask.is_some_and(|m| m > field.max_value()) {
            return Err(bad(BadMatch::BadValue));
        }
        Ok(Oxm { field, value, mask })
    }
}

/// Big-endian unsigned integer of `bytes` bytes.
fn get_uint(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

fn put_uint(out: &mut Vec<u8>, v: u128, bytes: usize) {
    out.extend_from_slice(&v.to_be_bytes()[16 - bytes..]);
}

/// Reads an `ofp_match` (type OXM, length, fields, padding to 8 bytes).
pub fn decode_match(r: &mut Reader) -> Result<Vec<Oxm>, OfError> {
    let bad = |c| OfError::BadMatch(c);
    let kind = r.u16()?;
    let len = r.u16()? as usize;
    if kind != 1 {
        return Err(bad(BadMatch::BadType));
    }
    if len < 4 {
        return Err(bad(BadMatch::BadLen));
    }
    let mut fields = r.sub(len - 4, bad(BadMatch::BadLen))?;
    r.skip(len.next_multiple_of(8) - len)
        .map_err(|_| bad(BadMatch::BadLen))?;
    let mut out: Vec<Oxm> = Vec::new();
    while !fields.is_empty() {
        let oxm = Oxm::decode(&mut fields)?;
        if out.iter().any(|o| o.field == oxm.field) {
            return Err(bad(BadMatch::DupField));
        }
        out.push(oxm);
    }
    Ok(out)
}

/// Appends an `ofp_match` with `fields`, padded to 8 bytes.
pub fn encode_match(out: &mut Vec<u8>, fields: &[Oxm]) {
    let start = out.len();
    out.put_u16(1);
    out.put_u16(0);
    for f in fields {
        f.encode(out);
    }
    let len = out.len() - start;
    out.patch_u16(start + 2, len);
    out.pad8_from(start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(hex: &str) -> Result<Vec<Oxm>, OfError> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut r = Reader::new(&bytes, OfError::BadMatch(BadMatch::BadLen));
        let m = decode_match(&mut r)?;
        assert!(r.is_empty());
        let mut again = Vec::new();
        encode_match(&mut again, &m);
        assert_eq!(again, bytes, "re-encoded");
        Ok(m)
    }

    #[test]
    fn ovs_ofctls_match_decodes_and_encodes_back() {
        // From ovs-ofctl add-flow "dl_vlan=100,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00":
        // type 1, length 26; eth_dst masked (0x8000070c); vlan_vid=0x1064; 6 bytes of padding.
        let m = decode("0001001a8000070c01000000000001000000000080000c021064000000000000").unwrap();
        assert_eq!(
            m,
            vec![
                Oxm::masked(OxmField::EthDst, 0x0100_0000_0000, 0x0100_0000_0000),
                Oxm::exact(OxmField::VlanVid, 0x1064),
            ]
        );
        // reg0=0x5/0xff,reg15=1: NXM_NX_REG0 masked (header 0x00010108),
        // NXM_NX_REG15 (0x00011e04); 24 bytes, no padding.
        let m = decode("000100180001010800000005000000ff00011e0400000001").unwrap();
        assert_eq!(
            m,
            vec![Oxm::masked(OxmField::Reg0, 5, 0xff), Oxm::exact(OxmField::Reg15, 1),]
        );
        // The empty match: type 1, length 4, 4 bytes of padding.
        assert_eq!(decode("0001000400000000").unwrap(), vec![]);
    }

    #[test]
    fn malformed_matches_name_their_fault() {
        let err = |c| Err(OfError::BadMatch(c));
        // Standard (OF 1.1) match type.
        assert_eq!(decode("0000000400000000"), err(BadMatch::BadType));
        // Length beyond the message.
        assert_eq!(decode("0001001080000004"), err(BadMatch::BadLen));
        // in_port with a TLV length of 2.
        assert_eq!(decode("0001000a800000020001000000000000"), err(BadMatch::BadLen));
        // in_port twice.
        assert_eq!(
            decode("000100148000000400000001800000040000000200000000"),
            err(BadMatch::DupField)
        );
        // eth_type with a mask.
        assert_eq!(decode("0001000c80000b04080000ff00000000"), err(BadMatch::BadMask));
        // ipv4_src 10.0.0.1/255.0.0.0: a value bit outside the mask.
        assert_eq!(decode("00010010800017080a000001ff000000"), err(BadMatch::BadWildcards));
        // vlan_pcp 9.
        assert_eq!(decode("0001000980000e010900000000000000"), err(BadMatch::BadValue));
        // An unknown basic field (number 60), an NXM_1 field that is not a
        // register (tun_id, 16), and an experimenter field.
        assert_eq!(decode("0001000880007800"), err(BadMatch::BadField));
        assert_eq!(decode("0001001000012008000000000000000a"), err(BadMatch::BadField));
        assert_eq!(decode("0001000cffff54044f4e460000000000"), err(BadMatch::BadField));
    }
}
