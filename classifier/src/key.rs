//! The flow key: one fixed-layout struct that every layer of odpx speaks.
//!
//! # What
//! [`FlowKey`] holds every field the ODP kernel datapath can match on
//! (metadata, tunnel, Ethernet, up to two VLAN tags, MPLS, IPv4/IPv6, L4
//! ports, TCP flags, ICMP, ARP, ND). A *mask* is a `FlowKey` too, with one bits
//! where the value matters; a [`Match`] is a key plus a mask.
//!
//! # Why this layout
//! The fast path compares and hashes keys per packet, so the struct is
//! `#[repr(C, align(8))]`, has no padding, and is viewed as `[u64; WORDS]`
//! through `bytemuck` (safe, checked at compile time). Masked compare and
//! masked hash are then a loop over a handful of words, and a megaflow
//! subtable only touches the words its mask uses (OVS's miniflow idea, with
//! a bitmap of used words instead of a compressed copy).
//!
//! Fields are stored in host byte order (integers) or as network-order byte
//! arrays (MAC and IPv6 addresses). Fields that never coexist share storage,
//! as in OVS `struct flow`: ICMP type/code live in `tp_src`/`tp_dst`, ARP
//! sip/tip in `ipv4_src`/`ipv4_dst`, ND sll/tll in `arp_sha`/`arp_tha`.
//!
//! # Attribute presence
//! ODP keys are lists of attributes, and *which* attributes are present
//! matters (`eth()` present but wildcarded means "an Ethernet packet"; a TCP
//! packet truncated after its IP header still carries `tcp(src=0,dst=0)`).
//! `attrs` is a bitmap of present attributes; bit *n* is ODP key attribute
//! number *n* where one exists, plus two odpx bits for the inner 802.1ad
//! layer. In a mask, a set bit means "the packet must carry this attribute".
//! `attrs` is part of the word view, so presence is matched by the same
//! masked compare as every other field.
//!
//! # Invariants
//! * The `_pad` field is always zero (keys and masks built here never set it).
//! * A key produced by extraction has `attrs` consistent with its fields
//!   (e.g. `TCP` present iff `ip_proto == 6` and not a later fragment).
//! * A [`Match`] is *normalised*: `key == key & mask`, so two matches that
//!   accept the same packets compare equal field by field.
//!
//! # Threads
//! Plain `Copy` data: each thread owns its copies; nothing here is shared.

use bytemuck::{Pod, Zeroable};

/// Number of 64-bit words in a [`FlowKey`].
pub const WORDS: usize = 34;

/// Number of leading words that a datapath key can hold: every word before
/// the pipeline state (`metadata`, `regs`), which is zero in every key
/// extracted from a packet. The exact-match cache hashes and compares only
/// these.
pub const DP_WORDS: usize = 25;

/// Presence bits for [`FlowKey::attrs`]. Bit numbers equal the ODP
/// `OVS_KEY_ATTR_*` numbers, except the two odpx-only inner-VLAN bits.
pub mod attr {
    pub const ENCAP: u32 = 1 << 1;
    pub const PRIORITY: u32 = 1 << 2;
    pub const IN_PORT: u32 = 1 << 3;
    pub const ETHERNET: u32 = 1 << 4;
    pub const VLAN: u32 = 1 << 5;
    pub const ETHERTYPE: u32 = 1 << 6;
    pub const IPV4: u32 = 1 << 7;
    pub const IPV6: u32 = 1 << 8;
    pub const TCP: u32 = 1 << 9;
    pub const UDP: u32 = 1 << 10;
    pub const ICMP: u32 = 1 << 11;
    pub const ICMPV6: u32 = 1 << 12;
    pub const ARP: u32 = 1 << 13;
    pub const ND: u32 = 1 << 14;
    pub const SKB_MARK: u32 = 1 << 15;
    pub const TUNNEL: u32 = 1 << 16;
    pub const SCTP: u32 = 1 << 17;
    pub const TCP_FLAGS: u32 = 1 << 18;
    pub const DP_HASH: u32 = 1 << 19;
    pub const RECIRC_ID: u32 = 1 << 20;
    pub const MPLS: u32 = 1 << 21;
    /// Inner (customer) VLAN of an 802.1ad frame: `encap(eth_type(0x8100),vlan(..),encap(..))`.
    pub const CVLAN: u32 = 1 << 30;
    /// The inner `encap()` attribute that follows [`CVLAN`].
    pub const CENCAP: u32 = 1 << 31;

