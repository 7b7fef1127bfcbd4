//! The ODP generic-netlink client: datapaths, vports, flows, packets.
//!
//! # What
//! [`OdpClient`] speaks the four families of the kernel's Open vSwitch
//! datapath (`ovs_datapath`, `ovs_vport`, `ovs_flow`, `ovs_packet`);
//! [`UpcallListener`] receives MISS and ACTION upcalls on a socket of its
//! own (set as every vport's upcall pid, or as every CPU's when the
//! datapath dispatches upcalls per CPU).
//!
//! # Layers
//! neli does the netlink framing: the socket, `Nlmsghdr`, `Genlmsghdr` with
//! the ODP `ovs_header` (the datapath ifindex) as its user header, the
//! top-level attributes, acks, errors (with extended-ack messages) and
//! multi-part dumps, and the generic-netlink controller lookup of family
//! ids. The nested contents (keys, masks, actions, tunnel and vport
//! options) come from [`crate::keys`], [`crate::actions`] and
//! [`crate::nla`].
//!
//! # Batching
//! [`OdpClient::put_flows`] and [`OdpClient::del_flows`] send many requests
//! in one `send` (each with its own sequence number and an ack request) and
//! then collect one ack or error per request, so a failed flow is reported
//! by its index and never stops the others.
//!
//! # Threads
//! A client owns one socket and is used by one thread at a time (`&mut
//! self`). Upcall listeners own their sockets; open one per thread.

use crate::actions::{decode_actions, encode_actions};
use crate::error::{DecodeError, EncodeError, OdpError, Op};
use crate::keys::{decode_match, decode_packet_key, encode_match};
use crate::nla::{self, Writer};
use crate::uapi::{
    self, cmd, dp_attr, dp_feature, flow_attr, packet_attr, packet_cmd, tunnel_opt, vport_attr, vport_type,
};
use neli::consts::genl::{CtrlAttr, CtrlAttrMcastGrp, CtrlCmd, Index};
use neli::consts::nl::{GenlId, NlmF, Nlmsg, NlmsgerrAttr};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder, NoUserHeader};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, GenlBuffer, NlBuffer};
use neli::utils::Groups;
use neli::{FromBytes, FromBytesWithInput, Size, ToBytes, TypeSize};
use odpx_classifier::odp::{FlowLine, FlowStatsText, OdpAction, OdpKey};
use odpx_classifier::FlowKey;
use std::io::{Cursor, Read, Write};

/// `struct ovs_header`: the user header of every ODP genl message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OvsHeader {
    pub dp_ifindex: i32,
}

impl Size for OvsHeader {
    fn unpadded_size(&self) -> usize {
        4
    }
}

impl TypeSize for OvsHeader {
    fn type_size() -> usize {
        4
    }
}

impl ToBytes for OvsHeader {
    fn to_bytes(&self, buffer: &mut Cursor<Vec<u8>>) -> Result<(), neli::err::SerError> {
        buffer.write_all(&self.dp_ifindex.to_ne_bytes())?;
        Ok(())
    }
}

impl FromBytes for OvsHeader {
    fn from_bytes(buffer: &mut Cursor<impl AsRef<[u8]>>) -> Result<Self, neli::err::DeError> {
        let mut b = [0u8; 4];
        buffer.read_exact(&mut b)?;
        Ok(OvsHeader {
            dp_ifindex: i32::from_ne_bytes(b),
        })
    }
}

type OvsGenl = Genlmsghdr<u8, u16, OvsHeader>;

/// Generic-netlink ids of the ODP families on this kernel.
#[derive(Clone, Copy, Debug)]
pub struct Families {
    pub datapath: u16,
    pub vport: u16,
    pub flow: u16,
    pub packet: u16,
}

/// One request, before framing.
#[derive(Clone, Debug)]
struct Request {
    family: u16,
    cmd: u8,
    version: u8,
    dp_ifindex: i32,
    dump: bool,
    flags: NlmF,
    attrs: Vec<(u16, Vec<u8>)>,
}

/// One reply message, unframed.
#[derive(Clone, Debug)]
pub struct Reply {
    pub cmd: u8,
    pub dp_ifindex: i32,
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Reply {
    fn get(&self, ty: u16) -> Option<nla::Attr<'_>> {
        self.attrs
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(t, p)| nla::Attr { ty: *t, payload: p })
    }

    /// Attribute `ty`, which a `what` reply must carry.
    fn required(&self, ty: u16, what: &'static str) -> Result<nla::Attr<'_>, DecodeError> {
        self.get(ty).ok_or(DecodeError::Missing { what, attr: ty })
    }

    fn check_unique(&self, what: &'static str) -> Result<(), DecodeError> {
        for (i, (t, _)) in self.attrs.iter().enumerate() {
            if self.attrs[..i].iter().any(|(u, _)| u == t) {
                return Err(DecodeError::Duplicate { what, attr: *t });
            }
        }
        Ok(())
    }
}

/// A kernel error for one request of a batch.
#[derive(Clone, Debug)]
struct KernelErr {
    errno: i32,
    ext_ack: Option<String>,
}

/// Datapath statistics (`struct ovs_dp_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpStats {
    pub n_hit: u64,
    pub n_missed: u64,
    pub n_lost: u64,
    pub n_flows: u64,
}

/// Megaflow statistics (`struct ovs_dp_megaflow_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MegaflowStats {
    pub n_mask_hit: u64,
    pub n_masks: u32,
    pub n_cache_hit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Datapath {
    pub name: String,
    pub dp_ifindex: i32,
    pub stats: Option<DpStats>,
    pub megaflow_stats: Option<MegaflowStats>,
    pub user_features: u32,
    pub masks_cache_size: Option<u32>,
}

/// Datapath changes for [`OdpClient::set_datapath`].
#[derive(Clone, Debug, Default)]
pub struct DatapathSettings {
    pub user_features: Option<u32>,
    pub masks_cache_size: Option<u32>,
    pub per_cpu_pids: Option<Vec<u32>>,
    pub upcall_pid: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VportType {
    Netdev,
    Internal,
    Gre,
    Vxlan,
    Geneve,
    Other(u32),
}

impl VportType {
    pub fn from_u32(v: u32) -> Self {
        match v {
            vport_type::NETDEV => VportType::Netdev,
            vport_type::INTERNAL => VportType::Internal,
            vport_type::GRE => VportType::Gre,
            vport_type::VXLAN => VportType::Vxlan,
            vport_type::GENEVE => VportType::Geneve,
            o => VportType::Other(o),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            VportType::Netdev => vport_type::NETDEV,
            VportType::Internal => vport_type::INTERNAL,
            VportType::Gre => vport_type::GRE,
            VportType::Vxlan => vport_type::VXLAN,
            VportType::Geneve => vport_type::GENEVE,
            VportType::Other(o) => o,
        }
    }

