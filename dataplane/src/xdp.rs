//! The XDP programs odpx attaches, and the objects that hold them.
//!
//! * [`RedirectProgram`] ([`redirect_all`]): an AF_XDP port's program;
//!   every packet goes to the socket of its receive queue.
//! * [`UnderlayProgram`] ([`underlay_filter`]): the program of a tunnel underlay port. It sends
//!   to AF_XDP only VXLAN packets for a local VTEP: untagged Ethernet,
//!   IPv4 without options and not a fragment (or IPv6 whose next header is
//!   UDP), UDP to a (destination address, port) pair listed in the VTEP
//!   maps, which odpx fills from the kernel's addresses. Everything else
//!   (ARP for the VTEP address, ping of the host, SSH, routing daemons,
//!   truncated frames, VLAN-tagged frames, other UDP ports) goes on to the
//!   kernel's stack (`XDP_PASS`): the NIC stays the host's.
//!
//! # Map keys
//! The VTEP maps are hash maps whose keys hold the address and the UDP
//! port exactly as the packet carries them (network byte order): IPv4
//! `[addr(4), port(2), 0, 0]`, IPv6 `[addr(16), port(2), 0, 0]`
//! ([`vtep_key_v4`], [`vtep_key_v6`]). Values are one byte, unused.

//!
//! # Ownership
//! A program object belongs to the port that attached it; dropping it
//! detaches the program (the bpf_link closes). The VTEP maps of an
//! underlay port are written only by the daemon's owner of tunnel
//! configuration, through [`VtepMaps`]; the PMDs never touch them.

use crate::bpf::{helper, xdp, xdp_md, Asm, Cond, Reg, Size, R0, R1, R10, R2, R3, R6, R7, R8};
use crate::sys::bpf::{BpfMap, XdpLink, XdpProgram};
use crate::sys::xsk::XskSocket;
use std::io;
use std::net::IpAddr;

/// What a packet that passes the filter meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// `bpf_redirect_map(xskmap, rx_queue_index, XDP_PASS)`: to the AF_XDP
    /// socket of the queue (the kernel's stack when there is none).
    Redirect { xskmap_fd: i32 },
    /// Returns this verdict (tests: the same decisions, without sockets).
    Verdict(i32),
}

/// The key of an IPv4 VTEP in the map (see the module documentation).
pub fn vtep_key_v4(addr: std::net::Ipv4Addr, port: u16) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&addr.octets());
    k[4..6].copy_from_slice(&port.to_be_bytes());
    k
}

/// The key of an IPv6 VTEP in the map.
pub fn vtep_key_v6(addr: std::net::Ipv6Addr, port: u16) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&addr.octets());
    k[16..18].copy_from_slice(&port.to_be_bytes());
    k
}

