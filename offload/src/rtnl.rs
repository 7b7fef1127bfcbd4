//! The kernel's view of the underlay, over rtnetlink: interfaces,
//! addresses, routes and neighbours, dumped at start and followed live.
//!
//! # Why the kernel's
//! A VXLAN gateway's underlay is the host's network: its addresses and
//! routes are set with `ip addr` and `ip route` (or by a routing daemon),
//! its neighbours are resolved by the kernel's ARP and NDP. odpx reads
//! them instead of keeping a second copy of the truth, as Open vSwitch's
//! `ovs-router` and `tnl-neigh-cache` do.
//!
//! # Shape
//! [`Rtnl`] sends requests (dumps; [`Rtnl::resolve`], which asks the
//! kernel to resolve a neighbour: `RTM_NEWNEIGH` with `NTF_USE`, as if a
//! packet wanted it) and [`RtnlMonitor`] listens to the link, address,
//! route and neighbour groups. Both hand out [`Change`]s, decoded by
//! [`decode`], a pure function over one message's payload: what the
//! kernel sends is checked, and a message odpx does not use (another
//! family, a multipath route) decodes to nothing, never to an error.
//! neli frames the messages; the fixed headers (`ifinfomsg`, `ifaddrmsg`,
//! `rtmsg`, `ndmsg`) and attributes are read here with [`crate::nla`].
//!
//! # Overflow
//! A monitor socket that overflows (`ENOBUFS`) has lost changes: the
//! caller must dump everything again ([`RtnlError::Overflow`]).
//!
//! # Threads
//! Each object owns its socket and is used by one thread at a time.

use crate::channel::{message_bytes, split_datagram, RECV_BUF};
use crate::error::DecodeError;
use crate::nla;
use neli::consts::nl::{NlmF, Nlmsg};
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::NlPayload;
use neli::socket::NlSocket;
use neli::types::Buffer;
use neli::utils::Groups;
use rustix::fd::OwnedFd;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// rtnetlink message types.
pub mod msg {
    pub const NEWLINK: u16 = 16;
    pub const DELLINK: u16 = 17;
    pub const GETLINK: u16 = 18;
    pub const NEWADDR: u16 = 20;
    pub const DELADDR: u16 = 21;
    pub const GETADDR: u16 = 22;
    pub const NEWROUTE: u16 = 24;
    pub const DELROUTE: u16 = 25;
    pub const GETROUTE: u16 = 26;
    pub const NEWNEIGH: u16 = 28;
    pub const DELNEIGH: u16 = 29;
    pub const GETNEIGH: u16 = 30;
}

/// Multicast groups the monitor joins.
mod group {
    pub const LINK: u32 = 1;
    pub const NEIGH: u32 = 3;
    pub const IPV4_IFADDR: u32 = 5;
    pub const IPV4_ROUTE: u32 = 7;
    pub const IPV6_IFADDR: u32 = 9;
    pub const IPV6_ROUTE: u32 = 11;
}

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFF_UP: u32 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NTF_USE: u8 = 0x01;
/// The monitor's receive buffer: a route table reload sends thousands of
/// messages at once.
const MONITOR_BUFFER: usize = 8 << 20;

/// The main routing table (the one odpx routes tunnels with).
pub const RT_TABLE_MAIN: u32 = 254;
/// Route types.
pub mod route_type {
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
}

/// Neighbour states (`NUD_*`).
pub mod nud {
    pub const INCOMPLETE: u16 = 0x01;
    pub const REACHABLE: u16 = 0x02;
    pub const STALE: u16 = 0x04;
    pub const DELAY: u16 = 0x08;
    pub const PROBE: u16 = 0x10;
    pub const FAILED: u16 = 0x20;
    pub const NOARP: u16 = 0x40;
    pub const PERMANENT: u16 = 0x80;
    /// States whose link-layer address may be used.
    pub const VALID: u16 = REACHABLE | STALE | DELAY | PROBE | NOARP | PERMANENT;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub up: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub table: u32,
    /// `route_type` value.
    pub kind: u8,
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub prefsrc: Option<IpAddr>,
    pub metric: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Neighbour {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub mac: Option<[u8; 6]>,
    /// `nud` bits.
    pub state: u16,
}

impl Neighbour {
    /// The MAC address, when the state allows using it.
    pub fn usable_mac(&self) -> Option<[u8; 6]> {
        self.mac.filter(|_| self.state & nud::VALID != 0)
    }
}

/// One thing the kernel told: something is (now) so, or gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Link(Link),
    LinkGone(u32),
    Address(Address),
    AddressGone(Address),
    Route(Route),
    RouteGone(Route),
    Neighbour(Neighbour),
    NeighbourGone(Neighbour),
}

