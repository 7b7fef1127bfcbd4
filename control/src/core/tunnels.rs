//! Native VXLAN tunnelling in the translator: outputs to a VXLAN port
//! become `tnl_push` onto an underlay port, packets for a local VTEP on an
//! underlay port become `tnl_pop`, and packets whose next hop has no MAC
//! address yet wait for it.
//!
//! # Encapsulation: one pass
//! After the rule tables have spoken, every `output` to a VXLAN port is
//! rewritten ([`Tunnels::encap`]): the remote VTEP (the port's, or the
//! tunnel destination the rules set, for `remote_ip = "flow"`), a route
//! lookup in the kernel's main table ([`UnderlayView::route`]: output
//! interface, next hop, source address), the next hop's MAC address from
//! the kernel's neighbour table, and the whole outer header built once,
//! here. The datapath then copies it in front of each packet and outputs
//! to the underlay port in the same pass (`tnl_push`): no recirculation,
//! no route lookup per packet. The megaflow gains nothing from this step:
//! the route and neighbour depend on the port's settings (or on values the
//! rules wrote), not on packet fields; the UDP source port, which does
//! depend on the inner flow, is hashed per packet by the datapath.
//! Instead, the megaflow is marked as depending on the underlay, and every
//! route, address, link or neighbour change revalidates the marked ones
//! (Open vSwitch revalidates everything on a route change; the mark keeps
//! plain switching out of it).
//!
//! An output that cannot be built is left out and counted, by reason: no
//! remote (a flow-based port the rules gave no destination), no route, a
//! route through an interface that is not an underlay port, no source
//! address.
//!
//! # A next hop without a MAC address
//! The packet waits: the translator installs nothing, runs the packet's
//! other outputs at once, parks a copy for the tunnel (per next hop, at
//! most [`PARK_PER_NEIGHBOUR`] packets, for at most [`PARK_TIMEOUT`]) and
//! asks the kernel to resolve the address (`RTM_NEWNEIGH` with `NTF_USE`:
//! the kernel sends the ARP request or neighbour solicitation as if one of
//! its own packets waited, at most once per second per next hop). When
//! the neighbour appears, each parked packet is translated again and its
//! tunnel outputs for that next hop run; the next packet of the flow
//! installs the megaflow. Packets over the queue's bound or its time are
//! dropped and counted (`neigh_dropped`), as the kernel's own `unres_qlen`
//! does; those released are counted too (`neigh_released`). Open vSwitch
//! drops every packet until the reply; waiting keeps the first ping and the
//! first TCP SYN of a new tunnel.
//!
//! # Decapsulation
//! A packet on an underlay port ([`Tunnels::decap`]) is VXLAN for this
//! host when it is addressed to the underlay interface's MAC address, is
//! IPv4 (not a fragment) or IPv6 to a local address, and is UDP to the
//! port of some VXLAN port: then `tnl_pop(underlay)`, and the datapath
//! finds the VXLAN port by VNI and remote address. Anything else on an
//! underlay port is dropped (the XDP filter normally keeps it in the
//! kernel). The megaflow pins exactly those fields.
//!
//! # VTEP addresses
//! The underlay ports' XDP filters accept VXLAN for (address, UDP port)
//! pairs: every address of an underlay interface and every configured
//! `local_ip`, with every VXLAN port's `dst_port`. [`Tunnels::underlay_wanted`]
//! says what the filters' maps and the underlay ports' MTUs should be as
//! addresses and links come and go; the owner passes it on as an
//! operation, and the driver writes the maps.
//!
//! # No I/O
//! Part of the owner core ([`crate::core`]), under its lock: it decides,
//! and says what to ask of the kernel (a next hop to resolve) and of the
//! ports (VTEPs, MTUs) as data. The rtnetlink monitor thread only sends
//! the kernel's changes over.

