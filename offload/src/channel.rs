//! The netlink channel under the ODP client: one generic-netlink socket,
//! request framing, batched transactions and replies.
//!
//! # Layers
//! neli does the netlink framing: the socket, `Nlmsghdr`, `Genlmsghdr` with
//! the ODP `ovs_header` (the datapath ifindex) as its user header, the
//! top-level attributes, acks, errors (with extended-ack messages) and
//! multi-part dumps, and the generic-netlink controller lookup of family
//! ids. The nested contents (keys, masks, actions, tunnel and vport
//! options) are the codec's ([`crate::keys`], [`crate::actions`],
//! [`crate::nla`]).
//!
//! # Batching
//! [`Channel::transact`] sends many requests in one `send` (each with its
//! own sequence number and an ack request) and then collects one ack or
//! error per request, so a failed request is reported by its index and
//! never stops the others.
//!
//! # Why the kernel log
//! The openvswitch module explains a refused flow key, mask or action only
//! in its log (`OVS_NLERR`), not in the netlink error: on EINVAL the
//! channel reads the lines it logged meanwhile from `/dev/kmsg`
//! ([`KernelLog`]).
//!
//! # Threads
//! A channel owns its socket and is used by one thread at a time.

use crate::error::{DecodeError, OdpError, Op};
use crate::nla;
use crate::uapi;
use crate::uapi::cmd;
use neli::consts::genl::{CtrlAttr, CtrlAttrMcastGrp, CtrlCmd, Index};
use neli::consts::nl::{GenlId, NlmF, Nlmsg, NlmsgerrAttr};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder, NoUserHeader};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, GenlBuffer, NlBuffer};
use neli::utils::Groups;
use neli::{FromBytes, FromBytesWithInput, Size, ToBytes, TypeSize};
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

pub(crate) type OvsGenl = Genlmsghdr<u8, u16, OvsHeader>;

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
pub(crate) struct Request {
    pub(crate) family: u16,
    pub(crate) cmd: u8,
    pub(crate) version: u8,
    pub(crate) dp_ifindex: i32,
    pub(crate) dump: bool,
    pub(crate) flags: NlmF,
    pub(crate) attrs: Vec<(u16, Vec<u8>)>,
}

