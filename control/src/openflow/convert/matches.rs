//! OXM match fields to odpx's [`Match`] and back.
//!
//! Each OpenFlow field maps onto a field of the flow key, some with a
//! change of scale: `vlan_vid` is the VLAN TCI's low 13 bits (its
//! "present" bit is the TCI's CFI position, as in Open vSwitch), `ip_dscp`
//! the upper six bits of the TOS byte, the TCP, UDP and SCTP ports one
//! pair of key fields told apart by `ip_proto`. A field whose
//! prerequisites the match does not pin (`tcp_dst` without `ip_proto=6`,
//! `ipv4_src` without `eth_type=0x0800`) is `OFPBMC_BAD_PREREQ`, as the
//! spec asks; fields odpx does not carry are `OFPBMC_BAD_FIELD`.

use crate::openflow::codec::error::{BadMatch, OfError};
use crate::openflow::codec::oxm::{Oxm, OxmField};
use odpx_classifier::key::{FlowKey, Match, VLAN_CFI};
use odpx_classifier::rules::field::Field;

/// The key field an OXM field writes, and the shift from OXM value to
/// key field value.
pub(super) fn key_field(f: OxmField) -> Option<(Field, u32)> {
    use OxmField as O;
    Some(match f {
        O::InPort => (Field::InPort, 0),
        O::Metadata => (Field::Metadata, 0),
        O::EthDst => (Field::DlDst, 0),
        O::EthSrc => (Field::DlSrc, 0),
        O::EthType => (Field::DlType, 0),
        O::VlanVid => (Field::VlanTci, 0),
        O::VlanPcp => (Field::DlVlanPcp, 0),
        O::IpDscp => (Field::NwTos, 2),
        O::IpEcn => (Field::NwEcn, 0),
        O::IpProto => (Field::NwProto, 0),
        O::Ipv4Src | O::ArpSpa => (Field::NwSrc, 0),
        O::Ipv4Dst | O::ArpTpa => (Field::NwDst, 0),
        O::TcpSrc | O::UdpSrc | O::SctpSrc => (Field::TpSrc, 0),
        O::TcpDst | O::UdpDst | O::SctpDst => (Field::TpDst, 0),
        O::Icmpv4Type | O::Icmpv6Type => (Field::IcmpType, 0),
        O::Icmpv4Code | O::Icmpv6Code => (Field::IcmpCode, 0),
        O::ArpOp => (Field::ArpOp, 0),
        O::ArpSha => (Field::ArpSha, 0),
        O::ArpTha => (Field::ArpTha, 0),
        O::Ipv6Src => (Field::Ipv6Src, 0),
        O::Ipv6Dst => (Field::Ipv6Dst, 0),
        O::Ipv6Flabel => (Field::Ipv6Label, 0),
        O::Ipv6NdTarget => (Field::NdTarget, 0),
        O::Ipv6NdSll => (Field::NdSll, 0),
        O::Ipv6NdTll => (Field::NdTll, 0),
        O::MplsLabel => (Field::MplsLabel, 0),
        O::MplsTc => (Field::MplsTc, 0),
        O::MplsBos => (Field::MplsBos, 0),
        O::TunnelId => (Field::TunId, 0),
        O::InPhyPort | O::PbbIsid | O::Ipv6Exthdr => return None,
        r @ (O::Reg0
        | O::Reg1
        | O::Reg2
        | O::Reg3
        | O::Reg4
        | O::Reg5
        | O::Reg6
        | O::Reg7
        | O::Reg8
        | O::Reg9
        | O::Reg10
        | O::Reg11
        | O::Reg12
        | O::Reg13
        | O::Reg14
        | O::Reg15) => (Field::Reg(r.class_and_number().1), 0),
    })
}

/// What a match pins exactly, for prerequisites.
struct Pinned {
    eth_type: Option<u16>,
    ip_proto: Option<u8>,
    icmpv6_type: Option<u8>,
    vlan_present: bool,
    in_port: bool,
}

impl Pinned {
    fn of(fields: &[Oxm]) -> Pinned {
        let exact = |f: OxmField| {
            fields
                .iter()
                .find(|o| o.field == f && o.mask.is_none())
                .map(|o| o.value)
        };
        let vlan = fields.iter().find(|o| o.field == OxmField::VlanVid);
        Pinned {
            eth_type: exact(OxmField::EthType).map(|v| v as u16),
            ip_proto: exact(OxmField::IpProto).map(|v| v as u8),
            icmpv6_type: exact(OxmField::Icmpv6Type).map(|v| v as u8),
            vlan_present: vlan.is_some_and(|o| o.value & 0x1000 != 0 && o.mask.is_none_or(|m| m & 0x1000 != 0)),
            in_port: exact(OxmField::InPort).is_some(),
        }
    }

