//! Properties of the netlink codec over generated flows: real packets'
//! keys (extracted from frames built from random fields) with random
//! kernel-legal masks must encode and decode to the same model, and the
//! order of the attributes must not matter to the decoder.

use odpx_classifier::key::{attr, FlowKey, Match};
use odpx_classifier::odp::{attr_fields, canonicalize, OdpKey};
use odpx_offload::keys::{decode_match, encode_match};
use odpx_offload::nla;
use proptest::prelude::*;

/// A frame from random header fields (Ethernet, optional 802.1Q, IPv4 or
/// IPv6, TCP/UDP/ICMP or ARP).
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        prop::option::of(0u16..4095),
        0u8..5,
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(|(src, dst, vlan, kind, a, b, p1, p2, ttl)| {
            use etherparse::PacketBuilder;
            let mut out = Vec::new();
            let l2 = PacketBuilder::ethernet2(src, dst);
            let payload = [0u8; 4];
            macro_rules! l3 {
                ($b:expr) => {
                    match kind {
                        0 => $b
                            .ipv4(a, b, ttl)
                            .tcp(p1, p2, 1, 100)
                            .write(&mut out, &payload)
                            .unwrap(),
                        1 => $b
                            .ipv4(a, b, ttl)
                            .udp(p1, p2)
                            .write(&mut out, &payload)
                            .unwrap(),
                        2 => $b
                            .ipv4(a, b, ttl)
                            .icmpv4_echo_request(p1, p2)
                            .write(&mut out, &payload)
                            .unwrap(),
                        3 => {
                            let mut s = [0u8; 16];
                            s[..4].copy_from_slice(&a);
                            let mut d = [0u8; 16];
                            d[12..].copy_from_slice(&b);
                            $b.ipv6(s, d, ttl)
                                .udp(p1, p2)
                                .write(&mut out, &payload)
                                .unwrap()
                        }
                        _ => {
                            // An ARP request, by hand (etherparse builds no ARP).
                            let mut f = Vec::new();
                            f.extend_from_slice(&dst);
                            f.extend_from_slice(&src);
                            f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
                            f.extend_from_slice(&src);
                            f.extend_from_slice(&a);
                            f.extend_from_slice(&[0; 6]);
                            f.extend_from_slice(&b);
                            out = f;
                        }
                    }
                };
            }
            match vlan {
                Some(v) if kind != 4 => l3!(l2.single_vlan(etherparse::VlanId::try_new(v).unwrap())),
                _ => l3!(l2),
            }
            out
        })
}

/// Masks the kernel accepts: whole attributes kept or dropped (never L3/L4
/// without their exact eth_type/proto), and random prefixes on addresses.
fn masked(key: &FlowKey, keep: u32, prefix: u32) -> OdpKey {
    let mut mask = FlowKey::ZERO;
    let mut attrs = key.attrs;
    for bit in [
        attr::IN_PORT,
        attr::ETHERNET,
        attr::VLAN,
        attr::ETHERTYPE,
        attr::IPV4,
        attr::IPV6,
        attr::TCP,
        attr::UDP,
        attr::ICMP,
        attr::ARP,
        attr::TCP_FLAGS,
    ] {
        if key.has(bit) && keep & bit != 0 {
            mask.or_assign(&attr_fields(bit));
        }
    }
    // L3 needs an exact eth_type, L4 an exact proto (the kernel's rule).
    if mask.eth_type != 0xffff {
        for b in [
            attr::IPV4,
            attr::IPV6,
            attr::ARP,
            attr::TCP,
            attr::UDP,
            attr::ICMP,
            attr::TCP_FLAGS,
        ] {
            mask = mask.masked(&inverse(&attr_fields(b)));
        }
    }
    if mask.ip_proto != 0xff {
        for b in [attr::TCP, attr::UDP, attr::ICMP, attr::TCP_FLAGS] {
            mask = mask.masked(&inverse(&attr_fields(b)));
        }
    }
    if key.has(attr::VLAN) {
        mask.vlan_tpid = 0xffff;
        mask.vlan_tci |= odpx_classifier::key::VLAN_CFI;
        attrs |= attr::ENCAP;
    }
    mask.ipv4_src &= u32::MAX.checked_shl(32 - prefix % 33).unwrap_or(0);
    mask.attrs = attrs;
    OdpKey::from_match(canonicalize(&Match::new(*key, mask)))
}

fn inverse(k: &FlowKey) -> FlowKey {
    let mut w = *k.words();
    for x in w.iter_mut() {
        *x = !*x;
    }
    FlowKey::from_words(w)
}

/// Reverses the order of the top-level attributes.
fn reversed(buf: &[u8]) -> Vec<u8> {
    let attrs: Vec<_> = nla::iter(buf, "t").map(|a| a.unwrap()).collect();
    let mut w = nla::Writer::new();
    for a in attrs.iter().rev() {
        w.put(a.ty, a.payload);
    }
    w.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn masked_packet_keys_round_trip(f in frame(), port in 0u32..100, keep in any::<u32>(), prefix in 0u32..33) {
        let key = odpx_classifier::extract::extract(&f, port);
        let m = masked(&key, keep, prefix);
        let enc = encode_match(&m).unwrap_or_else(|e| panic!("{m}: {e}"));
        let back = decode_match(&enc.key, Some(&enc.mask)).unwrap();
        prop_assert_eq!(back.to_string(), m.to_string());
        prop_assert_eq!(back.matched, m.matched);
        // Attribute order does not matter.
        let shuffled = decode_match(&reversed(&enc.key), Some(&reversed(&enc.mask))).unwrap();
        prop_assert_eq!(shuffled.matched, m.matched);
    }
}
