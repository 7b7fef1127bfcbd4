//! Zero-copy header views over frame bytes.
//!
//! Each view wraps `T: AsRef<[u8]>` and is created with `new_checked`, which
//! verifies the buffer holds the fixed header. After that no getter panics;
//! setters exist on `T: AsMut<[u8]>` (the dataplane rewrites headers in
//! place). Field offsets live in a private `field` module per header, as in
//! smoltcp. Nothing here allocates.

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

mod eth_field {
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
}

view!(
    /// IPv4 header, fixed part (20 bytes).
    Ipv4Header,
    20
);

mod ipv4_field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
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
}

view!(
    /// IPv6 fixed header (40 bytes).
    Ipv6Header,
    40
);

impl<T: AsRef<[u8]>> Ipv6Header<T> {
    pub fn traffic_class(&self) -> u8 {
        (be16(self.b(), 0) >> 4) as u8
    }
    pub fn flow_label(&self) -> u32 {
        be32(self.b(), 0) & 0x000f_ffff
    }
    pub fn next_header(&self) -> u8 {
        self.b()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[7]
    }
    pub fn src(&self) -> [u8; 16] {
        arr(self.b(), 8)
    }
    pub fn dst(&self) -> [u8; 16] {
        arr(self.b(), 24)
    }
}

view!(
    /// TCP header, fixed part (20 bytes).
    TcpHeader,
    20
);

impl<T: AsRef<[u8]>> TcpHeader<T> {
    pub fn src_port(&self) -> u16 {
        be16(self.b(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), 2)
    }
    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        ((self.b()[12] >> 4) as usize) * 4
    }
    /// The 12 flag bits (NS..FIN), as ODP `tcp_flags`.
    pub fn flags(&self) -> u16 {
        be16(self.b(), 12) & 0x0fff
    }
}

view!(
    /// UDP header (8 bytes); SCTP's ports sit at the same offsets.
    UdpHeader,
    8
);

impl<T: AsRef<[u8]>> UdpHeader<T> {
    pub fn src_port(&self) -> u16 {
        be16(self.b(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), 2)
    }
}

view!(
    /// ICMP / ICMPv6 header (8 bytes).
    IcmpHeader,
    8
);

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    pub fn icmp_type(&self) -> u8 {
        self.b()[0]
    }
    pub fn code(&self) -> u8 {
        self.b()[1]
    }
}

view!(
    /// ARP for Ethernet/IPv4 (28 bytes).
    ArpPacket,
    28
);

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
        be16(self.b(), 6)
    }
    pub fn sender_hw(&self) -> [u8; 6] {
        arr(self.b(), 8)
    }
    pub fn sender_ip(&self) -> u32 {
        be32(self.b(), 14)
    }
    pub fn target_hw(&self) -> [u8; 6] {
        arr(self.b(), 18)
    }
    pub fn target_ip(&self) -> u32 {
        be32(self.b(), 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_rejected_not_panicking() {
        assert_eq!(EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(), Truncated);
        assert!(Ipv4Header::new_checked(&[0u8; 19][..]).is_err());
        let f = EthernetFrame::new_checked(&[0xffu8; 14][..]).unwrap();
        assert_eq!(f.ethertype(), 0xffff);
    }
}
