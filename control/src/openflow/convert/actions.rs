//! OpenFlow actions and instructions to odpx's rule actions and back.
//!
//! A rule's action list holds its instructions in Open vSwitch's order
//! (see [`RuleAction`]): the applied actions, then `clear_actions`,
//! `write_actions(...)`, `write_metadata`, `goto_table`. What odpx cannot
//! carry out is refused with the error a controller expects: an action
//! type it does not run `OFPBAC_BAD_TYPE`, a port it has no meaning for
//! `OFPBAC_BAD_OUT_PORT`, a group that does not exist
//! `OFPBAC_BAD_OUT_GROUP` (the group table says), a field a set cannot write
//! `OFPBAC_BAD_SET_TYPE`, a set of a field the match does not pin the
//! protocol of `OFPBAC_MATCH_INCONSISTENT`, a goto backwards
//! `OFPBIC_BAD_TABLE_ID`, a meter `OFPBIC_UNSUP_INST`.

use super::matches::key_field;
use crate::core::rules::N_TABLES;
use crate::openflow::codec::action::{port, Action};
use crate::openflow::codec::error::{BadAction, BadInstruction, MeterModFailed, OfError};
use crate::openflow::codec::instruction::Instruction;
use crate::openflow::codec::nicira::{NxAction, IN_PORT_16, NICIRA};
use crate::openflow::codec::oxm::{Oxm, OxmField};
use odpx_classifier::key::Match;
use odpx_classifier::rules::field::Field;
use odpx_classifier::rules::group::MAX_GROUP_ID;
use odpx_classifier::rules::meter::{meter_named, MAX_METER_ID};
use odpx_classifier::rules::ofctl::check_actions_prereqs;
use odpx_classifier::rules::subfield::ones;
use odpx_classifier::rules::RuleAction;

fn bad_action(c: BadAction) -> OfError {
    OfError::BadAction(c)
}

/// Where a packet-out's actions may send it beyond a rule's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// In a flow entry of table `n`.
    Table(u8),
    /// In a PACKET_OUT (output:TABLE allowed, handled by the caller).
    PacketOut,
}

/// One OpenFlow action as a rule action (`None`: output:TABLE in a
/// packet-out, which the caller runs through the pipeline).
pub fn action_from(a: &Action, ctx: Context) -> Result<Option<RuleAction>, OfError> {
    Ok(Some(match a {
        Action::Output { port: p, max_len } => match *p {
            p if p > 0 && p <= port::MAX => RuleAction::Output {
                port: p,
                max_len: *max_len,
            },
            port::IN_PORT => RuleAction::InPort,
            port::NORMAL => RuleAction::Normal,
            port::FLOOD => RuleAction::Flood,
            port::ALL => RuleAction::All,
            port::CONTROLLER => RuleAction::Controller { max_len: *max_len },
            port::TABLE if ctx == Context::PacketOut => return Ok(None),
            _ => return Err(bad_action(BadAction::BadOutPort)),
        },
        Action::PushVlan(t) if *t == 0x8100 || *t == 0x88a8 => RuleAction::PushVlan(*t),
        Action::PushVlan(_) => return Err(bad_action(BadAction::BadArgument)),
        Action::PopVlan => RuleAction::PopVlan,
        Action::DecNwTtl => RuleAction::DecTtl,
        Action::PushMpls(t) if matches!(*t, 0x8847 | 0x8848) => RuleAction::PushMpls(*t),
        Action::PushMpls(_) => return Err(bad_action(BadAction::BadArgument)),
        Action::PopMpls(t) => RuleAction::PopMpls(*t),
        Action::SetMplsTtl(t) => RuleAction::SetMplsTtl(*t),
        Action::DecMplsTtl => RuleAction::DecMplsTtl,
        Action::SetNwTtl(t) => RuleAction::SetField {
            field: Field::NwTtl,
            value: u128::from(*t),
            mask: 0xff,
        },
        Action::SetField(oxm) => set_field_from(oxm)?,
        // Whether the group exists is the group table's to say.
        Action::Group(g) if *g <= MAX_GROUP_ID => RuleAction::Group(*g),
        Action::Group(_) => return Err(bad_action(BadAction::BadOutGroup)),
        Action::Experimenter {
            experimenter: NICIRA,
            data,
        } => nicira_from(&NxAction::decode(data)?)?,
        Action::Experimenter { .. } => return Err(bad_action(BadAction::BadExperimenter)),
        _ => return Err(bad_action(BadAction::BadType)),
    }))
}

