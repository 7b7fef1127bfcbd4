//! Packets a controller sends (OpenFlow's PACKET_OUT): translated through
//! the actions it gave, and run by a datapath like an upcalled packet
//! that installs nothing: the first PMD, or the kernel with the packet's
//! key (its in_port a vport, or none: the kernel then runs it as from
//! its local port).

use super::effects::{Op, Packet};
use super::fail_open::pipeline;
use super::translate::Env;
use super::Core;
use odpx_classifier::extract::extract;
use odpx_classifier::key::attr;
use odpx_classifier::rules::RuleAction;
use odpx_classifier::xlate::translate_actions;
use odpx_offload::keys::encode_packet_key;
use std::time::Instant;

/// The highest port number; above are OpenFlow's reserved ports.
const MAX_PORT: u32 = 0xffff_ff00;

impl Core {
    /// Runs `bytes`, as received on `in_port` (a port, or a reserved
    /// number such as CONTROLLER), through `actions`. A
    /// `resubmit(,0)` among them sends it through the rule tables.
    pub fn packet_out(
        &mut self,
        in_port: u32,
        bytes: Vec<u8>,
        actions: &[RuleAction],
        now: Instant,
    ) -> Result<(), String> {
        let key = extract(&bytes, in_port);
        let mut env = Env::new(&mut self.macs, &mut self.recirc, None);
        let t = translate_actions(pipeline(&self.rules, &self.fail_open), &key, &mut env, actions);
        self.rule_counters.credit(&t.lookups, 1, bytes.len() as u64, Some(now));
        self.group_counters.credit(&t.groups, 1, bytes.len() as u64);
        self.learn(t.learned, now);
        if t.actions.is_empty() {
            return Ok(());
        }
        let (actions, _) = self.tunnels.encap(t.actions);
        let packet = if self.holders.pmds > 0 {
            Packet::Pmd { pmd: 0, in_port, bytes }
        } else {
            // A reserved in_port (CONTROLLER, ANY, LOCAL) is no vport: the
            // kernel runs such a packet as from its local port.
            let mut kernel_key = key;
            if in_port == 0 || in_port > MAX_PORT {
                kernel_key.attrs &= !attr::IN_PORT;
            }
            Packet::Kernel {
                key_raw: encode_packet_key(&kernel_key, &[]),
                bytes,
            }
        };
        self.outbox.push(Op::Upcalled {
            install: None,
            actions: actions.into(),
            packet,
        });
        Ok(())
    }
}