    /// The name `ovs-dpctl show` uses.
    pub fn name(self) -> String {
        match self {
            VportType::Netdev => "netdev".into(),
            VportType::Internal => "internal".into(),
            VportType::Gre => "gre".into(),
            VportType::Vxlan => "vxlan".into(),
            VportType::Geneve => "geneve".into(),
            VportType::Other(o) => format!("type{o}"),
        }
    }

    pub fn is_udp_tunnel(self) -> bool {
        matches!(self, VportType::Vxlan | VportType::Geneve)
    }
}

/// Vport statistics (`struct ovs_vport_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VportStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vport {
    pub dp_ifindex: i32,
    pub port_no: u32,
    pub vtype: VportType,
    pub name: String,
    pub ifindex: Option<u32>,
    pub upcall_pids: Vec<u32>,
    pub stats: Option<VportStats>,
    /// UDP destination port of a VXLAN/Geneve vport.
    pub dst_port: Option<u16>,
}

/// A new vport.
#[derive(Clone, Debug)]
pub struct VportSpec {
    pub name: String,
    pub vtype: VportType,
    /// Requested port number (the kernel picks one when `None`).
    pub port_no: Option<u32>,
    /// UDP port for VXLAN/Geneve (default 4789 / 6081 when `None`).
    pub dst_port: Option<u16>,
    pub upcall_pids: Vec<u32>,
}

/// How a vport is named in a request.
#[derive(Clone, Debug)]
pub enum VportId {
    Name(String),
    Number { dp_ifindex: i32, port_no: u32 },
}

/// A datapath flow as the kernel reports it. The key, mask and actions are
/// kept as the kernel's bytes, so that the flow can be modified or deleted
/// with exactly the key the kernel holds; the decoded forms are computed on
/// demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub dp_ifindex: i32,
    pub ufid: Option<Vec<u8>>,
    pub key_raw: Option<Vec<u8>>,
    pub mask_raw: Option<Vec<u8>>,
    pub actions_raw: Option<Vec<u8>>,
    pub packets: u64,
    pub bytes: u64,
    /// Last use, in milliseconds of CLOCK_MONOTONIC (0: never).
    pub used_ms: u64,
    pub tcp_flags: u8,
}

impl Flow {
    /// The decoded match (`None` when the reply omitted the key).
    pub fn key(&self) -> Result<Option<OdpKey>, DecodeError> {
        match &self.key_raw {
            Some(k) => decode_match(k, self.mask_raw.as_deref()).map(Some),
            None => Ok(None),
        }
    }

    pub fn actions(&self) -> Result<Option<Vec<OdpAction>>, DecodeError> {
        self.actions_raw.as_deref().map(decode_actions).transpose()
    }

    /// The flow as `ovs-dpctl dump-flows` prints it (`stats`: with
    /// packets, bytes, used and flags; `ufid`: with the UFID first).
    pub fn to_line(&self, stats: bool, with_ufid: bool) -> Result<String, DecodeError> {
        let line = FlowLine {
            ufid: if with_ufid {
                self.ufid.as_deref().map(format_ufid)
            } else {
                None
            },
            key: self.key()?,
            stats: stats.then(|| FlowStatsText {
                packets: self.packets,
                bytes: self.bytes,
                used: format_used(self.used_ms),
                flags: (self.tcp_flags != 0).then(|| tcp_flag_letters(self.tcp_flags)),
            }),
            actions: self.actions()?,
        };
        Ok(line.to_string())
    }
}

/// `ovs-dpctl`'s `used:` field: seconds since last use, or `never`.
pub fn format_used(used_ms: u64) -> String {
    if used_ms == 0 {
        return "never".into();
    }
    let now = monotonic_ms();
    format!("{:.3}s", now.saturating_sub(used_ms) as f64 / 1000.0)
}

/// Milliseconds of CLOCK_MONOTONIC, the clock of the kernel's `used` times.
pub fn monotonic_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// TCP flags as OVS prints them in flow statistics (`S.` = SYN+ACK).
pub fn tcp_flag_letters(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (0x02, 'S'),
        (0x01, 'F'),
        (0x08, 'P'),
        (0x04, 'R'),
        (0x20, 'U'),
        (0x10, '.'),
        (0x40, 'E'),
        (0x80, 'C'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

pub use odpx_classifier::flow_op::{format_ufid, parse_ufid};

/// How a flow put treats an existing flow with the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with EEXIST if it exists.
    Create,
    /// Replace its actions if it exists, create it otherwise.
    CreateOrModify,
    /// Replace its actions; fail with ENOENT if it does not exist.
    Modify,
}

/// A flow to install, encoded.
#[derive(Clone, Debug)]
pub struct FlowPut {
    pub key: Vec<u8>,
    pub mask: Option<Vec<u8>>,
    pub actions: Vec<u8>,
    pub ufid: Option<Vec<u8>>,
    pub mode: PutMode,
    pub clear_stats: bool,
    /// For error messages: the flow in ODP text.
    pub describe: String,
}

impl FlowPut {
    /// Encodes a flow from the model.
    pub fn new(key: &OdpKey, actions: &[OdpAction], mode: PutMode) -> Result<FlowPut, EncodeError> {
        let enc = encode_match(key)?;
        Ok(FlowPut {
            key: enc.key,
            mask: Some(enc.mask),
            actions: encode_actions(actions)?,
            ufid: None,
            mode,
            clear_stats: false,
            describe: key.to_string(),
        })
    }
}

/// How a flow is named for get and delete.
#[derive(Clone, Debug)]
pub enum FlowId {
    /// The flow's key, as installed (or as the kernel dumped it).
    Key(Vec<u8>),
    Ufid(Vec<u8>),
}

/// A packet to execute.
#[derive(Clone, Debug)]
pub struct Execute<'a> {
    pub packet: &'a [u8],
    pub key: Vec<u8>,
    pub actions: Vec<u8>,
    pub probe: bool,
}

/// A packet the kernel sent up: a miss, or a `userspace()` action.
#[derive(Clone, Debug)]
pub struct Upcall {
    /// [`packet_cmd::MISS`] or [`packet_cmd::ACTION`].
    pub cmd: u8,
    pub dp_ifindex: i32,
    pub packet: Vec<u8>,
    pub key_raw: Vec<u8>,
    pub userdata: Option<Vec<u8>>,
    /// Original length before truncation, when truncated.
    pub orig_len: Option<u32>,
    pub mru: Option<u16>,
    pub hash: Option<u64>,
}

