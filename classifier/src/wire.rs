//! Zero-copy header views over frame bytes, and the one definition of the
//! protocol numbers and sizes the rest of odpx uses.
//!
//! Each view wraps `T: AsRef<[u8]>` and is created with `new_checked`, which
//! verifies the buffer holds the fixed header. After that no getter panics;
//! setters exist on `T: AsMut<[u8]>` (the dataplane rewrites headers in
//! place). Field offsets live in a private `field` module per header, as in
//! smoltcp. Nothing here allocates.
//!
//! [`VxlanRepr`] is the outer header stack of a VXLAN tunnel as a value
//! (smoltcp's `Repr`): `emit` builds the header template a `tnl_push`
//! carries, `parse` reads one back (from a template, or from a received
//! frame on decapsulation). [`checksum`] has the one's-complement
//! arithmetic every header edit needs.

/// The buffer is shorter than the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

#[inline(always)]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Ethertypes.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const RARP: u16 = 0x8035;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MC: u16 = 0x8848;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

/// IP protocol numbers.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const SCTP: u8 = 132;
    pub const ICMPV6: u8 = 58;
}

/// Fixed header sizes, in bytes.
pub const ETHERNET_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const IPV6_LEN: usize = 40;
pub const UDP_LEN: usize = 8;
pub const VXLAN_LEN: usize = 8;
/// What VXLAN adds in front of an inner frame: Ethernet, IP, UDP, VXLAN.
pub const VXLAN_OVER_IPV4: usize = ETHERNET_LEN + IPV4_LEN + UDP_LEN + VXLAN_LEN;
pub const VXLAN_OVER_IPV6: usize = ETHERNET_LEN + IPV6_LEN + UDP_LEN + VXLAN_LEN;
/// The IANA port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// The VXLAN flags word with the I bit: "the VNI is valid".
pub const VXLAN_FLAGS_VNI: u32 = 0x0800_0000;
/// IPv4's don't-fragment bit, in the flags-and-offset field.
pub const IPV4_DF: u16 = 0x4000;
/// The IPv4 flags-and-offset bits that make a packet a fragment: MF and
/// the 13-bit offset.
pub const IPV4_FRAGMENT: u16 = 0x3fff;
/// The 13-bit fragment offset: non-zero on every fragment but the first,
/// which alone carries the transport header.
pub const IPV4_FRAG_OFFSET: u16 = 0x1fff;
/// An 802.1Q/802.1ad tag: TPID and TCI, between the MAC addresses and the
/// Ethertype.
pub const VLAN_TAG_LEN: usize = 4;
/// An MPLS label stack entry (label, TC, bottom of stack, TTL: 32 bits),
/// after the Ethertype that announces it.
pub const MPLS_LSE_LEN: usize = 4;

/// Checksums: one's-complement arithmetic (RFC 1071, RFC 1624), CRC32c.
pub mod checksum;

macro_rules! view {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<T> {
            buf: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Bytes of the fixed header.
            pub const LEN: usize = $len;

            /// Wraps `buf` if it holds at least the fixed header.
            #[inline(always)]
            pub fn new_checked(buf: T) -> Result<Self, Truncated> {
                if buf.as_ref().len() < Self::LEN {
                    Err(Truncated)
                } else {
                    Ok($name { buf })
                }
            }

            #[inline(always)]
            fn b(&self) -> &[u8] {
                self.buf.as_ref()
            }

            pub fn into_inner(self) -> T {
                self.buf
            }
        }
    };
}

view!(
    /// Ethernet II header (14 bytes).
    EthernetFrame,
    14
);

/// Field offsets in an Ethernet header (for code that cannot use the view:
/// XDP programs).
pub mod eth_field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const TYPE: usize = 12;
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn dst(&self) -> [u8; 6] {
        arr(self.b(), eth_field::DST)
    }
    pub fn src(&self) -> [u8; 6] {
        arr(self.b(), eth_field::SRC)
    }
    pub fn ethertype(&self) -> u16 {
        be16(self.b(), eth_field::TYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, v: [u8; 6]) {
        self.buf.as_mut()[eth_field::DST..eth_field::DST + 6].copy_from_slice(&v);
    }
    pub fn set_src(&mut self, v: [u8; 6]) {
        self.buf.as_mut()[eth_field::SRC..eth_field::SRC + 6].copy_from_slice(&v);
    }
    pub fn set_ethertype(&mut self, v: u16) {
        put16(self.buf.as_mut(), eth_field::TYPE, v);
    }
}

