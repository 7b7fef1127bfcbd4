//! OpenFlow 1.3 messages: the header, the table of message types, and
//! one enum of typed bodies that decodes from and encodes to bytes.
//!
//! [`decode`] takes exactly one framed message (see [`frame_len`]) and
//! returns it, or the error to send back with the offending message's
//! xid. HELLO is read in any version (it negotiates the version); every
//! other message must be OpenFlow 1.3 (`OFPBRC_BAD_VERSION`). A fixed-size
//! message with bytes to spare or too few is `OFPBRC_BAD_LEN`.

use super::error::{BadRequest, OfError};
use super::flow::{FlowMod, FlowRemoved};
use super::group::GroupMod;
use super::meter::MeterMod;
use super::multipart::{MultipartReply, MultipartRequest};
use super::packet::{PacketIn, PacketOut};
use super::port::{PortDesc, PortMod};
use super::wire::{Reader, Writer};

/// OpenFlow 1.3's wire version.
pub const VERSION: u8 = 4;
/// Bytes in `ofp_header`.
pub const HEADER_LEN: usize = 8;
/// The longest message (the header's length is 16 bits).
pub const MAX_LEN: usize = 0xffff;
/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`.
pub const MORE: u16 = 1;

/// `ofp_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// The header at the start of `buf`, if 8 bytes are there.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let b: &[u8; 8] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            version: b[0],
            kind: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// The length of the first message in a stream buffer: `Ok(None)` until
/// its header is in, `Err` if the header's length is below 8 (the
/// stream cannot be framed any more: close the connection).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, OfError> {
    match Header::peek(buf) {
        None => Ok(None),
        Some(h) if (h.length as usize) < HEADER_LEN => Err(OfError::BadRequest(BadRequest::BadLen)),
        Some(h) => Ok(Some(h.length as usize)),
    }
}

/// FEATURES_REPLY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
}

/// `ofp_capabilities` bits.
pub mod capabilities {
    pub const FLOW_STATS: u32 = 1 << 0;
    pub const TABLE_STATS: u32 = 1 << 1;
    pub const PORT_STATS: u32 = 1 << 2;
    pub const GROUP_STATS: u32 = 1 << 3;
    pub const IP_REASM: u32 = 1 << 5;
    pub const QUEUE_STATS: u32 = 1 << 6;
    pub const PORT_BLOCKED: u32 = 1 << 8;
}

/// GET_CONFIG_REPLY and SET_CONFIG.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchConfig {
    /// `OFPC_FRAG_*` (0 normal, 1 drop, 2 reassemble).
    pub flags: u16,
    pub miss_send_len: u16,
}

/// ROLE_REQUEST and ROLE_REPLY.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Role {
    /// `OFPCR_ROLE_*`: 0 no change, 1 equal, 2 master, 3 slave.
    pub role: u32,
    pub generation_id: u64,
}

/// GET_ASYNC_REPLY and SET_ASYNC: per reason bitmaps, for the master or
/// equal role (index 0) and for the slave role (index 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The versions of the bitmap element (bit N: wire version N); empty
    /// when the HELLO carries none (then the header's version counts).
    Hello {
        bitmap: Vec<u32>,
    },
    Error {
        error: OfError,
        data: Vec<u8>,
    },
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter {
        experimenter: u32,
        exp_type: u32,
        data: Vec<u8>,
    },
    FeaturesRequest,
    FeaturesReply(Features),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus {
        reason: u8,
        desc: PortDesc,
    },
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod {
        table_id: u8,
        config: u32,
    },
    MultipartRequest {
        flags: u16,
        body: MultipartRequest,
    },
    MultipartReply {
        flags: u16,
        body: MultipartReply,
    },
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest {
        port: u32,
    },
    QueueGetConfigReply {
        port: u32,
        queues: Vec<u8>,
    },
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
}

