//! The upcall queues: misses on their way from the PMDs to the slow path,
//! one bounded queue per input port, served in turn.
//!
//! # Why per port
//! A port scan or a SYN flood on one port is a stream of misses. With one
//! shared queue, the flood fills it and the misses of every other port are
//! lost with the flood's: a quiet port's new flows stop being set up.
//! Here each port's misses wait in a queue of their own, and the slow path
//! takes one from each non-empty queue in turn, so a port gets its share
//! of the translator whatever the others send; a flood fills, and loses
//! from, its own queue only. (Open vSwitch's kernel datapath gets the same
//! from per-vport upcall sockets that its handlers read in turn; its
//! userspace datapath has one queue per PMD.)
//!
//! # Invariants
//! * Bounded: each queue holds at most its capacity. A miss that finds
//!   its queue full is not queued ([`UpcallSender::send`] says so), and
//!   the PMD counts it lost.
//! * Nothing waits: PMDs never block on a queue, and the doorbell (a
//!   channel of one) only says "something is queued"; rings coalesce.
//! * One consumer: the [`UpcallReceiver`] belongs to the translator thread.
//!
//! # Packets for the controller
//! A datapath `userspace` action (an OpenFlow `CONTROLLER` output) hands
//! the packet, with the action's user data, to one more bounded queue
//! ([`userspace_queue`]): the OpenFlow agent's. It is not a miss: the
//! megaflow stays, and the agent rate-limits what it sends on. A full
//! queue loses the packet, and the PMD counts it.

use crossbeam_channel::{Receiver, Sender};
use odpx_classifier::key::FlowKey;
use std::sync::Arc;

/// A packet that missed both caches.
#[derive(Debug)]
pub struct Upcall {
    pub pmd: usize,
    pub in_port: u32,
    pub key: FlowKey,
    pub packet: Vec<u8>,
}

/// The PMDs' side (cloned into each).
#[derive(Clone)]
pub struct UpcallSender {
    /// By input port number; misses of port numbers beyond go to the last.
    queues: Arc<[Sender<Upcall>]>,
    doorbell: Sender<()>,
}

/// The slow path's side.
pub struct UpcallReceiver {
    queues: Vec<Receiver<Upcall>>,
    doorbell: Receiver<()>,
    ring: Sender<()>,
    /// The queue the next round starts at.
    next: usize,
}

/// Queues for ports `0..ports` (port numbers; number 0 takes what no port
/// claims), each holding `capacity` upcalls at most.
pub fn upcall_queues(ports: usize, capacity: usize) -> (UpcallSender, UpcallReceiver) {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..ports.max(1))
        .map(|_| crossbeam_channel::bounded(capacity.max(1)))
        .unzip();
    let (ring, doorbell) = crossbeam_channel::bounded(1);
    (
        UpcallSender {
            queues: senders.into(),
            doorbell: ring.clone(),
        },
        UpcallReceiver {
            queues: receivers,
            doorbell,
            ring,
            next: 0,
        },
    )
}

impl UpcallSender {
    /// Queues `u` on its input port's queue; false (and `u` is dropped)
    /// if that queue is full or the slow path is gone.
    pub fn send(&self, u: Upcall) -> bool {
        let q = self.queues.get(u.in_port as usize).unwrap_or(&self.queues[0]);
        if q.try_send(u).is_err() {
            return false;
        }
        let _ = self.doorbell.try_send(());
        true
    }
}

impl UpcallReceiver {
    /// Ready (for `select!`) when something may be queued.
    pub fn doorbell(&self) -> &Receiver<()> {
        &self.doorbell
    }

    /// Up to `max` upcalls, one from each non-empty queue in turn, the
    /// next call going on from where this one stopped. Rings the doorbell
    /// again if it leaves any behind.
    pub fn take(&mut self, max: usize, out: &mut Vec<Upcall>) {
        let n = self.queues.len();
        let mut idle = 0;
        while out.len() < max && idle < n {
            match self.queues[self.next].try_recv() {
                Ok(u) => {
                    out.push(u);
                    idle = 0;
                }
                Err(_) => idle += 1,
            }
            self.next = (self.next + 1) % n;
        }
        if self.queues.iter().any(|q| !q.is_empty()) {
            let _ = self.ring.try_send(());
        }
    }