view!(
    /// An 802.1Q/802.1ad tag, read where an Ethertype would be: the TPID,
    /// then the TCI (4 bytes; the next Ethertype follows).
    VlanTag,
    VLAN_TAG_LEN
);

/// Field offsets in a VLAN tag.
pub mod vlan_field {
    pub const TPID: usize = 0;
    pub const TCI: usize = 2;
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub fn tpid(&self) -> u16 {
        be16(self.b(), vlan_field::TPID)
    }
    pub fn tci(&self) -> u16 {
        be16(self.b(), vlan_field::TCI)
    }
    /// Whether the TPID is one of a VLAN tag (802.1Q or 802.1ad).
    pub fn is_tag(&self) -> bool {
        matches!(self.tpid(), ethertype::VLAN | ethertype::QINQ)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    pub fn set_tpid(&mut self, v: u16) {
        put16(self.buf.as_mut(), vlan_field::TPID, v);
    }
    pub fn set_tci(&mut self, v: u16) {
        put16(self.buf.as_mut(), vlan_field::TCI, v);
    }
}

view!(
    /// IPv4 header, fixed part (20 bytes).
    Ipv4Header,
    20
);

/// Field offsets in an IPv4 header.
pub mod ipv4_field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

impl<T: AsRef<[u8]>> Ipv4Header<T> {
    pub fn version(&self) -> u8 {
        self.b()[ipv4_field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        ((self.b()[ipv4_field::VER_IHL] & 0x0f) as usize) * 4
    }
    pub fn tos(&self) -> u8 {
        self.b()[ipv4_field::TOS]
    }
    pub fn total_len(&self) -> u16 {
        be16(self.b(), ipv4_field::LEN)
    }
    /// Flags and fragment offset (host order).
    pub fn frag_field(&self) -> u16 {
        be16(self.b(), ipv4_field::FRAG)
    }
    pub fn ttl(&self) -> u8 {
        self.b()[ipv4_field::TTL]
    }
    pub fn proto(&self) -> u8 {
        self.b()[ipv4_field::PROTO]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), ipv4_field::CSUM)
    }
    pub fn src(&self) -> u32 {
        be32(self.b(), ipv4_field::SRC)
    }
    pub fn dst(&self) -> u32 {
        be32(self.b(), ipv4_field::DST)
    }
    /// True if the header (of `header_len` bytes, clamped to the buffer)
    /// sums to zero with its checksum.
    pub fn checksum_ok(&self) -> bool {
        let n = self.header_len().clamp(IPV4_LEN, self.b().len());
        checksum::finish(checksum::add(0, &self.b()[..n])) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Header<T> {
    /// Version 4, and a header of `len` bytes (a multiple of 4).
    pub fn set_version_and_len(&mut self, len: usize) {
        self.buf.as_mut()[ipv4_field::VER_IHL] = 0x40 | (len / 4) as u8;
    }
    pub fn set_tos(&mut self, v: u8) {
        self.buf.as_mut()[ipv4_field::TOS] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buf.as_mut(), ipv4_field::LEN, v);
    }
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buf.as_mut(), ipv4_field::IDENT, v);
    }
    pub fn set_frag_field(&mut self, v: u16) {
        put16(self.buf.as_mut(), ipv4_field::FRAG, v);
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buf.as_mut()[ipv4_field::TTL] = v;
    }
    pub fn set_proto(&mut self, v: u8) {
        self.buf.as_mut()[ipv4_field::PROTO] = v;
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), ipv4_field::CSUM, v);
    }
    pub fn set_src(&mut self, v: u32) {
        put32(self.buf.as_mut(), ipv4_field::SRC, v);
    }
    pub fn set_dst(&mut self, v: u32) {
        put32(self.buf.as_mut(), ipv4_field::DST, v);
    }
    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let n = self.header_len().clamp(IPV4_LEN, self.b().len());
        let c = checksum::of(&self.b()[..n]);
        self.set_checksum(c);
    }
}

view!(
    /// IPv6 fixed header (40 bytes).
    Ipv6Header,
    40
);