/// The table of message types: wire number and the spec's name.
const TYPES: [&str; 30] = [
    "OFPT_HELLO",
    "OFPT_ERROR",
    "OFPT_ECHO_REQUEST",
    "OFPT_ECHO_REPLY",
    "OFPT_EXPERIMENTER",
    "OFPT_FEATURES_REQUEST",
    "OFPT_FEATURES_REPLY",
    "OFPT_GET_CONFIG_REQUEST",
    "OFPT_GET_CONFIG_REPLY",
    "OFPT_SET_CONFIG",
    "OFPT_PACKET_IN",
    "OFPT_FLOW_REMOVED",
    "OFPT_PORT_STATUS",
    "OFPT_PACKET_OUT",
    "OFPT_FLOW_MOD",
    "OFPT_GROUP_MOD",
    "OFPT_PORT_MOD",
    "OFPT_TABLE_MOD",
    "OFPT_MULTIPART_REQUEST",
    "OFPT_MULTIPART_REPLY",
    "OFPT_BARRIER_REQUEST",
    "OFPT_BARRIER_REPLY",
    "OFPT_QUEUE_GET_CONFIG_REQUEST",
    "OFPT_QUEUE_GET_CONFIG_REPLY",
    "OFPT_ROLE_REQUEST",
    "OFPT_ROLE_REPLY",
    "OFPT_GET_ASYNC_REQUEST",
    "OFPT_GET_ASYNC_REPLY",
    "OFPT_SET_ASYNC",
    "OFPT_METER_MOD",
];

/// The spec's name of a message type number.
pub fn type_name(kind: u8) -> &'static str {
    TYPES.get(kind as usize).copied().unwrap_or("unknown type")
}

impl Message {
    /// The wire type number.
    pub fn kind(&self) -> u8 {
        use Message::*;
        match self {
            Hello { .. } => 0,
            Error { .. } => 1,
            EchoRequest(_) => 2,
            EchoReply(_) => 3,
            Experimenter { .. } => 4,
            FeaturesRequest => 5,
            FeaturesReply(_) => 6,
            GetConfigRequest => 7,
            GetConfigReply(_) => 8,
            SetConfig(_) => 9,
            PacketIn(_) => 10,
            FlowRemoved(_) => 11,
            PortStatus { .. } => 12,
            PacketOut(_) => 13,
            FlowMod(_) => 14,
            GroupMod(_) => 15,
            PortMod(_) => 16,
            TableMod { .. } => 17,
            MultipartRequest { .. } => 18,
            MultipartReply { .. } => 19,
            BarrierRequest => 20,
            BarrierReply => 21,
            QueueGetConfigRequest { .. } => 22,
            QueueGetConfigReply { .. } => 23,
            RoleRequest(_) => 24,
            RoleReply(_) => 25,
            GetAsyncRequest => 26,
            GetAsyncReply(_) => 27,
            SetAsync(_) => 28,
            MeterMod(_) => 29,
        }
    }

    /// The spec's name of the message's type.
    pub fn name(&self) -> &'static str {
        type_name(self.kind())
    }
}

/// A message that could not be decoded: its header and the error that
/// answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub header: Header,
    pub error: OfError,
}

/// Decodes one framed message (`buf` is exactly its header's length).
pub fn decode(buf: &[u8]) -> Result<(Header, Message), DecodeError> {
    let short = OfError::BadRequest(BadRequest::BadLen);
    let header = Header::peek(buf).ok_or(DecodeError {
        header: Header {
            version: VERSION,
            kind: 0,
            length: buf.len() as u16,
            xid: 0,
        },
        error: short,
    })?;
    let fail = |error| DecodeError { header, error };
    if header.length as usize != buf.len() {
        return Err(fail(short));
    }
    if header.kind != 0 && header.version != VERSION {
        return Err(fail(OfError::BadRequest(BadRequest::BadVersion)));
    }
    let mut r = Reader::new(&buf[HEADER_LEN..], short);
    let msg = decode_body(header.kind, &mut r).map_err(fail)?;
    if !r.is_empty() {
        return Err(fail(short));
    }
    Ok((header, msg))
}