use super::counters::TunnelCounters;
use super::underlay::{RouteError, UnderlayView};
use crate::config::{Config, FlowOr, PortType, VxlanSettings};
use odpx_classifier::counters::add_shared as add;
use odpx_classifier::key::{attr, frag, FlowKey};
use odpx_classifier::odp::actions::TNL_TYPE_VXLAN;
use odpx_classifier::odp::{OdpAction, TunnelPush};
use odpx_classifier::wire::{ethertype, ip_proto, TunnelIp, VxlanRepr, IPV4_DF, VXLAN_FLAGS_VNI};
use odpx_classifier::xlate::{megaflow_of, Translation};
use odpx_offload::rtnl::Change;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Packets that may wait for one next hop's MAC address.
pub const PARK_PER_NEIGHBOUR: usize = 64;
/// How long a packet may wait for it.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the kernel is asked to resolve one next hop.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(1);

/// (interface index, next-hop address).
pub type NextHopKey = (u32, IpAddr);

struct VxlanPort {
    no: u32,
    settings: VxlanSettings,
}

struct UnderlayPort {
    no: u32,
    name: String,
}

/// An upcalled packet waiting for a next hop's MAC address.
#[derive(Clone, Debug)]
pub struct Parked {
    pub key: FlowKey,
    pub packet: super::effects::Packet,
    at: Instant,
}

struct Waiting {
    asked: Option<Instant>,
    packets: VecDeque<Parked>,
}

/// What the underlay filters and ports should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnderlayWanted {
    /// (address, UDP port) pairs accepted as VXLAN, sorted.
    pub vteps: Vec<(IpAddr, u16)>,
    /// (underlay port, MTU).
    pub mtus: Vec<(u32, u32)>,
}

/// What the tunnel step of one translation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TunnelUse {
    /// The translation read the underlay view (revalidate on its changes).
    pub underlay: bool,
    /// Next hops whose MAC address is missing: those outputs were left out.
    pub waiting: Vec<NextHopKey>,
    /// For each `tnl_push` in the actions: its index and next hop.
    pub pushes: Vec<(usize, NextHopKey)>,
}

/// Why one tunnel output was left out.
enum Unbuilt {
    NoRemote,
    Route(RouteError),
    NotUnderlay,
    Waiting(NextHopKey),
}

/// The translator's tunnel state. See the module documentation.
pub struct Tunnels {
    vxlan: HashMap<u32, VxlanPort>,
    underlays: Vec<UnderlayPort>,
    pub view: UnderlayView,
    waiting: HashMap<NextHopKey, Waiting>,
    /// What the underlay filters and ports were last told: VTEPs
    /// (sorted) and MTUs.
    told: Option<UnderlayWanted>,
    pub counters: Arc<TunnelCounters>,
}

impl Default for Tunnels {
    fn default() -> Self {
        Tunnels::none()
    }
}

impl Tunnels {
    /// No tunnel ports: every step is a no-op.
    pub fn none() -> Tunnels {
        Tunnels {
            vxlan: HashMap::new(),
            underlays: Vec::new(),
            view: UnderlayView::default(),
            waiting: HashMap::new(),
            told: None,
            counters: Arc::new(TunnelCounters::default()),
        }
    }

    /// The tunnel ports of `cfg` (by their numbers), over `view`.
    pub fn new(cfg: &Config, view: UnderlayView) -> Tunnels {
        let mut t = Tunnels {
            view,
            ..Tunnels::none()
        };
        for (no, p) in cfg.numbered_ports() {
            if let Some(settings) = p.vxlan() {
                t.vxlan.insert(no, VxlanPort { no, settings });
            }
            if p.kind == PortType::Underlay {
                t.underlays.push(UnderlayPort {
                    no,
                    name: p.name.clone(),
                });
            }
        }
        t
    }

    /// Whether any tunnel port is configured.
    pub fn active(&self) -> bool {
        !self.vxlan.is_empty()
    }

    pub fn is_underlay(&self, port: u32) -> bool {
        self.underlays.iter().any(|u| u.no == port)
    }