/// Field offsets in an IPv6 header.
pub mod ipv6_field {
    pub const VER_CLASS_LABEL: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

impl<T: AsRef<[u8]>> Ipv6Header<T> {
    pub fn traffic_class(&self) -> u8 {
        (be16(self.b(), ipv6_field::VER_CLASS_LABEL) >> 4) as u8
    }
    pub fn flow_label(&self) -> u32 {
        be32(self.b(), ipv6_field::VER_CLASS_LABEL) & 0x000f_ffff
    }
    pub fn payload_len(&self) -> u16 {
        be16(self.b(), ipv6_field::PAYLOAD_LEN)
    }
    pub fn next_header(&self) -> u8 {
        self.b()[ipv6_field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[ipv6_field::HOP_LIMIT]
    }
    pub fn src(&self) -> [u8; 16] {
        arr(self.b(), ipv6_field::SRC)
    }
    pub fn dst(&self) -> [u8; 16] {
        arr(self.b(), ipv6_field::DST)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Header<T> {
    /// Version 6 with this traffic class and flow label.
    /// Sets the traffic class and flow label, keeping the version nibble
    /// as it was (a rewrite does not repair a malformed header).
    pub fn set_class_and_label(&mut self, class: u8, label: u32) {
        let version = be32(self.b(), ipv6_field::VER_CLASS_LABEL) & 0xf000_0000;
        put32(
            self.buf.as_mut(),
            ipv6_field::VER_CLASS_LABEL,
            version | ((class as u32) << 20) | (label & 0x000f_ffff),
        );
    }
    pub fn set_version_class_label(&mut self, class: u8, label: u32) {
        put32(
            self.buf.as_mut(),
            ipv6_field::VER_CLASS_LABEL,
            (6 << 28) | ((class as u32) << 20) | (label & 0x000f_ffff),
        );
    }
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buf.as_mut(), ipv6_field::PAYLOAD_LEN, v);
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buf.as_mut()[ipv6_field::NEXT_HEADER] = v;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buf.as_mut()[ipv6_field::HOP_LIMIT] = v;
    }
    pub fn set_src(&mut self, v: [u8; 16]) {
        self.buf.as_mut()[ipv6_field::SRC..ipv6_field::SRC + 16].copy_from_slice(&v);
    }
    pub fn set_dst(&mut self, v: [u8; 16]) {
        self.buf.as_mut()[ipv6_field::DST..ipv6_field::DST + 16].copy_from_slice(&v);
    }
}

view!(
    /// TCP header, fixed part (20 bytes).
    TcpHeader,
    20
);

/// Field offsets in a TCP header.
pub mod tcp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    /// Data offset (top 4 bits), then the flags.
    pub const OFFSET_FLAGS: usize = 12;
    pub const CSUM: usize = 16;
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    pub fn src_port(&self) -> u16 {
        be16(self.b(), tcp_field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), tcp_field::DST_PORT)
    }
    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        ((self.b()[tcp_field::OFFSET_FLAGS] >> 4) as usize) * 4
    }
    /// The 12 flag bits (NS..FIN), as ODP `tcp_flags`.
    pub fn flags(&self) -> u16 {
        be16(self.b(), tcp_field::OFFSET_FLAGS) & 0x0fff
    }
}

view!(
    /// UDP header (8 bytes); SCTP's ports sit at the same offsets.
    UdpHeader,
    8
);

/// Field offsets in a UDP header.
pub mod udp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LEN: usize = 4;
    pub const CSUM: usize = 6;
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    pub fn src_port(&self) -> u16 {
        be16(self.b(), udp_field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), udp_field::DST_PORT)
    }
    /// Header and payload, in bytes.
    pub fn len(&self) -> u16 {
        be16(self.b(), udp_field::LEN)
    }
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= UDP_LEN
    }
    pub fn checksum(&self) -> u16 {
        be16(self.b(), udp_field::CSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpHeader<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), udp_field::SRC_PORT, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), udp_field::DST_PORT, v);
    }
    pub fn set_len(&mut self, v: u16) {
        put16(self.buf.as_mut(), udp_field::LEN, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), udp_field::CSUM, v);
    }
}

view!(
    /// VXLAN header (8 bytes, RFC 7348): a flags word, then the VNI in the
    /// top 24 bits of the second.
    VxlanHeader,
    VXLAN_LEN
);