/// A Nicira action as a rule action: fields odpx does not have, bits
/// beyond a field, a value wider than its bits or widths that differ are
/// `OFPBAC_BAD_ARGUMENT`.
fn nicira_from(a: &NxAction) -> Result<RuleAction, OfError> {
    let bad = || bad_action(BadAction::BadArgument);
    let sub = |h: u32, ofs: u16, n: u16| super::nxm::subfield(h, ofs, n).ok_or_else(bad);
    Ok(match *a {
        NxAction::Resubmit { in_port, table } => RuleAction::Resubmit {
            in_port: (in_port != IN_PORT_16).then_some(u32::from(in_port)),
            table: (table != 255).then_some(table),
        },
        NxAction::RegLoad {
            ofs,
            n_bits,
            dst,
            value,
        } => {
            let dst = sub(dst, ofs, n_bits)?;
            if u128::from(value) & !ones(u32::from(n_bits)) != 0 {
                return Err(bad());
            }
            RuleAction::Load {
                dst,
                value: u128::from(value),
            }
        }
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => RuleAction::Move {
            src: sub(src, src_ofs, n_bits)?,
            dst: sub(dst, dst_ofs, n_bits)?,
        },
        NxAction::OutputReg {
            ofs,
            n_bits,
            src,
            max_len,
        } => match sub(src, ofs, n_bits)? {
            src if src.n_bits <= 32 => RuleAction::OutputReg { src, max_len },
            _ => return Err(bad()),
        },
        NxAction::Learn(ref l) => RuleAction::Learn(Box::new(super::learn::learn_from(l).ok_or_else(bad)?)),
    })
}

/// A rule action as a Nicira action, if its fields have NXM names.
fn nicira_to(a: &RuleAction) -> Option<NxAction> {
    use super::nxm::header;
    Some(match a {
        RuleAction::Resubmit { in_port, table } => NxAction::Resubmit {
            in_port: in_port.map_or(IN_PORT_16, |p| p as u16),
            table: table.unwrap_or(255),
        },
        RuleAction::Load { dst, value } => NxAction::RegLoad {
            ofs: dst.ofs.into(),
            n_bits: dst.n_bits.into(),
            dst: header(dst)?,
            value: u64::try_from(*value).ok()?,
        },
        RuleAction::Move { src, dst } => NxAction::RegMove {
            n_bits: src.n_bits.into(),
            src_ofs: src.ofs.into(),
            dst_ofs: dst.ofs.into(),
            src: header(src)?,
            dst: header(dst)?,
        },
        RuleAction::OutputReg { src, max_len } => NxAction::OutputReg {
            ofs: src.ofs.into(),
            n_bits: src.n_bits.into(),
            src: header(src)?,
            max_len: *max_len,
        },
        RuleAction::Learn(l) => NxAction::Learn(super::learn::learn_to(l)?),
        _ => return None,
    })
}

/// A `set_field` as a rule action: the key field the OXM field lies in.
fn set_field_from(o: &Oxm) -> Result<RuleAction, OfError> {
    let settable = !matches!(
        o.field,
        OxmField::InPort | OxmField::InPhyPort | OxmField::EthType | OxmField::IpProto
    );
    if o.field == OxmField::VlanVid {
        // The VID bits; a set makes a tag present (pushing one if none).
        return Ok(RuleAction::SetField {
            field: Field::DlVlan,
            value: o.value & 0xfff,
            mask: 0xfff,
        });
    }
    let Some((field, shift)) = key_field(o.field).filter(|_| settable) else {
        return Err(bad_action(BadAction::BadSetType));
    };
    Ok(RuleAction::SetField {
        field,
        value: o.value << shift,
        mask: field.full_mask(),
    })
}