impl Upcall {
    pub fn is_miss(&self) -> bool {
        self.cmd == packet_cmd::MISS
    }

    /// The kernel's flow key of the packet.
    pub fn key(&self) -> Result<(FlowKey, Vec<odpx_classifier::odp::OpaqueAttr>), DecodeError> {
        decode_packet_key(&self.key_raw)
    }
}

const RECV_BUF: usize = 1 << 20;
const BATCH: usize = 64;

/// A netlink socket with request/response handling.
pub(crate) struct Channel {
    pub(crate) sock: NlSocket,
    pub(crate) seq: u32,
    buf: Vec<u8>,
}

impl Channel {
    pub(crate) fn open() -> Result<Channel, OdpError> {
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())?;
        sock.block()?;
        // Extended acks carry the kernel's reason text where it gives one.
        let _ = sock.enable_ext_ack(true);
        let _ = sock.set_recv_buffer_size(4 << 20);
        Ok(Channel {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    fn pid(&self) -> Result<u32, OdpError> {
        Ok(self.sock.pid()?)
    }

    fn frame(&mut self, r: &Request, out: &mut Vec<u8>) -> Result<u32, OdpError> {
        self.seq = self.seq.wrapping_add(1);
        let mut attrs = GenlBuffer::new();
        for (ty, payload) in &r.attrs {
            let a = NlattrBuilder::default()
                .nla_type(
                    AttrTypeBuilder::default()
                        .nla_type(*ty)
                        .build()
                        .map_err(|e| OdpError::Netlink(e.to_string()))?,
                )
                .nla_payload(Buffer::from(payload.as_slice()))
                .build()
                .map_err(|e| OdpError::Netlink(e.to_string()))?;
            attrs.push(a);
        }
        let genl: OvsGenl = GenlmsghdrBuilder::default()
            .cmd(r.cmd)
            .version(r.version)
            .header(OvsHeader {
                dp_ifindex: r.dp_ifindex,
            })
            .attrs(attrs)
            .build_with_header()
            .map_err(|e| OdpError::Netlink(e.to_string()))?;
        let mut flags = r.flags | NlmF::REQUEST;
        flags |= if r.dump { NlmF::DUMP } else { NlmF::ACK };
        let msg = NlmsghdrBuilder::default()
            .nl_type(r.family)
            .nl_flags(flags)
            .nl_seq(self.seq)
            .nl_payload(NlPayload::Payload(genl))
            .build()
            .map_err(|e| OdpError::Netlink(e.to_string()))?;
        let mut cur = Cursor::new(vec![0u8; msg.padded_size()]);
        msg.to_bytes(&mut cur).map_err(|e| OdpError::Netlink(e.to_string()))?;
        out.extend_from_slice(cur.get_ref());
        Ok(self.seq)
    }

    /// Frames a request of a family without a user header (the
    /// controller, ethtool) with the next sequence number, asks for an
    /// ack, sends it, and returns the sequence number.
    pub(crate) fn send_plain<C, T>(&mut self, nl_type: u16, genl: Genlmsghdr<C, T>) -> Result<u32, OdpError>
    where
        C: neli::consts::genl::Cmd,
        T: neli::consts::genl::NlAttrType,
    {
        self.seq = self.seq.wrapping_add(1);
        let msg = NlmsghdrBuilder::default()
            .nl_type(nl_type)
            .nl_flags(NlmF::REQUEST | NlmF::ACK)
            .nl_seq(self.seq)
            .nl_payload(NlPayload::Payload(genl))
            .build()
            .map_err(|e| OdpError::Netlink(e.to_string()))?;
        let mut cur = Cursor::new(vec![0u8; msg.padded_size()]);
        msg.to_bytes(&mut cur).map_err(|e| OdpError::Netlink(e.to_string()))?;
        self.sock.send(cur.get_ref(), Msg::empty())?;
        Ok(self.seq)
    }

    /// Receives one datagram and splits it into messages.
    pub(crate) fn recv_msgs(&mut self) -> Result<Vec<Nlmsghdr<u16, Buffer>>, OdpError> {
        let (n, _) = self.sock.recv(&mut self.buf[..RECV_BUF - 4], Msg::empty())?;
        // The kernel does not pad an upcall's last message (its length is
        // the packet's); neli expects 4-byte alignment, so pad with zeros.
        let padded = nla::align4(n);
        self.buf[n..padded].fill(0);
        let bytes = &self.buf[..padded];
        let n = padded;
        NlBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(bytes), n)
            .map(|b| b.into_iter().collect())
            .map_err(|e| OdpError::Netlink(format!("unparsable netlink reply ({e}): {n} bytes")))
    }

    /// Sends requests in batches and returns, per request, its replies or
    /// its kernel error.
    fn transact(&mut self, reqs: &[Request]) -> Result<Vec<Result<Vec<Reply>, KernelErr>>, OdpError> {
        let mut results = Vec::with_capacity(reqs.len());
        for chunk in reqs.chunks(BATCH) {
            let mut out = Vec::new();
            let mut seqs = Vec::with_capacity(chunk.len());
            for r in chunk {
                seqs.push(self.frame(r, &mut out)?);
            }
            self.sock.send(&out, Msg::empty())?;
            let first = seqs[0];
            let mut pending: Vec<Option<Result<Vec<Reply>, KernelErr>>> = vec![None; chunk.len()];
            let mut replies: Vec<Vec<Reply>> = vec![Vec::new(); chunk.len()];
            let mut open = chunk.len();
            while open > 0 {
                for msg in self.recv_msgs()? {
                    let idx = msg.nl_seq().wrapping_sub(first) as usize;
                    if idx >= chunk.len() || pending[idx].is_some() {
                        continue; // a stale reply, or a notification
                    }
                    let done = match msg.nl_payload() {
                        NlPayload::Payload(p) => {
                            if *msg.nl_type() == u16::from(Nlmsg::Done) {
                                Some(Ok(std::mem::take(&mut replies[idx])))
                            } else {
                                replies[idx].push(parse_reply(p)?);
                                None
                            }
                        }
                        NlPayload::Ack(_) | NlPayload::Empty | NlPayload::DumpExtAck(_) => {
                            Some(Ok(std::mem::take(&mut replies[idx])))
                        }
                        NlPayload::Err(e) => {
                            let ext_ack = e
                                .ext_ack()
                                .get_attr_handle()
                                .get_attr_payload_as_with_len::<String>(NlmsgerrAttr::Msg)
                                .ok()
                                .filter(|s| !s.is_empty());
                            Some(Err(KernelErr {
                                errno: -*e.error(),
                                ext_ack,
                            }))
                        }
                    };
                    if let Some(d) = done {
                        pending[idx] = Some(d);
                        open -= 1;
                    }
                }
            }
            results.extend(pending.into_iter().map(|p| p.expect("every request answered")));
        }
        Ok(results)
    }

    fn one(&mut self, r: Request, op: Op, context: impl FnOnce() -> String) -> Result<Vec<Reply>, OdpError> {
        // The kernel names a refused flow attribute only in its log.
        let mut log = matches!(op, Op::Flow | Op::Packet).then(KernelLog::open).flatten();
        let mut res = self.transact(std::slice::from_ref(&r))?;
        res.pop().expect("one result").map_err(|e| {
            let ext_ack = match (e.errno, log.as_mut()) {
                (EINVAL, Some(l)) => l.openvswitch_lines().or(e.ext_ack),
                _ => e.ext_ack,
            };
            OdpError::Kernel {
                op,
                errno: e.errno,
                context: context(),
                ext_ack,
            }
        })
    }
}

const EINVAL: i32 = 22;

/// The kernel log (`/dev/kmsg`) from a point on: where the openvswitch
/// module explains an EINVAL ("openvswitch: netlink: Missing key ...").
/// Unavailable without permission to read it; then errors just lack the
/// explanation.
struct KernelLog {
    f: std::fs::File,
}

impl KernelLog {
    fn open() -> Option<KernelLog> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK (the Linux value): reading past the newest record must
        // return EAGAIN, not wait for the next one.
        const O_NONBLOCK: i32 = 0o4000;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        f.seek(SeekFrom::End(0)).ok()?;
        Some(KernelLog { f })
    }