/// The underlay port's program (see the module documentation). `v4_fd`
/// and `v6_fd` are the VTEP hash maps (keys of 8 and 20 bytes).
pub fn underlay_filter(v4_fd: i32, v6_fd: i32, steer: Steer) -> Vec<u8> {
    use odpx_classifier::wire::{
        eth_field, ethertype, ip_proto, ipv4_field, ipv6_field, udp_field, ETHERNET_LEN, IPV4_FRAGMENT, IPV4_LEN,
        IPV6_LEN, UDP_LEN,
    };
    use Cond::*;
    use Size::*;
    // Offsets within the frame (an untagged Ethernet header first).
    let at = |header: usize, field: usize| (header + field) as i16;
    let v4_end = (ETHERNET_LEN + IPV4_LEN + UDP_LEN) as i32;
    let v6_end = (ETHERNET_LEN + IPV6_LEN + UDP_LEN) as i32;
    let v4_udp = ETHERNET_LEN + IPV4_LEN;
    let v6_udp = ETHERNET_LEN + IPV6_LEN;
    // Loads are little-endian: a 16-bit field reads byte-swapped, so it
    // is compared with swapped constants.
    let swap16 = |v: u16| v.swap_bytes() as i32;
    // The version-and-length byte of IPv4 without options.
    let v4_no_options = 0x40 | (IPV4_LEN / 4) as i32;
    let mut a = Asm::new();
    // r6 = ctx; r7 = data; r8 = data_end.
    a.mov(R6, R1)
        .load(W, R7, R6, xdp_md::DATA)
        .load(W, R8, R6, xdp_md::DATA_END)
        // Room for Ethernet + IPv4 + UDP (the shorter stack)?
        .mov(R2, R7)
        .add_imm(R2, v4_end)
        .jump_reg(Gt, R2, R8, "pass")
        .load(H, R3, R7, at(0, eth_field::TYPE))
        .jump_imm(Eq, R3, swap16(ethertype::IPV4), "ipv4")
        .jump_imm(Eq, R3, swap16(ethertype::IPV6), "ipv6")
        .goto("pass");
    // IPv4: version 4, no options, not a fragment, UDP.
    // key = [dst(4), port(2), 0, 0] at r10 - 8.
    a.label("ipv4")
        .load(B, R3, R7, at(ETHERNET_LEN, ipv4_field::VER_IHL))
        .jump_imm(Ne, R3, v4_no_options, "pass")
        .load(H, R3, R7, at(ETHERNET_LEN, ipv4_field::FRAG))
        .jump_imm(Set, R3, swap16(IPV4_FRAGMENT), "pass")
        .load(B, R3, R7, at(ETHERNET_LEN, ipv4_field::PROTO))
        .jump_imm(Ne, R3, ip_proto::UDP as i32, "pass")
        .load(W, R3, R7, at(ETHERNET_LEN, ipv4_field::DST))
        .store(W, R10, -8, R3)
        .load(H, R3, R7, at(v4_udp, udp_field::DST_PORT))
        .store(H, R10, -4, R3)
        .store_imm(H, R10, -2, 0)
        .load_map(R1, v4_fd)
        .mov(R2, R10)
        .add_imm(R2, -8)
        .call(helper::MAP_LOOKUP_ELEM)
        .jump_imm(Eq, R0, 0, "pass")
        .goto("steer");
    // IPv6: next header UDP (no extension headers), room for UDP.
    // key = [dst(16), port(2), 0, 0] at r10 - 24.
    a.label("ipv6")
        .mov(R2, R7)
        .add_imm(R2, v6_end)
        .jump_reg(Gt, R2, R8, "pass")
        .load(B, R3, R7, at(ETHERNET_LEN, ipv6_field::NEXT_HEADER))
        .jump_imm(Ne, R3, ip_proto::UDP as i32, "pass");
    for word in 0..4i16 {
        a.load(W, R3, R7, at(ETHERNET_LEN, ipv6_field::DST) + 4 * word)
            .store(W, R10, -24 + 4 * word, R3);
    }
    a.load(H, R3, R7, at(v6_udp, udp_field::DST_PORT))
        .store(H, R10, -8, R3)
        .store_imm(H, R10, -6, 0)
        .load_map(R1, v6_fd)
        .mov(R2, R10)
        .add_imm(R2, -24)
        .call(helper::MAP_LOOKUP_ELEM)
        .jump_imm(Eq, R0, 0, "pass");
    a.label("steer");
    steer_tail(&mut a, R6, steer);
    a.label("pass").ret(xdp::PASS);
    a.assemble().expect("the underlay program's labels are all defined")
}

/// The end of a program for the packets it steers to AF_XDP (`ctx`
/// holds the `xdp_md` pointer): the redirect, or the tests' verdict.
pub(crate) fn steer_tail(a: &mut Asm, ctx: Reg, steer: Steer) {
    match steer {
        Steer::Redirect { xskmap_fd } => {
            a.load(Size::W, R2, ctx, xdp_md::RX_QUEUE_INDEX)
                .load_map(R1, xskmap_fd)
                .mov_imm(R3, xdp::PASS)
                .call(helper::REDIRECT_MAP)
                .exit();
        }
        Steer::Verdict(v) => {
            a.ret(v);
        }
    }
}

/// The AF_XDP port's program: every packet to the socket of its queue.
pub fn redirect_all(xskmap_fd: i32) -> Vec<u8> {
    let mut a = Asm::new();
    a.load(Size::W, R2, R1, xdp_md::RX_QUEUE_INDEX)
        .load_map(R1, xskmap_fd)
        .mov_imm(R3, xdp::PASS)
        .call(helper::REDIRECT_MAP)
        .exit();
    a.assemble().expect("no labels")
}

/// An AF_XDP port's program on one interface, with its XSKMAP.
pub struct RedirectProgram {
    xsks: BpfMap,
    _prog: XdpProgram,
    link: XdpLink,
    pub ifindex: u32,
}

impl RedirectProgram {
    /// Loads and attaches the program; `queues` is the XSKMAP size.
    pub fn attach(ifindex: u32, queues: u32) -> io::Result<RedirectProgram> {
        let xsks = BpfMap::xsk(queues)?;
        let prog = XdpProgram::load(&redirect_all(xsks.fd()), "odpx_xsk")?;
        let link = prog.attach(ifindex)?;
        Ok(RedirectProgram {
            xsks,
            _prog: prog,
            link,
            ifindex,
        })
    }

