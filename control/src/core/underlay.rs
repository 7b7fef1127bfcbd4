//! The underlay as the translator sees it: the kernel's interfaces,
//! addresses, main routing table and neighbours, kept from rtnetlink
//! changes, and the two questions a tunnel output asks of them.
//!
//! # What
//! * [`UnderlayView::route`]: the next hop toward a remote VTEP: the
//!   longest matching prefix of the main table (then the lowest metric),
//!   its output interface, gateway (or the VTEP itself, on-link) and
//!   source address (the route's preferred source, else the interface's
//!   first address of the family, as the kernel picks).
//! * [`UnderlayView::neighbour`]: the MAC address of that next hop, when
//!   the kernel's state says it may be used.
//! * [`UnderlayView::is_local`]: whether an address is this host's (a VTEP
//!   address the underlay filter accepts VXLAN for).
//!
//! Policy routing (rules, other tables) and multipath routes are not
//! followed: a tunnel takes the main table's single-path routes. The
//! lookups are linear scans: they run per translation, not per packet,
//! and a gateway's underlay has few routes.
//!
//! # Ownership
//! The view belongs to the megaflow owner ([`crate::translator`]); the
//! rtnetlink monitor thread only reads the kernel and sends the changes
//! over as data. Every change that can alter a tunnel output bumps
//! [`UnderlayView::generation`], which tells the owner to revalidate the
//! tunnel megaflows.

use odpx_offload::rtnl::{self, Address, Change, Link, Neighbour, Route};
use std::collections::HashMap;
use std::net::IpAddr;

/// A route as `tnl-routes` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteRow {
    /// `ADDRESS/LENGTH`.
    pub prefix: String,
    /// The output interface (`None`: none, e.g. a blackhole).
    pub dev: Option<String>,
    pub gateway: Option<IpAddr>,
    pub src: Option<IpAddr>,
    pub metric: u32,
}

/// A neighbour as `tnl-neigh` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NeighbourRow {
    pub addr: IpAddr,
    pub dev: String,
    /// `None`: not resolved.
    pub mac: Option<String>,
    /// The kernel's NUD state, by name.
    pub state: String,
}

/// Where a tunnel packet to some VTEP goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    /// The gateway, or the destination itself when it is on-link.
    pub via: IpAddr,
    pub src: IpAddr,
}

/// Why a tunnel output cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    NoRoute,
    /// The route has no usable source address.
    NoSource,
}

#[derive(Default, Debug)]
pub struct UnderlayView {
    links: HashMap<u32, Link>,
    addresses: Vec<Address>,
    routes: Vec<Route>,
    neighbours: HashMap<(u32, IpAddr), Neighbour>,
    generation: u64,
}