    /// Whether `f`'s prerequisites hold (OpenFlow 1.3, table 12).
    fn allows(&self, f: OxmField) -> bool {
        use OxmField as O;
        let ip = matches!(self.eth_type, Some(0x0800 | 0x86dd));
        let v4 = self.eth_type == Some(0x0800);
        let v6 = self.eth_type == Some(0x86dd);
        let proto = |p: u8| ip && self.ip_proto == Some(p);
        match f {
            O::InPhyPort => self.in_port,
            O::VlanPcp => self.vlan_present,
            O::IpDscp | O::IpEcn | O::IpProto => ip,
            O::Ipv4Src | O::Ipv4Dst => v4,
            O::TcpSrc | O::TcpDst => proto(6),
            O::UdpSrc | O::UdpDst => proto(17),
            O::SctpSrc | O::SctpDst => proto(132),
            O::Icmpv4Type | O::Icmpv4Code => v4 && self.ip_proto == Some(1),
            O::ArpOp | O::ArpSpa | O::ArpTpa | O::ArpSha | O::ArpTha => self.eth_type == Some(0x0806),
            O::Ipv6Src | O::Ipv6Dst | O::Ipv6Flabel | O::Ipv6Exthdr => v6,
            O::Icmpv6Type | O::Icmpv6Code => v6 && self.ip_proto == Some(58),
            O::Ipv6NdTarget => v6 && self.ip_proto == Some(58) && matches!(self.icmpv6_type, Some(135 | 136)),
            O::Ipv6NdSll => v6 && self.ip_proto == Some(58) && self.icmpv6_type == Some(135),
            O::Ipv6NdTll => v6 && self.ip_proto == Some(58) && self.icmpv6_type == Some(136),
            O::MplsLabel | O::MplsTc | O::MplsBos => matches!(self.eth_type, Some(0x8847 | 0x8848)),
            O::PbbIsid => self.eth_type == Some(0x88e7),
            _ => true,
        }
    }
}

/// The match an OXM list describes.
pub fn to_match(fields: &[Oxm]) -> Result<Match, OfError> {
    let bad = |c| Err(OfError::BadMatch(c));
    let pinned = Pinned::of(fields);
    let (mut key, mut mask) = (FlowKey::ZERO, FlowKey::ZERO);
    for o in fields {
        if !pinned.allows(o.field) {
            return bad(BadMatch::BadPrereq);
        }
        if o.field == OxmField::InPhyPort {
            continue; // Physical and logical ports are the same here.
        }
        let Some((f, shift)) = key_field(o.field) else {
            return bad(BadMatch::BadField);
        };
        // Exact is every bit of the key field (as odpx's own rule text
        // pins it: icmp_type pins all of tp_src), but for vlan_vid, which
        // is the VID and tag bits of the TCI only.
        let exact = if o.field == OxmField::VlanVid {
            0x1fff
        } else {
            f.full_mask()
        };
        let (v, m) = (o.value << shift, o.mask.map_or(exact, |m| m << shift));
        f.put(&mut key, v, u128::MAX);
        f.put(&mut mask, m, u128::MAX);
        if o.field == OxmField::VlanPcp {
            // A PCP is a tag's: the tag must be there.
            key.vlan_tci |= VLAN_CFI;
            mask.vlan_tci |= VLAN_CFI;
        }
    }
    Ok(Match::new(key, mask))
}