impl<T: AsRef<[u8]>> VxlanHeader<T> {
    /// The first 32-bit word: flags (top byte) and reserved bits.
    pub fn flags(&self) -> u32 {
        be32(self.b(), 0)
    }
    pub fn vni(&self) -> u32 {
        be32(self.b(), 4) >> 8
    }
    /// The second word's low byte (reserved).
    pub fn reserved(&self) -> u8 {
        self.b()[7]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanHeader<T> {
    pub fn set_flags(&mut self, v: u32) {
        put32(self.buf.as_mut(), 0, v);
    }
    pub fn set_vni(&mut self, v: u32) {
        put32(self.buf.as_mut(), 4, (v & 0x00ff_ffff) << 8);
    }
}

view!(
    /// ICMP / ICMPv6 header (8 bytes).
    IcmpHeader,
    8
);

/// Field offsets in an ICMP / ICMPv6 header.
pub mod icmp_field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CSUM: usize = 2;
}

/// Neighbour discovery (RFC 4861) after the ICMPv6 header: solicitations
/// (type 135) and advertisements (136) carry a target address, then
/// options of `len` units of 8 bytes; the link-layer address options
/// hold a MAC address after their type and length.
pub mod nd_field {
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// The target address (16 bytes), after 4 bytes of flags.
    pub const TARGET: usize = 8;
    /// Where the options start.
    pub const OPTIONS: usize = 24;
    pub const OPTION_UNIT: usize = 8;
    /// An option's address, after its type and length bytes.
    pub const OPTION_LLA: usize = 2;
    pub const SOURCE_LLA: u8 = 1;
    pub const TARGET_LLA: u8 = 2;
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    pub fn icmp_type(&self) -> u8 {
        self.b()[icmp_field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.b()[icmp_field::CODE]
    }
}

/// Where SCTP's common header fields lie.
pub mod sctp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const CSUM: usize = 8;
    /// The common header's length.
    pub const LEN: usize = 12;
}

view!(
    /// ARP for Ethernet/IPv4 (28 bytes).
    ArpPacket,
    28
);

/// Where [`ArpPacket`]'s fields lie (Ethernet/IPv4 ARP).
pub mod arp_field {
    pub const OP: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn hardware_type(&self) -> u16 {
        be16(self.b(), 0)
    }
    pub fn protocol_type(&self) -> u16 {
        be16(self.b(), 2)
    }
    pub fn hardware_len(&self) -> u8 {
        self.b()[4]
    }
    pub fn protocol_len(&self) -> u8 {
        self.b()[5]
    }
    pub fn operation(&self) -> u16 {
        be16(self.b(), arp_field::OP)
    }
    pub fn sender_hw(&self) -> [u8; 6] {
        arr(self.b(), arp_field::SHA)
    }
    pub fn sender_ip(&self) -> u32 {
        be32(self.b(), arp_field::SPA)
    }
    pub fn target_hw(&self) -> [u8; 6] {
        arr(self.b(), arp_field::THA)
    }
    pub fn target_ip(&self) -> u32 {
        be32(self.b(), arp_field::TPA)
    }
}

/// The outer IP header of a tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelIp {
    V4 {
        src: u32,
        dst: u32,
        tos: u8,
        ttl: u8,
        /// Flags and fragment offset (the DF bit, [`IPV4_DF`]).
        frag: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        class: u8,
        label: u32,
        hop_limit: u8,
    },
}

impl TunnelIp {
    /// The outer header's TOS (traffic class), TTL (hop limit) and
    /// whether it forbids fragmentation (IPv4's DF bit; IPv6 never
    /// fragments on the way).
    pub fn tos_ttl_df(&self) -> (u8, u8, bool) {
        match *self {
            TunnelIp::V4 { tos, ttl, frag, .. } => (tos, ttl, frag & IPV4_DF != 0),
            TunnelIp::V6 { class, hop_limit, .. } => (class, hop_limit, false),
        }
    }
}

/// The outer headers of a VXLAN tunnel: Ethernet, IPv4 or IPv6, UDP,
/// VXLAN. Lengths and checksums are the packet's business: a template
/// carries zero lengths and the checksum of its own IPv4 header with a
/// zero total length, which the datapath updates per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub ip: TunnelIp,
    pub udp_src: u16,
    pub udp_dst: u16,
    pub udp_checksum: u16,
    pub flags: u32,
    pub vni: u32,
}

