//! What the switch says of itself: DESC, FEATURES_REPLY, and the
//! TABLE_FEATURES of its 254 tables (what each can match, set and do).

use crate::core::rules::N_TABLES;
use crate::openflow::codec::message::{capabilities, Features};
use crate::openflow::codec::multipart::{prop, Desc, TableFeatureProp, TableFeatures};
use crate::openflow::codec::oxm::{OxmField, CLASS_BASIC};

/// DESC: who made the switch.
pub fn desc(dpid: u64) -> Desc {
    Desc {
        mfr_desc: "odpx".into(),
        hw_desc: "odpx userspace switch".into(),
        sw_desc: env!("CARGO_PKG_VERSION").into(),
        serial_num: "None".into(),
        dp_desc: format!("odpx datapath {dpid:016x}"),
    }
}

/// FEATURES_REPLY: no buffers (packet-ins carry whole packets), 254
/// tables, flow, table and port statistics.
pub fn features(dpid: u64) -> Features {
    Features {
        datapath_id: dpid,
        n_buffers: 0,
        n_tables: N_TABLES,
        auxiliary_id: 0,
        capabilities: capabilities::FLOW_STATS | capabilities::TABLE_STATS | capabilities::PORT_STATS,
    }
}

/// The fields odpx matches on (every one may be a table's match).
const MATCH_FIELDS: &[OxmField] = &[
    OxmField::InPort,
    OxmField::InPhyPort,
    OxmField::Metadata,
    OxmField::EthDst,
    OxmField::EthSrc,
    OxmField::EthType,
    OxmField::VlanVid,
    OxmField::VlanPcp,
    OxmField::IpDscp,
    OxmField::IpEcn,
    OxmField::IpProto,
    OxmField::Ipv4Src,
    OxmField::Ipv4Dst,
    OxmField::TcpSrc,
    OxmField::TcpDst,
    OxmField::UdpSrc,
    OxmField::UdpDst,
    OxmField::SctpSrc,
    OxmField::SctpDst,
    OxmField::Icmpv4Type,
    OxmField::Icmpv4Code,
    OxmField::ArpOp,
    OxmField::ArpSpa,
    OxmField::ArpTpa,
    OxmField::ArpSha,
    OxmField::ArpTha,
    OxmField::Ipv6Src,
    OxmField::Ipv6Dst,
    OxmField::Ipv6Flabel,
    OxmField::Icmpv6Type,
    OxmField::Icmpv6Code,
    OxmField::Ipv6NdTarget,
    OxmField::Ipv6NdSll,
    OxmField::Ipv6NdTll,
    OxmField::MplsLabel,
    OxmField::MplsTc,
    OxmField::MplsBos,
    OxmField::TunnelId,
];

/// Instruction types a table takes: goto, write-metadata, write, apply, clear.
const INSTRUCTIONS: &[u16] = &[1, 2, 3, 4, 5];
/// Action types: output, push/pop VLAN, set-nw-ttl, dec-nw-ttl, set-field.
const ACTIONS: &[u16] = &[0, 17, 18, 23, 24, 25];

fn oxm_header(f: OxmField, masked: bool) -> u32 {
    let len = f.bytes() * if masked { 2 } else { 1 };
    (u32::from(CLASS_BASIC) << 16) | (u32::from(f as u8) << 9) | (u32::from(masked) << 8) | len as u32
}

/// TABLE_FEATURES of every table.
pub fn table_features() -> Vec<TableFeatures> {
    let matchable: Vec<u32> = MATCH_FIELDS.iter().map(|f| oxm_header(*f, f.maskable())).collect();
    let wildcards: Vec<u32> = MATCH_FIELDS.iter().map(|f| oxm_header(*f, false)).collect();
    let settable: Vec<u32> = MATCH_FIELDS
        .iter()
        .filter(|f| {
            !matches!(
                f,
                OxmField::InPort | OxmField::InPhyPort | OxmField::EthType | OxmField::IpProto
            )
        })
        .map(|f| oxm_header(*f, false))
        .collect();
    (0..N_TABLES)
        .map(|t| {
            let next: Vec<u8> = (t + 1..N_TABLES).collect();
            let mut props = vec![
                TableFeatureProp::types(prop::INSTRUCTIONS, INSTRUCTIONS),
                TableFeatureProp::types(prop::INSTRUCTIONS_MISS, INSTRUCTIONS),
                TableFeatureProp::next_tables(prop::NEXT_TABLES, &next),
                TableFeatureProp::next_tables(prop::NEXT_TABLES_MISS, &next),
            ];
            for kind in [
                prop::WRITE_ACTIONS,
                prop::WRITE_ACTIONS_MISS,
                prop::APPLY_ACTIONS,
                prop::APPLY_ACTIONS_MISS,
            ] {
                props.push(TableFeatureProp::types(kind, ACTIONS));
            }
            props.push(TableFeatureProp::oxm_headers(prop::MATCH, &matchable));
            props.push(TableFeatureProp::oxm_headers(prop::WILDCARDS, &wildcards));
            for kind in [
                prop::WRITE_SETFIELD,
                prop::WRITE_SETFIELD_MISS,
                prop::APPLY_SETFIELD,
                prop::APPLY_SETFIELD_MISS,
            ] {
                props.push(TableFeatureProp::oxm_headers(kind, &settable));
            }
            TableFeatures {
                table_id: t,
                name: format!("table{t}"),
                metadata_match: u64::MAX,
                metadata_write: u64::MAX,
                config: 0,
                max_entries: 1_000_000,
                properties: props,
            }
        })
        .collect()
}
