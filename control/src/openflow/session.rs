//! One controller connection's OpenFlow session: what each message asks,
//! and the answers, with the switch behind a [`Bridge`].
//!
//! # What
//! [`Session::handle`] takes the messages a read brought in, in order,
//! and appends the bytes to send back. Consecutive FLOW_MODs go to the
//! switch as one batch of rule ops (one revalidation for the batch, not
//! one per message); each failed one is answered with its own error.
//! BARRIER is answered once the switch says every earlier change is in
//! force in every datapath ([`Bridge::barrier`]). Nothing here reads or
//! writes a socket, so the session is tested with a model switch.
//!
//! # Roles
//! The role (equal, master, slave), the asynchronous-message masks and
//! the switch configuration are per connection ([`ConnState`], shared
//! with the dispatcher of packet-ins); the generation id and "who is
//! master" are the agent's ([`Roles`]): a new master makes the old one a
//! slave. A slave may read but not change the switch (`OFPBRC_IS_SLAVE`).
//!
//! # Threads
//! A session belongs to its connection's reading thread.

use super::bridge::Bridge;
use super::codec::action::port;
use super::codec::error::{
    BadAction, BadRequest, FlowModFailed, HelloFailed, MeterModFailed, OfError, RoleRequestFailed, SwitchConfigFailed,
    TableFeaturesFailed, TableModFailed,
};
use super::codec::flow::{FlowMod, NO_BUFFER};
use super::codec::message::{
    encode, encode_multipart_reply, error_data, AsyncConfig, Header, Message, Role, SwitchConfig, VERSION,
};
use super::codec::multipart::{AggregateStats, MultipartReply, MultipartRequest};
use super::codec::packet::PacketOut;
use super::convert::actions::{action_from, Context};
use super::convert::groups::{group_desc, group_error, group_features, group_mod, group_stats};
use super::convert::meters::{meter_config, meter_error, meter_features, meter_mod, meter_stats};
use super::convert::{flow_mod, flow_selector, flow_stats};
use super::features;
use crate::core::rules::RuleOpError;
use odpx_classifier::rules::group::ALL_GROUPS;
use odpx_classifier::rules::meter::ALL_METERS;
use odpx_classifier::rules::RuleAction;
use std::sync::{Arc, Mutex, Weak};

/// `OFPCR_ROLE_*`.
pub mod role {
    pub const NOCHANGE: u32 = 0;
    pub const EQUAL: u32 = 1;
    pub const MASTER: u32 = 2;
    pub const SLAVE: u32 = 3;
}

/// A message as read: its header, what it decoded to, and its bytes
/// (errors quote them).
pub struct Inbound {
    pub header: Header,
    pub msg: Result<Message, OfError>,
    pub raw: Vec<u8>,
}

/// A connection's state that the dispatcher of asynchronous messages
/// reads too.
#[derive(Clone, Debug)]
pub struct ConnState {
    pub role: u32,
    pub async_cfg: AsyncConfig,
    pub config: SwitchConfig,
    /// HELLO negotiated OpenFlow 1.3: asynchronous messages may go out.
    pub ready: bool,
}

/// The default asynchronous configuration (OpenFlow 1.3, 7.3.10): a
/// master or equal hears every packet-in, port status and flow removal;
/// a slave only port status.
pub const DEFAULT_ASYNC: AsyncConfig = AsyncConfig {
    packet_in_mask: [0b111, 0],
    port_status_mask: [0b111, 0b111],
    flow_removed_mask: [0b1111, 0],
};

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            role: role::EQUAL,
            async_cfg: DEFAULT_ASYNC,
            config: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            ready: false,
        }
    }
}

impl ConnState {
    /// Which half of the asynchronous masks applies: 0 master or equal, 1 slave.
    pub fn mask_index(&self) -> usize {
        usize::from(self.role == role::SLAVE)
    }
}

/// The agent-wide part of roles.
#[derive(Default)]
pub struct Roles {
    inner: Mutex<RolesInner>,
}

