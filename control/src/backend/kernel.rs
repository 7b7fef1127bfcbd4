//! Kernel mode's backend: the Linux Open vSwitch kernel datapath, over
//! generic netlink.
//!
//! # What
//! * Flow operations and the answers to misses go to the kernel in
//!   batches: consecutive operations are gathered and sent as one netlink
//!   batch (puts first, so an upcalled packet runs after its own flow's
//!   install), and each refusal comes back to the core as
//!   [`Feedback::Refused`] with the kernel's errno and its own words.
//! * A sweep asks the dump thread for a terse dump; its report reaches the
//!   core as data through the driver.
//! * In hybrid mode, actions are sent in the kernel's form: odpx's
//!   userspace VXLAN push becomes `set(tunnel(...))` and an output to the
//!   kernel's VXLAN vport ([`odpx_offload::policy::kernel_actions`]).
//!
//! # Meters
//! Pure kernel mode runs meters in the kernel's meter table (the
//! `ovs_meter` family, [`KernelMeters`]), by slot, and reads their
//! counters at each sweep. The kernel's meters have one drop band; a
//! meter with more, or a DSCP remark, is refused before anything is set
//! ([`Backend::refuses_meter`]). In hybrid mode metered megaflows stay in
//! the PMDs (the offload policy never moves a `meter` action), so the
//! kernel side has no meters.
//!
//! # What the kernel cannot do
//! The kernel datapath cannot rewrite ICMP, ARP or ND fields, the IP
//! protocol or fragment type, the Ethertype, TCP flags or the input port:
//! in pure kernel mode a rule that sets one is refused ([`refusal`]), at
//! start and by any rule change, before the core sees it.

use super::Backend;
use crate::core::offload::KernelPortSet;
use crate::core::{Feedback, Op, Packet};
use hashbrown::HashMap;
use odpx_classifier::flow_op::{Actions, FlowOp, Holder};
use odpx_classifier::odp::OdpAction;
use odpx_classifier::rules::field::Field;
use odpx_classifier::rules::group::Group;
use odpx_classifier::rules::meter::Meter;
use odpx_classifier::rules::{ofctl, Rule, RuleAction};
use odpx_offload::error::OdpError;
use odpx_offload::kernel::{FlowTable, PacketOut, RateLimitedLog};
use odpx_offload::meters::{KernelMeter, KernelMeterStats, MeterClient};
use odpx_offload::policy::kernel_actions;

/// The kernel's meter table, or a model of it in tests.
pub trait KernelMeters: Send {
    fn set(&mut self, slot: u32, m: &KernelMeter) -> Result<(), OdpError>;
    fn delete(&mut self, slot: u32) -> Result<(), OdpError>;
    fn stats(&mut self, slot: u32) -> Result<KernelMeterStats, OdpError>;
}

impl KernelMeters for MeterClient {
    fn set(&mut self, slot: u32, m: &KernelMeter) -> Result<(), OdpError> {
        MeterClient::set(self, slot, m)
    }

    fn delete(&mut self, slot: u32) -> Result<(), OdpError> {
        MeterClient::delete(self, slot)
    }

    fn stats(&mut self, slot: u32) -> Result<KernelMeterStats, OdpError> {
        MeterClient::stats(self, slot)
    }
}

/// The kernel datapath (see the module documentation).
pub struct Kernel {
    flows: Box<dyn FlowTable>,
    /// Hybrid mode: the kernel's vports, for the kernel's form of actions.
    ports: Option<KernelPortSet>,
    /// Pure kernel mode: rules the kernel cannot run are refused.
    refuse_rules: bool,
    log: RateLimitedLog,
    /// Where `userspace()` actions send their packets (the upcall socket
    /// the agent's packet-ins come through); 0 until set.
    upcall_pid: u32,
    /// The batch being gathered.
    ops: Vec<FlowOp>,
    packets: Vec<PacketOut>,
    /// Pure kernel mode: the kernel's meters, and the slot of each meter
    /// set there, by meter number.
    meters: Option<Box<dyn KernelMeters>>,
    meter_slots: HashMap<u32, u32>,
}

impl Kernel {
    /// Pure kernel mode over `flows` (the kernel's table, or a model).
    pub fn pure(flows: Box<dyn FlowTable>) -> Kernel {
        Kernel::new(flows, None, true)
    }

    /// Hybrid mode's kernel side: `ports` are the kernel's vports.
    pub fn offload(flows: Box<dyn FlowTable>, ports: KernelPortSet) -> Kernel {
        Kernel::new(flows, Some(ports), false)
    }