    fn underlay_ifindex(&self, u: &UnderlayPort) -> Option<u32> {
        self.view.link_by_name(&u.name).map(|l| l.ifindex)
    }

    // ------------------------------------------------------------ decap

    /// The translation of a packet received on an underlay port (see the
    /// module documentation).
    pub fn decap(&self, key: &FlowKey) -> Translation {
        let mut wc = FlowKey::ZERO;
        wc.in_port = !0;
        wc.eth_type = !0;
        let underlay = self.underlays.iter().find(|u| u.no == key.in_port);
        let our_mac = underlay
            .and_then(|u| self.underlay_ifindex(u))
            .and_then(|i| self.view.link(i))
            .and_then(|l| l.mac);
        let mut vxlan = underlay.is_some();
        if let Some(mac) = our_mac {
            wc.eth_dst = [0xff; 6];
            vxlan &= key.eth_dst == mac;
        }
        let dst = match key.eth_type {
            ethertype::IPV4 if key.has(attr::IPV4) => {
                wc.ipv4_dst = !0;
                wc.ip_frag = !0;
                vxlan &= key.ip_frag == frag::NO;
                Some(IpAddr::V4(Ipv4Addr::from(key.ipv4_dst)))
            }
            ethertype::IPV6 if key.has(attr::IPV6) => {
                wc.ipv6_dst = [0xff; 16];
                wc.ip_frag = !0;
                vxlan &= key.ip_frag == frag::NO;
                Some(IpAddr::V6(Ipv6Addr::from(key.ipv6_dst)))
            }
            _ => None,
        };
        match dst {
            Some(dst) if vxlan => {
                vxlan &= self.is_vtep_address(dst);
                wc.ip_proto = !0;
                vxlan &= key.ip_proto == ip_proto::UDP;
                if vxlan {
                    wc.tp_dst = !0;
                    vxlan &= self.vxlan.values().any(|v| v.settings.dst_port == key.tp_dst);
                }
            }
            _ => vxlan = false,
        }
        Translation {
            actions: if vxlan {
                vec![OdpAction::TunnelPop(key.in_port)]
            } else {
                Vec::new()
            },
            megaflow: megaflow_of(key, &wc),
            trace: Vec::new(),
            lookups: Vec::new(),
            groups: Vec::new(),
            learned: Vec::new(),
            too_deep: false,
        }
    }

    fn is_vtep_address(&self, a: IpAddr) -> bool {
        self.vxlan.values().any(|v| v.settings.local == Some(a))
            || self
                .underlays
                .iter()
                .filter_map(|u| self.underlay_ifindex(u))
                .any(|i| self.view.addresses_of(i).any(|x| x.addr == a))
    }

    // ------------------------------------------------------------ encap

    /// Rewrites a translation's actions for the tunnels (see the module
    /// documentation): outputs to VXLAN ports become `tnl_push`, outputs
    /// to underlay ports go (they are not switched), and tunnel metadata
    /// sets are consumed.
    pub fn encap(&self, actions: Vec<OdpAction>) -> (Vec<OdpAction>, TunnelUse) {
        let mut used = TunnelUse::default();
        if !self.active() && self.underlays.is_empty() {
            return (actions, used);
        }
        let mut out = Vec::with_capacity(actions.len());
        let mut tunnel: Option<FlowKey> = None;
        for a in actions {
            match a {
                OdpAction::Set(s) if s.attr == attr::TUNNEL => tunnel = Some(s.key),
                OdpAction::Output(p) if self.is_underlay(p) => {}
                OdpAction::Output(p) if self.vxlan.contains_key(&p) => {
                    used.underlay = true;
                    match self.build_push(&self.vxlan[&p], tunnel.as_ref()) {
                        Ok((push, hop)) => {
                            used.pushes.push((out.len(), hop));
                            out.push(OdpAction::TunnelPush(push));
                        }
                        Err(why) => self.count_unbuilt(why, &mut used),
                    }
                }
                other => out.push(other),
            }
        }
        (out, used)
    }