#[derive(Default)]
struct RolesInner {
    generation: Option<u64>,
    members: Vec<Weak<Mutex<ConnState>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Roles {
    /// A new connection's state, known to the roles.
    pub fn join(&self) -> Arc<Mutex<ConnState>> {
        let s = Arc::new(Mutex::new(ConnState::default()));
        let mut r = lock(&self.inner);
        r.members.retain(|w| w.strong_count() > 0);
        r.members.push(Arc::downgrade(&s));
        s
    }

    /// ROLE_REQUEST from the connection whose state is `me`.
    fn request(&self, me: &Arc<Mutex<ConnState>>, req: Role) -> Result<Role, OfError> {
        let mut r = lock(&self.inner);
        if req.role > role::SLAVE {
            return Err(OfError::RoleRequestFailed(RoleRequestFailed::BadRole));
        }
        if req.role == role::MASTER || req.role == role::SLAVE {
            if let Some(g) = r.generation {
                // Stale: older than the last one seen (as a wrapping distance).
                if (req.generation_id.wrapping_sub(g) as i64) < 0 {
                    return Err(OfError::RoleRequestFailed(RoleRequestFailed::Stale));
                }
            }
            r.generation = Some(req.generation_id);
        }
        if req.role == role::MASTER {
            for other in r.members.iter().filter_map(Weak::upgrade) {
                if !Arc::ptr_eq(&other, me) {
                    let mut o = lock(&other);
                    if o.role == role::MASTER {
                        o.role = role::SLAVE;
                    }
                }
            }
        }
        let mut s = lock(me);
        if req.role != role::NOCHANGE {
            s.role = req.role;
        }
        Ok(Role {
            role: s.role,
            generation_id: r.generation.unwrap_or(0),
        })
    }
}

/// What the connection does after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Close the connection (HELLO failed: no common version).
    Close,
}

/// One connection's session (see the module documentation).
pub struct Session {
    state: Arc<Mutex<ConnState>>,
    roles: Arc<Roles>,
}

/// Appends an error answering `raw` (the request, quoted).
fn error(out: &mut Vec<Vec<u8>>, xid: u32, e: OfError, raw: &[u8]) {
    out.push(encode(
        xid,
        &Message::Error {
            error: e,
            data: error_data(raw),
        },
    ));
}

impl Session {
    pub fn new(state: Arc<Mutex<ConnState>>, roles: Arc<Roles>) -> Session {
        Session { state, roles }
    }

    pub fn state(&self) -> ConnState {
        lock(&self.state).clone()
    }

    /// Answers a batch of messages in order (see the module documentation).
    pub fn handle(&mut self, batch: Vec<Inbound>, bridge: &dyn Bridge, out: &mut Vec<Vec<u8>>) -> Verdict {
        let mut mods: Vec<(u32, FlowMod, Vec<u8>)> = Vec::new();
        for m in batch {
            let xid = m.header.xid;
            match m.msg {
                Ok(Message::FlowMod(fm)) if self.may_change(out, xid, &m.raw) => mods.push((xid, fm, m.raw)),
                Ok(Message::FlowMod(_)) => {}
                other => {
                    self.flow_mods(std::mem::take(&mut mods), bridge, out);
                    match other {
                        Err(e) => error(out, xid, e, &m.raw),
                        Ok(msg) => {
                            if self.message(m.header, msg, &m.raw, bridge, out) == Verdict::Close {
                                return Verdict::Close;
                            }
                        }
                    }
                }
            }
        }
        self.flow_mods(mods, bridge, out);
        Verdict::Continue
    }

    /// Whether this connection may change the switch; answers
    /// `OFPBRC_IS_SLAVE` if not.
    fn may_change(&self, out: &mut Vec<Vec<u8>>, xid: u32, raw: &[u8]) -> bool {
        let slave = lock(&self.state).role == role::SLAVE;
        if slave {
            error(out, xid, OfError::BadRequest(BadRequest::IsSlave), raw);
        }
        !slave
    }

    /// FLOW_MODs in one batch of rule ops; each refused one is answered.
    fn flow_mods(&mut self, mods: Vec<(u32, FlowMod, Vec<u8>)>, bridge: &dyn Bridge, out: &mut Vec<Vec<u8>>) {
        if mods.is_empty() {
            return;
        }
        let mut ops = Vec::with_capacity(mods.len());
        let mut origin = Vec::with_capacity(mods.len());
        for (xid, fm, raw) in mods {
            match flow_mod(&fm) {
                Ok(op) => {
                    ops.push(op);
                    origin.push((xid, raw));
                }
                Err(e) => error(out, xid, e, &raw),
            }
        }
        if ops.is_empty() {
            return;
        }
        for (result, (xid, raw)) in bridge.rule_ops(ops).into_iter().zip(origin) {
            let e = match result {
                Ok(_) => continue,
                Err(RuleOpError::Overlap) => FlowModFailed::Overlap,
                Err(RuleOpError::BadTable) => FlowModFailed::BadTableId,
                Err(RuleOpError::TableFull) => FlowModFailed::TableFull,
                Err(RuleOpError::UnknownGroup(_)) => {
                    error(out, xid, OfError::BadAction(BadAction::BadOutGroup), &raw);
                    continue;
                }
                Err(RuleOpError::UnknownMeter(_)) => {
                    error(out, xid, OfError::MeterModFailed(MeterModFailed::InvalidMeter), &raw);
                    continue;
                }
            };
            error(out, xid, OfError::FlowModFailed(e), &raw);
        }
    }