    fn new(flows: Box<dyn FlowTable>, ports: Option<KernelPortSet>, refuse_rules: bool) -> Kernel {
        Kernel {
            flows,
            ports,
            refuse_rules,
            log: RateLimitedLog::new(5),
            upcall_pid: 0,
            ops: Vec::new(),
            packets: Vec::new(),
            meters: None,
            meter_slots: HashMap::new(),
        }
    }

    /// Meters run in `meters` (pure kernel mode).
    pub fn with_meters(mut self, meters: Box<dyn KernelMeters>) -> Kernel {
        self.meters = Some(meters);
        self
    }

    /// Sets or deletes a kernel meter, after the flow operations before it
    /// (a meter is set before any flow that names it and deleted after).
    fn meter_op(&mut self, op: Op) -> Option<Op> {
        let Some(meters) = self.meters.as_mut() else {
            return Some(op);
        };
        let done = match &op {
            Op::SetMeter { slot, meter } => {
                let set = KernelMeter::from_meter(meter).and_then(|k| meters.set(*slot, &k).map_err(|e| e.to_string()));
                if set.is_ok() {
                    // Only a meter the kernel holds is read at sweeps.
                    self.meter_slots.insert(meter.id, *slot);
                }
                set
            }
            Op::DeleteMeter { slot, id } => {
                self.meter_slots.remove(id);
                meters.delete(*slot).map_err(|e| e.to_string())
            }
            _ => return Some(op),
        };
        if let Err(e) = done {
            self.log.say(|| format!("kernel datapath: {e}"));
        }
        None
    }

    /// Every kernel meter's counters, by meter number.
    fn meter_readings(&mut self) -> Option<Feedback> {
        let meters = self.meters.as_mut()?;
        if self.meter_slots.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for (&id, &slot) in &self.meter_slots {
            match meters.stats(slot) {
                Ok(s) => out.push((
                    id,
                    odpx_dataplane::meter::MeterReading {
                        packets: s.packets,
                        bytes: s.bytes,
                        bands: s.bands,
                    },
                )),
                Err(e) => self.log.say(|| format!("kernel datapath: reading meter {id}: {e}")),
            }
        }
        Some(Feedback::Meters(out))
    }

    /// `userspace()` actions (packet-ins) send to the socket `pid`.
    pub fn with_upcall_pid(mut self, pid: u32) -> Kernel {
        self.upcall_pid = pid;
        self
    }

    /// The kernel's form of a megaflow's actions; as they are where the
    /// kernel cannot run them, so that it refuses them with its own reason.
    /// A `userspace()` action gets the upcall socket's pid.
    fn kernel_form(&self, actions: Actions) -> Actions {
        let actions = match &self.ports {
            Some(p) => kernel_actions(&actions, p).map_or(actions, Into::into),
            None => actions,
        };
        if self.upcall_pid == 0 || !actions.iter().any(|a| matches!(a, OdpAction::Userspace { .. })) {
            return actions;
        }
        let pid = self.upcall_pid;
        let with_pid: Vec<OdpAction> = actions
            .iter()
            .cloned()
            .map(|a| match a {
                OdpAction::Userspace {
                    pid: 0,
                    userdata,
                    actions,
                    tunnel_out_port,
                } => OdpAction::Userspace {
                    pid,
                    userdata,
                    actions,
                    tunnel_out_port,
                },
                other => other,
            })
            .collect();
        with_pid.into()
    }

    /// Gathers `op` if it is one for the kernel; gives it back if not.
    pub(super) fn take(&mut self, op: Op, feedback: &mut Vec<Feedback>) -> Option<Op> {
        match op {
            Op::Flow {
                holder: Holder::Kernel,
                op,
            } => {
                let op = match op {
                    FlowOp::Install { ufid, matched, actions } => FlowOp::Install {
                        ufid,
                        matched,
                        actions: self.kernel_form(actions),
                    },
                    FlowOp::Modify { ufid, matched, actions } => FlowOp::Modify {
                        ufid,
                        matched,
                        actions: self.kernel_form(actions),
                    },
                    delete => delete,
                };
                self.ops.push(op);
            }
            Op::Upcalled {
                install,
                actions,
                packet: Packet::Kernel { key_raw, bytes },
            } => {
                let actions = self.kernel_form(actions);
                if let Some((ufid, matched)) = install {
                    self.ops.push(FlowOp::Install {
                        ufid,
                        matched,
                        actions: actions.clone(),
                    });
                }
                // A drop needs no execution.
                if !actions.is_empty() {
                    self.packets.push(PacketOut {
                        key_raw,
                        packet: bytes,
                        actions,
                    });
                }
            }
            Op::KernelDelete(ids) => {
                self.flush(feedback);
                if let Err(e) = self.flows.delete(&ids) {
                    self.log.say(|| format!("kernel datapath: deleting flows: {e}"));
                }
            }
            Op::Sweep { token, .. } => {
                self.flush(feedback);
                self.flows.request_dump(token);
                feedback.extend(self.meter_readings());
            }
            Op::SetMeter { .. } | Op::DeleteMeter { .. } => {
                self.flush(feedback);
                return self.meter_op(op);
            }
            // Every operation is acknowledged as it is carried out.
            Op::Barrier { .. } => self.flush(feedback),
            other => return Some(other),
        }
        None
    }

