//! A packet described as `ofproto/trace` takes it: a flow in `ovs-ofctl`
//! match syntax (`in_port=1,vlan_tci=20,dl_src=50:00:00:00:00:01`), every
//! field not given zero.

use super::parse_rule;
use crate::key::{attr, FlowKey, VLAN_CFI};
use crate::text::PResult;

/// The packet key a flow describes: its fields as given, and the
/// attributes a packet with them carries (Ethernet always; a VLAN tag
/// when the TCI's tag bit is set, as `dl_vlan=N` sets it; IP and its
/// transport by Ethertype and protocol).
pub fn parse_flow(text: &str) -> PResult<FlowKey> {
    let rule = parse_rule(&format!("{text},actions=drop"))?;
    let mut key = rule.matched.key;
    key.attrs = attr::RECIRC_ID
        | attr::DP_HASH
        | attr::PRIORITY
        | attr::IN_PORT
        | attr::SKB_MARK
        | attr::ETHERNET
        | attr::ETHERTYPE;
    if key.vlan_tci & VLAN_CFI != 0 {
        key.attrs |= attr::VLAN | attr::ENCAP;
        key.vlan_tpid = 0x8100;
    }
    let ip = match key.eth_type {
        0x0800 => attr::IPV4,
        0x86dd => attr::IPV6,
        0x0806 | 0x8035 => attr::ARP,
        _ => 0,
    };
    key.attrs |= ip;
    if ip & (attr::IPV4 | attr::IPV6) != 0 {
        key.attrs |= match (key.ip_proto, ip) {
            (6, _) => attr::TCP | attr::TCP_FLAGS,
            (17, _) => attr::UDP,
            (132, _) => attr::SCTP,
            (1, attr::IPV4) => attr::ICMP,
            (58, attr::IPV6) => attr::ICMPV6,
            _ => 0,
        };
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tutorial_flow_is_a_packet_key() {
        let k = parse_flow("in_port=1,vlan_tci=20,dl_src=50:00:00:00:00:01").unwrap();
        assert_eq!((k.in_port, k.vlan_tci, k.eth_src), (1, 0x0014, [0x50, 0, 0, 0, 0, 1]));
        assert!(k.has(attr::ETHERNET) && !k.has(attr::VLAN), "no tag bit: no tag");
        let k = parse_flow("in_port=1,dl_vlan=30,dl_dst=ff:ff:ff:ff:ff:ff").unwrap();
        assert!(k.has(attr::VLAN | attr::ENCAP));
        assert_eq!(k.vlan_tci, VLAN_CFI | 30);
        let k = parse_flow("in_port=2,tcp,nw_dst=10.0.0.1,tp_dst=80").unwrap();
        assert!(k.has(attr::IPV4 | attr::TCP));
        assert!(parse_flow("in_port=1,nosuch=3").is_err());
    }
}
