//! `set(nd(...))`: a neighbour discovery message's target address and its
//! source or target link-layer address options, as Open vSwitch's
//! userspace datapath writes them (the kernel datapath cannot). Options
//! the message does not carry are not added; the ICMPv6 checksum follows
//! every change.

use super::{write_masked, Packet};
use odpx_classifier::layout::layout;
use odpx_classifier::odp::SetAction;
use odpx_classifier::wire::{icmp_field, ip_proto, nd_field};

/// Writes the set's ND fields; false when the packet is not a neighbour
/// solicitation or advertisement.
pub(super) fn set(p: &mut Packet, s: &SetAction) -> bool {
    let (k, m) = (&s.key, &s.mask);
    let Some((ip_proto::ICMPV6, l4)) = layout(p.data()).l4() else {
        return false;
    };
    let d = p.data_mut();
    if d.len() < l4 + nd_field::OPTIONS
        || !matches!(
            d[l4 + icmp_field::TYPE],
            nd_field::NEIGHBOR_SOLICIT | nd_field::NEIGHBOR_ADVERT
        )
    {
        return false;
    }
    let csum = [Some(l4 + icmp_field::CSUM)];
    write_masked(d, l4 + nd_field::TARGET, &k.nd_target, &m.nd_target, &csum);
    let mut at = l4 + nd_field::OPTIONS;
    while at + nd_field::OPTION_LLA <= d.len() {
        let len = usize::from(d[at + 1]) * nd_field::OPTION_UNIT;
        if len == 0 || at + len > d.len() {
            break;
        }
        if len == nd_field::OPTION_UNIT {
            let lla = at + nd_field::OPTION_LLA;
            match d[at] {
                nd_field::SOURCE_LLA => write_masked(d, lla, &k.arp_sha, &m.arp_sha, &csum),
                nd_field::TARGET_LLA => write_masked(d, lla, &k.arp_tha, &m.arp_tha, &csum),
                _ => {}
            }
        }
        at += len;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::tests::run_on;
    use odpx_classifier::extract::extract;
    use odpx_classifier::odp::format_exact_key;

    /// A neighbour solicitation for 2001:db8::2 with a source link-layer
    /// address option (02:00:00:00:00:01), its checksum right.
    fn solicitation() -> Vec<u8> {
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        icmp.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 2])
            .ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2],
                255,
            )
            .icmpv6_raw(135, 0, [0; 4]);
        let mut f = Vec::new();
        b.write(&mut f, &icmp[8..]).unwrap();
        f
    }

    fn checksum_ok(f: &[u8]) {
        let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
        let (Some(etherparse::NetSlice::Ipv6(ip)), Some(etherparse::TransportSlice::Icmpv6(icmp))) =
            (&p.net, &p.transport)
        else {
            panic!("not ICMPv6: {p:?}");
        };
        let h = ip.header().to_header();
        let want = icmp
            .icmp_type()
            .calc_checksum(h.source, h.destination, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), want);
    }

    #[test]
    fn target_and_link_layer_option_are_written_with_the_checksum() {
        let f = solicitation();
        checksum_ok(&f);
        let (out, r) = run_on(
            &f,
            "set(nd(target=2001:db8::99,sll=aa:aa:aa:aa:aa:aa,tll=00:00:00:00:00:00/00:00:00:00:00:00)),1",
        );
        assert_eq!(r.skipped_sets, 0);
        checksum_ok(&out[0].1);
        let k = format_exact_key(&extract(&out[0].1, 1));
        assert!(
            k.contains("nd(target=2001:db8::99,sll=aa:aa:aa:aa:aa:aa,tll=00:00:00:00:00:00)"),
            "{k}"
        );
    }

    #[test]
    fn a_message_that_is_not_neighbour_discovery_is_left_alone() {
        let mut f = solicitation();
        let icmp_type = f.len() - 32;
        f[icmp_type] = 128;
        let (out, r) = run_on(&f, "set(nd(target=2001:db8::99)),1");
        assert_eq!((out[0].1.clone(), r.skipped_sets), (f, 1));
    }
}
