//! Multipart requests and replies (OpenFlow 1.3's statistics and
//! descriptions): the body after the `ofp_multipart_*` header.
//!
//! A reply body is a list of items; [`MultipartReply::items`] encodes
//! them one by one so that the message layer can spread a long reply
//! over several messages (each under 64 KiB, all but the last flagged
//! "more").

use super::error::{BadRequest, OfError};
use super::flow::{FlowStats, FlowStatsRequest};
use super::group::{GroupDesc, GroupFeatures, GroupStats};
use super::meter::{MeterConfig, MeterFeatures, MeterStats};
use super::port::{PortDesc, PortStats};
use super::wire::{Reader, Writer};

/// `ofp_multipart_type`.
pub mod kind {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// A multipart request's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartRequest {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    Queue {
        port_no: u32,
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    Meter {
        meter_id: u32,
    },
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
    /// Empty: read the tables' features; else a request to set them.
    TableFeatures(Vec<TableFeatures>),
    PortDesc,
    Experimenter {
        experimenter: u32,
        exp_type: u32,
        data: Vec<u8>,
    },
}

impl MultipartRequest {
    pub fn kind(&self) -> u16 {
        use MultipartRequest::*;
        match self {
            Desc => kind::DESC,
            Flow(_) => kind::FLOW,
            Aggregate(_) => kind::AGGREGATE,
            Table => kind::TABLE,
            PortStats { .. } => kind::PORT_STATS,
            Queue { .. } => kind::QUEUE,
            Group { .. } => kind::GROUP,
            GroupDesc => kind::GROUP_DESC,
            GroupFeatures => kind::GROUP_FEATURES,
            Meter { .. } => kind::METER,
            MeterConfig { .. } => kind::METER_CONFIG,
            MeterFeatures => kind::METER_FEATURES,
            TableFeatures(_) => kind::TABLE_FEATURES,
            PortDesc => kind::PORT_DESC,
            Experimenter { .. } => kind::EXPERIMENTER,
        }
    }

    /// Reads the body of a request of type `kind`.
    pub fn decode(kind: u16, r: &mut Reader) -> Result<MultipartRequest, OfError> {
        use MultipartRequest as M;
        let id_and_pad = |r: &mut Reader| -> Result<u32, OfError> {
            let v = r.u32()?;
            r.skip(4)?;
            Ok(v)
        };
        let req = match kind {
            kind::DESC => M::Desc,
            kind::FLOW => M::Flow(FlowStatsRequest::decode(r)?),
            kind::AGGREGATE => M::Aggregate(FlowStatsRequest::decode(r)?),
            kind::TABLE => M::Table,
            kind::PORT_STATS => M::PortStats {
                port_no: id_and_pad(r)?,
            },
            kind::QUEUE => M::Queue {
                port_no: r.u32()?,
                queue_id: r.u32()?,
            },
            kind::GROUP => M::Group {
                group_id: id_and_pad(r)?,
            },
            kind::GROUP_DESC => M::GroupDesc,
            kind::GROUP_FEATURES => M::GroupFeatures,
            kind::METER => M::Meter {
                meter_id: id_and_pad(r)?,
            },
            kind::METER_CONFIG => M::MeterConfig {
                meter_id: id_and_pad(r)?,
            },
            kind::METER_FEATURES => M::MeterFeatures,
            kind::TABLE_FEATURES => {
                let mut tables = Vec::new();
                while !r.is_empty() {
                    tables.push(TableFeatures::decode(r)?);
                }
                M::TableFeatures(tables)
            }
            kind::PORT_DESC => M::PortDesc,
            kind::EXPERIMENTER => M::Experimenter {
                experimenter: r.u32()?,
                exp_type: r.u32()?,
                data: r.rest().to_vec(),
            },
            _ => return Err(OfError::BadRequest(BadRequest::BadMultipart)),
        };
        if !r.is_empty() {
            return Err(OfError::BadRequest(BadRequest::BadLen));
        }
        Ok(req)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        use MultipartRequest as M;
        let id_and_pad = |out: &mut Vec<u8>, v: u32| {
            out.put_u32(v);
            out.put_zeros(4);
        };
        match self {
            M::Desc | M::Table | M::GroupDesc | M::GroupFeatures | M::MeterFeatures | M::PortDesc => {}
            M::Flow(f) | M::Aggregate(f) => f.encode(out),
            M::PortStats { port_no } => id_and_pad(out, *port_no),
            M::Queue { port_no, queue_id } => {
                out.put_u32(*port_no);
                out.put_u32(*queue_id);
            }
            M::Group { group_id: v } | M::Meter { meter_id: v } | M::MeterConfig { meter_id: v } => id_and_pad(out, *v),
            M::TableFeatures(t) => t.iter().for_each(|t| t.encode(out)),
            M::Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                out.put_u32(*experimenter);
                out.put_u32(*exp_type);
                out.extend_from_slice(data);
            }
        }
    }
}

/// The switch's description (`ofp_desc`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

/// One table's counters (`ofp_table_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// One queue's counters (`ofp_queue_stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub port_no: u32,
    pub queue_id: u32,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