/// Why outer headers are not a VXLAN tunnel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VxlanError {
    /// The frame ends inside the outer headers.
    Truncated,
    /// Not IPv4 or IPv6 over Ethernet, or not UDP.
    NotUdpOverIp,
    /// IPv4 options, fragments, or an IP header that does not add up.
    BadIp,
    /// The VXLAN flags lack the I bit, or reserved bits are set.
    BadFlags,
}

impl VxlanRepr {
    /// Bytes of the outer headers.
    pub fn header_len(&self) -> usize {
        match self.ip {
            TunnelIp::V4 { .. } => VXLAN_OVER_IPV4,
            TunnelIp::V6 { .. } => VXLAN_OVER_IPV6,
        }
    }

    /// Writes the header template into `buf` (at least
    /// [`VxlanRepr::header_len`] bytes).
    pub fn emit(&self, buf: &mut [u8]) {
        let mut eth = EthernetFrame { buf: &mut buf[..] };
        eth.set_dst(self.eth_dst);
        eth.set_src(self.eth_src);
        let (l4, et) = match self.ip {
            TunnelIp::V4 {
                src,
                dst,
                tos,
                ttl,
                frag,
            } => {
                let mut ip = Ipv4Header {
                    buf: &mut buf[ETHERNET_LEN..ETHERNET_LEN + IPV4_LEN],
                };
                ip.set_version_and_len(IPV4_LEN);
                ip.set_tos(tos);
                ip.set_total_len(0);
                ip.set_ident(0);
                ip.set_frag_field(frag);
                ip.set_ttl(ttl);
                ip.set_proto(ip_proto::UDP);
                ip.set_src(src);
                ip.set_dst(dst);
                ip.fill_checksum();
                (ETHERNET_LEN + IPV4_LEN, ethertype::IPV4)
            }
            TunnelIp::V6 {
                src,
                dst,
                class,
                label,
                hop_limit,
            } => {
                let mut ip = Ipv6Header {
                    buf: &mut buf[ETHERNET_LEN..ETHERNET_LEN + IPV6_LEN],
                };
                ip.set_version_class_label(class, label);
                ip.set_payload_len(0);
                ip.set_next_header(ip_proto::UDP);
                ip.set_hop_limit(hop_limit);
                ip.set_src(src);
                ip.set_dst(dst);
                (ETHERNET_LEN + IPV6_LEN, ethertype::IPV6)
            }
        };
        EthernetFrame { buf: &mut buf[..] }.set_ethertype(et);
        let mut udp = UdpHeader {
            buf: &mut buf[l4..l4 + UDP_LEN],
        };
        udp.set_src_port(self.udp_src);
        udp.set_dst_port(self.udp_dst);
        udp.set_len(0);
        udp.set_checksum(self.udp_checksum);
        let mut vx = VxlanHeader {
            buf: &mut buf[l4 + UDP_LEN..l4 + UDP_LEN + VXLAN_LEN],
        };
        vx.set_flags(self.flags);
        vx.set_vni(self.vni);
    }

    /// A whole VXLAN frame around `inner`, as a VTEP sends it: the
    /// headers with their lengths, the IPv4 header checksum and (over
    /// IPv6, or when [`VxlanRepr::udp_checksum`] is non-zero) the UDP
    /// checksum filled in. For tests, benchmarks and traffic generators;
    /// the datapath fills a template in place instead.
    pub fn encapsulate(&self, inner: &[u8]) -> Vec<u8> {
        let hlen = self.header_len();
        let mut f = vec![0u8; hlen + inner.len()];
        self.emit(&mut f);
        f[hlen..].copy_from_slice(inner);
        let ip_len = hlen - ETHERNET_LEN - UDP_LEN - VXLAN_LEN;
        let l4 = ETHERNET_LEN + ip_len;
        let udp_len = (f.len() - l4) as u16;
        let (ip, rest) = f[ETHERNET_LEN..].split_at_mut(ip_len);
        UdpHeader { buf: &mut rest[..] }.set_len(udp_len);
        let pseudo = match self.ip {
            TunnelIp::V4 { src, dst, .. } => {
                let mut h = Ipv4Header { buf: &mut ip[..] };
                h.set_total_len(udp_len + IPV4_LEN as u16);
                h.fill_checksum();
                let sum = checksum::add(checksum::add(0, &src.to_be_bytes()), &dst.to_be_bytes());
                sum + ip_proto::UDP as u32 + udp_len as u32
            }
            TunnelIp::V6 { src, dst, .. } => {
                Ipv6Header { buf: &mut ip[..] }.set_payload_len(udp_len);
                checksum::ipv6_pseudo(&src, &dst, udp_len as u32, ip_proto::UDP)
            }
        };
        if self.udp_checksum != 0 || matches!(self.ip, TunnelIp::V6 { .. }) {
            UdpHeader { buf: &mut rest[..] }.set_checksum(0);
            let c = checksum::finish(checksum::add(pseudo, &rest[..udp_len as usize]));
            UdpHeader { buf: &mut rest[..] }.set_checksum(if c == 0 { 0xffff } else { c });
        }
        f
    }