    /// Driver (native) mode rather than generic (skb) mode.
    pub fn native(&self) -> bool {
        self.link.native
    }

    /// Points queue `queue`'s packets at a socket.
    pub fn register(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        self.xsks.set_socket(queue, sock)
    }
}

/// Bytes of a VTEP map value (unused: presence is the answer).
const VTEP_VALUE: [u8; 1] = [1];
/// Local VTEPs one underlay port can hold.
const MAX_VTEPS: u32 = 256;

/// The (address, UDP port) pairs an underlay port accepts VXLAN for.
pub struct VtepMaps {
    v4: BpfMap,
    v6: BpfMap,
}

impl VtepMaps {
    pub fn new() -> io::Result<VtepMaps> {
        Ok(VtepMaps {
            v4: BpfMap::hash(8, VTEP_VALUE.len(), MAX_VTEPS, "odpx_vtep4")?,
            v6: BpfMap::hash(20, VTEP_VALUE.len(), MAX_VTEPS, "odpx_vtep6")?,
        })
    }

    /// Accepts VXLAN to `addr`:`port` from now on.
    pub fn add(&self, addr: IpAddr, port: u16) -> io::Result<()> {
        match addr {
            IpAddr::V4(a) => self.v4.update(&vtep_key_v4(a, port), &VTEP_VALUE),
            IpAddr::V6(a) => self.v6.update(&vtep_key_v6(a, port), &VTEP_VALUE),
        }
    }

    /// Stops accepting it; false when it was not there.
    pub fn remove(&self, addr: IpAddr, port: u16) -> io::Result<bool> {
        match addr {
            IpAddr::V4(a) => self.v4.delete(&vtep_key_v4(a, port)),
            IpAddr::V6(a) => self.v6.delete(&vtep_key_v6(a, port)),
        }
    }

    /// The program over these maps, deciding with `steer`.
    pub fn program(&self, steer: Steer) -> Vec<u8> {
        underlay_filter(self.v4.fd(), self.v6.fd(), steer)
    }
}

/// A tunnel underlay port's program on one interface: VXLAN for a local
/// VTEP to AF_XDP, the rest to the kernel.
pub struct UnderlayProgram {
    pub vteps: VtepMaps,
    xsks: BpfMap,
    _prog: XdpProgram,
    link: XdpLink,
    pub ifindex: u32,
}

impl UnderlayProgram {
    /// Loads and attaches the program; `queues` is the XSKMAP size. It
    /// accepts nothing until VTEPs are added.
    pub fn attach(ifindex: u32, queues: u32) -> io::Result<UnderlayProgram> {
        let vteps = VtepMaps::new()?;
        let xsks = BpfMap::xsk(queues)?;
        let prog = XdpProgram::load(
            &vteps.program(Steer::Redirect { xskmap_fd: xsks.fd() }),
            "odpx_underlay",
        )?;
        let link = prog.attach(ifindex)?;
        Ok(UnderlayProgram {
            vteps,
            xsks,
            _prog: prog,
            link,
            ifindex,
        })
    }

    /// Driver (native) mode rather than generic (skb) mode.
    pub fn native(&self) -> bool {
        self.link.native
    }

    /// Points queue `queue`'s accepted packets at a socket.
    pub fn register(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        self.xsks.set_socket(queue, sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_program_is_the_five_instructions_it_always_was() {
        // ldxw r2,[r1+16]; ld_imm64 r1,map (two slots); mov r3,2; call 51; exit
        let code = redirect_all(7);
        assert_eq!(code.len(), 6 * 8);
        assert_eq!(&code[..8], &[0x61, 0x12, 16, 0, 0, 0, 0, 0]);
        assert_eq!(&code[8..16], &[0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(&code[24..32], &[0xb7, 0x03, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&code[32..40], &[0x85, 0, 0, 0, 51, 0, 0, 0]);
        assert_eq!(&code[40..48], &[0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn vtep_keys_hold_address_and_port_in_network_order() {
        assert_eq!(
            vtep_key_v4("172.31.0.1".parse().unwrap(), 4789),
            [172, 31, 0, 1, 0x12, 0xb5, 0, 0]
        );
        let k = vtep_key_v6("2001:db8::1".parse().unwrap(), 4789);
        assert_eq!(&k[..2], &[0x20, 0x01]);
        assert_eq!(&k[16..], &[0x12, 0xb5, 0, 0]);
    }
}