fn prefix_match(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128) as u32)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl UnderlayView {
    /// A view of everything in `changes` (a full dump).
    pub fn from_changes(changes: impl IntoIterator<Item = Change>) -> UnderlayView {
        let mut v = UnderlayView::default();
        for c in changes {
            v.apply(c);
        }
        v
    }

    /// Counts the changes that may alter a tunnel output.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes in one change; true when it may alter a tunnel output.
    pub fn apply(&mut self, c: Change) -> bool {
        let relevant = match c {
            Change::Link(l) => {
                let changed = self.links.get(&l.ifindex) != Some(&l);
                self.links.insert(l.ifindex, l);
                changed
            }
            Change::LinkGone(i) => {
                self.addresses.retain(|a| a.ifindex != i);
                self.routes.retain(|r| r.oif != Some(i));
                self.neighbours.retain(|k, _| k.0 != i);
                self.links.remove(&i).is_some()
            }
            Change::Address(a) => {
                if self.addresses.contains(&a) {
                    false
                } else {
                    self.addresses.push(a);
                    true
                }
            }
            Change::AddressGone(a) => {
                let before = self.addresses.len();
                self.addresses.retain(|x| *x != a);
                before != self.addresses.len()
            }
            Change::Route(r) => {
                if r.table != rtnl::RT_TABLE_MAIN || r.kind != rtnl::route_type::UNICAST {
                    false
                } else {
                    // A route is identified by (destination, prefix, metric),
                    // as the kernel does: a NEWROUTE for one replaces it.
                    self.routes
                        .retain(|x| !(x.dst == r.dst && x.prefix_len == r.prefix_len && x.metric == r.metric));
                    self.routes.push(r);
                    true
                }
            }
            Change::RouteGone(r) => {
                let before = self.routes.len();
                self.routes
                    .retain(|x| !(x.dst == r.dst && x.prefix_len == r.prefix_len && x.metric == r.metric));
                before != self.routes.len()
            }
            Change::Neighbour(n) => {
                let key = (n.ifindex, n.addr);
                let before = self.neighbours.get(&key).and_then(Neighbour::usable_mac);
                self.neighbours.insert(key, n);
                before != n.usable_mac()
            }
            Change::NeighbourGone(n) => self
                .neighbours
                .remove(&(n.ifindex, n.addr))
                .is_some_and(|old| old.usable_mac().is_some()),
        };
        if relevant {
            self.generation += 1;
        }
        relevant
    }

    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// The addresses of an interface.
    pub fn addresses_of(&self, ifindex: u32) -> impl Iterator<Item = &Address> + '_ {
        self.addresses.iter().filter(move |a| a.ifindex == ifindex)
    }

    pub fn is_local(&self, addr: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr == addr)
    }

    /// The next hop toward `dst` (see the module documentation).
    pub fn route(&self, dst: IpAddr) -> Result<NextHop, RouteError> {
        let best = self
            .routes
            .iter()
            .filter(|r| prefix_match(r.dst, r.prefix_len, dst))
            .max_by(|a, b| a.prefix_len.cmp(&b.prefix_len).then(b.metric.cmp(&a.metric)))
            .ok_or(RouteError::NoRoute)?;
        let ifindex = best.oif.ok_or(RouteError::NoRoute)?;
        let src = best
            .prefsrc
            .or_else(|| {
                self.addresses_of(ifindex)
                    .map(|a| a.addr)
                    .find(|a| a.is_ipv4() == dst.is_ipv4() && !is_link_local(*a))
            })
            .ok_or(RouteError::NoSource)?;
        Ok(NextHop {
            ifindex,
            via: best.gateway.unwrap_or(dst),
            src,
        })
    }

    /// The usable MAC address of `addr` on `ifindex`.
    pub fn neighbour(&self, ifindex: u32, addr: IpAddr) -> Option<[u8; 6]> {
        self.neighbours.get(&(ifindex, addr)).and_then(Neighbour::usable_mac)
    }

    /// The main table as odpx routes with it, most specific first (IPv4
    /// before IPv6).
    pub fn route_rows(&self) -> Vec<RouteRow> {
        let mut rs: Vec<&Route> = self.routes.iter().collect();
        rs.sort_by(|a, b| {
            (a.dst.is_ipv6(), std::cmp::Reverse(a.prefix_len), a.metric).cmp(&(
                b.dst.is_ipv6(),
                std::cmp::Reverse(b.prefix_len),
                b.metric,
            ))
        });
        rs.into_iter()
            .map(|r| RouteRow {
                prefix: format!("{}/{}", r.dst, r.prefix_len),
                dev: r.oif.map(|i| self.ifname(i)),
                gateway: r.gateway,
                src: r.prefsrc,
                metric: r.metric,
            })
            .collect()
    }

    /// The neighbours and their states, by interface and address.
    pub fn neighbour_rows(&self) -> Vec<NeighbourRow> {
        let mut ns: Vec<&Neighbour> = self.neighbours.values().collect();
        ns.sort_by_key(|n| (n.ifindex, n.addr));
        ns.into_iter()
            .map(|n| NeighbourRow {
                addr: n.addr,
                dev: self.ifname(n.ifindex),
                mac: n.mac.map(|m| odpx_classifier::text::fmt_mac(&m)),
                state: nud_name(n.state).to_string(),
            })
            .collect()
    }

    fn ifname(&self, ifindex: u32) -> String {
        self.links
            .get(&ifindex)
            .map_or_else(|| format!("if{ifindex}"), |l| l.name.clone())
    }
}

