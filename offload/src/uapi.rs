//! Numbers from the kernel's `include/uapi/linux/openvswitch.h` (the ODP
//! generic-netlink API), named as there without the `OVS_` prefix. Only
//! facts live here; the codecs that use them are [`crate::keys`],
//! [`crate::actions`] and [`crate::client`].

pub const DATAPATH_FAMILY: &str = "ovs_datapath";
pub const VPORT_FAMILY: &str = "ovs_vport";
pub const FLOW_FAMILY: &str = "ovs_flow";
pub const PACKET_FAMILY: &str = "ovs_packet";

pub const DATAPATH_VERSION: u8 = 2;
pub const VPORT_VERSION: u8 = 1;
pub const FLOW_VERSION: u8 = 1;
pub const PACKET_VERSION: u8 = 1;

/// Commands shared by the datapath, vport and flow families.
pub mod cmd {
    pub const NEW: u8 = 1;
    pub const DEL: u8 = 2;
    pub const GET: u8 = 3;
    pub const SET: u8 = 4;
}

pub mod packet_cmd {
    pub const MISS: u8 = 1;
    pub const ACTION: u8 = 2;
    pub const EXECUTE: u8 = 3;
}

pub mod dp_attr {
    pub const NAME: u16 = 1;
    pub const UPCALL_PID: u16 = 2;
    pub const STATS: u16 = 3;
    pub const MEGAFLOW_STATS: u16 = 4;
    pub const USER_FEATURES: u16 = 5;
    pub const PAD: u16 = 6;
    pub const MASKS_CACHE_SIZE: u16 = 7;
    pub const PER_CPU_PIDS: u16 = 8;
    pub const IFINDEX: u16 = 9;
}

/// `OVS_DP_F_*` user features.
pub mod dp_feature {
    pub const UNALIGNED: u32 = 1 << 0;
    pub const VPORT_PIDS: u32 = 1 << 1;
    pub const TC_RECIRC_SHARING: u32 = 1 << 2;
    pub const DISPATCH_UPCALL_PER_CPU: u32 = 1 << 3;
}

pub mod vport_attr {
    pub const PORT_NO: u16 = 1;
    pub const TYPE: u16 = 2;
    pub const NAME: u16 = 3;
    pub const OPTIONS: u16 = 4;
    pub const UPCALL_PID: u16 = 5;
    pub const STATS: u16 = 6;
    pub const PAD: u16 = 7;
    pub const IFINDEX: u16 = 8;
    pub const NETNSID: u16 = 9;
}

pub mod vport_type {
    pub const NETDEV: u32 = 1;
    pub const INTERNAL: u32 = 2;
    pub const GRE: u32 = 3;
    pub const VXLAN: u32 = 4;
    pub const GENEVE: u32 = 5;
}

/// `OVS_TUNNEL_ATTR_*`, inside a vport's OPTIONS.
pub mod tunnel_opt {
    pub const DST_PORT: u16 = 1;
    pub const EXTENSION: u16 = 2;
}

pub mod flow_attr {
    pub const KEY: u16 = 1;
    pub const ACTIONS: u16 = 2;
    pub const STATS: u16 = 3;
    pub const TCP_FLAGS: u16 = 4;
    pub const USED: u16 = 5;
    pub const CLEAR: u16 = 6;
    pub const MASK: u16 = 7;
    pub const PROBE: u16 = 8;
    pub const UFID: u16 = 9;
    pub const UFID_FLAGS: u16 = 10;
    pub const PAD: u16 = 11;
}

/// `OVS_UFID_F_*`: what a reply may leave out when the flow has a UFID.
pub mod ufid_flag {
    pub const OMIT_KEY: u32 = 1 << 0;
    pub const OMIT_MASK: u32 = 1 << 1;
    pub const OMIT_ACTIONS: u32 = 1 << 2;
}

pub mod packet_attr {
    pub const PACKET: u16 = 1;
    pub const KEY: u16 = 2;
    pub const ACTIONS: u16 = 3;
    pub const USERDATA: u16 = 4;
    pub const EGRESS_TUN_KEY: u16 = 5;
    pub const PROBE: u16 = 8;
    pub const MRU: u16 = 9;
    pub const LEN: u16 = 10;
    pub const HASH: u16 = 11;
}

pub mod key_attr {
    pub const ENCAP: u16 = 1;
    pub const PRIORITY: u16 = 2;
    pub const IN_PORT: u16 = 3;
    pub const ETHERNET: u16 = 4;
    pub const VLAN: u16 = 5;
    pub const ETHERTYPE: u16 = 6;
    pub const IPV4: u16 = 7;
    pub const IPV6: u16 = 8;
    pub const TCP: u16 = 9;
    pub const UDP: u16 = 10;
    pub const ICMP: u16 = 11;
    pub const ICMPV6: u16 = 12;
    pub const ARP: u16 = 13;
    pub const ND: u16 = 14;
    pub const SKB_MARK: u16 = 15;
    pub const TUNNEL: u16 = 16;
    pub const SCTP: u16 = 17;
    pub const TCP_FLAGS: u16 = 18;
    pub const DP_HASH: u16 = 19;
    pub const RECIRC_ID: u16 = 20;
    pub const MPLS: u16 = 21;
}

pub mod tun_key_attr {
    pub const ID: u16 = 0;
    pub const IPV4_SRC: u16 = 1;
    pub const IPV4_DST: u16 = 2;
    pub const TOS: u16 = 3;
    pub const TTL: u16 = 4;
    pub const DONT_FRAGMENT: u16 = 5;
    pub const CSUM: u16 = 6;
    pub const OAM: u16 = 7;
    pub const GENEVE_OPTS: u16 = 8;
    pub const TP_SRC: u16 = 9;
    pub const TP_DST: u16 = 10;
    pub const VXLAN_OPTS: u16 = 11;
    pub const IPV6_SRC: u16 = 12;
    pub const IPV6_DST: u16 = 13;
    pub const PAD: u16 = 14;
}

pub mod action_attr {
    pub const OUTPUT: u16 = 1;
    pub const USERSPACE: u16 = 2;
    pub const SET: u16 = 3;
    pub const PUSH_VLAN: u16 = 4;
    pub const POP_VLAN: u16 = 5;
    pub const SAMPLE: u16 = 6;
    pub const RECIRC: u16 = 7;
    pub const HASH: u16 = 8;
    pub const PUSH_MPLS: u16 = 9;
    pub const POP_MPLS: u16 = 10;
    pub const SET_MASKED: u16 = 11;
    pub const CT: u16 = 12;
    pub const TRUNC: u16 = 13;
    pub const PUSH_ETH: u16 = 14;
    pub const POP_ETH: u16 = 15;
    pub const CT_CLEAR: u16 = 16;
    pub const METER: u16 = 19;
    pub const CLONE: u16 = 20;
}

pub mod sample_attr {
    pub const PROBABILITY: u16 = 1;
    pub const ACTIONS: u16 = 2;
}

pub mod userspace_attr {
    pub const PID: u16 = 1;
    pub const USERDATA: u16 = 2;
    pub const EGRESS_TUN_PORT: u16 = 3;
    pub const ACTIONS: u16 = 4;
}

/// The local port of every datapath (the datapath's own internal device).
pub const LOCAL_PORT: u32 = 0;