    /// Reads the outer headers at the start of `buf`: a template, or a
    /// received frame (then [`VxlanRepr::check`] says whether it may be
    /// decapsulated).
    pub fn parse(buf: &[u8]) -> Result<VxlanRepr, VxlanError> {
        let eth = EthernetFrame::new_checked(buf).map_err(|_| VxlanError::Truncated)?;
        let (ip, l4) = match eth.ethertype() {
            ethertype::IPV4 => {
                let ip = Ipv4Header::new_checked(&buf[ETHERNET_LEN..]).map_err(|_| VxlanError::Truncated)?;
                if ip.proto() != ip_proto::UDP {
                    return Err(VxlanError::NotUdpOverIp);
                }
                (
                    TunnelIp::V4 {
                        src: ip.src(),
                        dst: ip.dst(),
                        tos: ip.tos(),
                        ttl: ip.ttl(),
                        frag: ip.frag_field(),
                    },
                    ETHERNET_LEN + ip.header_len().max(IPV4_LEN),
                )
            }
            ethertype::IPV6 => {
                let ip = Ipv6Header::new_checked(&buf[ETHERNET_LEN..]).map_err(|_| VxlanError::Truncated)?;
                if ip.next_header() != ip_proto::UDP {
                    return Err(VxlanError::NotUdpOverIp);
                }
                (
                    TunnelIp::V6 {
                        src: ip.src(),
                        dst: ip.dst(),
                        class: ip.traffic_class(),
                        label: ip.flow_label(),
                        hop_limit: ip.hop_limit(),
                    },
                    ETHERNET_LEN + IPV6_LEN,
                )
            }
            _ => return Err(VxlanError::NotUdpOverIp),
        };
        let rest = buf.get(l4..).ok_or(VxlanError::Truncated)?;
        let udp = UdpHeader::new_checked(rest).map_err(|_| VxlanError::Truncated)?;
        let vx = VxlanHeader::new_checked(&rest[UDP_LEN..]).map_err(|_| VxlanError::Truncated)?;
        Ok(VxlanRepr {
            eth_dst: eth.dst(),
            eth_src: eth.src(),
            ip,
            udp_src: udp.src_port(),
            udp_dst: udp.dst_port(),
            udp_checksum: udp.checksum(),
            flags: vx.flags(),
            vni: vx.vni(),
        })
    }