    /// Attributes that carry L3 or L4 fields (everything under eth_type).
    pub const L3_L4: u32 = IPV4 | IPV6 | TCP | UDP | SCTP | TCP_FLAGS | ICMP | ICMPV6 | ARP | ND | MPLS;
    /// Every bit in use.
    pub const ALL: u32 = ENCAP
        | PRIORITY
        | IN_PORT
        | ETHERNET
        | VLAN
        | ETHERTYPE
        | SKB_MARK
        | TUNNEL
        | DP_HASH
        | RECIRC_ID
        | CVLAN
        | CENCAP
        | L3_L4;
}

/// Tunnel flag bits, as OVS numbers them (`FLOW_TNL_F_*`).
pub mod tun_flag {
    pub const OAM: u16 = 1 << 0;
    pub const DF: u16 = 1 << 1;
    pub const CSUM: u16 = 1 << 2;
    pub const KEY: u16 = 1 << 3;
    pub const ALL: u16 = OAM | DF | CSUM | KEY;
}

/// ODP `ovs_frag_type` values for `ip_frag`.
pub mod frag {
    pub const NO: u8 = 0;
    pub const FIRST: u8 = 1;
    pub const LATER: u8 = 2;
}

/// The VLAN "tag present" bit in a TCI as ODP keys carry it (the CFI/DEI
/// position). A VLAN attribute whose TCI lacks it was truncated.
pub const VLAN_CFI: u16 = 0x1000;

/// Ethertype given to 802.2 LLC frames (length field < 0x600), as the kernel does.
pub const ETH_TYPE_802_2: u16 = 0x05ff;

/// A flow key or mask. See the module documentation for the layout rules.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(8))]
pub struct FlowKey {
    // word 0
    pub skb_priority: u32,
    pub skb_mark: u32,
    // word 1
    pub in_port: u32,
    pub recirc_id: u32,
    // word 2
    pub dp_hash: u32,
    /// Presence bitmap, see [`attr`].
    pub attrs: u32,
    // word 3
    pub tun_id: u64,
    // word 4
    pub tun_ipv4_src: u32,
    pub tun_ipv4_dst: u32,
    // words 5-8
    pub tun_ipv6_src: [u8; 16],
    pub tun_ipv6_dst: [u8; 16],
    // word 9
    /// [`tun_flag`] bits.
    pub tun_flags: u16,
    pub tun_tp_src: u16,
    pub tun_tp_dst: u16,
    pub tun_tos: u8,
    pub tun_ttl: u8,
    // word 10
    pub eth_src: [u8; 6],
    /// The innermost Ethertype (after any VLAN tags).
    pub eth_type: u16,
    // word 11
    pub eth_dst: [u8; 6],
    /// Outer VLAN TCI, with [`VLAN_CFI`] set when the tag is complete.
    pub vlan_tci: u16,
    // word 12
    /// Outer VLAN TPID (0x8100 or 0x88a8) when a tag is present.
    pub vlan_tpid: u16,
    /// Inner VLAN TPID of an 802.1ad frame.
    pub cvlan_tpid: u16,
    pub cvlan_tci: u16,
    /// TCP/UDP/SCTP source port, ICMP/ICMPv6 type.
    pub tp_src: u16,
    // word 13
    /// TCP/UDP/SCTP destination port, ICMP/ICMPv6 code.
    pub tp_dst: u16,
    /// The 12 TCP flag bits.
    pub tcp_flags: u16,
    /// IPv4 source, or ARP sender IP.
    pub ipv4_src: u32,
    // word 14
    /// IPv4 destination, or ARP target IP.
    pub ipv4_dst: u32,
    pub ipv6_label: u32,
    // words 15-20
    pub ipv6_src: [u8; 16],
    pub ipv6_dst: [u8; 16],
    pub nd_target: [u8; 16],
    // word 21
    /// ARP sender hardware address, or ND source link-layer address.
    pub arp_sha: [u8; 6],
    pub arp_op: u16,
    // word 22
    /// ARP target hardware address, or ND target link-layer address.
    pub arp_tha: [u8; 6],
    pub ip_proto: u8,
    /// IPv4 TOS or IPv6 traffic class.
    pub ip_tos: u8,
    // word 23
    /// IPv4 TTL or IPv6 hop limit.
    pub ip_ttl: u8,
    /// [`frag`] value.
    pub ip_frag: u8,
    /// Number of MPLS label stack entries in `mpls_lse` (0-3).
    pub mpls_depth: u8,
    pub _pad: u8,
    pub mpls_lse: [u32; 3],
    // word 25
    /// OpenFlow metadata: pipeline state, not a packet field. Every packet
    /// enters the pipeline with 0 and only `write_metadata` changes it, so
    /// no datapath ever matches on it (megaflow masks never include it).
    pub metadata: u64,
    // words 26-33
    /// Registers `reg0`..`reg15` (`xregN` is `reg2N`:`reg2N+1`, high word
    /// first): pipeline state like `metadata`, 0 when a packet enters and
    /// changed only by actions, so they never reach a datapath key either.
    pub regs: [u32; 16],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == WORDS * 8);
