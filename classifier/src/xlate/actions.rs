//! The translator's actions: what each rule action does to the working
//! key, the consulted bits and the datapath actions.

use super::controller::{reason, ToController};
use super::Xlate;
use crate::key::{attr, tun_flag, FlowKey, VLAN_CFI};
use crate::odp::OdpAction;
use crate::rules::field::Field;
use crate::rules::learn::Learn;
use crate::rules::ofctl::{check_match_prereqs, format_learn, format_rule};
use crate::rules::subfield::Subfield;
use crate::rules::RuleAction;

impl Xlate<'_> {
    pub(super) fn action(&mut self, a: &RuleAction, table: u8, depth: usize) {
        match a {
            RuleAction::All => {
                self.wc.in_port = !0;
                for p in self.env.all_ports(self.flow.in_port) {
                    self.output(p);
                }
            }
            RuleAction::Controller { max_len } => self.controller(*max_len, None),
            RuleAction::ClearActions => self.action_set.clear(),
            RuleAction::WriteActions(list) => self.action_set.write(list),
            RuleAction::WriteMetadata { value, mask } => self.write_metadata(*value, *mask),
            RuleAction::SetField {
                field: Field::Metadata,
                value,
                mask,
            } => self.write_metadata(*value as u64, *mask as u64),
            RuleAction::Output { port: p, .. } => {
                self.wc.in_port = !0;
                if *p != self.flow.in_port {
                    self.output(*p);
                }
            }
            RuleAction::InPort => {
                self.wc.in_port = !0;
                self.output(self.flow.in_port);
            }
            RuleAction::Flood => {
                self.wc.in_port = !0;
                for p in self.env.flood_ports(self.flow.in_port) {
                    self.output(p);
                }
            }
            RuleAction::Normal => {
                self.wc.in_port = !0;
                self.wc.eth_src = [0xff; 6];
                self.wc.eth_dst = [0xff; 6];
                self.wc.vlan_tci = !0;
                let flow = self.flow;
                match self.env.normal_lookup(&flow) {
                    Some(p) if p != flow.in_port => self.output(p),
                    Some(_) => {}
                    None => {
                        for p in self.env.flood_ports(flow.in_port) {
                            self.output(p);
                        }
                    }
                }
            }
            RuleAction::SetField { field, value, mask } => self.set_field(*field, *value, *mask),
            RuleAction::Load { dst, value } => self.set_field(dst.field, value << dst.ofs, dst.mask()),
            RuleAction::Move { src, dst } => {
                let v = self.read(src);
                self.set_field(dst.field, v << dst.ofs, dst.mask());
            }
            RuleAction::Learn(l) => self.learn(l, table, depth),
            RuleAction::OutputReg { src, .. } => {
                let port = self.read(src) as u32;
                self.wc.in_port = !0;
                if port != self.flow.in_port {
                    self.output(port);
                }
            }
            RuleAction::DecTtl => {
                // The prerequisite (ip) guarantees the TTL field exists.
                self.wc.ip_ttl = !0;
                if self.flow.ip_ttl <= 1 {
                    self.ttl_expired("dec_ttl", table, depth);
                    return;
                }
                self.flow.ip_ttl -= 1;
                self.pending.ip_ttl = !0;
                // The packet's TTL is pinned above, so the result is the
                // same for every packet of the megaflow.
                self.written.ip_ttl = !0;
            }
            RuleAction::PushVlan(tpid) => {
                self.consult_tags();
                self.vlan_dirty = true;
                self.vlan_touched = true;
                if self.flow.has(attr::VLAN) {
                    // The old outer tag becomes the inner one; the new tag copies its TCI.
                    self.wc.cvlan_tci |= VLAN_CFI;
                    self.flow.cvlan_tpid = self.flow.vlan_tpid;
                    self.flow.cvlan_tci = self.flow.vlan_tci;
                    self.flow.attrs |= attr::CVLAN | attr::CENCAP;
                } else {
                    self.flow.vlan_tci = VLAN_CFI;
                    self.vlan_written = !0;
                    self.flow.attrs |= attr::VLAN | attr::ENCAP;
                }
                self.flow.vlan_tpid = *tpid;
            }
            RuleAction::PopVlan => {
                self.consult_tags();
                if self.flow.has(attr::VLAN) {
                    self.vlan_dirty = true;
                    self.vlan_touched = true;
                    if self.flow.has(attr::CVLAN) {
                        self.flow.vlan_tpid = self.flow.cvlan_tpid;
                        self.flow.vlan_tci = self.flow.cvlan_tci;
                        self.flow.cvlan_tpid = 0;
                        self.flow.cvlan_tci = 0;
                        self.flow.attrs &= !(attr::CVLAN | attr::CENCAP);
                    } else {
                        self.flow.vlan_tpid = 0;
                        self.flow.vlan_tci = 0;
                        self.flow.attrs &= !(attr::VLAN | attr::ENCAP);
                    }
                }
            }
            RuleAction::PushMpls(et) => self.push_mpls(*et),
            RuleAction::PopMpls(et) => self.pop_mpls(*et),
            RuleAction::SetMplsTtl(ttl) => self.set_mpls_ttl(*ttl),
            RuleAction::DecMplsTtl => self.dec_mpls_ttl(table, depth),
            RuleAction::ModVlanVid(vid) => self.vlan_write(Field::DlVlan, *vid as u128, 0x0fff),
            RuleAction::ModVlanPcp(pcp) => self.vlan_write(Field::DlVlanPcp, *pcp as u128, 0x7),
            RuleAction::Resubmit { in_port, table: t } => {
                let saved = (self.flow.in_port, self.written.in_port);
                if let Some(p) = in_port {
                    self.flow.in_port = *p;
                    self.written.in_port = !0;
                }
                self.table(t.unwrap_or(table), depth + 1, true);
                (self.flow.in_port, self.written.in_port) = saved;
            }
            RuleAction::GotoTable(t) => self.table(*t, depth + 1, false),
            RuleAction::Group(g) => self.group(*g, table, depth + 1),
            RuleAction::Meter(id) => {
                // The meter sees the packet as the actions so far made it
                // (a remark then edits those bytes), and what it drops
                // stops here; what it lets through goes on.
                self.commit();
                // The datapath names it by its slot (see `MeterTable`).
                let slot = self.rules.meters().slot(*id).unwrap_or(*id);
                self.out.push(OdpAction::Meter(slot));
            }
        }
    }

    /// A received packet goes through its port's ingress policer first, if
    /// the port has one ([`crate::rules::meter::policer`]). With policers
    /// about, every megaflow pins the input port, so that a policed and
    /// an unpoliced port never share one.
    pub(super) fn police(&mut self) {
        let meters = self.rules.meters();
        if !meters.has_policers() {
            return;
        }
        self.wc.in_port = !0;
        if let Some(slot) = meters.policer_slot(self.flow.in_port) {
            self.out.push(OdpAction::Meter(slot));
        }
    }

    /// Writes `value` into the bits of `field` that `mask` selects: into
    /// the working key, and for packet fields into what the next commit
    /// sets in the datapath.
    fn set_field(&mut self, field: Field, value: u128, mask: u128) {
        if field.is_pipeline() {
            // Pipeline state: nothing for the datapath to do.
            field.put(&mut self.flow, value, mask);
            field.put(&mut self.written, u128::MAX, mask);
            return;
        }
        if matches!(field, Field::DlVlan | Field::DlVlanPcp | Field::VlanTci) {
            self.vlan_write(field, value, mask);
            return;
        }
        field.put(&mut self.flow, value, mask);
        let mut m = FlowKey::ZERO;
        field.put(&mut m, mask, u128::MAX);
        self.pending.or_assign(&m);
        self.written.or_assign(&m);
        if matches!(
            field,
            Field::TunId | Field::TunSrc | Field::TunDst | Field::TunIpv6Src | Field::TunIpv6Dst
        ) {
            self.flow.attrs |= attr::TUNNEL;
            self.written.attrs |= attr::TUNNEL;
            if field == Field::TunId {
                self.flow.tun_flags |= tun_flag::KEY;
                self.written.tun_flags |= tun_flag::KEY;
            }
        }
    }

    /// A subfield's value as the actions so far made it. Reading packet
    /// bits makes the result depend on them, so they are un-wildcarded
    /// (pipeline state is itself made of what decided it).
    fn read(&mut self, src: &Subfield) -> u128 {
        if !src.field.is_pipeline() {
            src.mark(&mut self.wc);
        }
        src.get(&self.flow)
    }

    /// `learn`: the rule the packet teaches, for the caller to add (see
    /// [`super::Translation::learned`]). A rule whose match lacks its
    /// prerequisites is not learned (Open vSwitch refuses to add it).
    fn learn(&mut self, l: &Learn, table: u8, depth: usize) {
        let rule = l.rule(|sf| self.read(sf));
        let refused = check_match_prereqs(&rule.matched).err();
        if self.trace.is_some() {
            let what = match &refused {
                Some(why) => format!("not learned: {why}"),
                None => format_rule(&rule),
            };
            self.step(table, depth, Some(format!("{} -> {what}", format_learn(l))));
        }
        if refused.is_none() {
            self.learned.push(rule);
        }
    }

    /// mod_vlan_vid / mod_vlan_pcp / set_field on VLAN bits (OpenFlow 1.0
    /// semantics: a tag is pushed when there is none).
    fn vlan_write(&mut self, f: Field, value: u128, mask: u128) {
        self.consult_tags();
        self.vlan_dirty = true;
        self.vlan_touched = true;
        if !self.flow.has(attr::VLAN) {
            self.flow.attrs |= attr::VLAN | attr::ENCAP;
            self.flow.vlan_tpid = 0x8100;
            self.flow.vlan_tci = VLAN_CFI;
            self.vlan_written = !0;
        }
        f.put(&mut self.flow, value, mask);
        self.flow.vlan_tci |= VLAN_CFI;
        let mut m = FlowKey::ZERO;
        f.put(&mut m, mask, u128::MAX);
        self.vlan_written |= m.vlan_tci;
    }

    /// A decremented TTL ran out: as OVS, the controller hears of it (if
    /// one listens), and the pipeline stops here.
    pub(super) fn ttl_expired(&mut self, action: &str, table: u8, depth: usize) {
        self.step(
            table,
            depth,
            Some(format!("{action}: TTL expired, sent to the controller")),
        );
        self.controller(u16::MAX, Some(reason::INVALID_TTL));
        self.halted = true;
    }

    /// `write_metadata`: pipeline state only, nothing for the datapath.
    fn write_metadata(&mut self, value: u64, mask: u64) {
        self.flow.metadata = (self.flow.metadata & !mask) | (value & mask);
        self.written.metadata |= mask;
    }

    /// A packet-in: a `userspace` action with what the agent needs (see
    /// [`super::controller`]), after the packet is made what the actions
    /// so far made of it.
    pub(super) fn controller(&mut self, max_len: u16, why: Option<u8>) {
        self.commit();
        self.wc.in_port = !0;
        let tunnelled = self.flow.has(attr::TUNNEL);
        if tunnelled {
            self.wc.tun_id = !0;
            self.wc.attrs |= attr::TUNNEL;
        }
        let c = self.current;
        let to = ToController {
            reason: why.unwrap_or(if c.table_miss { reason::NO_MATCH } else { reason::ACTION }),
            table_id: c.table,
            cookie: c.cookie,
            max_len,
            in_port: self.flow.in_port,
            metadata: self.flow.metadata,
            tun_id: tunnelled.then_some(self.flow.tun_id),
        };
        self.out.push(OdpAction::Userspace {
            pid: 0,
            userdata: Some(to.encode()),
            actions: false,
            tunnel_out_port: None,
        });
    }
}