/// A flow entry's instructions as its rule actions, checked against its
/// match and table.
pub fn instructions_from(insts: &[Instruction], matched: &Match, table: u8) -> Result<Vec<RuleAction>, OfError> {
    let bad_inst = |c| Err(OfError::BadInstruction(c));
    let mut kinds: Vec<u16> = insts.iter().map(Instruction::kind).collect();
    kinds.sort_unstable();
    if kinds.windows(2).any(|w| w[0] == w[1]) {
        return bad_inst(BadInstruction::UnsupInst);
    }
    let ctx = Context::Table(table);
    let list = |v: &[Action]| -> Result<Vec<RuleAction>, OfError> {
        v.iter().filter_map(|a| action_from(a, ctx).transpose()).collect()
    };
    // The order of a rule's actions, whatever the order on the wire.
    let mut out = Vec::new();
    let find = |k: u16| insts.iter().find(|i| i.kind() == k);
    if let Some(Instruction::Meter(id)) = find(6) {
        if *id == 0 || *id > MAX_METER_ID {
            return Err(OfError::MeterModFailed(MeterModFailed::InvalidMeter));
        }
        out.push(RuleAction::Meter(*id));
    }
    if let Some(Instruction::Experimenter { .. }) = find(0xffff) {
        return bad_inst(BadInstruction::BadExperimenter);
    }
    if let Some(Instruction::ApplyActions(v)) = find(4) {
        out.extend(list(v)?);
    }
    if find(5).is_some() {
        out.push(RuleAction::ClearActions);
    }
    if let Some(Instruction::WriteActions(v)) = find(3) {
        out.push(RuleAction::WriteActions(list(v)?));
    }
    if let Some(Instruction::WriteMetadata { metadata, mask }) = find(2) {
        out.push(RuleAction::WriteMetadata {
            value: *metadata & *mask,
            mask: *mask,
        });
    }
    if let Some(Instruction::GotoTable(t)) = find(1) {
        if *t <= table || *t >= N_TABLES {
            return bad_inst(BadInstruction::BadTableId);
        }
        out.push(RuleAction::GotoTable(*t));
    }
    if check_actions_prereqs(&out, matched).is_err() {
        return Err(bad_action(BadAction::MatchInconsistent));
    }
    Ok(out)
}

/// Which OpenFlow field a set of a shared key field was: odpx's key has
/// one transport port for TCP, UDP and SCTP, one ICMP type for ICMP and
/// ICMPv6, one pair of IPv4 addresses for IPv4 and ARP; the rule's match
/// says which protocol it is (as the set's prerequisites required).
#[derive(Clone, Copy, Debug, Default)]
pub struct Flavor {
    eth_type: u16,
    ip_proto: u8,
}

impl Flavor {
    /// The protocols `m` fixes.
    pub fn of(m: &Match) -> Flavor {
        Flavor {
            eth_type: if m.mask.eth_type == 0xffff { m.key.eth_type } else { 0 },
            ip_proto: if m.mask.ip_proto == 0xff { m.key.ip_proto } else { 0 },
        }
    }
}

/// A rule action as OpenFlow actions.
pub fn action_to(a: &RuleAction, flavor: Flavor) -> Vec<Action> {
    let out = |p: u32| Action::Output { port: p, max_len: 0 };
    vec![match a {
        RuleAction::Output { port, max_len } => Action::Output {
            port: *port,
            max_len: *max_len,
        },
        RuleAction::InPort => out(port::IN_PORT),
        RuleAction::Normal => out(port::NORMAL),
        RuleAction::Flood => out(port::FLOOD),
        RuleAction::All => out(port::ALL),
        RuleAction::Controller { max_len } => Action::Output {
            port: port::CONTROLLER,
            max_len: *max_len,
        },
        RuleAction::SetField { field, value, .. } => return set_field_to(*field, *value, flavor),
        RuleAction::PushVlan(t) => Action::PushVlan(*t),
        RuleAction::PopVlan => Action::PopVlan,
        RuleAction::ModVlanVid(v) => Action::SetField(Oxm::exact(OxmField::VlanVid, u128::from(*v | 0x1000))),
        RuleAction::ModVlanPcp(p) => Action::SetField(Oxm::exact(OxmField::VlanPcp, u128::from(*p))),
        RuleAction::DecTtl => Action::DecNwTtl,
        RuleAction::PushMpls(t) => Action::PushMpls(*t),
        RuleAction::PopMpls(t) => Action::PopMpls(*t),
        RuleAction::SetMplsTtl(t) => Action::SetMplsTtl(*t),
        RuleAction::DecMplsTtl => Action::DecMplsTtl,
        RuleAction::Resubmit { .. }
        | RuleAction::Load { .. }
        | RuleAction::Move { .. }
        | RuleAction::OutputReg { .. }
        | RuleAction::Learn(_) => match nicira_to(a) {
            Some(nx) => Action::Experimenter {
                experimenter: NICIRA,
                data: nx.encode(),
            },
            None => return Vec::new(),
        },
        RuleAction::Group(g) => Action::Group(*g),
        RuleAction::ClearActions
        | RuleAction::WriteActions(_)
        | RuleAction::WriteMetadata { .. }
        | RuleAction::GotoTable(_)
        | RuleAction::Meter(_) => return Vec::new(),
    }]
}

