//! A meter's `dscp_remark` band: the drop precedence of an IPv4 or IPv6
//! packet's DSCP raised by the band's `prec_level`.
//!
//! OpenFlow 1.3 says only "number of drop precedence levels to add". The
//! drop precedence is the DiffServ assured-forwarding one (RFC 2597: AFxy
//! is DSCP `8x + 2y`, y = 1 low, 2 medium, 3 high), so a level is 2 in the
//! DSCP. As the OpenFlow reference switch (ofsoftswitch13) does, a packet
//! whose DSCP is not an AF code point with room for the levels (best
//! effort, expedited forwarding, class selectors, AFx3) is left as it is:
//! a remark never makes a DSCP of another class. The IPv4 header checksum
//! follows (RFC 1624).

use super::Packet;
use odpx_classifier::layout::layout;
use odpx_classifier::wire::{checksum, ethertype, ipv4_field, Ipv4Header, Ipv6Header};

/// The DSCP with its drop precedence raised `levels`, when it is an AF
/// code point with room for them.
pub(crate) fn raised(dscp: u8, levels: u8) -> Option<u8> {
    let (class, drop) = (dscp >> 3, (dscp >> 1) & 3);
    let bit0 = dscp & 1;
    let up = drop.checked_add(levels)?;
    ((1..=4).contains(&class) && bit0 == 0 && drop >= 1 && up <= 3).then_some((class << 3) | (up << 1))
}

/// Raises the packet's drop precedence (see the module documentation);
/// false when it is not IP or has no room.
pub(super) fn remark(p: &mut Packet, levels: u8) -> bool {
    let l = layout(p.data());
    if let Some(at) = l.l3_of(ethertype::IPV4) {
        let Ok(mut ip) = Ipv4Header::new_checked(&mut p.data_mut()[at..]) else {
            return false;
        };
        let tos = ip.tos();
        let Some(dscp) = raised(tos >> 2, levels) else {
            return false;
        };
        let new = (dscp << 2) | (tos & 3);
        // The TOS shares its checksum word with the version and length.
        const _: () = assert!(ipv4_field::TOS == ipv4_field::VER_IHL + 1);
        let old_word = u16::from_be_bytes([ip.version() << 4 | (ip.header_len() / 4) as u8, tos]);
        let new_word = u16::from_be_bytes([old_word.to_be_bytes()[0], new]);
        ip.set_tos(new);
        let sum = ip.checksum();
        ip.set_checksum(checksum::replace2(sum, old_word, new_word));
        return true;
    }
    if let Some(at) = l.l3_of(ethertype::IPV6) {
        let Ok(mut ip) = Ipv6Header::new_checked(&mut p.data_mut()[at..]) else {
            return false;
        };
        let class = ip.traffic_class();
        let Some(dscp) = raised(class >> 2, levels) else {
            return false;
        };
        let label = ip.flow_label();
        ip.set_class_and_label((dscp << 2) | (class & 3), label);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_af_code_points_with_room_are_raised() {
        // AF11 (10) -> AF12 (12) -> AF13 (14); AF13 has no room.
        assert_eq!(raised(10, 1), Some(12));
        assert_eq!(raised(10, 2), Some(14));
        assert_eq!(raised(12, 1), Some(14));
        assert_eq!(raised(14, 1), None);
        assert_eq!(raised(12, 2), None);
        assert_eq!(raised(34, 1), Some(36)); // AF41 -> AF42
        for other in [0, 46, 8, 48, 11] {
            assert_eq!(raised(other, 1), None, "{other}");
        }
    }
}
