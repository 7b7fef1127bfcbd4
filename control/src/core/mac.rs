//! The MAC learning table behind the NORMAL action.
//!
//! Keyed by (VLAN id, MAC): the port a source address was last seen on,
//! and when. Entries age out after `aging` without being seen (OVS's
//! default is 300 s). Learning a new address, an address that moved to
//! another port, and an address that aged out are reported to the caller,
//! which must then revalidate the megaflows that pin that address (they
//! flooded it, or sent it to the old port, or learned it there).
//!
//! Learning happens where Open vSwitch does it: when a translation runs
//! the NORMAL action, from the packet's source. Active megaflows keep their
//! source fresh through [`MacTable::refresh`], fed by the revalidator's
//! statistics, since their packets no longer reach the translator.
//!
//! Part of the megaflow owner ([`crate::translator::Owner`]): read and
//! written only under its lock.

use odpx_classifier::key::{attr, FlowKey};
use odpx_classifier::xlate::SwitchEnv;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Entry {
    port: u32,
    seen: Instant,
}

pub struct MacTable {
    entries: HashMap<(u16, [u8; 6]), Entry>,
    aging: Duration,
    capacity: usize,
    /// All switch ports, for flooding.
    ports: Vec<u32>,
    /// Ports whose OpenFlow config says NO_RECV, and NO_FWD.
    no_recv: Vec<u32>,
    no_fwd: Vec<u32>,
}

/// What learning one source address did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    Known,
    New,
    Moved { from: u32 },
}

/// The VLAN a packet's addresses are learned in (0: untagged).
pub fn vlan_of(k: &FlowKey) -> u16 {
    if k.has(attr::VLAN) {
        k.vlan_tci & 0x0fff
    } else {
        0
    }
}

impl MacTable {
    pub fn new(ports: Vec<u32>, aging: Duration, capacity: usize) -> MacTable {
        MacTable {
            entries: HashMap::new(),
            aging,
            capacity,
            ports,
            no_recv: Vec::new(),
            no_fwd: Vec::new(),
        }
    }

    /// A port's OpenFlow NO_RECV and NO_FWD bits (PORT_MOD); whether
    /// either changed.
    pub fn set_port_config(&mut self, port: u32, no_recv: bool, no_fwd: bool) -> bool {
        fn set(v: &mut Vec<u32>, port: u32, on: bool) -> bool {
            let had = v.contains(&port);
            if on && !had {
                v.push(port);
            } else if !on && had {
                v.retain(|&p| p != port);
            }
            had != on
        }
        let a = set(&mut self.no_recv, port, no_recv);
        set(&mut self.no_fwd, port, no_fwd) || a
    }

    /// Learns the source of a packet that arrived on `key.in_port`.
    /// Broadcast and multicast sources are never learned.
    pub fn learn(&mut self, key: &FlowKey, now: Instant) -> Learned {
        let src = key.eth_src;
        if src[0] & 1 != 0 || !key.has(attr::ETHERNET) {
            return Learned::Known;
        }
        let k = (vlan_of(key), src);
        let port = key.in_port;
        match self.entries.get_mut(&k) {
            Some(e) if e.port == port => {
                e.seen = now;
                Learned::Known
            }
            Some(e) => {
                let from = e.port;
                *e = Entry { port, seen: now };
                Learned::Moved { from }
            }
            None => {
                if self.entries.len() >= self.capacity {
                    self.age(now);
                }
                if self.entries.len() >= self.capacity {
                    return Learned::Known;
                }
                self.entries.insert(k, Entry { port, seen: now });
                Learned::New
            }
        }
    }

    /// Marks `mac` (on `vlan`) as seen again on `port`, because a megaflow
    /// that learned it there is still used. Never moves an entry (those
    /// statistics may be older than a move the translator saw); re-learns
    /// an entry that had gone (then `New`).
    pub fn refresh(&mut self, vlan: u16, mac: [u8; 6], port: u32, now: Instant) -> Learned {
        let room = self.entries.len() < self.capacity;
        match self.entries.get_mut(&(vlan, mac)) {
            Some(e) => {
                if e.port == port {
                    e.seen = now;
                }
                Learned::Known
            }
            None if room && mac[0] & 1 == 0 => {
                self.entries.insert((vlan, mac), Entry { port, seen: now });
                Learned::New
            }
            None => Learned::Known,
        }
    }

    /// Where `mac` (on `vlan`) is learned, if it is.
    pub fn port_of(&self, vlan: u16, mac: [u8; 6]) -> Option<u32> {
        self.entries.get(&(vlan, mac)).map(|e| e.port)
    }