const _: () = assert!(core::mem::offset_of!(FlowKey, metadata) == DP_WORDS * 8);

/// Equality over the word view: branch-free, vectorisable (a derived
/// field-by-field compare short-circuits over 42 fields).
impl PartialEq for FlowKey {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.words(), other.words());
        let mut diff = 0u64;
        for i in 0..WORDS {
            diff |= a[i] ^ b[i];
        }
        diff == 0
    }
}

impl Eq for FlowKey {}

impl core::hash::Hash for FlowKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.words().hash(state);
    }
}

impl Default for FlowKey {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl FlowKey {
    /// The all-zero key (as a mask: match everything).
    pub const ZERO: FlowKey = FlowKey {
        skb_priority: 0,
        skb_mark: 0,
        in_port: 0,
        recirc_id: 0,
        dp_hash: 0,
        attrs: 0,
        tun_id: 0,
        tun_ipv4_src: 0,
        tun_ipv4_dst: 0,
        tun_ipv6_src: [0; 16],
        tun_ipv6_dst: [0; 16],
        tun_flags: 0,
        tun_tp_src: 0,
        tun_tp_dst: 0,
        tun_tos: 0,
        tun_ttl: 0,
        eth_src: [0; 6],
        eth_type: 0,
        eth_dst: [0; 6],
        vlan_tci: 0,
        vlan_tpid: 0,
        cvlan_tpid: 0,
        cvlan_tci: 0,
        tp_src: 0,
        tp_dst: 0,
        tcp_flags: 0,
        ipv4_src: 0,
        ipv4_dst: 0,
        ipv6_label: 0,
        ipv6_src: [0; 16],
        ipv6_dst: [0; 16],
        nd_target: [0; 16],
        arp_sha: [0; 6],
        arp_op: 0,
        arp_tha: [0; 6],
        ip_proto: 0,
        ip_tos: 0,
        ip_ttl: 0,
        ip_frag: 0,
        mpls_depth: 0,
        _pad: 0,
        mpls_lse: [0; 3],
        metadata: 0,
        regs: [0; 16],
    };

    /// The key as 64-bit words (for masking, hashing, comparing).
    #[inline(always)]
    pub fn words(&self) -> &[u64; WORDS] {
        bytemuck::cast_ref(self)
    }

    #[inline(always)]
    pub fn words_mut(&mut self) -> &mut [u64; WORDS] {
        bytemuck::cast_mut(self)
    }

    #[inline(always)]
    pub fn from_words(words: [u64; WORDS]) -> FlowKey {
        bytemuck::cast(words)
    }

    /// A mask that matches every bit of every field (not `_pad`).
    pub fn exact_mask() -> FlowKey {
        let mut m = FlowKey::from_words([u64::MAX; WORDS]);
        m._pad = 0;
        m.attrs = attr::ALL;
        m
    }

    /// `self & mask`, word by word.
    #[inline(always)]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let (a, m) = (self.words(), mask.words());
        FlowKey::from_words(core::array::from_fn(|i| a[i] & m[i]))
    }

    /// `self |= other`, word by word (used to accumulate consulted bits).
    #[inline(always)]
    pub fn or_assign(&mut self, other: &FlowKey) {
        let o = *other.words();
        for (w, o) in self.words_mut().iter_mut().zip(o) {
            *w |= o;
        }
    }

    /// True if `self & mask == other & mask`.
    #[inline(always)]
    pub fn masked_eq(&self, other: &FlowKey, mask: &FlowKey) -> bool {
        let (a, b, m) = (self.words(), other.words(), mask.words());
        let mut diff = 0u64;
        for i in 0..WORDS {
            diff |= (a[i] ^ b[i]) & m[i];
        }
        diff == 0
    }

    /// True if every bit is zero.
    pub fn is_zero(&self) -> bool {
        self.words().iter().all(|&w| w == 0)
    }

    /// Bitmap of the words that have any bit set (bit i = word i).
    pub fn word_map(&self) -> u64 {
        let mut map = 0u64;
        for (i, &w) in self.words().iter().enumerate() {
            if w != 0 {
                map |= 1 << i;
            }
        }
        map
    }