/// The body of a message of type `kind`; must consume all of `r`.
fn decode_body(kind: u8, r: &mut Reader) -> Result<Message, OfError> {
    use Message as M;
    Ok(match kind {
        0 => M::Hello {
            bitmap: decode_hello(r),
        },
        1 => {
            let (kind, code) = (r.u16()?, r.u16()?);
            M::Error {
                error: OfError::from_type_code(kind, code),
                data: r.rest().to_vec(),
            }
        }
        2 => M::EchoRequest(r.rest().to_vec()),
        3 => M::EchoReply(r.rest().to_vec()),
        4 => M::Experimenter {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.rest().to_vec(),
        },
        5 => M::FeaturesRequest,
        6 => {
            let f = Features {
                datapath_id: r.u64()?,
                n_buffers: r.u32()?,
                n_tables: r.u8()?,
                auxiliary_id: r.u8()?,
                capabilities: {
                    r.skip(2)?;
                    r.u32()?
                },
            };
            r.skip(4)?;
            M::FeaturesReply(f)
        }
        7 => M::GetConfigRequest,
        8 | 9 => {
            let c = SwitchConfig {
                flags: r.u16()?,
                miss_send_len: r.u16()?,
            };
            if kind == 8 {
                M::GetConfigReply(c)
            } else {
                M::SetConfig(c)
            }
        }
        10 => M::PacketIn(PacketIn::decode(r)?),
        11 => M::FlowRemoved(FlowRemoved::decode(r)?),
        12 => {
            let reason = r.u8()?;
            r.skip(7)?;
            M::PortStatus {
                reason,
                desc: PortDesc::decode(r)?,
            }
        }
        13 => M::PacketOut(PacketOut::decode(r)?),
        14 => M::FlowMod(FlowMod::decode(r)?),
        15 => M::GroupMod(GroupMod::decode(r)?),
        16 => M::PortMod(PortMod::decode(r)?),
        17 => {
            let table_id = r.u8()?;
            r.skip(3)?;
            M::TableMod {
                table_id,
                config: r.u32()?,
            }
        }
        18 | 19 => decode_multipart(kind, r)?,
        20 => M::BarrierRequest,
        21 => M::BarrierReply,
        22 | 23 => {
            let port = r.u32()?;
            r.skip(4)?;
            if kind == 22 {
                M::QueueGetConfigRequest { port }
            } else {
                M::QueueGetConfigReply {
                    port,
                    queues: r.rest().to_vec(),
                }
            }
        }
        24 | 25 => {
            let role = r.u32()?;
            r.skip(4)?;
            let role = Role {
                role,
                generation_id: r.u64()?,
            };
            if kind == 24 {
                M::RoleRequest(role)
            } else {
                M::RoleReply(role)
            }
        }
        26 => M::GetAsyncRequest,
        27 | 28 => {
            let mut m = [0u32; 6];
            for v in m.iter_mut() {
                *v = r.u32()?;
            }
            let a = AsyncConfig {
                packet_in_mask: [m[0], m[1]],
                port_status_mask: [m[2], m[3]],
                flow_removed_mask: [m[4], m[5]],
            };
            if kind == 27 {
                M::GetAsyncReply(a)
            } else {
                M::SetAsync(a)
            }
        }
        29 => M::MeterMod(MeterMod::decode(r)?),
        _ => return Err(OfError::BadRequest(BadRequest::BadType)),
    })
}

/// HELLO elements: the version bitmap if one is there. Unknown or
/// malformed elements are ignored, as the spec asks of unknown ones.
fn decode_hello(r: &mut Reader) -> Vec<u32> {
    let mut bitmap = Vec::new();
    while r.remaining() >= 4 {
        let (Ok(kind), Ok(len)) = (r.u16(), r.u16()) else { break };
        let len = len as usize;
        let Some(body_len) = len.checked_sub(4) else { break };
        let Ok(body) = r.bytes(body_len.min(r.remaining())) else {
            break;
        };
        if kind == 1 {
            bitmap = body
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
        }
        let pad = len.next_multiple_of(8) - len;
        if r.skip(pad.min(r.remaining())).is_err() {
            break;
        }
    }
    r.rest();
    bitmap
}

fn decode_multipart(kind: u8, r: &mut Reader) -> Result<Message, OfError> {
    let mp_kind = r.u16()?;
    let flags = r.u16()?;
    r.skip(4)?;
    Ok(if kind == 18 {
        Message::MultipartRequest {
            flags,
            body: MultipartRequest::decode(mp_kind, r)?,
        }
    } else {
        Message::MultipartReply {
            flags,
            body: MultipartReply::decode(mp_kind, r)?,
        }
    })
}

/// Encodes `msg` with `xid` as one message. A multipart reply too long
/// for one message must go through [`encode_multipart_reply`].
pub fn encode(xid: u32, msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.put_u8(VERSION);
    out.put_u8(msg.kind());
    out.put_u16(0);
    out.put_u32(xid);
    encode_body(msg, &mut out);
    let len = out.len();
    out.patch_u16(2, len);
    out
}