    /// Sends the gathered batch and passes on what the kernel refused.
    pub(super) fn flush(&mut self, feedback: &mut Vec<Feedback>) {
        if self.ops.is_empty() && self.packets.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.ops);
        let packets = std::mem::take(&mut self.packets);
        let applied = match self.flows.apply(&ops, &packets) {
            Ok(a) => a,
            Err(e) => {
                // The socket itself failed: nothing is known to have been
                // done, so no install is kept.
                self.log.say(|| format!("kernel datapath: {e}"));
                let installs = ops
                    .iter()
                    .filter_map(|op| match op {
                        FlowOp::Install { ufid, .. } => Some(*ufid),
                        _ => None,
                    })
                    .collect();
                feedback.push(Feedback::Lost { installs });
                return;
            }
        };
        for (ufid, packets, bytes) in applied.deleted {
            feedback.push(Feedback::FinalStats { ufid, packets, bytes });
        }
        for (op, r) in ops.into_iter().zip(applied.ops) {
            let Err(e) = r else { continue };
            let errno = e.errno();
            let quiet = matches!((&op, errno), (FlowOp::Install { .. }, Some(17)) | (_, Some(2)));
            if !quiet {
                let what = match op {
                    FlowOp::Install { .. } => "a flow",
                    FlowOp::Modify { .. } => "new actions",
                    FlowOp::Delete { .. } => "a flow deletion",
                };
                self.log.say(|| format!("the kernel refused {what}: {e}"));
            }
            feedback.push(Feedback::Refused {
                op,
                errno,
                reason: reason_of(&e),
            });
        }
        for r in applied.packets {
            if let Err(e) = r {
                self.log
                    .say(|| format!("the kernel would not run an upcalled packet: {e}"));
                feedback.push(Feedback::NotRun { reason: reason_of(&e) });
            }
        }
    }
}

impl Backend for Kernel {
    fn execute(&mut self, ops: Vec<Op>, feedback: &mut Vec<Feedback>) {
        for op in ops {
            match self.take(op, feedback) {
                None => {}
                Some(Op::Mark(m)) => {
                    self.flush(feedback);
                    feedback.push(Feedback::Reached(m));
                }
                Some(other) => tracing::warn!("kernel datapath: an operation for another datapath: {other:?}"),
            }
        }
        self.flush(feedback);
    }

    fn refuses(&self, rule: &Rule) -> Option<String> {
        self.refuse_rules.then(|| refusal(rule)).flatten()
    }

    fn refuses_group(&self, group: &Group) -> Option<String> {
        self.refuse_rules.then(|| group_refusal(group)).flatten()
    }

    fn refuses_meter(&self, meter: &Meter) -> Option<String> {
        if !self.refuse_rules {
            return None;
        }
        if self.meters.is_none() {
            return Some("kernel mode: this kernel has no datapath meters (ovs_meter)".into());
        }
        KernelMeter::from_meter(meter).err()
    }
}

/// Why the kernel datapath cannot carry out `rule`, if it cannot.
pub fn refusal(rule: &Rule) -> Option<String> {
    let arp = rule.matched.key.eth_type == 0x0806 && rule.matched.mask.eth_type != 0;
    let (what, field) = refused_set(&rule.actions, arp)?;
    Some(format!(
        "rule '{}': the kernel datapath cannot rewrite {what} (set_field ->{}), datapath = \"kernel\"",
        ofctl::format_rule(rule),
        field.name()
    ))
}

/// Why the kernel datapath cannot carry out a group's buckets, if it cannot.
pub fn group_refusal(group: &Group) -> Option<String> {
    group.buckets.iter().find_map(|b| {
        let (what, field) = refused_set(&b.actions, false)?;
        Some(format!(
            "group {}: the kernel datapath cannot rewrite {what} (set_field ->{}), datapath = \"kernel\"",
            group.id,
            field.name()
        ))
    })
}