    fn count_unbuilt(&self, why: Unbuilt, used: &mut TunnelUse) {
        let c = &self.counters;
        match why {
            Unbuilt::NoRemote => add(&c.encap_no_remote, 1),
            Unbuilt::Route(RouteError::NoRoute) => add(&c.encap_no_route, 1),
            Unbuilt::Route(RouteError::NoSource) => add(&c.encap_no_source, 1),
            Unbuilt::NotUnderlay => add(&c.encap_not_underlay, 1),
            Unbuilt::Waiting(hop) => {
                if !used.waiting.contains(&hop) {
                    used.waiting.push(hop);
                }
            }
        }
    }

    fn build_push(&self, vx: &VxlanPort, tunnel: Option<&FlowKey>) -> Result<(TunnelPush, NextHopKey), Unbuilt> {
        let s = &vx.settings;
        let remote = match s.remote {
            FlowOr::Value(r) => r,
            FlowOr::Flow => match tunnel {
                Some(t) if t.tun_ipv4_dst != 0 => IpAddr::V4(Ipv4Addr::from(t.tun_ipv4_dst)),
                Some(t) if t.tun_ipv6_dst != [0; 16] => IpAddr::V6(Ipv6Addr::from(t.tun_ipv6_dst)),
                _ => return Err(Unbuilt::NoRemote),
            },
        };
        let vni = match s.key {
            FlowOr::Value(k) => k,
            FlowOr::Flow => tunnel.map_or(0, |t| t.tun_id as u32) & crate::config::MAX_VNI,
        };
        let hop = self.view.route(remote).map_err(Unbuilt::Route)?;
        let underlay = self
            .underlays
            .iter()
            .find(|u| self.underlay_ifindex(u) == Some(hop.ifindex))
            .ok_or(Unbuilt::NotUnderlay)?;
        let src = s.local.unwrap_or(hop.src);
        let next = (hop.ifindex, hop.via);
        let eth_src = self.view.link(hop.ifindex).and_then(|l| l.mac).unwrap_or([0; 6]);
        let eth_dst = self
            .view
            .neighbour(hop.ifindex, hop.via)
            .ok_or(Unbuilt::Waiting(next))?;
        let ip = match (src, remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => TunnelIp::V4 {
                src: src.into(),
                dst: dst.into(),
                tos: s.tos,
                ttl: s.ttl,
                frag: if s.df { IPV4_DF } else { 0 },
            },
            (IpAddr::V6(src), IpAddr::V6(dst)) => TunnelIp::V6 {
                src: src.octets(),
                dst: dst.octets(),
                class: s.tos,
                label: 0,
                hop_limit: s.ttl,
            },
            _ => return Err(Unbuilt::Route(RouteError::NoSource)),
        };
        let repr = VxlanRepr {
            eth_dst,
            eth_src,
            ip,
            udp_src: 0,
            udp_dst: s.dst_port,
            udp_checksum: 0,
            flags: VXLAN_FLAGS_VNI,
            vni,
        };
        let mut header = vec![0u8; repr.header_len()];
        repr.emit(&mut header);
        Ok((
            TunnelPush {
                tnl_port: vx.no,
                out_port: underlay.no,
                tnl_type: TNL_TYPE_VXLAN,
                header,
            },
            next,
        ))
    }

    // ------------------------------------------------------------ waiting