    /// The next upcall in round-robin order, if any (tests that drive the
    /// translator by hand).
    pub fn try_recv(&mut self) -> Option<Upcall> {
        let mut one = Vec::with_capacity(1);
        self.take(1, &mut one);
        one.pop()
    }
}

/// A packet a datapath `userspace` action handed up, with the action's
/// user data (a packet-in on its way to the OpenFlow agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromDatapath {
    pub userdata: Vec<u8>,
    pub packet: Vec<u8>,
}

/// The datapaths' side of the queue for `userspace` actions (cloned
/// into each PMD).
#[derive(Clone, Default)]
pub struct UserspaceSender {
    tx: Option<Sender<FromDatapath>>,
}

impl UserspaceSender {
    /// A sender with no one behind it: every packet is lost (a switch
    /// without an OpenFlow agent).
    pub fn none() -> UserspaceSender {
        UserspaceSender { tx: None }
    }

    /// Queues a copy of the packet; false if the queue is full or no one
    /// listens.
    pub fn send(&self, userdata: &[u8], packet: &[u8]) -> bool {
        self.tx.as_ref().is_some_and(|tx| {
            tx.try_send(FromDatapath {
                userdata: userdata.to_vec(),
                packet: packet.to_vec(),
            })
            .is_ok()
        })
    }
}

/// A queue of at most `capacity` packets for the controller.
pub fn userspace_queue(capacity: usize) -> (UserspaceSender, Receiver<FromDatapath>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (UserspaceSender { tx: Some(tx) }, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::key::FlowKey;

    fn upcall(port: u32, n: u8) -> Upcall {
        Upcall {
            pmd: 0,
            in_port: port,
            key: FlowKey::ZERO,
            packet: vec![n],
        }
    }

    #[test]
    fn a_full_port_loses_its_own_upcalls_and_the_others_are_served_in_turn() {
        let (tx, mut rx) = upcall_queues(4, 3);
        for n in 0..10 {
            assert_eq!(tx.send(upcall(1, n)), n < 3, "port 1 holds 3");
        }
        assert!(tx.send(upcall(2, 100)));
        assert!(tx.send(upcall(3, 200)));
        assert!(tx.send(upcall(3, 201)));
        assert!(rx.doorbell().try_recv().is_ok(), "rung");
        let mut got = Vec::new();
        rx.take(4, &mut got);
        let order: Vec<(u32, u8)> = got.iter().map(|u| (u.in_port, u.packet[0])).collect();
        assert_eq!(order, vec![(1, 0), (2, 100), (3, 200), (1, 1)]);
        assert!(rx.doorbell().try_recv().is_ok(), "rung again: some are left");
        got.clear();
        rx.take(10, &mut got);
        let order: Vec<(u32, u8)> = got.iter().map(|u| (u.in_port, u.packet[0])).collect();
        assert_eq!(order, vec![(3, 201), (1, 2)]);
        assert!(rx.doorbell().try_recv().is_err(), "all taken: quiet");
        // Port numbers beyond the queues share queue 0.
        assert!(tx.send(upcall(99, 7)));
        assert_eq!(rx.try_recv().map(|u| u.in_port), Some(99));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn packets_for_the_controller_are_bounded_and_lost_without_a_listener() {
        let (tx, rx) = userspace_queue(2);
        assert!(tx.send(b"u", b"p1"));
        assert!(tx.send(b"u", b"p2"));
        assert!(!tx.send(b"u", b"p3"), "full");
        assert_eq!(rx.try_recv().map(|f| f.packet), Ok(b"p1".to_vec()));
        assert!(!UserspaceSender::none().send(b"u", b"p"));
        drop(rx);
        assert!(!tx.send(b"u", b"p4"), "no listener");
    }
}