/// The AGGREGATE reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

/// `ofp_table_feature_prop_type`.
pub mod prop {
    pub const INSTRUCTIONS: u16 = 0;
    pub const INSTRUCTIONS_MISS: u16 = 1;
    pub const NEXT_TABLES: u16 = 2;
    pub const NEXT_TABLES_MISS: u16 = 3;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const WRITE_ACTIONS_MISS: u16 = 5;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const APPLY_ACTIONS_MISS: u16 = 7;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const WRITE_SETFIELD_MISS: u16 = 13;
    pub const APPLY_SETFIELD: u16 = 14;
    pub const APPLY_SETFIELD_MISS: u16 = 15;
}

/// One table feature property: its type and its body, as on the wire
/// (without the padding). The constructors build the usual lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatureProp {
    pub kind: u16,
    pub body: Vec<u8>,
}

impl TableFeatureProp {
    /// A list of instruction or action types (each a 4-byte header).
    pub fn types(kind: u16, types: &[u16]) -> Self {
        let mut body = Vec::new();
        for t in types {
            body.put_u16(*t);
            body.put_u16(4);
        }
        TableFeatureProp { kind, body }
    }

    /// The tables a goto may name.
    pub fn next_tables(kind: u16, tables: &[u8]) -> Self {
        TableFeatureProp {
            kind,
            body: tables.to_vec(),
        }
    }

    /// A list of OXM headers (fields without values).
    pub fn oxm_headers(kind: u16, headers: &[u32]) -> Self {
        let mut body = Vec::new();
        for h in headers {
            body.put_u32(*h);
        }
        TableFeatureProp { kind, body }
    }
}

/// One table's features (`ofp_table_features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatures {
    pub table_id: u8,
    pub name: String,
    pub metadata_match: u64,
    pub metadata_write: u64,
    pub config: u32,
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    pub fn decode(r: &mut Reader) -> Result<TableFeatures, OfError> {
        let len = r.u16()? as usize;
        let mut r = r.sub(len.checked_sub(2).ok_or(r.short())?, r.short())?;
        let table_id = r.u8()?;
        r.skip(5)?;
        let name = r.string(32)?;
        let metadata_match = r.u64()?;
        let metadata_write = r.u64()?;
        let config = r.u32()?;
        let max_entries = r.u32()?;
        let mut properties = Vec::new();
        while !r.is_empty() {
            let kind = r.u16()?;
            let plen = r.u16()? as usize;
            let body = r.bytes(plen.checked_sub(4).ok_or(r.short())?)?.to_vec();
            r.skip((plen.next_multiple_of(8) - plen).min(r.remaining()))?;
            properties.push(TableFeatureProp { kind, body });
        }
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(5);
        out.put_string(&self.name, 32);
        out.put_u64(self.metadata_match);
        out.put_u64(self.metadata_write);
        out.put_u32(self.config);
        out.put_u32(self.max_entries);
        for p in &self.properties {
            let ps = out.len();
            out.put_u16(p.kind);
            out.put_u16((4 + p.body.len()) as u16);
            out.extend_from_slice(&p.body);
            out.pad8_from(ps);
        }
        let len = out.len() - start;
        out.patch_u16(start, len);
    }
}

/// A multipart reply's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartReply {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Queue(Vec<QueueStats>),
    TableFeatures(Vec<TableFeatures>),
    PortDesc(Vec<PortDesc>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    MeterFeatures(MeterFeatures),
    /// Experimenter replies, kept as bytes.
    Other {
        kind: u16,
        body: Vec<u8>,
    },
}

impl MultipartReply {
    pub fn kind(&self) -> u16 {
        match self {
            MultipartReply::Desc(_) => kind::DESC,
            MultipartReply::Flow(_) => kind::FLOW,
            MultipartReply::Aggregate(_) => kind::AGGREGATE,
            MultipartReply::Table(_) => kind::TABLE,
            MultipartReply::PortStats(_) => kind::PORT_STATS,
            MultipartReply::Queue(_) => kind::QUEUE,
            MultipartReply::TableFeatures(_) => kind::TABLE_FEATURES,
            MultipartReply::PortDesc(_) => kind::PORT_DESC,
            MultipartReply::Group(_) => kind::GROUP,
            MultipartReply::GroupDesc(_) => kind::GROUP_DESC,
            MultipartReply::GroupFeatures(_) => kind::GROUP_FEATURES,
            MultipartReply::Meter(_) => kind::METER,
            MultipartReply::MeterConfig(_) => kind::METER_CONFIG,
            MultipartReply::MeterFeatures(_) => kind::METER_FEATURES,
            MultipartReply::Other { kind, .. } => *kind,
        }
    }