    /// The openvswitch records logged since `open`, joined.
    fn openvswitch_lines(&mut self) -> Option<String> {
        let mut lines = Vec::new();
        let mut rec = vec![0u8; 8192];
        // Each read returns one record: "prio,seq,time,flags;text\n".
        for _ in 0..64 {
            match self.f.read(&mut rec) {
                Ok(n) if n > 0 => {
                    let text = String::from_utf8_lossy(&rec[..n]);
                    let msg = text.split_once(';').map_or(&*text, |(_, m)| m).trim_end();
                    if let Some(m) = msg.strip_prefix("openvswitch: ") {
                        lines.push(m.strip_prefix("netlink: ").unwrap_or(m).to_string());
                    }
                }
                _ => break,
            }
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

fn parse_reply(p: &Buffer) -> Result<Reply, OdpError> {
    let raw: &[u8] = p.as_ref();
    // An upcall's last attribute (the packet) is not padded; neli expects
    // every attribute padded to 4 bytes.
    let padded;
    let bytes = if raw.len().is_multiple_of(4) {
        raw
    } else {
        padded = [raw, &[0u8; 3][..nla::align4(raw.len()) - raw.len()]].concat();
        &padded[..]
    };
    let g = OvsGenl::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len())
        .map_err(|e| OdpError::Netlink(format!("unparsable generic netlink reply: {e}")))?;
    Ok(Reply {
        cmd: *g.cmd(),
        dp_ifindex: g.header().dp_ifindex,
        attrs: g
            .attrs()
            .iter()
            .map(|a| (*a.nla_type().nla_type(), a.nla_payload().as_ref().to_vec()))
            .collect(),
    })
}

/// Resolves a generic netlink family through the controller (neli's genl
/// control types).
pub(crate) fn resolve_family(ch: &mut Channel, name: &str) -> Result<(u16, Vec<(String, u32)>), OdpError> {
    let mut attrs = GenlBuffer::new();
    attrs.push(
        NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(CtrlAttr::FamilyName)
                    .build()
                    .map_err(|e| OdpError::Netlink(e.to_string()))?,
            )
            .nla_payload(name.to_string())
            .build()
            .map_err(|e| OdpError::Netlink(e.to_string()))?,
    );
    let genl = GenlmsghdrBuilder::<CtrlCmd, CtrlAttr, NoUserHeader>::default()
        .cmd(CtrlCmd::Getfamily)
        .version(2)
        .attrs(attrs)
        .build()
        .map_err(|e| OdpError::Netlink(e.to_string()))?;
    let seq = ch.send_plain(GenlId::Ctrl.into(), genl)?;
    let mut found = None;
    loop {
        for m in ch.recv_msgs()? {
            if *m.nl_seq() != seq {
                continue;
            }
            match m.nl_payload() {
                NlPayload::Payload(p) => {
                    let bytes: &[u8] = p.as_ref();
                    let g =
                        Genlmsghdr::<CtrlCmd, CtrlAttr>::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len())
                            .map_err(|e| OdpError::Netlink(format!("controller reply: {e}")))?;
                    let h = g.attrs().get_attr_handle();
                    let id = h
                        .get_attr_payload_as::<u16>(CtrlAttr::FamilyId)
                        .map_err(|e| OdpError::Netlink(format!("controller reply without family id: {e}")))?;
                    let mut groups = Vec::new();
                    if let Ok(gs) = h.get_nested_attributes::<Index>(CtrlAttr::McastGroups) {
                        for g in gs.iter() {
                            if let Ok(gh) = g.get_attr_handle::<CtrlAttrMcastGrp>() {
                                if let (Ok(n), Ok(i)) = (
                                    gh.get_attr_payload_as_with_len::<String>(CtrlAttrMcastGrp::Name),
                                    gh.get_attr_payload_as::<u32>(CtrlAttrMcastGrp::Id),
                                ) {
                                    groups.push((n, i));
                                }
                            }
                        }
                    }
                    found = Some((id, groups));
                }
                NlPayload::Err(e) => {
                    return Err(OdpError::Kernel {
                        op: Op::Family,
                        errno: -*e.error(),
                        context: format!("generic netlink family {name}"),
                        ext_ack: None,
                    })
                }
                _ => {
                    return found.ok_or_else(|| OdpError::Netlink(format!("no reply for family {name}")));
                }
            }
        }
    }
}

/// The ODP family a request goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fam {
    Datapath,
    Vport,
    Flow,
    Packet,
}

