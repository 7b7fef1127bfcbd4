//! The ODP generic-netlink client: datapaths, vports, flows, packets.
//!
//! # What
//! [`OdpClient`] speaks the four families of the kernel's Open vSwitch
//! datapath (`ovs_datapath`, `ovs_vport`, `ovs_flow`, `ovs_packet`): it
//! builds each request's attributes, sends it through a
//! [`Channel`](crate::channel::Channel) (framing, batching, errors), and
//! hands the replies to [`crate::replies`], which decodes them. Upcalls
//! arrive elsewhere ([`crate::upcall`]).
//!
//! # Batching
//! [`OdpClient::put_flows`], [`OdpClient::del_flows`] and
//! [`OdpClient::batch`] send many requests in one `send` and collect one
//! result per request, so a failed flow is reported by its index and never
//! stops the others.
//!
//! # Threads
//! A client owns one socket and is used by one thread at a time (`&mut
//! self`). Upcall listeners own their sockets; open one per thread.

use crate::actions::encode_actions;
use crate::channel::{request, resolve_family, Channel, Fam, Families, KernelLog, Request, EINVAL};
use crate::error::{EncodeError, OdpError, Op};
use crate::keys::encode_match;
use crate::nla::Writer;
use crate::uapi::{self, cmd, dp_attr, dp_feature, flow_attr, packet_attr, packet_cmd, tunnel_opt, vport_attr};
use neli::consts::nl::NlmF;
use odpx_classifier::odp::{OdpAction, OdpKey};

pub use crate::replies::{
    format_ufid, format_used, monotonic_ms, parse_ufid, tcp_flag_letters, Datapath, DpStats, Flow, MegaflowStats,
    Vport, VportStats, VportType,
};
use crate::replies::{parse_datapath, parse_flow, parse_vport};

/// Datapath changes for [`OdpClient::set_datapath`].
#[derive(Clone, Debug, Default)]
pub struct DatapathSettings {
    pub user_features: Option<u32>,
    pub masks_cache_size: Option<u32>,
    pub per_cpu_pids: Option<Vec<u32>>,
    pub upcall_pid: Option<u32>,
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
        let mut put = FlowPut::with_ufid(key, actions, mode, None)?;
        put.describe = key.to_string();
        Ok(put)
    }

    /// Encodes a flow named by its UFID: errors name the UFID, and no ODP
    /// text is made (formatting the key costs more than encoding it, on
    /// the upcall path).
    pub fn with_ufid(
        key: &OdpKey,
        actions: &[OdpAction],
        mode: PutMode,
        ufid: Option<&[u8]>,
    ) -> Result<FlowPut, EncodeError> {
        let enc = encode_match(key)?;
        Ok(FlowPut {
            key: enc.key,
            mask: Some(enc.mask),
            actions: encode_actions(actions)?,
            ufid: ufid.map(<[u8]>::to_vec),
            mode,
            clear_stats: false,
            describe: ufid.map_or_else(String::new, |u| format!("ufid:{}", format_ufid(u))),
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

    fn execute_req(&self, dp_ifindex: i32, e: &Execute) -> Request {
        let mut attrs = vec![
            (packet_attr::PACKET, e.packet.to_vec()),
            (packet_attr::KEY, e.key.clone()),
            (packet_attr::ACTIONS, e.actions.clone()),
        ];
        if e.probe {
            attrs.push((packet_attr::PROBE, Vec::new()));
        }
        request(&self.families, Fam::Packet, packet_cmd::EXECUTE, dp_ifindex, attrs)
    }

    /// Runs actions on a packet in the kernel datapath.
    pub fn execute(&mut self, dp_ifindex: i32, e: &Execute) -> Result<(), OdpError> {
        let req = self.execute_req(dp_ifindex, e);
        self.ch.one(req, Op::Packet, || "packet execute".into())?;
        Ok(())
    }

    /// Sends flow puts, flow deletes and packet executions in one batch, in
    /// this order, and returns one result per request: for a delete, the
    /// flow as it went, with its last statistics (the kernel echoes it,
    /// without key, mask or actions). A refused request carries the
    /// kernel's errno and, for EINVAL, the reason the kernel logged for
    /// the batch.
    pub fn batch(
        &mut self,
        dp_ifindex: i32,
        reqs: &[DpRequest],
    ) -> Result<Vec<Result<Option<Flow>, OdpError>>, OdpError> {
        let framed: Vec<Request> = reqs
            .iter()
            .map(|r| match r {
                DpRequest::Put(f) => self.put_req(dp_ifindex, f),
                DpRequest::Delete(id) => {
                    let mut attrs = Self::id_attrs(id);
                    let omit = uapi::ufid_flag::OMIT_KEY | uapi::ufid_flag::OMIT_MASK | uapi::ufid_flag::OMIT_ACTIONS;
                    attrs.push((flow_attr::UFID_FLAGS, omit.to_ne_bytes().to_vec()));
                    let mut req = request(&self.families, Fam::Flow, cmd::DEL, dp_ifindex, attrs);
                    req.flags = NlmF::ECHO;
                    req
                }
                DpRequest::Execute(e) => self.execute_req(dp_ifindex, e),
            })
            .collect();
        let mark = KernelLog::mark();
        let results = self.ch.transact(&framed)?;
        let mut logged: Option<Option<String>> = None;
        Ok(results
            .into_iter()
            .zip(reqs)
            .map(|(r, q)| {
                r.map(|replies| match q {
                    DpRequest::Delete(_) => replies.first().and_then(|r| parse_flow(r).ok()),
                    _ => None,
                })
                .map_err(|e| {
                    let ext_ack = match e.errno {
                        EINVAL => logged
                            .get_or_insert_with(|| KernelLog::openvswitch_lines_since(mark))
                            .clone()
                            .or(e.ext_ack),
                        _ => e.ext_ack,
                    };
                    let (op, context) = match q {
                        DpRequest::Put(f) => (Op::Flow, format!("flow {}", f.describe)),
                        DpRequest::Delete(_) => (Op::Flow, "flow".to_string()),
                        DpRequest::Execute(_) => (Op::Packet, "packet execute".to_string()),
                    };
                    OdpError::Kernel {
                        op,
                        errno: e.errno,
                        context,
                        ext_ack,
                    }
                })
            })
            .collect())
    }
}

/// One request of a mixed batch ([`OdpClient::batch`]).
#[derive(Clone, Copy, Debug)]
pub enum DpRequest<'a> {
    Put(&'a FlowPut),
    Delete(&'a FlowId),
    Execute(&'a Execute<'a>),
}