    /// Every message but FLOW_MOD.
    fn message(&mut self, h: Header, msg: Message, raw: &[u8], bridge: &dyn Bridge, out: &mut Vec<Vec<u8>>) -> Verdict {
        let xid = h.xid;
        let reply = |out: &mut Vec<Vec<u8>>, m: Message| out.push(encode(xid, &m));
        let refused = match msg {
            Message::Hello { bitmap } => return self.hello(h, &bitmap, out),
            Message::EchoRequest(data) => {
                reply(out, Message::EchoReply(data));
                Ok(())
            }
            Message::EchoReply(_) | Message::Error { .. } => Ok(()),
            Message::FeaturesRequest => {
                reply(out, Message::FeaturesReply(features::features(bridge.datapath_id())));
                Ok(())
            }
            Message::GetConfigRequest => {
                reply(out, Message::GetConfigReply(lock(&self.state).config));
                Ok(())
            }
            Message::SetConfig(c) => self.set_config(c),
            Message::BarrierRequest => match bridge.barrier() {
                Ok(()) => {
                    reply(out, Message::BarrierReply);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!("openflow: barrier: {e}");
                    Err(OfError::BadRequest(BadRequest::Eperm))
                }
            },
            Message::RoleRequest(r) => self
                .roles
                .request(&self.state, r)
                .map(|r| reply(out, Message::RoleReply(r))),
            Message::GetAsyncRequest => {
                reply(out, Message::GetAsyncReply(lock(&self.state).async_cfg));
                Ok(())
            }
            Message::SetAsync(a) => {
                lock(&self.state).async_cfg = a;
                Ok(())
            }
            Message::MultipartRequest { flags, body } => self.multipart(xid, flags, body, bridge, out),
            Message::QueueGetConfigRequest { port } => {
                reply(
                    out,
                    Message::QueueGetConfigReply {
                        port,
                        queues: Vec::new(),
                    },
                );
                Ok(())
            }
            m @ (Message::PacketOut(_)
            | Message::PortMod(_)
            | Message::TableMod { .. }
            | Message::GroupMod(_)
            | Message::MeterMod(_)) => {
                if self.may_change(out, xid, raw) {
                    self.change(m, bridge)
                } else {
                    Ok(())
                }
            }
            Message::Experimenter { .. } => Err(OfError::BadRequest(BadRequest::BadExperimenter)),
            // What a switch sends, not what it takes.
            _ => Err(OfError::BadRequest(BadRequest::BadType)),
        };
        if let Err(e) = refused {
            error(out, xid, e, raw);
        }
        Verdict::Continue
    }

    /// HELLO: OpenFlow 1.3 if both sides speak it, else an error and the end.
    fn hello(&mut self, h: Header, bitmap: &[u32], out: &mut Vec<Vec<u8>>) -> Verdict {
        let ok = if bitmap.is_empty() {
            h.version >= VERSION
        } else {
            bitmap.first().is_some_and(|b| b & (1 << VERSION) != 0)
        };
        if ok {
            lock(&self.state).ready = true;
            return Verdict::Continue;
        }
        out.push(encode(
            h.xid,
            &Message::Error {
                error: OfError::HelloFailed(HelloFailed::Incompatible),
                data: b"odpx speaks OpenFlow 1.3 (version 0x04) only".to_vec(),
            },
        ));
        Verdict::Close
    }

    fn set_config(&mut self, c: SwitchConfig) -> Result<(), OfError> {
        // Fragments: normal or drop (no reassembly).
        if c.flags > 1 {
            return Err(OfError::SwitchConfigFailed(SwitchConfigFailed::BadFlags));
        }
        lock(&self.state).config = c;
        Ok(())
    }