    /// Drops entries not seen within the aging time; returns their addresses.
    pub fn age(&mut self, now: Instant) -> Vec<[u8; 6]> {
        let aging = self.aging;
        let mut gone = Vec::new();
        self.entries.retain(|&(_, mac), e| {
            let keep = now.duration_since(e.seen) < aging;
            if !keep {
                gone.push(mac);
            }
            keep
        });
        gone
    }

    /// Takes a port out of flooding and forgets the addresses learned on
    /// it (its link went); returns those addresses.
    pub fn remove_port(&mut self, port: u32) -> Vec<[u8; 6]> {
        self.ports.retain(|&p| p != port);
        let mut gone = Vec::new();
        self.entries.retain(|&(_, mac), e| {
            if e.port == port {
                gone.push(mac);
            }
            e.port != port
        });
        gone
    }

    /// Puts a port (back) into flooding.
    /// Whether `port` is in the switch now (its link up, not taken out
    /// by PORT_MOD): what a fast-failover bucket watching it asks.
    pub fn port_up(&self, port: u32) -> bool {
        self.ports.contains(&port)
    }

    pub fn add_port(&mut self, port: u32) {
        if !self.ports.contains(&port) {
            self.ports.push(port);
            self.ports.sort_unstable();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (vlan, mac, port, age) of every entry, for `ctl show`.
    pub fn dump(&self, now: Instant) -> Vec<(u16, [u8; 6], u32, Duration)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|(&(vlan, mac), e)| (vlan, mac, e.port, now.duration_since(e.seen)))
            .collect();
        v.sort();
        v
    }
}

impl SwitchEnv for MacTable {
    fn flood_ports(&self, in_port: u32) -> Vec<u32> {
        self.ports
            .iter()
            .copied()
            .filter(|&p| p != in_port && !self.no_fwd.contains(&p))
            .collect()
    }

    fn receives_from(&self, port: u32) -> bool {
        !self.no_recv.contains(&port)
    }

    fn forwards_to(&self, port: u32) -> bool {
        !self.no_fwd.contains(&port)
    }

    fn normal_lookup(&mut self, key: &FlowKey) -> Option<u32> {
        let dst = key.eth_dst;
        if dst[0] & 1 != 0 {
            return None;
        }
        let e = self.entries.get(&(vlan_of(key), dst))?;
        (e.seen.elapsed() < self.aging).then_some(e.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(in_port: u32, src: u8, dst: u8) -> FlowKey {
        let mut k = FlowKey::ZERO;
        k.attrs = attr::ETHERNET | attr::IN_PORT;
        k.in_port = in_port;
        k.eth_src = [2, 0, 0, 0, 0, src];
        k.eth_dst = [2, 0, 0, 0, 0, dst];
        k
    }

    #[test]
    fn learns_moves_and_ages() {
        let mut t = MacTable::new(vec![1, 2, 3], Duration::from_secs(300), 100);
        let now = Instant::now();
        assert_eq!(t.learn(&key(1, 0xa, 0xb), now), Learned::New);
        assert_eq!(t.learn(&key(1, 0xa, 0xb), now), Learned::Known);
        assert_eq!(t.normal_lookup(&key(2, 0xb, 0xa)), Some(1));
        assert_eq!(t.normal_lookup(&key(2, 0xb, 0xc)), None, "unknown: flood");
        assert_eq!(t.learn(&key(3, 0xa, 0xb), now), Learned::Moved { from: 1 });
        assert_eq!(t.normal_lookup(&key(2, 0xb, 0xa)), Some(3));
        assert_eq!(t.flood_ports(2), vec![1, 3]);
        let mut bcast = key(1, 0xa, 0xb);
        bcast.eth_src = [0xff; 6];
        assert_eq!(
            t.learn(&bcast, now),
            Learned::Known,
            "broadcast sources are not learned"
        );
        assert_eq!(t.age(now + Duration::from_secs(301)), vec![[2, 0, 0, 0, 0, 0xa]]);
        assert!(t.is_empty());
        // A refresh re-learns a gone entry, touches a known one on the same
        // port, and never moves one.
        assert_eq!(t.refresh(0, [2, 0, 0, 0, 0, 0xa], 2, now), Learned::New);
        assert_eq!(t.refresh(0, [2, 0, 0, 0, 0, 0xa], 3, now), Learned::Known);
        assert_eq!(t.normal_lookup(&key(1, 0xb, 0xa)), Some(2));
        assert_eq!(t.remove_port(2), vec![[2, 0, 0, 0, 0, 0xa]]);
        assert_eq!(t.flood_ports(1), vec![3]);
        t.add_port(2);
        assert_eq!(t.flood_ports(1), vec![2, 3]);
    }
}