/// The OXM list of a match: the fields OpenFlow can say, in the order of
/// their numbers (what odpx's own rules pin beyond them, such as packet
/// marks or tunnel endpoints, OpenFlow 1.3 has no field for).
pub fn from_match(m: &Match) -> Vec<Oxm> {
    let (k, mk) = (&m.key, &m.mask);
    let exact = |f: Field| (f.get(mk) == f.full_mask()).then(|| f.get(k));
    let eth_type = exact(Field::DlType).map(|v| v as u16);
    let ip_proto = exact(Field::NwProto).map(|v| v as u8);
    let arp = eth_type == Some(0x0806);
    let v6 = eth_type == Some(0x86dd);
    let mut out = Vec::new();
    for &of in OxmField::ALL {
        let wanted = match of {
            OxmField::Ipv4Src | OxmField::Ipv4Dst => !arp,
            OxmField::ArpSpa | OxmField::ArpTpa => arp,
            OxmField::TcpSrc | OxmField::TcpDst => ip_proto == Some(6),
            OxmField::UdpSrc | OxmField::UdpDst => ip_proto == Some(17),
            OxmField::SctpSrc | OxmField::SctpDst => ip_proto == Some(132),
            OxmField::Icmpv4Type | OxmField::Icmpv4Code => ip_proto == Some(1) && !v6,
            OxmField::Icmpv6Type | OxmField::Icmpv6Code => ip_proto == Some(58) && v6,
            OxmField::ArpSha | OxmField::ArpTha => arp,
            OxmField::Ipv6NdSll | OxmField::Ipv6NdTll => v6,
            OxmField::VlanPcp | OxmField::VlanVid => false, // below
            _ => true,
        };
        let Some((f, shift)) = key_field(of).filter(|_| wanted) else {
            if of == OxmField::VlanVid {
                out.extend(vlan_fields(k.vlan_tci, mk.vlan_tci));
            }
            continue;
        };
        let (v, fm) = (f.get(k) >> shift, f.get(mk) >> shift);
        if fm == 0 {
            continue;
        }
        let full = of.max_value();
        out.push(if fm & full == full {
            Oxm::exact(of, v & full)
        } else {
            Oxm::masked(of, v & fm & full, fm & full)
        });
    }
    out
}

/// `vlan_vid` and `vlan_pcp` for a VLAN TCI match.
fn vlan_fields(tci: u16, mask: u16) -> Vec<Oxm> {
    let mut out = Vec::new();
    let vid_mask = mask & 0x1fff;
    if vid_mask != 0 {
        let v = u128::from(tci & vid_mask);
        out.push(if vid_mask == 0x1fff {
            Oxm::exact(OxmField::VlanVid, v)
        } else {
            Oxm::masked(OxmField::VlanVid, v, u128::from(vid_mask))
        });
    }
    if mask & 0xe000 == 0xe000 {
        out.push(Oxm::exact(OxmField::VlanPcp, u128::from(tci >> 13)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl::{format_match, parse_rule};

    fn round_trip(ofctl: &str) -> String {
        let m = parse_rule(&format!("{ofctl},actions=drop")).unwrap().matched;
        let oxms = from_match(&m);
        let back = to_match(&oxms).unwrap_or_else(|e| panic!("{ofctl}: {e} from {oxms:?}"));
        assert_eq!(back, m, "{ofctl} -> {oxms:?}");
        format_match(&back)
    }

    #[test]
    fn matches_go_to_oxm_and_back() {
        for m in [
            "in_port=1,dl_vlan=100",
            "tcp,nw_src=10.0.0.0/8,tp_dst=80",
            "udp6,ipv6_dst=2001:db8::/32,tp_src=53",
            "arp,arp_spa=10.0.0.1,arp_op=1",
            "icmp,icmp_type=8,icmp_code=0",
            "icmp6,icmp_type=135,icmp_code=0,nd_target=2001:db8::1",
            "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
            "metadata=0x5/0xff,in_port=2",
            "ip,nw_tos=32,nw_ecn=1",
            "tun_id=0x2a",
            "dl_vlan_pcp=5",
            "vlan_tci=0x0000/0x1fff",
        ] {
            round_trip(m);
        }
    }

    #[test]
    fn prerequisites_and_unknown_fields_are_refused() {
        let err = |f: &[Oxm]| to_match(f).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            err(&[Oxm::exact(OxmField::TcpDst, 80)]),
            Err("OFPBMC_BAD_PREREQ".into())
        );
        assert_eq!(
            err(&[
                Oxm::exact(OxmField::EthType, 0x0800),
                Oxm::exact(OxmField::IpProto, 17),
                Oxm::exact(OxmField::TcpDst, 80)
            ]),
            Err("OFPBMC_BAD_PREREQ".into())
        );
        assert_eq!(
            err(&[Oxm::exact(OxmField::VlanPcp, 3)]),
            Err("OFPBMC_BAD_PREREQ".into())
        );
        assert_eq!(
            err(&[Oxm::exact(OxmField::EthType, 0x88e7), Oxm::exact(OxmField::PbbIsid, 5)]),
            Err("OFPBMC_BAD_FIELD".into())
        );
        assert!(to_match(&[
            Oxm::exact(OxmField::EthType, 0x0800),
            Oxm::exact(OxmField::IpProto, 6),
            Oxm::exact(OxmField::TcpDst, 80)
        ])
        .is_ok());
    }
}