/// fe80::/10 or 169.254.0.0/16.
pub fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn nud_name(state: u16) -> &'static str {
    use odpx_offload::rtnl::nud;
    match state {
        nud::INCOMPLETE => "INCOMPLETE",
        nud::REACHABLE => "REACHABLE",
        nud::STALE => "STALE",
        nud::DELAY => "DELAY",
        nud::PROBE => "PROBE",
        nud::FAILED => "FAILED",
        nud::NOARP => "NOARP",
        nud::PERMANENT => "PERMANENT",
        _ => "NONE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_offload::rtnl::{nud, route_type, RT_TABLE_MAIN};

    fn route(dst: &str, len: u8, oif: u32, gw: Option<&str>, metric: u32) -> Change {
        Change::Route(Route {
            table: RT_TABLE_MAIN,
            kind: route_type::UNICAST,
            dst: dst.parse().unwrap(),
            prefix_len: len,
            oif: Some(oif),
            gateway: gw.map(|g| g.parse().unwrap()),
            prefsrc: None,
            metric,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_then_lowest_metric_with_the_interface_address() {
        let mut v = UnderlayView::from_changes([
            Change::Address(Address {
                ifindex: 3,
                addr: ip("172.31.0.1"),
                prefix_len: 24,
            }),
            Change::Address(Address {
                ifindex: 4,
                addr: ip("192.168.9.1"),
                prefix_len: 24,
            }),
            route("172.31.0.0", 24, 3, None, 0),
            route("0.0.0.0", 0, 4, Some("192.168.9.254"), 0),
            route("10.9.0.0", 16, 3, Some("172.31.0.254"), 200),
            route("10.9.0.0", 16, 4, Some("192.168.9.253"), 100),
        ]);
        assert_eq!(
            v.route(ip("172.31.0.2")),
            Ok(NextHop {
                ifindex: 3,
                via: ip("172.31.0.2"),
                src: ip("172.31.0.1")
            }),
            "on-link"
        );
        assert_eq!(
            v.route(ip("8.8.8.8")).unwrap().via,
            ip("192.168.9.254"),
            "default route"
        );
        let h = v.route(ip("10.9.1.1")).unwrap();
        assert_eq!((h.ifindex, h.via), (4, ip("192.168.9.253")), "lower metric wins");
        assert_eq!(v.route(ip("2001:db8::1")), Err(RouteError::NoRoute), "no IPv6 route");
        // A route change is a new generation; deleting it restores the other.
        let g = v.generation();
        assert!(v.apply(Change::RouteGone(match route("10.9.0.0", 16, 4, None, 100) {
            Change::Route(r) => r,
            _ => unreachable!(),
        })));
        assert!(v.generation() > g);
        assert_eq!(v.route(ip("10.9.1.1")).unwrap().ifindex, 3);
    }

    #[test]
    fn neighbours_count_only_in_usable_states() {
        let mut v = UnderlayView::default();
        let n = |state, mac: Option<[u8; 6]>| Neighbour {
            ifindex: 3,
            addr: ip("172.31.0.2"),
            mac,
            state,
        };
        assert!(
            !v.apply(Change::Neighbour(n(nud::INCOMPLETE, None))),
            "nothing usable yet"
        );
        assert_eq!(v.neighbour(3, ip("172.31.0.2")), None);
        assert!(v.apply(Change::Neighbour(n(nud::REACHABLE, Some([2, 0, 0, 0, 0, 2])))));
        assert_eq!(v.neighbour(3, ip("172.31.0.2")), Some([2, 0, 0, 0, 0, 2]));
        assert!(
            !v.apply(Change::Neighbour(n(nud::STALE, Some([2, 0, 0, 0, 0, 2])))),
            "same MAC"
        );
        assert!(
            v.apply(Change::Neighbour(n(nud::REACHABLE, Some([2, 0, 0, 0, 0, 3])))),
            "moved"
        );
        assert!(v.apply(Change::Neighbour(n(nud::FAILED, Some([2, 0, 0, 0, 0, 3])))));
        assert_eq!(v.neighbour(3, ip("172.31.0.2")), None);
        assert_eq!(v.neighbour_rows()[0].state, "FAILED");
    }
}
