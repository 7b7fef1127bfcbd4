//! MPLS in translation: pushing and popping label stack entries, and
//! their TTL.
//!
//! A label stack entry (LSE) is `label:20 | tc:3 | bos:1 | ttl:8`; the
//! key holds the outermost three. As OpenFlow 1.3 and Open vSwitch do:
//! * `push_mpls` adds a new outermost entry after any VLAN tags. On an
//!   MPLS packet it copies the old outermost one (bottom-of-stack clear);
//!   otherwise it is label 0, TC 0, bottom of stack, with the IP TTL (0
//!   for a packet that is not IP).
//! * `pop_mpls` removes the outermost entry and gives the packet the
//!   action's Ethertype. When that was the bottom of the stack, the key
//!   says nothing of the header now exposed: the next action that needs it
//!   freezes the translation ([`super::freeze`]).
//! * `dec_mpls_ttl` sends a packet whose MPLS TTL is 0 or 1 to the
//!   controller (reason `INVALID_TTL`) and ends its pipeline, as `dec_ttl`.
//!
//! Pushes and pops are emitted in place (after committing earlier
//! writes), so the datapath sees them in the rule's order; TTL and
//! `set_field` writes to the outermost entry are committed as a masked
//! `set(mpls(...))`.

use super::Xlate;
use crate::key::attr;
use crate::odp::OdpAction;
use crate::rules::field::Prereq;
use crate::rules::RuleAction;

/// The bottom-of-stack bit of a label stack entry.
pub const MPLS_BOS: u32 = 1 << 8;
/// The TTL bits of a label stack entry.
pub const MPLS_TTL: u32 = 0xff;

/// Attributes of the layers an MPLS push hides, or a pop leaves unparsed.
const BELOW_MPLS: u32 = attr::IPV4
    | attr::IPV6
    | attr::ARP
    | attr::TCP
    | attr::UDP
    | attr::SCTP
    | attr::ICMP
    | attr::ICMPV6
    | attr::ND
    | attr::TCP_FLAGS;

fn is_mpls(ethertype: u16) -> bool {
    matches!(ethertype, 0x8847 | 0x8848)
}

/// Whether `a` needs the headers under a popped label stack (so it
/// cannot run until the packet is parsed again): a lookup, or a read or
/// write of a field beyond Ethernet.
pub(super) fn needs_l3(a: &RuleAction) -> bool {
    match a {
        RuleAction::GotoTable(_) | RuleAction::Resubmit { .. } | RuleAction::DecTtl | RuleAction::PushMpls(_) => true,
        RuleAction::SetField { field, .. } => !matches!(field.prereq(), Prereq::None),
        RuleAction::Load { dst, .. } => !matches!(dst.field.prereq(), Prereq::None),
        RuleAction::Move { src, dst } => [src, dst].iter().any(|s| !matches!(s.field.prereq(), Prereq::None)),
        RuleAction::OutputReg { src, .. } => !matches!(src.field.prereq(), Prereq::None),
        RuleAction::Learn(_) => true,
        _ => false,
    }
}

impl Xlate<'_> {
    pub(super) fn push_mpls(&mut self, ethertype: u16) {
        self.commit();
        self.wc.eth_type = !0;
        let lse = if self.flow.has(attr::MPLS) && self.flow.mpls_depth > 0 {
            self.wc.mpls_lse[0] = !0;
            self.flow.mpls_lse[0] & !MPLS_BOS
        } else {
            let ip = matches!(self.flow.eth_type, 0x0800 | 0x86dd);
            if ip {
                self.wc.ip_ttl = !0;
            }
            MPLS_BOS | if ip { u32::from(self.flow.ip_ttl) } else { 0 }
        };
        self.out.push(OdpAction::PushMpls { lse, ethertype });
        let f = &mut self.flow;
        f.mpls_lse = [lse, f.mpls_lse[0], f.mpls_lse[1]];
        f.mpls_depth = (f.mpls_depth + 1).min(3);
        f.attrs = (f.attrs & !BELOW_MPLS) | attr::MPLS;
        f.eth_type = ethertype;
        self.mpls_written();
    }

    pub(super) fn pop_mpls(&mut self, ethertype: u16) {
        self.wc.eth_type = !0;
        if !self.flow.has(attr::MPLS) || self.flow.mpls_depth == 0 {
            return;
        }
        self.commit();
        self.wc.mpls_lse[0] |= MPLS_BOS;
        let bos = self.flow.mpls_lse[0] & MPLS_BOS != 0;
        self.out.push(OdpAction::PopMpls(ethertype));
        let f = &mut self.flow;
        f.mpls_lse = [f.mpls_lse[1], f.mpls_lse[2], 0];
        f.mpls_depth -= 1;
        f.eth_type = ethertype;
        if bos || f.mpls_depth == 0 {
            f.mpls_lse = [0; 3];
            f.mpls_depth = 0;
            f.attrs &= !attr::MPLS;
            self.l3_unknown = true;
        } else if !is_mpls(ethertype) {
            self.l3_unknown = true;
        }
        self.mpls_written();
    }

    pub(super) fn set_mpls_ttl(&mut self, ttl: u8) {
        if !self.flow.has(attr::MPLS) {
            return;
        }
        self.flow.mpls_lse[0] = (self.flow.mpls_lse[0] & !MPLS_TTL) | u32::from(ttl);
        self.pending.mpls_lse[0] |= MPLS_TTL;
        self.written.mpls_lse[0] |= MPLS_TTL;
    }

    pub(super) fn dec_mpls_ttl(&mut self, table: u8, depth: usize) {
        if !self.flow.has(attr::MPLS) {
            return;
        }
        self.wc.mpls_lse[0] |= MPLS_TTL;
        let ttl = self.flow.mpls_lse[0] & MPLS_TTL;
        if ttl <= 1 {
            self.ttl_expired("dec_mpls_ttl", table, depth);
            return;
        }
        self.set_mpls_ttl((ttl - 1) as u8);
    }

    /// A push or pop wrote the Ethertype and the label stack with values
    /// every packet of the megaflow shares (they come from pinned bits).
    fn mpls_written(&mut self) {
        self.written.eth_type = !0;
        self.written.mpls_lse = [!0; 3];
        self.written.mpls_depth = !0;
        self.written.attrs |= attr::MPLS;
    }
}