    /// Messages that change the switch (a master's or equal's).
    fn change(&mut self, m: Message, bridge: &dyn Bridge) -> Result<(), OfError> {
        match m {
            Message::PacketOut(po) => packet_out(po, bridge),
            Message::PortMod(pm) => bridge.port_mod(pm.port_no, pm.hw_addr, pm.config, pm.mask),
            Message::TableMod { table_id, config } => {
                if table_id != 0xff && table_id >= crate::core::rules::N_TABLES {
                    Err(OfError::TableModFailed(TableModFailed::BadTable))
                } else if config != 0 {
                    Err(OfError::TableModFailed(TableModFailed::BadConfig))
                } else {
                    Ok(())
                }
            }
            Message::GroupMod(gm) => {
                let op = group_mod(&gm)?;
                match bridge.group_ops(vec![op]).remove(0) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(group_error(&e)),
                }
            }
            Message::MeterMod(mm) => {
                let op = meter_mod(&mm)?;
                match bridge.meter_ops(vec![op]).remove(0) {
                    Ok(_) => Ok(()),
                    Err(Some(e)) => Err(meter_error(&e)),
                    // What the datapath cannot run (OVS: the provider's refusal).
                    Err(None) => Err(OfError::MeterModFailed(MeterModFailed::BadBand)),
                }
            }
            _ => Ok(()),
        }
    }

    fn multipart(
        &mut self,
        xid: u32,
        flags: u16,
        body: MultipartRequest,
        bridge: &dyn Bridge,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), OfError> {
        if flags & super::codec::message::MORE != 0 {
            // Requests spread over several messages: none odpx takes needs it.
            return Err(OfError::BadRequest(BadRequest::BadMultipart));
        }
        let reply = match body {
            MultipartRequest::Desc => MultipartReply::Desc(features::desc(bridge.datapath_id())),
            MultipartRequest::Flow(req) => {
                let now = bridge.now();
                let flows = bridge.flows(&flow_selector(&req)?);
                MultipartReply::Flow(flows.iter().map(|(r, s)| flow_stats(r, s, now)).collect())
            }
            MultipartRequest::Aggregate(req) => {
                let flows = bridge.flows(&flow_selector(&req)?);
                MultipartReply::Aggregate(AggregateStats {
                    packet_count: flows.iter().map(|(_, s)| s.packets).sum(),
                    byte_count: flows.iter().map(|(_, s)| s.bytes).sum(),
                    flow_count: flows.len() as u32,
                })
            }
            MultipartRequest::Table => MultipartReply::Table(bridge.tables()),
            MultipartRequest::PortStats { port_no } => {
                let want = (port_no != port::ANY).then_some(port_no);
                let stats = bridge.port_stats(want);
                if want.is_some() && stats.is_empty() {
                    return Err(OfError::BadRequest(BadRequest::BadPort));
                }
                MultipartReply::PortStats(stats)
            }
            MultipartRequest::Queue { .. } => MultipartReply::Queue(Vec::new()),
            MultipartRequest::PortDesc => MultipartReply::PortDesc(bridge.ports()),
            MultipartRequest::TableFeatures(set) if set.is_empty() => {
                MultipartReply::TableFeatures(features::table_features())
            }
            MultipartRequest::TableFeatures(_) => {
                return Err(OfError::TableFeaturesFailed(TableFeaturesFailed::Eperm));
            }
            MultipartRequest::Group { group_id } => {
                let now = bridge.now();
                let groups = bridge.groups(group_id);
                MultipartReply::Group(
                    groups
                        .iter()
                        .map(|(g, s, refs)| group_stats(g, s, *refs, now))
                        .collect(),
                )
            }
            MultipartRequest::GroupDesc => {
                MultipartReply::GroupDesc(bridge.groups(ALL_GROUPS).iter().map(|(g, ..)| group_desc(g)).collect())
            }
            MultipartRequest::GroupFeatures => MultipartReply::GroupFeatures(group_features()),
            MultipartRequest::Meter { meter_id } | MultipartRequest::MeterConfig { meter_id } => {
                let config = matches!(body, MultipartRequest::MeterConfig { .. });
                let meters = bridge.meters(meter_id);
                if meter_id != ALL_METERS && meters.is_empty() {
                    return Err(OfError::MeterModFailed(MeterModFailed::UnknownMeter));
                }
                let now = bridge.now();
                if config {
                    MultipartReply::MeterConfig(meters.iter().map(|(m, ..)| meter_config(m)).collect())
                } else {
                    MultipartReply::Meter(meters.iter().map(|(m, s, c)| meter_stats(m, s, c, now)).collect())
                }
            }
            MultipartRequest::MeterFeatures => MultipartReply::MeterFeatures(meter_features()),
            MultipartRequest::Experimenter { .. } => return Err(OfError::BadRequest(BadRequest::BadExperimenter)),
        };
        out.extend(encode_multipart_reply(xid, &reply));
        Ok(())
    }
}

/// PACKET_OUT: the actions, with output to TABLE as a pass through the
/// rule tables from table 0.
fn packet_out(po: PacketOut, bridge: &dyn Bridge) -> Result<(), OfError> {
    if po.buffer_id != NO_BUFFER {
        return Err(OfError::BadRequest(BadRequest::BufferUnknown));
    }
    let valid_in =
        (po.in_port > 0 && po.in_port <= port::MAX) || matches!(po.in_port, port::CONTROLLER | port::ANY | port::LOCAL);
    if !valid_in {
        return Err(OfError::BadRequest(BadRequest::BadPort));
    }
    let mut actions = Vec::with_capacity(po.actions.len());
    for a in &po.actions {
        actions.push(action_from(a, Context::PacketOut)?.unwrap_or(RuleAction::Resubmit {
            in_port: None,
            table: Some(0),
        }));
    }
    bridge
        .packet_out(po.in_port, actions, po.data)
        .map_err(|_| OfError::BadRequest(BadRequest::BadPacket))
}
