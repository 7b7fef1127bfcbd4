//! What a datapath `userspace` action carries for a packet-in: the user
//! data of the translator's `CONTROLLER` output.
//!
//! The datapaths treat it as opaque bytes and hand it back with the
//! packet; the OpenFlow agent reads it to build the PACKET_IN. Its layout
//! is odpx's own (it never leaves the host): a tag byte, then the fields
//! in big-endian order.

/// `ofp_packet_in_reason` values.
pub mod reason {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
    pub const INVALID_TTL: u8 = 2;
}

/// The first byte of a packet-in's user data.
const TAG: u8 = 0xc1;
/// Bytes of the encoding with and without a tunnel id.
const LEN: usize = 1 + 1 + 1 + 2 + 8 + 4 + 8;
const LEN_TUNNEL: usize = LEN + 8;

/// Everything a packet-in says but the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToController {
    /// [`reason`].
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    /// Bytes of the packet to send (65535: all).
    pub max_len: u16,
    pub in_port: u32,
    pub metadata: u64,
    /// The tunnel id of a packet that came through a tunnel.
    pub tun_id: Option<u64>,
}

impl ToController {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(LEN_TUNNEL);
        v.push(TAG);
        v.push(self.reason);
        v.push(self.table_id);
        v.extend_from_slice(&self.max_len.to_be_bytes());
        v.extend_from_slice(&self.cookie.to_be_bytes());
        v.extend_from_slice(&self.in_port.to_be_bytes());
        v.extend_from_slice(&self.metadata.to_be_bytes());
        if let Some(t) = self.tun_id {
            v.extend_from_slice(&t.to_be_bytes());
        }
        v
    }

    /// Reads user data; `None` if it is not a packet-in's.
    pub fn decode(b: &[u8]) -> Option<ToController> {
        if (b.len() != LEN && b.len() != LEN_TUNNEL) || b[0] != TAG {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Some(ToController {
            reason: b[1],
            table_id: b[2],
            max_len: u16::from_be_bytes([b[3], b[4]]),
            cookie: u64_at(5),
            in_port: u32::from_be_bytes([b[13], b[14], b[15], b[16]]),
            metadata: u64_at(17),
            tun_id: (b.len() == LEN_TUNNEL).then(|| u64_at(25)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for tun_id in [None, Some(42)] {
            let t = ToController {
                reason: reason::ACTION,
                table_id: 3,
                cookie: 0x5adc15c0,
                max_len: 128,
                in_port: 7,
                metadata: 0xff,
                tun_id,
            };
            assert_eq!(ToController::decode(&t.encode()), Some(t));
        }
        assert_eq!(ToController::decode(&[0; 25]), None);
        assert_eq!(ToController::decode(&[]), None);
    }
}