/// A set of a key field as the OpenFlow `set_field` it stands for.
fn set_field_to(f: Field, v: u128, flavor: Flavor) -> Vec<Action> {
    const ARP: u16 = 0x0806;
    const IPV6: u16 = 0x86dd;
    let of = match (f, flavor.eth_type, flavor.ip_proto) {
        (Field::TpSrc, _, 17) => OxmField::UdpSrc,
        (Field::TpDst, _, 17) => OxmField::UdpDst,
        (Field::TpSrc, _, 132) => OxmField::SctpSrc,
        (Field::TpDst, _, 132) => OxmField::SctpDst,
        (Field::IcmpType, IPV6, _) => OxmField::Icmpv6Type,
        (Field::IcmpCode, IPV6, _) => OxmField::Icmpv6Code,
        (Field::NwSrc, ARP, _) => OxmField::ArpSpa,
        (Field::NwDst, ARP, _) => OxmField::ArpTpa,
        (Field::NdSll, ..) => OxmField::Ipv6NdSll,
        (Field::NdTll, ..) => OxmField::Ipv6NdTll,
        (f, ..) => match f {
            Field::Metadata => OxmField::Metadata,
            Field::Reg(n) => match OxmField::reg(n) {
                Some(r) => r,
                None => return Vec::new(),
            },
            Field::DlDst => OxmField::EthDst,
            Field::DlSrc => OxmField::EthSrc,
            Field::DlVlan => return vec![Action::SetField(Oxm::exact(OxmField::VlanVid, v | 0x1000))],
            Field::DlVlanPcp => OxmField::VlanPcp,
            Field::NwTos => return vec![Action::SetField(Oxm::exact(OxmField::IpDscp, v >> 2))],
            Field::NwEcn => OxmField::IpEcn,
            Field::NwTtl => return vec![Action::SetNwTtl(v as u8)],
            Field::NwSrc => OxmField::Ipv4Src,
            Field::NwDst => OxmField::Ipv4Dst,
            Field::TpSrc => OxmField::TcpSrc,
            Field::TpDst => OxmField::TcpDst,
            Field::IcmpType => OxmField::Icmpv4Type,
            Field::IcmpCode => OxmField::Icmpv4Code,
            Field::ArpOp => OxmField::ArpOp,
            Field::ArpSha => OxmField::ArpSha,
            Field::ArpTha => OxmField::ArpTha,
            Field::Ipv6Src => OxmField::Ipv6Src,
            Field::Ipv6Dst => OxmField::Ipv6Dst,
            Field::Ipv6Label => OxmField::Ipv6Flabel,
            Field::NdTarget => OxmField::Ipv6NdTarget,
            Field::MplsLabel => OxmField::MplsLabel,
            Field::MplsTc => OxmField::MplsTc,
            Field::MplsBos => OxmField::MplsBos,
            Field::TunId => OxmField::TunnelId,
            // Fields OpenFlow 1.3 cannot set (odpx rule files can).
            _ => return Vec::new(),
        },
    };
    vec![Action::SetField(Oxm::exact(of, v & of.max_value()))]
}

/// A rule's actions as OpenFlow instructions (`matched`: the rule's).
pub fn instructions_to(actions: &[RuleAction], matched: &Match) -> Vec<Instruction> {
    let flavor = Flavor::of(matched);
    let to = |a: &RuleAction| action_to(a, flavor);
    let applied: Vec<Action> = actions.iter().flat_map(to).collect();
    let mut out = Vec::new();
    if let Some(id) = meter_named(actions) {
        out.push(Instruction::Meter(id));
    }
    if !applied.is_empty() {
        out.push(Instruction::ApplyActions(applied));
    }
    for a in actions {
        match a {
            RuleAction::ClearActions => out.push(Instruction::ClearActions),
            RuleAction::WriteActions(v) => out.push(Instruction::WriteActions(v.iter().flat_map(to).collect())),
            RuleAction::WriteMetadata { value, mask } => out.push(Instruction::WriteMetadata {
                metadata: *value,
                mask: *mask,
            }),
            RuleAction::GotoTable(t) => out.push(Instruction::GotoTable(*t)),
            _ => {}
        }
    }
    out
}
