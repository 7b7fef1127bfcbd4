//! The reference decision: what the rules decide for one packet when it
//! is translated afresh, with no cache of any kind in between.
//!
//! The megaflow owner's promise is that every path (EMC, megaflow cache,
//! kernel flow) gives each packet the decision a fresh translation would
//! give it. The randomized checks (the owner's host tests, `odpx-soak`
//! against a running switch) hold the switch to that promise by comparing
//! what came out against [`decide`]. NORMAL's view here is a MAC table
//! that learns from every packet that runs NORMAL ([`LearningEnv`]), as
//! the switch's table would if every packet reached the translator.
//!
//! [`RuleFamily`] draws the random rules those checks change the tables
//! with: matches on ports, hosts' MAC addresses (`02:00:00:00:00:0h`),
//! IPv4 prefixes of `10.0.0.0/24` and a few L4 ports; outputs, NORMAL,
//! FLOOD, drops, rewrites and resubmits.

use crate::core::mac::MacTable;
use odpx_classifier::extract::extract_into;
use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::OdpAction;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::{translate, SwitchEnv};
use odpx_dataplane::exec::{execute, Packet, HEADROOM};
use odpx_dataplane::port::BUF_SIZE;
use rand::Rng;
use std::time::Instant;

/// NORMAL over `macs`, learning the source of every packet it sees.
pub struct LearningEnv<'a> {
    pub macs: &'a mut MacTable,
    pub now: Instant,
}

impl SwitchEnv for LearningEnv<'_> {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        self.macs.flood_ports(in_port)
    }
    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32> {
        self.macs.learn(key, self.now);
        self.macs.normal_lookup(key)
    }
}

/// The actions a fresh translation gives `frame` arriving on `port`.
pub fn translate_frame(rules: &RuleSet, env: &mut LearningEnv, port: u32, frame: &[u8]) -> Vec<OdpAction> {
    let mut key = FlowKey::ZERO;
    extract_into(frame, port, &mut key);
    translate(rules, &key, env).actions
}

/// What `actions` send out for `frame`: (port, bytes) pairs, sorted.
pub fn outputs(actions: &[OdpAction], frame: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut buf = vec![0u8; BUF_SIZE.max(HEADROOM + frame.len())];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut p = Packet::new(&mut buf, HEADROOM, frame.len());
    let mut out = Vec::new();
    execute(actions, &mut p, &mut |port: u32, data: &[u8]| {
        out.push((port, data.to_vec()))
    });
    out.sort();
    out
}

/// The reference decision for `frame` arriving on `port`: the frames a
/// fresh translation sends out, sorted by port.
pub fn decide(rules: &RuleSet, env: &mut LearningEnv, port: u32, frame: &[u8]) -> Vec<(u32, Vec<u8>)> {
    outputs(&translate_frame(rules, env, port, frame), frame)
}

/// The random rules of the randomized checks.
pub struct RuleFamily {
    /// The switch's port numbers.
    pub ports: Vec<u32>,
    /// Hosts `1..=hosts`, MAC `02:00:00:00:00:0h`.
    pub hosts: u8,
    /// Whether `resubmit(PORT,1)` (a lookup as if from another port) is
    /// drawn. NORMAL after it learns the source on that port, which only a
    /// check that sends one packet at a time can follow.
    pub port_resubmit: bool,
}

impl RuleFamily {
    /// One rule, in `ovs-ofctl` syntax, with priority 1-39 in table 0 or 1.
    pub fn draw(&self, rng: &mut impl Rng) -> String {
        let table = if rng.gen_bool(0.7) { 0 } else { 1 };
        let mut s = format!("table={table},priority={},", rng.gen_range(1..40));
        let proto = ["", "ip,", "udp,", "tcp,"][rng.gen_range(0..4)];
        s += proto;
        if rng.gen_bool(0.4) {
            s += &format!("in_port={},", self.port(rng));
        }
        if rng.gen_bool(0.3) {
            s += &format!("dl_src=02:00:00:00:00:{:02x},", rng.gen_range(1..=self.hosts));
        }
        if rng.gen_bool(0.2) {
            s += &format!("dl_dst=02:00:00:00:00:{:02x},", rng.gen_range(1..=self.hosts));
        }
        if !proto.is_empty() && rng.gen_bool(0.4) {
            s += &format!(
                "nw_dst=10.0.0.{}/{},",
                rng.gen_range(0..6),
                [24, 30, 31, 32][rng.gen_range(0..4)]
            );
        }
        if (proto == "udp," || proto == "tcp,") && rng.gen_bool(0.5) {
            s += &format!("tp_dst={},", [53, 80, 443, 1000][rng.gen_range(0..4)]);
        }
        let port = self.port(rng);
        let action = match rng.gen_range(0..9) {
            0 | 1 => format!("output:{port}"),
            2 => "NORMAL".to_string(),
            3 => "drop".to_string(),
            4 => format!(
                "mod_dl_dst:02:00:00:00:00:{:02x},output:{port}",
                rng.gen_range(1..=self.hosts)
            ),
            5 if table == 0 && !proto.is_empty() => {
                format!("mod_nw_dst:10.0.0.{},resubmit(,1)", rng.gen_range(1..5))
            }
            6 if table == 0 && self.port_resubmit => format!("resubmit({port},1)"),
            7 if table == 0 => "goto_table:1".to_string(),
            8 => "FLOOD".to_string(),
            _ => format!("output:{port}"),
        };
        s + "actions=" + &action
    }

    fn port(&self, rng: &mut impl Rng) -> u32 {
        self.ports[rng.gen_range(0..self.ports.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::rules::ofctl;
    use rand::SeedableRng;

    #[test]
    fn every_rule_drawn_parses_and_port_resubmits_only_when_asked() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for port_resubmit in [false, true] {
            let family = RuleFamily {
                ports: vec![1, 2, 3],
                hosts: 4,
                port_resubmit,
            };
            let rules: Vec<String> = (0..2000).map(|_| family.draw(&mut rng)).collect();
            for r in &rules {
                assert!(ofctl::parse_rule(r).is_ok(), "{r}");
            }
            let resubmits = rules
                .iter()
                .filter(|r| r.contains("resubmit(") && !r.contains("resubmit(,"))
                .count();
            assert_eq!(resubmits > 0, port_resubmit);
        }
    }
}