fn encode_body(msg: &Message, out: &mut Vec<u8>) {
    use Message as M;
    match msg {
        M::Hello { bitmap } => {
            if !bitmap.is_empty() {
                out.put_u16(1);
                out.put_u16((4 + 4 * bitmap.len()) as u16);
                bitmap.iter().for_each(|b| out.put_u32(*b));
                out.pad8_from(HEADER_LEN);
            }
        }
        M::Error { error, data } => {
            let (kind, code) = error.type_code();
            out.put_u16(kind);
            out.put_u16(code);
            out.extend_from_slice(data);
        }
        M::EchoRequest(d) | M::EchoReply(d) => out.extend_from_slice(d),
        M::GroupMod(g) => g.encode(out),
        M::MeterMod(m) => m.encode(out),
        M::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            out.put_u32(*experimenter);
            out.put_u32(*exp_type);
            out.extend_from_slice(data);
        }
        M::FeaturesRequest | M::GetConfigRequest | M::BarrierRequest | M::BarrierReply | M::GetAsyncRequest => {}
        M::FeaturesReply(f) => {
            out.put_u64(f.datapath_id);
            out.put_u32(f.n_buffers);
            out.put_u8(f.n_tables);
            out.put_u8(f.auxiliary_id);
            out.put_zeros(2);
            out.put_u32(f.capabilities);
            out.put_zeros(4);
        }
        M::GetConfigReply(c) | M::SetConfig(c) => {
            out.put_u16(c.flags);
            out.put_u16(c.miss_send_len);
        }
        M::PacketIn(p) => p.encode(out),
        M::FlowRemoved(f) => f.encode(out),
        M::PortStatus { reason, desc } => {
            out.put_u8(*reason);
            out.put_zeros(7);
            desc.encode(out);
        }
        M::PacketOut(p) => p.encode(out),
        M::FlowMod(f) => f.encode(out),
        M::PortMod(p) => p.encode(out),
        M::TableMod { table_id, config } => {
            out.put_u8(*table_id);
            out.put_zeros(3);
            out.put_u32(*config);
        }
        M::MultipartRequest { flags, body } => {
            out.put_u16(body.kind());
            out.put_u16(*flags);
            out.put_zeros(4);
            body.encode(out);
        }
        M::MultipartReply { flags, body } => {
            out.put_u16(body.kind());
            out.put_u16(*flags);
            out.put_zeros(4);
            body.items().iter().for_each(|i| out.extend_from_slice(i));
        }
        M::QueueGetConfigRequest { port } => {
            out.put_u32(*port);
            out.put_zeros(4);
        }
        M::QueueGetConfigReply { port, queues } => {
            out.put_u32(*port);
            out.put_zeros(4);
            out.extend_from_slice(queues);
        }
        M::RoleRequest(r) | M::RoleReply(r) => {
            out.put_u32(r.role);
            out.put_zeros(4);
            out.put_u64(r.generation_id);
        }
        M::GetAsyncReply(a) | M::SetAsync(a) => {
            for v in a
                .packet_in_mask
                .iter()
                .chain(&a.port_status_mask)
                .chain(&a.flow_removed_mask)
            {
                out.put_u32(*v);
            }
        }
    }
}

/// Encodes a multipart reply as one or more messages, each at most
/// [`MAX_LEN`] bytes, all but the last flagged [`MORE`]. An item that
/// alone exceeds a message is left out (none can: flow entries are
/// bounded by the FLOW_MOD that made them).
pub fn encode_multipart_reply(xid: u32, body: &MultipartReply) -> Vec<Vec<u8>> {
    const HEAD: usize = HEADER_LEN + 8;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    for item in body.items() {
        if HEAD + item.len() > MAX_LEN {
            continue;
        }
        if HEAD + current.len() + item.len() > MAX_LEN {
            parts.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&item);
    }
    parts.push(current);
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, items)| {
            let mut out = Vec::with_capacity(HEAD + items.len());
            out.put_u8(VERSION);
            out.put_u8(19);
            out.put_u16(0);
            out.put_u32(xid);
            out.put_u16(body.kind());
            out.put_u16(if i + 1 < n { MORE } else { 0 });
            out.put_zeros(4);
            out.extend_from_slice(&items);
            let len = out.len();
            out.patch_u16(2, len);
            out
        })
        .collect()
}

/// The data of an error about `request`: its first 64 bytes, as the
/// spec asks.
pub fn error_data(request: &[u8]) -> Vec<u8> {
    request[..request.len().min(64)].to_vec()
}