    /// Parks an upcalled packet until `hop` has a MAC address; true when
    /// the kernel should be asked to resolve it (at most once a second).
    pub fn park(&mut self, hop: NextHopKey, key: FlowKey, packet: super::effects::Packet, now: Instant) -> bool {
        let w = self.waiting.entry(hop).or_insert_with(|| Waiting {
            asked: None,
            packets: VecDeque::new(),
        });
        if w.packets.len() >= PARK_PER_NEIGHBOUR {
            add(&self.counters.neigh_dropped, 1);
        } else {
            w.packets.push_back(Parked { key, packet, at: now });
            add(&self.counters.neigh_parked, 1);
        }
        let ask = w.asked.is_none_or(|t| now.duration_since(t) >= RESOLVE_INTERVAL);
        if ask {
            w.asked = Some(now);
            add(&self.counters.neigh_requests, 1);
        }
        self.publish_waiting();
        ask
    }

    /// The parked packets whose next hop now has a MAC address, with it;
    /// drops (and counts) those that waited too long.
    pub fn released(&mut self, now: Instant) -> Vec<(NextHopKey, Parked)> {
        let mut out = Vec::new();
        let mut expired = 0;
        let view = &self.view;
        self.waiting.retain(|hop, w| {
            if view.neighbour(hop.0, hop.1).is_some() {
                out.extend(w.packets.drain(..).map(|p| (*hop, p)));
                return false;
            }
            let before = w.packets.len();
            w.packets.retain(|p| now.duration_since(p.at) < PARK_TIMEOUT);
            expired += before - w.packets.len();
            !w.packets.is_empty()
        });
        add(&self.counters.neigh_dropped, expired as u64);
        add(&self.counters.neigh_released, out.len() as u64);
        self.publish_waiting();
        out
    }

    fn publish_waiting(&self) {
        let n: usize = self.waiting.values().map(|w| w.packets.len()).sum();
        self.counters.neigh_waiting.store(n as u64, Ordering::Relaxed);
    }

    // ------------------------------------------------------------ changes

    /// Takes in the kernel's changes (or, with `reload`, a full dump that
    /// replaces the view); true when tunnel megaflows must be revalidated
    /// (and the underlay filters looked at again).
    pub fn apply_changes(&mut self, changes: Vec<Change>, reload: bool) -> bool {
        if reload {
            add(&self.counters.underlay_reloads, 1);
            self.view = UnderlayView::from_changes(changes);
            return true;
        }
        let mut any = false;
        for c in changes {
            add(&self.counters.underlay_changes, 1);
            any |= self.view.apply(c);
        }
        any
    }

    /// What the underlay filters' VTEP maps and the underlay ports' MTUs
    /// should be, by the view; `None` when that is what they were last
    /// told.
    pub fn underlay_wanted(&mut self) -> Option<UnderlayWanted> {
        let ports: HashSet<u16> = self.vxlan.values().map(|v| v.settings.dst_port).collect();
        let mut addrs: Vec<IpAddr> = self.vxlan.values().filter_map(|v| v.settings.local).collect();
        let mut mtus = Vec::new();
        for u in &self.underlays {
            if let Some(i) = self.underlay_ifindex(u) {
                // Link-local addresses are no VTEPs.
                addrs.extend(
                    self.view
                        .addresses_of(i)
                        .map(|a| a.addr)
                        .filter(|a| !super::underlay::is_link_local(*a)),
                );
                if let Some(l) = self.view.link(i).filter(|l| l.mtu > 0) {
                    mtus.push((u.no, l.mtu));
                }
            }
        }
        let mut vteps: Vec<(IpAddr, u16)> = addrs
            .into_iter()
            .flat_map(|a| ports.iter().map(move |&p| (a, p)))
            .collect();
        vteps.sort();
        vteps.dedup();
        if self.underlays.is_empty() {
            return None;
        }
        let wanted = UnderlayWanted { vteps, mtus };
        if self.told.as_ref() == Some(&wanted) {
            return None;
        }
        self.told = Some(wanted.clone());
        Some(wanted)
    }

    /// The (address, UDP port) pairs accepted as VXLAN now, sorted.
    pub fn vteps(&self) -> Vec<(IpAddr, u16)> {
        self.told.as_ref().map(|t| t.vteps.clone()).unwrap_or_default()
    }
}