    /// True if the datapath words ([`DP_WORDS`]) of both keys are equal:
    /// the whole comparison for keys extracted from packets, whose pipeline
    /// state is zero.
    #[inline(always)]
    pub fn dp_eq(&self, other: &FlowKey) -> bool {
        let (a, b) = (self.words(), other.words());
        let mut diff = 0u64;
        for i in 0..DP_WORDS {
            diff |= a[i] ^ b[i];
        }
        diff == 0
    }

    /// Hash of the datapath words ([`DP_WORDS`]: the whole of a key
    /// extracted from a packet), for the exact-match cache: the words are
    /// folded by XOR with per-position rotations into four independent lanes
    /// (a handful of cycles), then each lane is multiplied and the lanes
    /// mixed. Like the NIC RSS (Toeplitz) hash OVS's EMC uses, the fold is
    /// linear; collisions only cost hit rate, since the cache always
    /// compares the whole key.
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        let w = &self.words()[..DP_WORDS];
        let mut lanes = [
            0x243f_6a88_85a3_08d3u64,
            0x1319_8a2e_0370_7345,
            0xa409_3822_299f_31d1,
            0x082e_fa98_ec4e_6c89,
        ];
        for (i, &word) in w.iter().enumerate() {
            lanes[i & 3] ^= word.rotate_left((i as u32 * 23) & 63);
        }
        let m = |x: u64, k: u64| {
            let p = (x as u128) * (k as u128);
            (p as u64) ^ ((p >> 64) as u64)
        };
        let h = m(lanes[0], 0x9fb2_1c65_1e98_df25)
            ^ m(lanes[1], 0xd6e8_feb8_6659_fd93)
            ^ m(lanes[2], 0xc2b2_ae3d_27d4_eb4f)
            ^ m(lanes[3], 0x1656_67b1_9e37_79f9);
        finish_hash(h)
    }

    pub fn has(&self, bits: u32) -> bool {
        self.attrs & bits == bits
    }
}

/// Final avalanche shared by the key hashes.
#[inline(always)]
pub fn finish_hash(mut h: u64) -> u32 {
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^= h >> 32;
    h as u32
}

/// Mixes one word into a running masked hash (megaflow subtables).
#[inline(always)]
pub fn mix_word(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(0x9fb2_1c65_1e98_df25).rotate_left(31)
}

/// A key with its mask. Always normalised (`key == key & mask`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Match {
    pub key: FlowKey,
    pub mask: FlowKey,
}

impl Match {
    /// Builds a match and normalises it.
    pub fn new(key: FlowKey, mask: FlowKey) -> Match {
        Match {
            key: key.masked(&mask),
            mask,
        }
    }

    /// The exact match of `key`: every present attribute, every bit.
    pub fn exact(key: &FlowKey) -> Match {
        let mut mask = FlowKey::exact_mask();
        mask.attrs = key.attrs;
        Match::new(*key, mask)
    }

    /// True if `packet` is accepted by this match.
    #[inline(always)]
    pub fn matches(&self, packet: &FlowKey) -> bool {
        packet.masked_eq(&self.key, &self.mask)
    }

    /// True if some packet is accepted by both matches (they agree on the
    /// bits both consult).
    pub fn overlaps(&self, other: &Match) -> bool {
        let both = self.mask.masked(&other.mask);
        self.key.masked_eq(&other.key, &both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_compare_respects_mask() {
        let mut a = FlowKey::ZERO;
        a.ipv4_src = 0x0a00_0001;
        a.tp_dst = 80;
        let mut b = a;
        b.ipv4_src = 0x0a00_00ff;
        let mut mask = FlowKey::ZERO;
        mask.ipv4_src = 0xffff_ff00;
        mask.tp_dst = 0xffff;
        assert!(a.masked_eq(&b, &mask));
        b.tp_dst = 81;
        assert!(!a.masked_eq(&b, &mask));
    }

    #[test]
    fn exact_mask_leaves_pad_clear() {
        let m = FlowKey::exact_mask();
        assert_eq!(m._pad, 0);
        assert_eq!(m.attrs, attr::ALL);
        assert_eq!(m.word_map().count_ones() as usize, WORDS);
    }

    #[test]
    fn hash_changes_with_any_datapath_word() {
        let base = FlowKey::ZERO;
        let h0 = base.hash();
        for i in 0..DP_WORDS {
            let mut w = *base.words();
            w[i] = 1;
            assert_ne!(FlowKey::from_words(w).hash(), h0, "word {i}");
        }
    }
}
