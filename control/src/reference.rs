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

use crate::mac::MacTable;
use odpx_classifier::extract::extract_into;
use odpx_classifier::key::FlowKey;
use odpx_classifier::odp::OdpAction;
use odpx_classifier::rules::RuleSet;
use odpx_classifier::xlate::{translate, SwitchEnv};
use odpx_dataplane::exec::{execute, Packet, HEADROOM};
use odpx_dataplane::port::BUF_SIZE;
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