/// A request to an ODP family. Datapath and vport NEW/SET answer through
/// `genl_notify`, which reaches the requester only when it asks for an
/// echo; flows are not echoed (batched puts need only the acks).
fn request(f: &Families, fam: Fam, cmd: u8, dp_ifindex: i32, attrs: Vec<(u16, Vec<u8>)>) -> Request {
    let (family, version) = match fam {
        Fam::Datapath => (f.datapath, uapi::DATAPATH_VERSION),
        Fam::Vport => (f.vport, uapi::VPORT_VERSION),
        Fam::Flow => (f.flow, uapi::FLOW_VERSION),
        Fam::Packet => (f.packet, uapi::PACKET_VERSION),
    };
    let echo = matches!(fam, Fam::Datapath | Fam::Vport) && (cmd == cmd::NEW || cmd == cmd::SET);
    Request {
        family,
        cmd,
        version,
        dp_ifindex,
        dump: false,
        flags: if echo { NlmF::ECHO } else { NlmF::empty() },
        attrs,
    }
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
}

/// The ODP client. See the module documentation.
pub struct OdpClient {
    ch: Channel,
    families: Families,
}

impl OdpClient {
    /// Opens a socket and resolves the four ODP families. Fails with a
    /// clear error when the openvswitch module is not loaded.
    pub fn connect() -> Result<OdpClient, OdpError> {
        let mut ch = Channel::open()?;
        let families = Families {
            datapath: resolve_family(&mut ch, uapi::DATAPATH_FAMILY)?.0,
            vport: resolve_family(&mut ch, uapi::VPORT_FAMILY)?.0,
            flow: resolve_family(&mut ch, uapi::FLOW_FAMILY)?.0,
            packet: resolve_family(&mut ch, uapi::PACKET_FAMILY)?.0,
        };
        Ok(OdpClient { ch, families })
    }

    pub fn families(&self) -> Families {
        self.families
    }

    /// Multicast groups of an ODP family (name, id), e.g. for vport events.
    pub fn multicast_groups(&mut self, family: &str) -> Result<Vec<(String, u32)>, OdpError> {
        Ok(resolve_family(&mut self.ch, family)?.1)
    }

    /// This socket's netlink port id.
    pub fn pid(&self) -> Result<u32, OdpError> {
        self.ch.pid()
    }

    // ---------------------------------------------------------------- datapaths

    /// Creates a datapath. `per_cpu_upcalls` asks for per-CPU upcall
    /// dispatch and falls back to per-vport pids on kernels without it
    /// (before 5.14); the returned datapath's `user_features` say which.
    pub fn create_datapath(
        &mut self,
        name: &str,
        upcall_pid: u32,
        per_cpu_upcalls: bool,
    ) -> Result<Datapath, OdpError> {
        let base = dp_feature::UNALIGNED | dp_feature::VPORT_PIDS;
        let mut features = base;
        if per_cpu_upcalls {
            features |= dp_feature::DISPATCH_UPCALL_PER_CPU;
        }
        let fams = self.families;
        let req = |features: u32| {
            let mut name_b = name.as_bytes().to_vec();
            name_b.push(0);
            request(
                &fams,
                Fam::Datapath,
                cmd::NEW,
                0,
                vec![
                    (dp_attr::NAME, name_b),
                    (dp_attr::UPCALL_PID, upcall_pid.to_ne_bytes().to_vec()),
                    (dp_attr::USER_FEATURES, features.to_ne_bytes().to_vec()),
                ],
            )
        };
        let r = self.ch.one(req(features), Op::Datapath, || format!("datapath {name}"));
        let replies = match r {
            Err(OdpError::Kernel { errno: 95, .. }) if per_cpu_upcalls => {
                features = base;
                self.ch
                    .one(req(features), Op::Datapath, || format!("datapath {name}"))?
            }
            other => other?,
        };
        let dp = parse_datapath(
            replies
                .first()
                .ok_or_else(|| OdpError::Netlink("no reply to datapath create".into()))?,
        )?;
        Ok(dp)
    }

    pub fn delete_datapath(&mut self, name: &str) -> Result<(), OdpError> {
        let mut b = name.as_bytes().to_vec();
        b.push(0);
        self.ch.one(
            request(&self.families, Fam::Datapath, cmd::DEL, 0, vec![(dp_attr::NAME, b)]),
            Op::Datapath,
            || format!("datapath {name}"),
        )?;
        Ok(())
    }

    pub fn get_datapath(&mut self, name: &str) -> Result<Datapath, OdpError> {
        let mut b = name.as_bytes().to_vec();
        b.push(0);
        let r = self.ch.one(
            request(&self.families, Fam::Datapath, cmd::GET, 0, vec![(dp_attr::NAME, b)]),
            Op::Datapath,
            || format!("datapath {name}"),
        )?;
        parse_datapath(
            r.first()
                .ok_or_else(|| OdpError::NotFound(format!("datapath {name}: no reply")))?,
        )
    }

