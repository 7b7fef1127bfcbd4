//! The one translation every path uses (misses, revalidation, parked
//! packets, traces): the rule tables, NORMAL's view of the MAC table, and
//! the tunnels' encapsulation and decapsulation.
//!
//! # MAC learning
//! Learning happens in translation, when NORMAL runs, from the packet's
//! source (as in Open vSwitch), and only for a packet that was upcalled:
//! [`Env`] learns when it is given a time, and records what it learned as
//! [`MacEvent`]s for the owner to act on. A revalidation's translation
//! only reads the table.

use super::fail_open::pipeline;
use super::mac::{vlan_of, Learned, MacTable};
use super::registry::MacSource;
use super::tunnels::{NextHopKey, TunnelUse, Tunnels};
use super::Core;
use odpx_classifier::key::{FlowKey, Match};
use odpx_classifier::odp::{self, OdpAction};
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::freeze::{Frozen, RecircStore};
use odpx_classifier::xlate::{translate, translate_traced, SwitchEnv, Translation, MAX_RESUBMIT_DEPTH};
use std::fmt;
use std::time::Instant;

/// A MAC-table change a translation caused.
#[derive(Clone, Copy, Debug)]
pub struct MacEvent {
    pub mac: [u8; 6],
    /// Where it is now (`None`: gone).
    pub port: Option<u32>,
    /// It was known on another port before.
    pub moved: bool,
}

/// The translator's view of NORMAL's world: the MAC table, learning only
/// when the translation is for an upcalled packet.
pub struct Env<'a> {
    macs: &'a mut MacTable,
    recirc: &'a mut RecircStore,
    learn_at: Option<Instant>,
    pub events: Vec<MacEvent>,
    /// The source address NORMAL saw (what the megaflow's packets teach).
    pub source: Option<MacSource>,
}

impl<'a> Env<'a> {
    pub fn new(macs: &'a mut MacTable, recirc: &'a mut RecircStore, learn_at: Option<Instant>) -> Env<'a> {
        Env {
            macs,
            recirc,
            learn_at,
            events: Vec::new(),
            source: None,
        }
    }
}

impl SwitchEnv for Env<'_> {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        self.macs.flood_ports(in_port)
    }

    fn receives_from(&self, port: u32) -> bool {
        self.macs.receives_from(port)
    }

    fn forwards_to(&self, port: u32) -> bool {
        self.macs.forwards_to(port)
    }

    fn port_live(&self, port: u32) -> bool {
        self.macs.port_up(port)
    }

    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32> {
        if key.eth_src[0] & 1 == 0 && self.source.is_none() {
            self.source = Some(MacSource {
                vlan: vlan_of(key),
                mac: key.eth_src,
                port: key.in_port,
            });
        }
        if let Some(now) = self.learn_at {
            let learned = self.macs.learn(key, now);
            if learned != Learned::Known {
                self.events.push(MacEvent {
                    mac: key.eth_src,
                    port: Some(key.in_port),
                    moved: matches!(learned, Learned::Moved { .. }),
                });
            }
        }
        self.macs.normal_lookup(key)
    }

    fn freeze(&mut self, state: &Frozen) -> Option<u32> {
        self.recirc.freeze(state)
    }

    fn thaw(&self, id: u32) -> Option<Frozen> {
        self.recirc.thaw(id).cloned()
    }
}

/// True if `old` pins every bit `new` does.
pub fn covers(old: &FlowKey, new: &FlowKey) -> bool {
    new.masked(old) == *new
}

/// Translates `key`: a packet on an underlay port through the tunnels'
/// decapsulation, any other through the rule tables and then the tunnels'
/// encapsulation.
pub fn translate_all(
    rules: &RuleSet,
    tunnels: &Tunnels,
    key: &FlowKey,
    env: &mut dyn SwitchEnv,
    traced: bool,
) -> (Translation, TunnelUse) {
    if tunnels.is_underlay(key.in_port) {
        let used = TunnelUse {
            underlay: true,
            ..TunnelUse::default()
        };
        return (tunnels.decap(key), used);
    }
    let mut t = if traced {
        translate_traced(rules, key, env)
    } else {
        translate(rules, key, env)
    };
    let (actions, used) = tunnels.encap(std::mem::take(&mut t.actions));
    t.actions = actions;
    (t, used)
}

/// A packet's way through the tables, as `trace` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub flow: FlowKey,
    /// Each table visited: (resubmit depth, table, the rule that matched
    /// in `ovs-ofctl` text, or `None`: no match, dropped).
    pub steps: Vec<(usize, u8, Option<String>)>,
    /// The resubmit depth limit was reached: dropped.
    pub too_deep: bool,
    /// The packet came in on an underlay port.
    pub underlay: bool,
    /// Tunnel outputs waiting for a next hop's MAC address.
    pub waiting: Vec<NextHopKey>,
    pub actions: Vec<OdpAction>,
    pub megaflow: Match,
    /// The rules its `learn` actions made (added only by `--generate`).
    pub learned: Vec<odpx_classifier::rules::Rule>,
}

/// A packet to trace: an ODP key (`in_port(1),eth(...)`) or, as
/// `ofproto/trace` takes it, a flow in `ovs-ofctl` match syntax
/// (`in_port=1,dl_vlan=20,dl_src=...`); fields not given are zero.
pub fn packet_of(text: &str) -> Result<FlowKey, String> {
    if text.contains('(') {
        let k = odp::parse_key(text).map_err(|e| format!("key: {e}"))?;
        return Ok(k.matched.key);
    }
    odpx_classifier::rules::ofctl::parse_flow(text).map_err(|e| format!("flow: {e}"))
}

/// Traces `packet` through `rules` and `tunnels`, reading (not learning
/// into) the MAC table of `env`.
pub fn trace(rules: &RuleSet, tunnels: &Tunnels, packet: &FlowKey, env: &mut dyn SwitchEnv) -> Trace {
    let (t, used) = translate_all(rules, tunnels, packet, env, true);
    Trace {
        flow: *packet,
        steps: t.trace.iter().map(|s| (s.depth, s.table, s.rule.clone())).collect(),
        too_deep: t.too_deep,
        underlay: tunnels.is_underlay(packet.in_port),
        waiting: used.waiting,
        actions: t.actions,
        megaflow: t.megaflow,
        learned: t.learned,
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Flow: {}", odp::format_exact_key(&self.flow))?;
        for (depth, table, rule) in &self.steps {
            let indent = "    ".repeat(*depth);
            match rule {
                Some(r) => writeln!(f, "{indent}table {table}: {r}")?,
                None => writeln!(f, "{indent}table {table}: no match (drop)")?,
            }
        }
        if self.too_deep {
            writeln!(f, "resubmit depth limit ({MAX_RESUBMIT_DEPTH}) reached: packet dropped")?;
        }
        if self.underlay {
            writeln!(
                f,
                "underlay port: VXLAN for a local VTEP is decapsulated, the rest dropped"
            )?;
        }
        for (ifindex, via) in &self.waiting {
            writeln!(
                f,
                "tunnel output waits for the MAC address of {via} (interface {ifindex})"
            )?;
        }
        writeln!(f, "Datapath actions: {}", odp::actions::format_actions(&self.actions))?;
        writeln!(f, "Megaflow: {}", odp::format_match(&self.megaflow))
    }
}

impl Core {
    /// `trace`: the packet's way through the switch's tables now.
    pub fn trace(&mut self, packet: &FlowKey) -> Trace {
        let mut env = Env::new(&mut self.macs, &mut self.recirc, None);
        trace(pipeline(&self.rules, &self.fail_open), &self.tunnels, packet, &mut env)
    }
}