/// The first set of a field the kernel cannot rewrite (`arp`: the
/// packets are ARP, whose addresses it cannot rewrite either).
fn refused_set(actions: &[RuleAction], arp: bool) -> Option<(&'static str, Field)> {
    for a in actions {
        if let RuleAction::SetField { field, .. } = a {
            let what = match field {
                Field::IcmpType | Field::IcmpCode => "ICMP fields",
                Field::ArpOp | Field::ArpSha | Field::ArpTha => "ARP fields",
                Field::NdTarget | Field::NdSll | Field::NdTll => "neighbour discovery fields",
                Field::NwProto | Field::NwFrag => "the IP protocol or fragment type",
                Field::DlType => "the Ethertype",
                Field::TcpFlags => "TCP flags",
                Field::InPort => "the input port",
                Field::NwSrc | Field::NwDst if arp => "ARP fields",
                _ => continue,
            };
            return Some((what, *field));
        }
    }
    None
}

/// A refusal's reason without the flow it was about: the kernel's errno
/// and its own words.
fn reason_of(e: &OdpError) -> String {
    match e {
        OdpError::Kernel { errno, ext_ack, .. } => {
            let name = std::io::Error::from_raw_os_error(*errno).to_string();
            let name = name.split(" (os error").next().unwrap_or(&name).to_string();
            match ext_ack {
                Some(why) => format!("errno {errno} ({name}): kernel says: {why}"),
                None => format!("errno {errno} ({name})"),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::flow_op::Ufid;
    use odpx_classifier::odp::parse_key;
    use odpx_offload::client::{Flow, FlowId};
    use odpx_offload::error::Op as OdpOp;
    use odpx_offload::kernel::Applied;

    /// A kernel that refuses every install with EINVAL and its words.
    struct Refusing;

    impl FlowTable for Refusing {
        fn apply(&mut self, ops: &[FlowOp], packets: &[PacketOut]) -> Result<Applied, OdpError> {
            let refused = || OdpError::Kernel {
                op: OdpOp::Flow,
                errno: 22,
                context: "flow in_port(1),eth()".into(),
                ext_ack: Some("Flow actions may not be safe on all matching packets.".into()),
            };
            Ok(Applied {
                ops: ops.iter().map(|_| Err(refused())).collect(),
                packets: packets.iter().map(|_| Ok(())).collect(),
                deleted: Vec::new(),
            })
        }
        fn delete(&mut self, _: &[FlowId]) -> Result<(), OdpError> {
            Ok(())
        }
        fn dump(&mut self) -> Result<Vec<Flow>, OdpError> {
            Ok(Vec::new())
        }
        fn request_dump(&self, _: u64) {}
    }

    #[test]
    fn a_refusal_comes_back_with_the_kernels_errno_and_words() {
        let mut k = Kernel::pure(Box::new(Refusing));
        let m = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)")
            .unwrap()
            .matched;
        let ufid = Ufid::of(&m, Holder::Kernel);
        let mut fb = Vec::new();
        k.execute(
            vec![Op::Upcalled {
                install: Some((ufid, Box::new(m))),
                actions: vec![odpx_classifier::odp::OdpAction::Output(2)].into(),
                packet: Packet::Kernel {
                    key_raw: vec![],
                    bytes: vec![0; 60],
                },
            }],
            &mut fb,
        );
        let [Feedback::Refused {
            op: FlowOp::Install { ufid: u, .. },
            errno,
            reason,
        }] = fb.as_slice()
        else {
            panic!("one refusal: {fb:?}");
        };
        assert_eq!((*u, *errno), (ufid, Some(22)));
        assert_eq!(
            reason,
            "errno 22 (Invalid argument): kernel says: Flow actions may not be safe on all matching packets."
        );
    }

    #[test]
    fn rules_the_kernel_cannot_run_are_named() {
        let r = |t: &str| ofctl::parse_rule(t).unwrap();
        assert!(refusal(&r("priority=1,ip,actions=mod_nw_dst:10.0.0.1,output:2")).is_none());
        assert!(refusal(&r("priority=1,tcp,actions=mod_tp_dst:80,NORMAL")).is_none());
        let e = refusal(&r("priority=1,icmp,actions=set_field:3->icmp_type,output:2")).unwrap();
        assert!(e.contains("cannot rewrite ICMP fields"), "{e}");
        let e = refusal(&r("priority=1,arp,actions=set_field:10.0.0.9->arp_spa,output:2")).unwrap();
        assert!(e.contains("ARP fields"), "{e}");
        let g = |t: &str| ofctl::parse_group(t).unwrap();
        assert!(group_refusal(&g("group_id=4,type=all,bucket=mod_nw_dst:10.0.0.1,output:2")).is_none());
        let e = group_refusal(&g(
            "group_id=4,type=all,bucket=output:1,bucket=set_field:3->icmp_type,output:2",
        ))
        .unwrap();
        assert!(
            e.starts_with("group 4: the kernel datapath cannot rewrite ICMP fields"),
            "{e}"
        );
    }
}