    pub fn list_datapaths(&mut self) -> Result<Vec<Datapath>, OdpError> {
        let mut req = request(&self.families, Fam::Datapath, cmd::GET, 0, vec![]);
        req.dump = true;
        let r = self.ch.one(req, Op::Datapath, || "datapath dump".into())?;
        let mut v: Vec<Datapath> = r.iter().map(parse_datapath).collect::<Result<_, _>>()?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub fn set_datapath(&mut self, name: &str, s: &DatapathSettings) -> Result<Datapath, OdpError> {
        let mut b = name.as_bytes().to_vec();
        b.push(0);
        let mut attrs = vec![(dp_attr::NAME, b)];
        if let Some(p) = s.upcall_pid {
            attrs.push((dp_attr::UPCALL_PID, p.to_ne_bytes().to_vec()));
        }
        // The kernel resets the features to 0 on a SET without them.
        let features = match s.user_features {
            Some(f) => f,
            None => self.get_datapath(name)?.user_features,
        };
        attrs.push((dp_attr::USER_FEATURES, features.to_ne_bytes().to_vec()));
        if let Some(m) = s.masks_cache_size {
            attrs.push((dp_attr::MASKS_CACHE_SIZE, m.to_ne_bytes().to_vec()));
        }
        if let Some(pids) = &s.per_cpu_pids {
            attrs.push((
                dp_attr::PER_CPU_PIDS,
                pids.iter().flat_map(|p| p.to_ne_bytes()).collect(),
            ));
        }
        let r = self.ch.one(
            request(&self.families, Fam::Datapath, cmd::SET, 0, attrs),
            Op::Datapath,
            || format!("datapath {name}"),
        )?;
        parse_datapath(
            r.first()
                .ok_or_else(|| OdpError::Netlink("no reply to datapath set".into()))?,
        )
    }

    // ---------------------------------------------------------------- vports

    fn vport_id_attrs(id: &VportId) -> (i32, Vec<(u16, Vec<u8>)>, String) {
        match id {
            VportId::Name(n) => {
                let mut b = n.as_bytes().to_vec();
                b.push(0);
                (0, vec![(vport_attr::NAME, b)], format!("vport {n}"))
            }
            VportId::Number { dp_ifindex, port_no } => (
                *dp_ifindex,
                vec![(vport_attr::PORT_NO, port_no.to_ne_bytes().to_vec())],
                format!("vport {port_no}"),
            ),
        }
    }

    pub fn create_vport(&mut self, dp_ifindex: i32, spec: &VportSpec) -> Result<Vport, OdpError> {
        let mut name = spec.name.as_bytes().to_vec();
        name.push(0);
        let mut attrs = vec![
            (vport_attr::NAME, name),
            (vport_attr::TYPE, spec.vtype.to_u32().to_ne_bytes().to_vec()),
        ];
        let pids: Vec<u8> = if spec.upcall_pids.is_empty() {
            0u32.to_ne_bytes().to_vec()
        } else {
            spec.upcall_pids.iter().flat_map(|p| p.to_ne_bytes()).collect()
        };
        attrs.push((vport_attr::UPCALL_PID, pids));
        if let Some(p) = spec.port_no {
            attrs.push((vport_attr::PORT_NO, p.to_ne_bytes().to_vec()));
        }
        if spec.vtype.is_udp_tunnel() {
            let port = spec
                .dst_port
                .unwrap_or(if spec.vtype == VportType::Geneve { 6081 } else { 4789 });
            let mut w = Writer::new();
            w.put_u16(tunnel_opt::DST_PORT, port);
            attrs.push((vport_attr::OPTIONS, w.into_bytes()));
        } else if spec.dst_port.is_some() {
            return Err(OdpError::Encode(EncodeError(format!(
                "--port applies to vxlan and geneve vports, not {}",
                spec.vtype.name()
            ))));
        }
        let r = self.ch.one(
            request(&self.families, Fam::Vport, cmd::NEW, dp_ifindex, attrs),
            Op::Vport,
            || format!("vport {} ({})", spec.name, spec.vtype.name()),
        )?;
        parse_vport(
            r.first()
                .ok_or_else(|| OdpError::Netlink("no reply to vport create".into()))?,
        )
    }

    pub fn delete_vport(&mut self, id: &VportId) -> Result<(), OdpError> {
        let (dp, attrs, ctx) = Self::vport_id_attrs(id);
        self.ch.one(
            request(&self.families, Fam::Vport, cmd::DEL, dp, attrs),
            Op::Vport,
            || ctx,
        )?;
        Ok(())
    }

    pub fn get_vport(&mut self, id: &VportId) -> Result<Vport, OdpError> {
        let (dp, attrs, ctx) = Self::vport_id_attrs(id);
        let r = self.ch.one(
            request(&self.families, Fam::Vport, cmd::GET, dp, attrs),
            Op::Vport,
            || ctx,
        )?;
        parse_vport(
            r.first()
                .ok_or_else(|| OdpError::Netlink("no reply to vport get".into()))?,
        )
    }

    pub fn list_vports(&mut self, dp_ifindex: i32) -> Result<Vec<Vport>, OdpError> {
        let mut req = request(&self.families, Fam::Vport, cmd::GET, dp_ifindex, vec![]);
        req.dump = true;
        let r = self.ch.one(req, Op::Vport, || "vport dump".into())?;
        let mut v: Vec<Vport> = r.iter().map(parse_vport).collect::<Result<_, _>>()?;
        v.sort_by_key(|p| p.port_no);
        Ok(v)
    }

    /// Sets a vport's upcall pids (where its misses go).
    pub fn set_vport_upcall_pids(&mut self, id: &VportId, pids: &[u32]) -> Result<Vport, OdpError> {
        let (dp, mut attrs, ctx) = Self::vport_id_attrs(id);
        attrs.push((
            vport_attr::UPCALL_PID,
            pids.iter().flat_map(|p| p.to_ne_bytes()).collect(),
        ));
        let r = self.ch.one(
            request(&self.families, Fam::Vport, cmd::SET, dp, attrs),
            Op::Vport,
            || ctx,
        )?;
        parse_vport(
            r.first()
                .ok_or_else(|| OdpError::Netlink("no reply to vport set".into()))?,
        )
    }

    // ---------------------------------------------------------------- flows

    fn put_req(&self, dp_ifindex: i32, f: &FlowPut) -> Request {
        let mut attrs = vec![(flow_attr::KEY, f.key.clone())];
        if let Some(m) = &f.mask {
            attrs.push((flow_attr::MASK, m.clone()));
        }
        attrs.push((flow_attr::ACTIONS, f.actions.clone()));
        if let Some(u) = &f.ufid {
            attrs.push((flow_attr::UFID, u.clone()));
        }
        if f.clear_stats {
            attrs.push((flow_attr::CLEAR, Vec::new()));
        }
        let (cmd, flags) = match f.mode {
            PutMode::Create => (cmd::NEW, NlmF::CREATE | NlmF::EXCL),
            PutMode::CreateOrModify => (cmd::NEW, NlmF::CREATE),
            PutMode::Modify => (cmd::SET, NlmF::empty()),
        };
        let mut r = request(&self.families, Fam::Flow, cmd, dp_ifindex, attrs);
        r.flags = flags;
        r
    }

    /// Installs one flow.
    pub fn put_flow(&mut self, dp_ifindex: i32, f: &FlowPut) -> Result<(), OdpError> {
        let req = self.put_req(dp_ifindex, f);
        self.ch.one(req, Op::Flow, || format!("flow {}", f.describe))?;
        Ok(())
    }

    /// Installs many flows, batched; one result per flow, in order.
    pub fn put_flows(&mut self, dp_ifindex: i32, flows: &[FlowPut]) -> Result<Vec<Result<(), OdpError>>, OdpError> {
        let reqs: Vec<Request> = flows.iter().map(|f| self.put_req(dp_ifindex, f)).collect();
        let res = self.ch.transact(&reqs)?;
        Ok(res
            .into_iter()
            .zip(flows)
            .map(|(r, f)| {
                r.map(|_| ()).map_err(|e| OdpError::Kernel {
                    op: Op::Flow,
                    errno: e.errno,
                    context: format!("flow {}", f.describe),
                    ext_ack: e.ext_ack,
                })
            })
            .collect())
    }

    fn id_attrs(id: &FlowId) -> Vec<(u16, Vec<u8>)> {
        match id {
            FlowId::Key(k) => vec![(flow_attr::KEY, k.clone())],
            FlowId::Ufid(u) => vec![(flow_attr::UFID, u.clone())],
        }
    }

    pub fn get_flow(&mut self, dp_ifindex: i32, id: &FlowId) -> Result<Flow, OdpError> {
        let r = self.ch.one(
            request(&self.families, Fam::Flow, cmd::GET, dp_ifindex, Self::id_attrs(id)),
            Op::Flow,
            || "flow".into(),
        )?;
        parse_flow(
            r.first()
                .ok_or_else(|| OdpError::Netlink("no reply to flow get".into()))?,
        )
    }

    pub fn del_flow(&mut self, dp_ifindex: i32, id: &FlowId) -> Result<(), OdpError> {
        self.ch.one(
            request(&self.families, Fam::Flow, cmd::DEL, dp_ifindex, Self::id_attrs(id)),
            Op::Flow,
            || "flow".into(),
        )?;
        Ok(())
    }

    /// Deletes many flows, batched; one result per flow.
    pub fn del_flows(&mut self, dp_ifindex: i32, ids: &[FlowId]) -> Result<Vec<Result<(), OdpError>>, OdpError> {
        let reqs: Vec<Request> = ids
            .iter()
            .map(|id| request(&self.families, Fam::Flow, cmd::DEL, dp_ifindex, Self::id_attrs(id)))
            .collect();
        Ok(self
            .ch
            .transact(&reqs)?
            .into_iter()
            .map(|r| {
                r.map(|_| ()).map_err(|e| OdpError::Kernel {
                    op: Op::Flow,
                    errno: e.errno,
                    context: "flow".into(),
                    ext_ack: e.ext_ack,
                })
            })
            .collect())
    }

    /// Deletes every flow of a datapath.
    pub fn flush_flows(&mut self, dp_ifindex: i32) -> Result<(), OdpError> {
        self.ch.one(
            request(&self.families, Fam::Flow, cmd::DEL, dp_ifindex, vec![]),
            Op::Flow,
            || "flow flush".into(),
        )?;
        Ok(())
    }

    /// Dumps every flow; `ufid_flags` ([`crate::uapi::ufid_flag`]) lets
    /// the kernel leave out keys, masks or actions of flows with UFIDs.
    pub fn dump_flows(&mut self, dp_ifindex: i32, ufid_flags: u32) -> Result<Vec<Flow>, OdpError> {
        let attrs = if ufid_flags != 0 {
            vec![(flow_attr::UFID_FLAGS, ufid_flags.to_ne_bytes().to_vec())]
        } else {
            vec![]
        };
        let mut req = request(&self.families, Fam::Flow, cmd::GET, dp_ifindex, attrs);
        req.dump = true;
        let r = self.ch.one(req, Op::Flow, || "flow dump".into())?;
        r.iter().map(parse_flow).collect()
    }

    // ---------------------------------------------------------------- packets

    /// Runs actions on a packet in the kernel datapath.
    pub fn execute(&mut self, dp_ifindex: i32, e: &Execute) -> Result<(), OdpError> {
        let mut attrs = vec![
            (packet_attr::PACKET, e.packet.to_vec()),
            (packet_attr::KEY, e.key.clone()),
            (packet_attr::ACTIONS, e.actions.clone()),
        ];
        if e.probe {
            attrs.push((packet_attr::PROBE, Vec::new()));
        }
        let req = request(&self.families, Fam::Packet, packet_cmd::EXECUTE, dp_ifindex, attrs);
        self.ch.one(req, Op::Packet, || "packet execute".into())?;
        Ok(())
    }
}

fn name_attr(r: &Reply, ty: u16, what: &'static str) -> Result<String, DecodeError> {
    r.required(ty, what)?.str(what)
}

fn parse_datapath(r: &Reply) -> Result<Datapath, OdpError> {
    const W: &str = "datapath";
    r.check_unique(W)?;
    let stats = match r.get(dp_attr::STATS) {
        Some(a) => {
            let b: [u8; 32] = a.array(W)?;
            Some(DpStats {
                n_hit: u64_at(&b, 0),
                n_missed: u64_at(&b, 1),
                n_lost: u64_at(&b, 2),
                n_flows: u64_at(&b, 3),
            })
        }
        None => None,
    };
    let megaflow_stats = match r.get(dp_attr::MEGAFLOW_STATS) {
        Some(a) => {
            let b: [u8; 32] = a.array(W)?;
            Some(MegaflowStats {
                n_mask_hit: u64_at(&b, 0),
                n_masks: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
                n_cache_hit: u64_at(&b, 2),
            })
        }
        None => None,
    };
    Ok(Datapath {
        name: name_attr(r, dp_attr::NAME, W)?,
        dp_ifindex: r.dp_ifindex,
        stats,
        megaflow_stats,
        user_features: r
            .get(dp_attr::USER_FEATURES)
            .map(|a| a.u32(W))
            .transpose()?
            .unwrap_or(0),
        masks_cache_size: r.get(dp_attr::MASKS_CACHE_SIZE).map(|a| a.u32(W)).transpose()?,
    })
}

fn parse_vport(r: &Reply) -> Result<Vport, OdpError> {
    const W: &str = "vport";
    r.check_unique(W)?;
    let port_no = r.required(vport_attr::PORT_NO, W)?.u32(W)?;
    let vtype = VportType::from_u32(r.required(vport_attr::TYPE, W)?.u32(W)?);
    let stats = match r.get(vport_attr::STATS) {
        Some(a) => {
            let b: [u8; 64] = a.array(W)?;
            Some(VportStats {
                rx_packets: u64_at(&b, 0),
                tx_packets: u64_at(&b, 1),
                rx_bytes: u64_at(&b, 2),
                tx_bytes: u64_at(&b, 3),
                rx_errors: u64_at(&b, 4),
                tx_errors: u64_at(&b, 5),
                rx_dropped: u64_at(&b, 6),
                tx_dropped: u64_at(&b, 7),
            })
        }
        None => None,
    };
    let upcall_pids = match r.get(vport_attr::UPCALL_PID) {
        Some(a) if a.payload.len() % 4 == 0 => a
            .payload
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Some(a) => {
            return Err(DecodeError::Invalid {
                what: W,
                detail: format!("upcall pid list of {} bytes", a.payload.len()),
            }
            .into())
        }
        None => Vec::new(),
    };
    let mut dst_port = None;
    if let Some(o) = r.get(vport_attr::OPTIONS) {
        for a in nla::unique(o.payload, "vport options")? {
            if a.ty == tunnel_opt::DST_PORT {
                dst_port = Some(a.u16("vport options")?);
            }
        }
    }
    Ok(Vport {
        dp_ifindex: r.dp_ifindex,
        port_no,
        vtype,
        name: name_attr(r, vport_attr::NAME, W)?,
        ifindex: r.get(vport_attr::IFINDEX).map(|a| a.u32(W)).transpose()?,
        upcall_pids,
        stats,
        dst_port,
    })
}

fn parse_flow(r: &Reply) -> Result<Flow, OdpError> {
    const W: &str = "flow";
    r.check_unique(W)?;
    let (packets, bytes) = match r.get(flow_attr::STATS) {
        Some(a) => {
            let b: [u8; 16] = a.array(W)?;
            (u64_at(&b, 0), u64_at(&b, 1))
        }
        None => (0, 0),
    };
    Ok(Flow {
        dp_ifindex: r.dp_ifindex,
        ufid: r.get(flow_attr::UFID).map(|a| a.payload.to_vec()),
        key_raw: r.get(flow_attr::KEY).map(|a| a.payload.to_vec()),
        mask_raw: r.get(flow_attr::MASK).map(|a| a.payload.to_vec()),
        actions_raw: r.get(flow_attr::ACTIONS).map(|a| a.payload.to_vec()),
        packets,
        bytes,
        used_ms: r.get(flow_attr::USED).map(|a| a.u64(W)).transpose()?.unwrap_or(0),
        tcp_flags: r.get(flow_attr::TCP_FLAGS).map(|a| a.u8(W)).transpose()?.unwrap_or(0),
    })
}

fn parse_upcall(r: &Reply) -> Result<Upcall, OdpError> {
    const W: &str = "upcall";
    r.check_unique(W)?;
    let need = |ty| r.required(ty, W).map(|a| a.payload.to_vec());
    Ok(Upcall {
        cmd: r.cmd,
        dp_ifindex: r.dp_ifindex,
        packet: need(packet_attr::PACKET)?,
        key_raw: need(packet_attr::KEY)?,
        userdata: r.get(packet_attr::USERDATA).map(|a| a.payload.to_vec()),
        orig_len: r.get(packet_attr::LEN).map(|a| a.u32(W)).transpose()?,
        mru: r.get(packet_attr::MRU).map(|a| a.u16(W)).transpose()?,
        hash: r.get(packet_attr::HASH).map(|a| a.u64(W)).transpose()?,
    })
}

/// Receives upcalls on a socket of its own.
pub struct UpcallListener {
    ch: Channel,
    packet_family: u16,
    /// Upcalls that arrived and did not parse.
    pub malformed: u64,
}

impl UpcallListener {
    pub fn open(client: &OdpClient) -> Result<UpcallListener, OdpError> {
        Ok(UpcallListener {
            ch: Channel::open()?,
            packet_family: client.families.packet,
            malformed: 0,
        })
    }

