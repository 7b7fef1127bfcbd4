//! Checksums: one's-complement arithmetic (RFC 1071, RFC 1624) for IP,
//! TCP, UDP and ICMP, and CRC32c for SCTP.

/// CRC32c (Castagnoli, reflected), SCTP's checksum (RFC 9260,
/// appendix A), stored little-endian in the packet. Bit by bit: only
/// the packets a rule rewrites the SCTP ports of pay for it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Adds `data` to a running 32-bit sum (16-bit big-endian words; an odd
/// last byte is padded with zero).
pub fn add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

/// Folds a running sum and complements it: the checksum to write.
pub fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum of `data`.
pub fn of(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// RFC 1624: the checksum after one 16-bit word changed.
#[inline]
pub fn replace2(csum: u16, old: u16, new: u16) -> u16 {
    let mut sum = (!csum as u32) + (!old as u32) + new as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The sum of the IPv6 pseudo-header of an upper-layer packet.
pub fn ipv6_pseudo(src: &[u8; 16], dst: &[u8; 16], len: u32, next_header: u8) -> u32 {
    let mut sum = add(add(0, src), dst);
    sum += len >> 16;
    sum += len & 0xffff;
    sum + next_header as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_gives_the_castagnoli_check_value() {
        // The check value of CRC-32C (RFC 3720, B.4: "123456789"), and 32
        // zero bytes (B.4's first vector).
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(super::crc32c(&[0u8; 32]), 0x8a91_36aa);
    }
}
