//! Asynchronous messages: what the switch tells controllers without
//! being asked. Packets for the controller (from the datapaths'
//! `userspace` actions) become PACKET_INs, rules that went become
//! FLOW_REMOVEDs, and port changes PORT_STATUSes, each sent to the
//! connections whose role and asynchronous configuration ask for it.
//!
//! # Rate limit
//! Each connection takes packet-ins through its own token bucket
//! (`packet_in_rate` a second, `packet_in_burst` beyond): a flood of
//! misses toward the controller costs the controller at most that, and
//! what the limit drops is counted. Nothing here waits on a connection:
//! a full queue drops the message (counted).
//!
//! # Threads
//! One dispatcher thread; it reads the connections' shared state.

use super::codec::flow::NO_BUFFER;
use super::codec::message::{encode, Message};
use super::codec::oxm::{Oxm, OxmField};
use super::codec::packet::PacketIn;
use super::codec::port::{config as port_config, reason as port_reason, PortDesc};
use super::convert::flow_removed;
use super::Shared;
use crate::core::rules::RemovedRule;
use odpx_classifier::counters::add_shared;
use odpx_classifier::xlate::controller::ToController;
use odpx_dataplane::upcalls::FromDatapath;
use std::sync::Arc;
use std::time::Instant;

/// Packets a datapath handed up for the controllers, as many as were
/// waiting: each connection gets its share as one queue entry (one
/// wake-up of its writer, one write), and the connections' state is read
/// once for the lot.
pub fn packet_ins(shared: &Arc<Shared>, batch: &[FromDatapath], now: Instant) {
    let c = &shared.counters;
    let conns: Vec<_> = shared
        .connections()
        .into_iter()
        .map(|conn| {
            let st = conn.state();
            (conn, st)
        })
        .collect();
    let mut out: Vec<(Vec<u8>, u64)> = vec![(Vec::new(), 0); conns.len()];
    for f in batch {
        let Some((reason, bytes)) = encode_packet_in(shared, f) else {
            continue;
        };
        let mut heard = false;
        for ((conn, st), (queued, n)) in conns.iter().zip(out.iter_mut()) {
            if !st.ready || st.async_cfg.packet_in_mask[st.mask_index()] & (1 << reason) == 0 {
                continue;
            }
            heard = true;
            if conn.packet_in_allowed(now) {
                queued.extend_from_slice(&bytes);
                *n += 1;
            } else {
                add_shared(&c.packet_ins_rate_limited, 1);
            }
        }
        if !heard {
            add_shared(&c.packet_ins_unheard, 1);
        }
    }
    for ((conn, _), (queued, n)) in conns.iter().zip(out).filter(|(_, (_, n))| *n > 0) {
        if conn.offer(queued) {
            add_shared(&c.packet_ins_sent, n);
        } else {
            add_shared(&c.packet_ins_queue_full, n);
        }
    }
}

/// One packet's PACKET_IN (and its reason), unless its port says
/// no_packet_in (counted as heard by none).
fn encode_packet_in(shared: &Arc<Shared>, f: &FromDatapath) -> Option<(u8, Vec<u8>)> {
    let to = ToController::decode(&f.userdata)?;
    if shared.bridge.port_config(to.in_port) & port_config::NO_PACKET_IN != 0 {
        add_shared(&shared.counters.packet_ins_unheard, 1);
        return None;
    }
    let len = if to.max_len == u16::MAX {
        f.packet.len()
    } else {
        f.packet.len().min(usize::from(to.max_len))
    };
    let mut matched = vec![Oxm::exact(OxmField::InPort, u128::from(to.in_port))];
    if to.metadata != 0 {
        matched.push(Oxm::exact(OxmField::Metadata, u128::from(to.metadata)));
    }
    if let Some(t) = to.tun_id {
        matched.push(Oxm::exact(OxmField::TunnelId, u128::from(t)));
    }
    let msg = Message::PacketIn(PacketIn {
        buffer_id: NO_BUFFER,
        total_len: u16::try_from(f.packet.len()).unwrap_or(u16::MAX),
        reason: to.reason,
        table_id: to.table_id,
        cookie: to.cookie,
        matched,
        data: f.packet[..len].to_vec(),
    });
    Some((to.reason, encode(0, &msg)))
}

/// Rules that went and asked to be reported.
pub fn rules_removed(shared: &Arc<Shared>, removed: &[RemovedRule], now: Instant) {
    for r in removed {
        let reason = r.reason as u8;
        let bytes = encode(0, &Message::FlowRemoved(flow_removed(r, now)));
        for conn in shared.connections() {
            let st = conn.state();
            if st.ready
                && st.async_cfg.flow_removed_mask[st.mask_index()] & (1 << reason) != 0
                && conn.offer(bytes.clone())
            {
                add_shared(&shared.counters.flow_removed_sent, 1);
            }
        }
    }
}

/// What changed between two looks at the ports, as PORT_STATUS reasons.
pub fn port_changes(before: &[PortDesc], now: &[PortDesc]) -> Vec<(u8, PortDesc)> {
    let mut out = Vec::new();
    for p in now {
        match before.iter().find(|b| b.port_no == p.port_no) {
            None => out.push((port_reason::ADD, p.clone())),
            Some(b) if b != p => out.push((port_reason::MODIFY, p.clone())),
            Some(_) => {}
        }
    }
    for b in before {
        if !now.iter().any(|p| p.port_no == b.port_no) {
            out.push((port_reason::DELETE, b.clone()));
        }
    }
    out
}

/// Sends PORT_STATUS for each change.
pub fn port_status(shared: &Arc<Shared>, changes: Vec<(u8, PortDesc)>) {
    for (reason, desc) in changes {
        let bytes = encode(0, &Message::PortStatus { reason, desc });
        for conn in shared.connections() {
            let st = conn.state();
            if st.ready
                && st.async_cfg.port_status_mask[st.mask_index()] & (1 << reason) != 0
                && conn.offer(bytes.clone())
            {
                add_shared(&shared.counters.port_status_sent, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_changes_are_added_modified_and_deleted() {
        let p = |no: u32, state: u32| PortDesc {
            port_no: no,
            state,
            ..PortDesc::default()
        };
        let before = vec![p(1, 4), p(2, 4)];
        let now = vec![p(1, 1), p(3, 4)];
        let c: Vec<(u8, u32)> = port_changes(&before, &now)
            .into_iter()
            .map(|(r, d)| (r, d.port_no))
            .collect();
        assert_eq!(
            c,
            vec![
                (port_reason::MODIFY, 1),
                (port_reason::ADD, 3),
                (port_reason::DELETE, 2)
            ]
        );
        assert!(port_changes(&now, &now).is_empty());
    }
}