    pub fn pid(&self) -> Result<u32, OdpError> {
        self.ch.pid()
    }

    /// Points a datapath's misses at this socket: every CPU's pid when the
    /// datapath dispatches per CPU, otherwise every vport's upcall pid.
    /// Returns a description of what was set.
    pub fn attach(&self, client: &mut OdpClient, dp: &Datapath) -> Result<String, OdpError> {
        let pid = self.pid()?;
        if dp.user_features & dp_feature::DISPATCH_UPCALL_PER_CPU != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            let ncpu = possible_cpus().unwrap_or(n);
            client.set_datapath(
                &dp.name,
                &DatapathSettings {
                    per_cpu_pids: Some(vec![pid; ncpu]),
                    ..Default::default()
                },
            )?;
            Ok(format!("per-CPU upcall dispatch, {ncpu} CPUs -> pid {pid}"))
        } else {
            let ports = client.list_vports(dp.dp_ifindex)?;
            for p in &ports {
                client.set_vport_upcall_pids(
                    &VportId::Number {
                        dp_ifindex: dp.dp_ifindex,
                        port_no: p.port_no,
                    },
                    &[pid],
                )?;
            }
            Ok(format!("per-vport upcall pids, {} vports -> pid {pid}", ports.len()))
        }
    }

    /// Blocks until at least one upcall arrives and returns what the
    /// datagram held: each upcall, or why it did not parse (a malformed
    /// upcall is reported, never silently dropped).
    pub fn recv(&mut self) -> Result<Vec<Result<Upcall, OdpError>>, OdpError> {
        loop {
            let mut out = Vec::new();
            for m in self.ch.recv_msgs()? {
                if *m.nl_type() != self.packet_family {
                    continue;
                }
                if let NlPayload::Payload(p) = m.nl_payload() {
                    let u = parse_reply(p).and_then(|r| parse_upcall(&r));
                    if u.is_err() {
                        self.malformed += 1;
                    }
                    out.push(u);
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`, "0-N"):
/// the kernel indexes per-CPU upcall pids by CPU id.
fn possible_cpus() -> Option<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    let last = s.trim().split(',').next_back()?;
    let hi = last.split('-').next_back()?.parse::<usize>().ok()?;
    Some(hi + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_print_as_ovs_letters() {
        assert_eq!(tcp_flag_letters(0x12), "S.");
        assert_eq!(tcp_flag_letters(0x11), "F.");
    }

    /// The framing neli produces for a datapath GET by name, field by field.
    #[test]
    fn request_framing_is_the_kernel_layout() {
        let mut ch = Channel {
            sock: NlSocket::new(NlFamily::Generic).expect("netlink socket"),
            seq: 41,
            buf: Vec::new(),
        };
        let r = Request {
            family: 0x1d,
            cmd: cmd::GET,
            version: 2,
            dp_ifindex: 7,
            dump: false,
            flags: NlmF::empty(),
            attrs: vec![(dp_attr::NAME, b"dp0\0".to_vec())],
        };
        let mut out = Vec::new();
        let seq = ch.frame(&r, &mut out).unwrap();
        assert_eq!(seq, 42);
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &32u32.to_ne_bytes()[..],      // nlmsg_len: 16 + 4 + 4 + 8
            &0x1du16.to_ne_bytes(),        // nlmsg_type: the family id
            &0x0005u16.to_ne_bytes(),      // NLM_F_REQUEST | NLM_F_ACK
            &42u32.to_ne_bytes(),          // nlmsg_seq
            &0u32.to_ne_bytes(),           // nlmsg_pid
            &[3, 2, 0, 0],                 // genl cmd GET, version 2, reserved
            &7i32.to_ne_bytes(),           // ovs_header.dp_ifindex
            &8u16.to_ne_bytes(),           // nla_len
            &1u16.to_ne_bytes(),           // OVS_DP_ATTR_NAME
            b"dp0\0",
        ]
        .concat();
        assert_eq!(out, want);
    }
}
