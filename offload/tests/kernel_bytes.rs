//! Byte vectors captured from the real kernel (Debian 6.1 cloud kernel,
//! openvswitch.ko, in the test VM; flows installed with Debian's
//! `ovs-dpctl` 3.1, captured with `odpx flow list --raw` and
//! `odpx datapath listen --raw`), one attribute per line:
//! `len(le16) type(le16) payload`. Each must decode to what `ovs-dpctl`
//! printed for it, and what odpx encodes the same way must match byte for
//! byte.

use odpx_classifier::odp::{self, actions::format_actions};
use odpx_offload::actions::{decode_actions, encode_actions};
use odpx_offload::keys::{decode_match, decode_packet_key, encode_packet_key};

/// Hex with whitespace and `#` comments (to the end of the line) ignored.
fn hex(s: &str) -> Vec<u8> {
    let digits: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(|l| l.chars().filter(|c| c.is_ascii_hexdigit()))
        .collect();
    (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The metadata every kernel key dump starts with, all zero.
const METADATA: &str = "
    08001400 00000000          # RECIRC_ID (20) = 0
    08001300 00000000          # DP_HASH (19) = 0
    08000200 00000000          # PRIORITY (2) = 0
";

/// Conntrack attributes the kernel adds to every dump, all zero.
const CONNTRACK: &str = "
    08001600 00000000          # CT_STATE (22)
    06001700 0000 0000         # CT_ZONE (23), padded
    08001800 00000000          # CT_MARK (24)
    14001900 00000000 00000000 00000000 00000000   # CT_LABELS (25), 16 bytes
";

#[test]
fn vlan_arp_flow_dump() {
    let key = hex(&format!(
        "{METADATA}
        08000300 03000000          # IN_PORT (3) = 3
        08000f00 00000000          # SKB_MARK (15) = 0
        {CONNTRACK}
        10000400 000000000000 ffffffffffff   # ETHERNET (4): src, dst
        06000600 8100 0000         # ETHERTYPE (6) = 0x8100 (the TPID)
        06000500 700a 0000         # VLAN (5) TCI = pcp 3, CFI, vid 10
        28000100                   # ENCAP (1), nested:
          06000600 0806 0000       #   ETHERTYPE = ARP
          1c000d00                 #   ARP (13), 24 bytes:
            0a000001 0a000002      #     sip, tip
            0001                   #     op = 1
            000000000000 000000000000  # sha, tha
            0000                   #     struct padding
        "
    ));
    let mask = hex(&format!(
        "{METADATA}
        0c001000 05000400 00 000000  # TUNNEL (16) mask: only TTL, zero
        08000300 ffffffff          # IN_PORT exact
        08000f00 00000000
        {CONNTRACK}
        10000400 000000000000 ffffffffffff   # eth dst exact
        06000600 ffff 0000         # TPID exact
        06000500 ffff 0000         # TCI exact
        28000100
          06000600 ffff 0000       #   inner Ethertype exact
          1c000d00 ffffffff ffffffff 00ff 000000000000 000000000000 0000  # op kept in 8 bits
        "
    ));
    let actions = hex("
        04000500                   # POP_VLAN (5)
        08000100 01000000          # OUTPUT (1) port 1
    ");
    let m = decode_match(&key, Some(&mask)).unwrap();
    assert_eq!(
        m.to_string(),
        "in_port(3),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0x8100),vlan(vid=10,pcp=3),encap(eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1/0xff))"
    );
    let a = decode_actions(&actions).unwrap();
    assert_eq!(format_actions(&a), "pop_vlan,1");
    assert_eq!(encode_actions(&a).unwrap(), actions);
    // The zero conntrack attributes are kept, not dropped.
    assert_eq!(
        m.opaque.iter().map(|o| o.attr).collect::<Vec<_>>(),
        vec![22, 23, 24, 25]
    );
}

#[test]
fn tunnel_set_action_dump() {
    let actions = hex("
        28000300                   # SET (3), nested:
          24001000                 #   TUNNEL (16), nested:
            0c000000 000000000000002a  # ID (0), be64 = 0x2a
            08000200 c0000209      #     IPV4_DST (2) = 192.0.2.9
            05000400 40 000000     #     TTL (4) = 64, padded
            04000500               #     DONT_FRAGMENT (5), flag
        08000100 02000000          # OUTPUT port 2
    ");
    let a = decode_actions(&actions).unwrap();
    assert_eq!(
        format_actions(&a),
        "set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2"
    );
    // odpx writes tunnel attributes in the kernel's order: identical bytes.
    assert_eq!(encode_actions(&a).unwrap(), actions);
    let parsed = odp::actions::parse_actions("set(tunnel(tun_id=0x2a,dst=192.0.2.9,ttl=64,flags(df|key))),2").unwrap();
    assert_eq!(encode_actions(&parsed).unwrap(), actions);
}

#[test]
fn ethernet_without_ethertype_dump() {
    let key = hex(&format!(
        "{METADATA}
        08000300 0f000000          # IN_PORT = 15
        08000f00 00000000
        {CONNTRACK}
        10000400 000000000000 ffffffffffff   # no ETHERTYPE: the kernel's 802.2 form
        "
    ));
    let mask = hex(&format!(
        "{METADATA}
        0c001000 05000400 00000000
        08000300 ffffffff
        08000f00 00000000
        {CONNTRACK}
        10000400 000000000000 ffffffffffff
        06000600 0000 0000         # ETHERTYPE in the mask only, wildcarded
        "
    ));
    let m = decode_match(&key, Some(&mask)).unwrap();
    assert_eq!(
        m.to_string(),
        "in_port(15),eth(dst=ff:ff:ff:ff:ff:ff),eth_type(0/0x0000)"
    );
}

#[test]
fn arp_miss_upcall_key() {
    let key = hex(&format!(
        "{METADATA}
        08000300 01000000          # IN_PORT = 1
        08000f00 00000000
        {CONNTRACK}
        10000400 8673654d8b91 ffffffffffff   # src, dst
        06000600 0806 0000         # ETHERTYPE = ARP
        1c000d00 0a000001 0a000002 0001 8673654d8b91 ffffffffffff 0000   # ARP request
        "
    ));
    let (k, opaque) = decode_packet_key(&key).unwrap();
    assert_eq!(
        odp::format_exact_key(&k),
        "recirc_id(0),dp_hash(0),skb_priority(0),in_port(1),skb_mark(0),eth(src=86:73:65:4d:8b:91,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.2,op=1,sha=86:73:65:4d:8b:91,tha=ff:ff:ff:ff:ff:ff)"
    );
    assert_eq!(opaque.len(), 4);
    // Same attributes, same order, same padding: the kernel's bytes exactly.
    assert_eq!(encode_packet_key(&k, &opaque), key);
}