    /// The body's items, each encoded on its own (a reply may be split
    /// between them, never inside one).
    pub fn items(&self) -> Vec<Vec<u8>> {
        fn each<T>(v: &[T], f: impl Fn(&T, &mut Vec<u8>)) -> Vec<Vec<u8>> {
            v.iter()
                .map(|x| {
                    let mut b = Vec::new();
                    f(x, &mut b);
                    b
                })
                .collect()
        }
        match self {
            MultipartReply::Desc(d) => each(std::slice::from_ref(d), encode_desc),
            MultipartReply::Flow(v) => each(v, FlowStats::encode),
            MultipartReply::Aggregate(a) => each(std::slice::from_ref(a), |a, out| {
                out.put_u64(a.packet_count);
                out.put_u64(a.byte_count);
                out.put_u32(a.flow_count);
                out.put_zeros(4);
            }),
            MultipartReply::Table(v) => each(v, |t, out| {
                out.put_u8(t.table_id);
                out.put_zeros(3);
                out.put_u32(t.active_count);
                out.put_u64(t.lookup_count);
                out.put_u64(t.matched_count);
            }),
            MultipartReply::PortStats(v) => each(v, PortStats::encode),
            MultipartReply::Queue(v) => each(v, |q, out| {
                out.put_u32(q.port_no);
                out.put_u32(q.queue_id);
                out.put_u64(q.tx_bytes);
                out.put_u64(q.tx_packets);
                out.put_u64(q.tx_errors);
                out.put_u32(q.duration_sec);
                out.put_u32(q.duration_nsec);
            }),
            MultipartReply::TableFeatures(v) => each(v, TableFeatures::encode),
            MultipartReply::PortDesc(v) => each(v, PortDesc::encode),
            MultipartReply::Group(v) => each(v, GroupStats::encode),
            MultipartReply::GroupDesc(v) => each(v, GroupDesc::encode),
            MultipartReply::GroupFeatures(f) => each(std::slice::from_ref(f), GroupFeatures::encode),
            MultipartReply::Meter(v) => each(v, MeterStats::encode),
            MultipartReply::MeterConfig(v) => each(v, MeterConfig::encode),
            MultipartReply::MeterFeatures(f) => each(std::slice::from_ref(f), MeterFeatures::encode),
            MultipartReply::Other { body, .. } => vec![body.clone()],
        }
    }

    /// Reads the body of a reply of type `kind`.
    pub fn decode(kind: u16, r: &mut Reader) -> Result<MultipartReply, OfError> {
        fn all<T>(r: &mut Reader, f: impl Fn(&mut Reader) -> Result<T, OfError>) -> Result<Vec<T>, OfError> {
            let mut v = Vec::new();
            while !r.is_empty() {
                v.push(f(r)?);
            }
            Ok(v)
        }
        Ok(match kind {
            kind::DESC => MultipartReply::Desc(Desc {
                mfr_desc: r.string(256)?,
                hw_desc: r.string(256)?,
                sw_desc: r.string(256)?,
                serial_num: r.string(32)?,
                dp_desc: r.string(256)?,
            }),
            kind::FLOW => MultipartReply::Flow(all(r, FlowStats::decode)?),
            kind::AGGREGATE => {
                let a = AggregateStats {
                    packet_count: r.u64()?,
                    byte_count: r.u64()?,
                    flow_count: r.u32()?,
                };
                r.skip(4)?;
                MultipartReply::Aggregate(a)
            }
            kind::TABLE => MultipartReply::Table(all(r, |r| {
                let table_id = r.u8()?;
                r.skip(3)?;
                Ok(TableStats {
                    table_id,
                    active_count: r.u32()?,
                    lookup_count: r.u64()?,
                    matched_count: r.u64()?,
                })
            })?),
            kind::PORT_STATS => MultipartReply::PortStats(all(r, PortStats::decode)?),
            kind::QUEUE => MultipartReply::Queue(all(r, |r| {
                Ok(QueueStats {
                    port_no: r.u32()?,
                    queue_id: r.u32()?,
                    tx_bytes: r.u64()?,
                    tx_packets: r.u64()?,
                    tx_errors: r.u64()?,
                    duration_sec: r.u32()?,
                    duration_nsec: r.u32()?,
                })
            })?),
            kind::TABLE_FEATURES => MultipartReply::TableFeatures(all(r, TableFeatures::decode)?),
            kind::PORT_DESC => MultipartReply::PortDesc(all(r, PortDesc::decode)?),
            kind::GROUP => MultipartReply::Group(all(r, GroupStats::decode)?),
            kind::GROUP_DESC => MultipartReply::GroupDesc(all(r, GroupDesc::decode)?),
            kind::GROUP_FEATURES => MultipartReply::GroupFeatures(GroupFeatures::decode(r)?),
            kind::METER => MultipartReply::Meter(all(r, MeterStats::decode)?),
            kind::METER_CONFIG => MultipartReply::MeterConfig(all(r, MeterConfig::decode)?),
            kind::METER_FEATURES => MultipartReply::MeterFeatures(MeterFeatures::decode(r)?),
            kind => MultipartReply::Other {
                kind,
                body: r.rest().to_vec(),
            },
        })
    }
}

fn encode_desc(d: &Desc, out: &mut Vec<u8>) {
    out.put_string(&d.mfr_desc, 256);
    out.put_string(&d.hw_desc, 256);
    out.put_string(&d.sw_desc, 256);
    out.put_string(&d.serial_num, 32);
    out.put_string(&d.dp_desc, 256);
}