    /// Whether a received frame with these outer headers may be
    /// decapsulated: the VNI is flagged valid and nothing else is set, and
    /// the outer IPv4 header has no options and is no fragment (the caller
    /// checks options through [`VxlanRepr::parse`]'s offsets).
    pub fn check(&self) -> Result<(), VxlanError> {
        if self.flags != VXLAN_FLAGS_VNI {
            return Err(VxlanError::BadFlags);
        }
        if let TunnelIp::V4 { frag, .. } = self.ip {
            if frag & IPV4_FRAGMENT != 0 {
                return Err(VxlanError::BadIp);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> VxlanRepr {
        VxlanRepr {
            eth_dst: [0, 0, 0, 0, 0, 2],
            eth_src: [0, 0, 0, 0, 0, 1],
            ip: TunnelIp::V4 {
                src: 0xc000_0201,
                dst: 0xc000_0209,
                tos: 0,
                ttl: 64,
                frag: IPV4_DF,
            },
            udp_src: 0,
            udp_dst: VXLAN_PORT,
            udp_checksum: 0,
            flags: VXLAN_FLAGS_VNI,
            vni: 42,
        }
    }

    #[test]
    fn vxlan_headers_emit_and_parse_back() {
        let mut buf = [0u8; VXLAN_OVER_IPV6];
        let r = v4();
        r.emit(&mut buf);
        assert_eq!(VxlanRepr::parse(&buf[..r.header_len()]), Ok(r));
        let ip = Ipv4Header::new_checked(&buf[ETHERNET_LEN..]).unwrap();
        assert!(ip.checksum_ok(), "the template's own checksum");
        // Byte by byte, the fields a capture shows.
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        assert_eq!(&buf[14..16], &[0x45, 0x00]);
        assert_eq!(&buf[20..24], &[0x40, 0x00, 64, 17]);
        assert_eq!(&buf[36..38], &4789u16.to_be_bytes());
        assert_eq!(&buf[42..50], &[0x08, 0, 0, 0, 0, 0, 42, 0]);
        let r6 = VxlanRepr {
            ip: TunnelIp::V6 {
                src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                class: 0x10,
                label: 7,
                hop_limit: 64,
            },
            ..r
        };
        r6.emit(&mut buf);
        assert_eq!(VxlanRepr::parse(&buf), Ok(r6));
        assert_eq!(&buf[12..14], &[0x86, 0xdd]);
        assert_eq!(&buf[14..18], &[0x61, 0x00, 0x00, 0x07]);
    }

    #[test]
    fn encapsulated_frames_have_their_lengths_and_checksums() {
        let inner = [0xabu8; 60];
        let f = v4().encapsulate(&inner);
        assert_eq!(f.len(), VXLAN_OVER_IPV4 + 60);
        let ip = Ipv4Header::new_checked(&f[ETHERNET_LEN..]).unwrap();
        assert!(ip.checksum_ok());
        assert_eq!(ip.total_len() as usize, f.len() - ETHERNET_LEN);
        let udp = UdpHeader::new_checked(&f[ETHERNET_LEN + IPV4_LEN..]).unwrap();
        assert_eq!(
            (udp.len() as usize, udp.checksum()),
            (f.len() - ETHERNET_LEN - IPV4_LEN, 0)
        );
        assert_eq!(&f[VXLAN_OVER_IPV4..], &inner[..]);
        let r6 = VxlanRepr {
            ip: TunnelIp::V6 {
                src: [1; 16],
                dst: [2; 16],
                class: 0,
                label: 0,
                hop_limit: 64,
            },
            ..v4()
        };
        let f6 = r6.encapsulate(&inner);
        let l4 = ETHERNET_LEN + IPV6_LEN;
        let sum = checksum::ipv6_pseudo(&[1; 16], &[2; 16], (f6.len() - l4) as u32, ip_proto::UDP);
        assert_eq!(
            checksum::finish(checksum::add(sum, &f6[l4..])),
            0,
            "the UDP checksum adds up"
        );
    }

    #[test]
    fn received_outer_headers_are_checked() {
        let mut buf = [0u8; VXLAN_OVER_IPV4];
        v4().emit(&mut buf);
        assert_eq!(
            VxlanRepr::parse(&buf[..VXLAN_OVER_IPV4 - 1]),
            Err(VxlanError::Truncated)
        );
        assert_eq!(VxlanRepr::parse(&buf[..10]), Err(VxlanError::Truncated));
        let mut bad = buf;
        bad[23] = 6; // TCP
        assert_eq!(VxlanRepr::parse(&bad), Err(VxlanError::NotUdpOverIp));
        let mut flags = v4();
        flags.flags = 0;
        assert_eq!(flags.check(), Err(VxlanError::BadFlags));
        let mut frag = v4();
        frag.ip = TunnelIp::V4 {
            src: 1,
            dst: 2,
            tos: 0,
            ttl: 1,
            frag: 0x2000,
        };
        assert_eq!(frag.check(), Err(VxlanError::BadIp));
        assert_eq!(v4().check(), Ok(()));
    }

    #[test]
    fn checksums_add_up() {
        // The example of RFC 1071, section 3.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum::of(&data), !0xddf2);
        let c = checksum::of(&[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(
            checksum::replace2(c, 0x1234, 0x4321),
            checksum::of(&[0x43, 0x21, 0x56, 0x78])
        );
    }

    #[test]
    fn short_buffers_are_rejected_not_panicking() {
        assert_eq!(EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(), Truncated);
        assert!(Ipv4Header::new_checked(&[0u8; 19][..]).is_err());
        let f = EthernetFrame::new_checked(&[0xffu8; 14][..]).unwrap();
        assert_eq!(f.ethertype(), 0xffff);
    }
}
