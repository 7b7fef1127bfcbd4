//! Emitting datapath actions: outputs, and the set, push and pop actions
//! that make the packet what the rule actions so far made of its key.

use super::Xlate;
use crate::key::{attr, tun_flag, FlowKey, VLAN_CFI};
use crate::odp::{attr_fields, OdpAction, SetAction};

impl Xlate<'_> {
    /// Records that the VLAN tag structure (which tags exist) was read.
    pub(super) fn consult_tags(&mut self) {
        self.wc.attrs |= attr::VLAN | attr::CVLAN;
        self.wc.vlan_tci |= VLAN_CFI;
        self.wc.cvlan_tci |= VLAN_CFI;
    }

    pub(super) fn output(&mut self, port: u32) {
        if !self.env.forwards_to(port) {
            return;
        }
        self.commit();
        self.out.push(OdpAction::Output(port));
    }

    /// Emits set/push/pop actions for everything written since the last commit.
    pub(super) fn commit(&mut self) {
        if self.vlan_dirty {
            for _ in 0..self.committed_tags {
                self.out.push(OdpAction::PopVlan);
            }
            let tags: Vec<(u16, u16)> = [
                (self.flow.has(attr::CVLAN), self.flow.cvlan_tpid, self.flow.cvlan_tci),
                (self.flow.has(attr::VLAN), self.flow.vlan_tpid, self.flow.vlan_tci),
            ]
            .into_iter()
            .filter(|(p, _, _)| *p)
            .map(|(_, t, c)| (t, c))
            .collect();
            // TCI bits and TPIDs pushed but not written come from the packet.
            self.consult_tags();
            self.wc.vlan_tci |= !self.vlan_written;
            self.wc.vlan_tpid = !0;
            if self.flow.has(attr::CVLAN) {
                self.wc.cvlan_tci = !0;
                self.wc.cvlan_tpid = !0;
            }
            for (tpid, tci) in tags {
                self.out.push(OdpAction::PushVlan { tpid, tci });
            }
            self.committed_tags = self.flow.has(attr::VLAN) as u8 + self.flow.has(attr::CVLAN) as u8;
            self.vlan_dirty = false;
        }
        if self.pending.is_zero() {
            return;
        }
        let pending = self.pending;
        self.pending = FlowKey::ZERO;
        // Tunnel: always a full set(tunnel(...)); unset parts default like
        // an OVS tunnel port (ttl 64, df).
        if !pending.masked(&attr_fields(attr::TUNNEL)).is_zero() {
            let mut t = self.flow;
            if t.tun_ttl == 0 {
                t.tun_ttl = 64;
            }
            if pending.tun_flags & tun_flag::DF == 0 {
                t.tun_flags |= tun_flag::DF;
            }
            t.attrs = attr::TUNNEL;
            // Tunnel fields not written are inherited from the packet.
            let tf = attr_fields(attr::TUNNEL);
            let mut inherited = tf;
            for (w, p) in inherited.words_mut().iter_mut().zip(pending.words()) {
                *w &= !p;
            }
            self.wc.or_assign(&inherited);
            let mut m = tf;
            m.attrs = attr::TUNNEL;
            self.out.push(OdpAction::Set(SetAction {
                attr: attr::TUNNEL,
                key: t.masked(&m),
                mask: m,
            }));
        }
        let l3 = match self.flow.eth_type {
            0x0800 => attr::IPV4,
            0x86dd => attr::IPV6,
            0x0806 | 0x8035 => attr::ARP,
            0x8847 | 0x8848 => attr::MPLS,
            _ => 0,
        };
        let ip = matches!(l3, attr::IPV4 | attr::IPV6);
        let l4 = match self.flow.ip_proto {
            6 if ip => attr::TCP,
            17 if ip => attr::UDP,
            132 if ip => attr::SCTP,
            1 if l3 == attr::IPV4 => attr::ICMP,
            58 if l3 == attr::IPV6 => attr::ICMPV6,
            _ => 0,
        };
        // Neighbour discovery's target and link-layer addresses.
        let nd = if l4 == attr::ICMPV6 { attr::ND } else { 0 };
        for bit in [attr::PRIORITY, attr::SKB_MARK, attr::ETHERNET, l3, l4, nd] {
            if bit == 0 {
                continue;
            }
            let fields = attr_fields(bit);
            let m = pending.masked(&fields);
            if m.is_zero() {
                continue;
            }
            let mut mask = m;
            mask.attrs = bit;
            let mut key = self.flow.masked(&mask);
            key.attrs = bit;
            if bit == attr::MPLS {
                // Only the outermost entry is ever written.
                key.mpls_depth = 1;
            }
            let s = SetAction { attr: bit, key, mask };
            let mut full = fields;
            full.attrs = bit;
            self.out.push(if mask == full {
                OdpAction::Set(s)
            } else {
                OdpAction::SetMasked(s)
            });
        }
    }
}