#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    #[error("rtnetlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("rtnetlink: {0}")]
    Netlink(String),
    #[error("rtnetlink: {what}: {}", std::io::Error::from_raw_os_error(*.errno))]
    Kernel { what: String, errno: i32 },
    #[error("rtnetlink: malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// The monitor's socket overflowed: changes were lost.
    #[error("rtnetlink: monitor overflowed, changes lost")]
    Overflow,
}

impl From<crate::OdpError> for RtnlError {
    fn from(e: crate::OdpError) -> Self {
        RtnlError::Netlink(e.to_string())
    }
}

fn ip_of(family: u8, b: &[u8], what: &'static str) -> Result<IpAddr, DecodeError> {
    match (family, b.len()) {
        (AF_INET, 4) => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        (AF_INET6, 16) => Ok(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))),
        _ => Err(DecodeError::Invalid {
            what,
            detail: format!("a {}-byte address for family {family}", b.len()),
        }),
    }
}

fn unspecified(family: u8) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

fn fixed<'a>(p: &'a [u8], len: usize, what: &'static str) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if p.len() < len {
        return Err(DecodeError::Truncated { what, offset: p.len() });
    }
    Ok(p.split_at(len))
}

fn ne32(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes one rtnetlink message (its type and payload). `Ok(None)`: a
/// message of no interest (another address family, a route with several
/// next hops, another table's route kind).
pub fn decode(nl_type: u16, p: &[u8]) -> Result<Option<Change>, DecodeError> {
    match nl_type {
        msg::NEWLINK | msg::DELLINK => {
            let (h, attrs) = fixed(p, 16, "ifinfomsg")?;
            let ifindex = ne32(&h[4..8]);
            if nl_type == msg::DELLINK {
                return Ok(Some(Change::LinkGone(ifindex)));
            }
            let mut link = Link {
                ifindex,
                name: String::new(),
                mac: None,
                mtu: 0,
                up: ne32(&h[8..12]) & IFF_UP != 0,
            };
            for a in nla::iter(attrs, "link") {
                let a = a?;
                match a.ty {
                    IFLA_IFNAME => link.name = a.str("link name")?,
                    IFLA_MTU => link.mtu = a.u32("link mtu")?,
                    IFLA_ADDRESS if a.payload.len() == 6 => link.mac = Some(a.array("link address")?),
                    _ => {}
                }
            }
            Ok(Some(Change::Link(link)))
        }
        msg::NEWADDR | msg::DELADDR => {
            let (h, attrs) = fixed(p, 8, "ifaddrmsg")?;
            let family = h[0];
            if family != AF_INET && family != AF_INET6 {
                return Ok(None);
            }
            let (mut local, mut address) = (None, None);
            for a in nla::iter(attrs, "address") {
                let a = a?;
                match a.ty {
                    IFA_LOCAL => local = Some(ip_of(family, a.payload, "address")?),
                    IFA_ADDRESS => address = Some(ip_of(family, a.payload, "address")?),
                    _ => {}
                }
            }
            // IFA_LOCAL is this host's address (IFA_ADDRESS is the peer's
            // on point-to-point links); IPv6 sends only IFA_ADDRESS.
            let Some(addr) = local.or(address) else {
                return Err(DecodeError::Missing {
                    what: "address",
                    attr: IFA_ADDRESS,
                });
            };
            let a = Address {
                ifindex: ne32(&h[4..8]),
                addr,
                prefix_len: h[1],
            };
            Ok(Some(if nl_type == msg::NEWADDR {
                Change::Address(a)
            } else {
                Change::AddressGone(a)
            }))
        }
        msg::NEWROUTE | msg::DELROUTE => {
            let (h, attrs) = fixed(p, 12, "rtmsg")?;
            let family = h[0];
            if family != AF_INET && family != AF_INET6 {
                return Ok(None);
            }
            let mut r = Route {
                table: h[4] as u32,
                kind: h[7],
                dst: unspecified(family),
                prefix_len: h[1],
                oif: None,
                gateway: None,
                prefsrc: None,
                metric: 0,
            };
            for a in nla::iter(attrs, "route") {
                let a = a?;
                match a.ty {
                    RTA_DST => r.dst = ip_of(family, a.payload, "route destination")?,
                    RTA_OIF => r.oif = Some(a.u32("route oif")?),
                    RTA_GATEWAY => r.gateway = Some(ip_of(family, a.payload, "route gateway")?),
                    RTA_PREFSRC => r.prefsrc = Some(ip_of(family, a.payload, "route source")?),
                    RTA_PRIORITY => r.metric = a.u32("route metric")?,
                    RTA_TABLE => r.table = a.u32("route table")?,
                    _ => {}
                }
            }
            // A route without an output interface has several next hops
            // (RTA_MULTIPATH) or none (blackhole, unreachable): not one a
            // tunnel can take; it is left out.
            if r.oif.is_none() {
                return Ok(None);
            }
            Ok(Some(if nl_type == msg::NEWROUTE {
                Change::Route(r)
            } else {
                Change::RouteGone(r)
            }))
        }
        msg::NEWNEIGH | msg::DELNEIGH => {
            let (h, attrs) = fixed(p, 12, "ndmsg")?;
            let family = h[0];
            if family != AF_INET && family != AF_INET6 {
                return Ok(None);
            }
            let mut addr = None;
            let mut mac = None;
            for a in nla::iter(attrs, "neighbour") {
                let a = a?;
                match a.ty {
                    NDA_DST => addr = Some(ip_of(family, a.payload, "neighbour")?),
                    NDA_LLADDR if a.payload.len() == 6 => mac = Some(a.array("neighbour address")?),
                    _ => {}
                }
            }
            let Some(addr) = addr else {
                return Err(DecodeError::Missing {
                    what: "neighbour",
                    attr: NDA_DST,
                });
            };
            let n = Neighbour {
                ifindex: ne32(&h[4..8]),
                addr,
                mac,
                state: u16::from_ne_bytes([h[8], h[9]]),
            };
            Ok(Some(if nl_type == msg::NEWNEIGH {
                Change::Neighbour(n)
            } else {
                Change::NeighbourGone(n)
            }))
        }
        _ => Ok(None),
    }
}

fn open_socket(groups: &[u32]) -> Result<NlSocket, RtnlError> {
    let sock = NlSocket::connect(NlFamily::Route, None, Groups::new_groups(groups))
        .map_err(|e| RtnlError::Netlink(e.to_string()))?;
    sock.block().map_err(|e| RtnlError::Netlink(e.to_string()))?;
    Ok(sock)
}

/// One received message: its type, and its payload or (an error message)
/// its errno, 0 for an ack.
type Message = (u16, Result<Vec<u8>, i32>);

/// Splits one received datagram into messages.
fn messages(buf: &mut [u8], n: usize) -> Result<Vec<Message>, RtnlError> {
    let msgs = split_datagram(buf, n)?;
    Ok(msgs
        .into_iter()
        .map(|m| {
            let ty = *m.nl_type();
            let body = match m.nl_payload() {
                NlPayload::Payload(p) => Ok(p.as_ref().to_vec()),
                NlPayload::Err(e) => Err(-*e.error()),
                _ => Ok(Vec::new()),
            };
            (ty, body)
        })
        .collect())
}

/// Requests to the kernel's routing tables.
pub struct Rtnl {
    sock: NlSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> Result<Rtnl, RtnlError> {
        Ok(Rtnl {
            sock: open_socket(&[])?,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends one request and collects its replies' changes (a dump's
    /// messages, or nothing for an acked request).
    fn request(&mut self, ty: u16, flags: NlmF, body: Vec<u8>, what: &str) -> Result<Vec<Change>, RtnlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = message_bytes(ty, flags | NlmF::REQUEST, seq, Buffer::from(body))?;
        self.sock
            .send(&bytes, Msg::empty())
            .map_err(|e| RtnlError::Netlink(e.to_string()))?;
        let mut out = Vec::new();
        loop {
            let (n, _) = self
                .sock
                .recv(&mut self.buf[..RECV_BUF - 4], Msg::empty())
                .map_err(|e| RtnlError::Netlink(e.to_string()))?;
            let dump = flags.contains(NlmF::DUMP);
            for (ty, body) in messages(&mut self.buf, n)? {
                match body {
                    Err(0) => return Ok(out),
                    Err(errno) => {
                        return Err(RtnlError::Kernel {
                            what: what.to_string(),
                            errno,
                        })
                    }
                    Ok(_) if ty == u16::from(Nlmsg::Done) => return Ok(out),
                    Ok(p) => {
                        if let Some(c) = decode(ty, &p)? {
                            out.push(c);
                        }
                        if !dump {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    fn dump(&mut self, ty: u16, header_len: usize, what: &str) -> Result<Vec<Change>, RtnlError> {
        let mut body = vec![0u8; header_len];
        body[0] = AF_UNSPEC;
        self.request(ty, NlmF::DUMP, body, what)
    }

    /// Everything: links, addresses, routes, neighbours, in that order.
    pub fn dump_all(&mut self) -> Result<Vec<Change>, RtnlError> {
        let mut all = self.dump(msg::GETLINK, 16, "link dump")?;
        all.extend(self.dump(msg::GETADDR, 8, "address dump")?);
        all.extend(self.dump(msg::GETROUTE, 12, "route dump")?);
        all.extend(self.dump(msg::GETNEIGH, 12, "neighbour dump")?);
        Ok(all)
    }

    /// Asks the kernel to resolve `addr` on `ifindex` (it sends an ARP
    /// request or neighbour solicitation as if a packet were waiting); the
    /// answer arrives as a neighbour change.
    pub fn resolve(&mut self, ifindex: u32, addr: IpAddr) -> Result<(), RtnlError> {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
        };
        let mut body = vec![0u8; 12];
        body[0] = family;
        body[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        body[10] = NTF_USE;
        let mut w = nla::Writer::new();
        w.put(NDA_DST, &bytes);
        body.extend_from_slice(w.as_bytes());
        self.request(
            msg::NEWNEIGH,
            NlmF::ACK | NlmF::CREATE,
            body,
            &format!("resolving {addr} on interface {ifindex}"),
        )
        .map(drop)
    }
}

/// A listener on the link, address, route and neighbour groups (a socket
/// of its own on rustix, for its receive timeout).
pub struct RtnlMonitor {
    fd: OwnedFd,
    buf: Vec<u8>,
    timeout: Option<Duration>,
}

impl RtnlMonitor {
    /// Joins the groups; changes from now on are queued for [`recv`](Self::recv).
    /// Open it before dumping, so nothing falls between the dump and it.
    pub fn open() -> Result<RtnlMonitor, RtnlError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            // Protocol 0 is NETLINK_ROUTE.
            None,
        )
        .map_err(std::io::Error::from)?;
        let groups = [
            group::LINK,
            group::NEIGH,
            group::IPV4_IFADDR,
            group::IPV4_ROUTE,
            group::IPV6_IFADDR,
            group::IPV6_ROUTE,
        ]
        .iter()
        .fold(0u32, |m, g| m | 1 << (g - 1));
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups)).map_err(std::io::Error::from)?;
        if sockopt::set_socket_recv_buffer_size_force(&fd, MONITOR_BUFFER).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, MONITOR_BUFFER);
        }
        Ok(RtnlMonitor {
            fd,
            buf: vec![0; RECV_BUF],
            timeout: None,
        })
    }

    /// The changes of the next datagram, or none after `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Vec<Change>, RtnlError> {
        if self.timeout != Some(timeout) {
            sockopt::set_socket_timeout(&self.fd, Timeout::Recv, Some(timeout)).map_err(std::io::Error::from)?;
            self.timeout = Some(timeout);
        }
        let n = match rustix::net::recv(&self.fd, &mut self.buf[..RECV_BUF - 4], RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::NOBUFS) => return Err(RtnlError::Overflow),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(std::io::Error::from(e).into()),
        };
        let mut out = Vec::new();
        for (ty, body) in messages(&mut self.buf, n)? {
            if let Ok(p) = body {
                if let Some(c) = decode(ty, &p)? {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_attrs(header: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut w = nla::Writer::new();
        for (t, p) in attrs {
            w.put(*t, p);
        }
        [header, w.as_bytes()].concat()
    }

    #[test]
    fn routes_addresses_neighbours_and_links_decode() {
        // 10.0.0.0/8 via 172.31.0.254 dev 3, metric 100, main table.
        let mut h = [0u8; 12];
        (h[0], h[1], h[4], h[7]) = (AF_INET, 8, 254, route_type::UNICAST);
        let p = with_attrs(
            &h,
            &[
                (RTA_DST, &[10, 0, 0, 0]),
                (RTA_GATEWAY, &[172, 31, 0, 254]),
                (RTA_OIF, &3u32.to_ne_bytes()),
                (RTA_PRIORITY, &100u32.to_ne_bytes()),
            ],
        );
        assert_eq!(
            decode(msg::NEWROUTE, &p).unwrap(),
            Some(Change::Route(Route {
                table: RT_TABLE_MAIN,
                kind: route_type::UNICAST,
                dst: "10.0.0.0".parse().unwrap(),
                prefix_len: 8,
                oif: Some(3),
                gateway: Some("172.31.0.254".parse().unwrap()),
                prefsrc: None,
                metric: 100,
            }))
        );
        // A default route has no RTA_DST; a multipath one no RTA_OIF.
        let p = with_attrs(&h, &[(RTA_OIF, &3u32.to_ne_bytes())]);
        let Some(Change::Route(r)) = decode(msg::NEWROUTE, &p).unwrap() else {
            panic!("a route")
        };
        assert_eq!(r.dst, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            decode(msg::NEWROUTE, &with_attrs(&h, &[(RTA_DST, &[10, 0, 0, 0])])).unwrap(),
            None
        );

        let mut a = [0u8; 8];
        (a[0], a[1]) = (AF_INET6, 64);
        a[4..8].copy_from_slice(&5u32.to_ne_bytes());
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let p = with_attrs(&a, &[(IFA_ADDRESS, &v6.octets())]);
        assert_eq!(
            decode(msg::DELADDR, &p).unwrap(),
            Some(Change::AddressGone(Address {
                ifindex: 5,
                addr: IpAddr::V6(v6),
                prefix_len: 64
            }))
        );

        let mut n = [0u8; 12];
        n[0] = AF_INET;
        n[4..8].copy_from_slice(&3u32.to_ne_bytes());
        n[8..10].copy_from_slice(&nud::REACHABLE.to_ne_bytes());
        let p = with_attrs(&n, &[(NDA_DST, &[172, 31, 0, 2]), (NDA_LLADDR, &[2, 0, 0, 0, 0, 9])]);
        let Some(Change::Neighbour(nb)) = decode(msg::NEWNEIGH, &p).unwrap() else {
            panic!("a neighbour")
        };
        assert_eq!(nb.usable_mac(), Some([2, 0, 0, 0, 0, 9]));
        n[8..10].copy_from_slice(&nud::FAILED.to_ne_bytes());
        let p = with_attrs(&n, &[(NDA_DST, &[172, 31, 0, 2]), (NDA_LLADDR, &[2, 0, 0, 0, 0, 9])]);
        let Some(Change::Neighbour(nb)) = decode(msg::NEWNEIGH, &p).unwrap() else {
            panic!("a neighbour")
        };
        assert_eq!(nb.usable_mac(), None, "a failed entry's address is not used");

        let mut l = [0u8; 16];
        l[4..8].copy_from_slice(&7u32.to_ne_bytes());
        l[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        let p = with_attrs(
            &l,
            &[
                (IFLA_IFNAME, b"u0\0"),
                (IFLA_MTU, &9000u32.to_ne_bytes()),
                (IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]),
            ],
        );
        assert_eq!(
            decode(msg::NEWLINK, &p).unwrap(),
            Some(Change::Link(Link {
                ifindex: 7,
                name: "u0".into(),
                mac: Some([2, 0, 0, 0, 0, 1]),
                mtu: 9000,
                up: true
            }))
        );
    }

    #[test]
    fn malformed_messages_are_errors_and_foreign_ones_nothing() {
        assert!(decode(msg::NEWROUTE, &[0u8; 5]).is_err(), "short header");
        let mut h = [0u8; 12];
        h[0] = AF_INET;
        assert!(decode(msg::NEWROUTE, &with_attrs(&h, &[(RTA_DST, &[10, 0, 0])])).is_err());
        let mut cut = with_attrs(&h, &[(RTA_OIF, &3u32.to_ne_bytes())]);
        cut.truncate(cut.len() - 2);
        assert!(decode(msg::NEWROUTE, &cut).is_err(), "attribute cut off");
        h[0] = 7; // AF_BRIDGE-like family
        assert_eq!(decode(msg::NEWNEIGH, &h).unwrap(), None);
        assert_eq!(decode(99, &[]).unwrap(), None);
        let mut n = [0u8; 12];
        n[0] = AF_INET;
        assert!(decode(msg::NEWNEIGH, &n).is_err(), "a neighbour without its address");
    }
}
