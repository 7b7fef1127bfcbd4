//! Packets a controller sends (OpenFlow's PACKET_OUT): translated through
//! the actions it gave, and run by a datapath like an upcalled packet
//! that installs nothing.

use super::effects::{Op, Packet};
use super::translate::Env;
use super::Core;
use odpx_classifier::extract::extract;
use odpx_classifier::rules::RuleAction;
use odpx_classifier::xlate::translate_actions;
use std::time::Instant;

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
        if self.holders.pmds == 0 {
            return Err("packet-out is not supported by the kernel datapath yet".into());
        }
        let key = extract(&bytes, in_port);
        let mut env = Env::new(&mut self.macs, None);
        let t = translate_actions(&self.rules, &key, &mut env, actions);
        self.rule_counters.credit(&t.lookups, 1, bytes.len() as u64, Some(now));
        if t.actions.is_empty() {
            return Ok(());
        }
        let (actions, _) = self.tunnels.encap(t.actions);
        self.outbox.push(Op::Upcalled {
            install: None,
            actions: actions.into(),
            packet: Packet::Pmd { pmd: 0, in_port, bytes },
        });
        Ok(())
    }
}