/// One reply message, unframed.
#[derive(Clone, Debug)]
pub struct Reply {
    pub cmd: u8,
    pub dp_ifindex: i32,
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Reply {
    pub(crate) fn get(&self, ty: u16) -> Option<nla::Attr<'_>> {
        self.attrs
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(t, p)| nla::Attr { ty: *t, payload: p })
    }

    /// Attribute `ty`, which a `what` reply must carry.
    pub(crate) fn required(&self, ty: u16, what: &'static str) -> Result<nla::Attr<'_>, DecodeError> {
        self.get(ty).ok_or(DecodeError::Missing { what, attr: ty })
    }

    pub(crate) fn check_unique(&self, what: &'static str) -> Result<(), DecodeError> {
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
pub(crate) struct KernelErr {
    pub(crate) errno: i32,
    pub(crate) ext_ack: Option<String>,
}

pub(crate) const RECV_BUF: usize = 1 << 20;
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

    pub(crate) fn pid(&self) -> Result<u32, OdpError> {
        Ok(self.sock.pid()?)
    }

    pub(crate) fn frame(&mut self, r: &Request, out: &mut Vec<u8>) -> Result<u32, OdpError> {
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
        out.extend_from_slice(&message_bytes(r.family, flags, self.seq, genl)?);
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
        let bytes = message_bytes(nl_type, NlmF::REQUEST | NlmF::ACK, self.seq, genl)?;
        self.sock.send(&bytes, Msg::empty())?;
        Ok(self.seq)
    }

    /// Receives one datagram and splits it into messages.
    pub(crate) fn recv_msgs(&mut self) -> Result<Vec<Nlmsghdr<u16, Buffer>>, OdpError> {
        let (n, _) = self.sock.recv(&mut self.buf[..RECV_BUF - 4], Msg::empty())?;
        split_datagram(&mut self.buf, n)
    }

    /// Sends requests in batches and returns, per request, its replies or
    /// its kernel error.
    pub(crate) fn transact(&mut self, reqs: &[Request]) -> Result<Vec<Result<Vec<Reply>, KernelErr>>, OdpError> {
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

    pub(crate) fn one(&mut self, r: Request, op: Op, context: impl FnOnce() -> String) -> Result<Vec<Reply>, OdpError> {
        // The kernel names a refused flow attribute only in its log.
        let mark = KernelLog::mark();
        let mut res = self.transact(std::slice::from_ref(&r))?;
        res.pop().expect("one result").map_err(|e| {
            let ext_ack = match e.errno {
                EINVAL if matches!(op, Op::Flow | Op::Packet) => KernelLog::openvswitch_lines_since(mark).or(e.ext_ack),
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

pub(crate) const EINVAL: i32 = 22;

/// The kernel log (`/dev/kmsg`), where the openvswitch module explains an
/// EINVAL ("openvswitch: netlink: Missing key ..."). Read only after an
/// EINVAL, for the records logged since a [`KernelLog::mark`] taken before
/// the request: opening the log for every request would cost more than
/// the request (hundreds of microseconds under emulation). Record times are
/// the kernel's clock since boot, which CLOCK_MONOTONIC follows closely; a
/// margin of [`KernelLog::MARGIN_US`] covers the difference. Unreadable
/// without permission; errors then just lack the explanation.
pub(crate) struct KernelLog;

impl KernelLog {
    /// Records this much older than the mark still count.
    pub(crate) const MARGIN_US: u64 = 200_000;

    /// Now, on the clock of the log's records (microseconds).
    pub(crate) fn mark() -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
    }

    /// The openvswitch records logged since `mark`, joined.
    pub(crate) fn openvswitch_lines_since(mark: u64) -> Option<String> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK (the Linux value): reading past the newest record must
        // return EAGAIN, not wait for the next one.
        const O_NONBLOCK: i32 = 0o4000;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        let since = mark.saturating_sub(Self::MARGIN_US);
        let mut lines = Vec::new();
        let mut rec = vec![0u8; 8192];
        // Each read returns one record: "prio,seq,time_us,flags;text\n",
        // oldest first.
        for _ in 0..1_000_000 {
            match f.read(&mut rec) {
                Ok(n) if n > 0 => {
                    let text = String::from_utf8_lossy(&rec[..n]);
                    let Some((head, msg)) = text.split_once(';') else {
                        continue;
                    };
                    let time: u64 = head.split(',').nth(2).and_then(|t| t.parse().ok()).unwrap_or(0);
                    if time < since {
                        continue;
                    }
                    if let Some(m) = msg.trim_end().strip_prefix("openvswitch: ") {
                        lines.push(m.strip_prefix("netlink: ").unwrap_or(m).to_string());
                    }
                }
                // EPIPE: a record was overwritten while reading; go on.
                Err(e) if e.raw_os_error() == Some(32) => continue,
                _ => break,
            }
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

/// One netlink message around `payload`, as bytes.
pub(crate) fn message_bytes<P: Size + ToBytes>(
    nl_type: u16,
    flags: NlmF,
    seq: u32,
    payload: P,
) -> Result<Vec<u8>, OdpError> {
    let msg = NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(flags)
        .nl_seq(seq)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(|e| OdpError::Netlink(e.to_string()))?;
    let mut cur = Cursor::new(vec![0u8; msg.padded_size()]);
    msg.to_bytes(&mut cur).map_err(|e| OdpError::Netlink(e.to_string()))?;
    Ok(cur.into_inner())
}

/// Splits the `n` bytes of one received datagram at the start of `buf`
/// into messages (`buf` needs 3 spare bytes after them).
pub(crate) fn split_datagram(buf: &mut [u8], n: usize) -> Result<Vec<Nlmsghdr<u16, Buffer>>, OdpError> {
    // The kernel does not pad an upcall's last message (its length is the
    // packet's); neli expects 4-byte alignment, so pad with zeros.
    let padded = nla::align4(n);
    buf[n..padded].fill(0);
    let bytes = &buf[..padded];
    NlBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(bytes), padded)
        .map(|b| b.into_iter().collect())
        .map_err(|e| OdpError::Netlink(format!("unparsable netlink reply ({e}): {padded} bytes")))
}

pub(crate) fn parse_reply(p: &Buffer) -> Result<Reply, OdpError> {
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
pub(crate) enum Fam {
    Datapath,
    Vport,
    Flow,
    Packet,
}

/// A request to an ODP family. Datapath and vport NEW/SET answer through
/// `genl_notify`, which reaches the requester only when it asks for an
/// echo; flows are not echoed (batched puts need only the acks).
pub(crate) fn request(f: &Families, fam: Fam, cmd: u8, dp_ifindex: i32, attrs: Vec<(u16, Vec<u8>)>) -> Request {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::dp_attr;

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
