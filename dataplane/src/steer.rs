//! Steering for hybrid mode: which received packets the kernel datapath
//! takes, and which go to the PMDs over AF_XDP.
//!
//! # What
//! In hybrid mode each switch port is an AF_XDP port and a vport of the
//! kernel's Open vSwitch datapath at once. Its XDP program ([`program`])
//! parses the packet, looks it up in the steering tables that the offload
//! engine fills ([`SteeringTable`]), and answers `XDP_PASS` for a packet
//! of an offloaded megaflow (the kernel's OVS receive hook then takes it
//! into the kernel datapath) or redirects it to the port's AF_XDP socket.
//!
//! # The tables: a tuple space, one hash map
//! A megaflow is a masked match, and the kernel holds wildcarded flows, so
//! steering entries are masked too. The tables are the tuple-space search
//! the PMDs run, cut down to what XDP can do cheaply:
//! * a *steering key* of 48 bytes ([`off`]): the input port, a mask slot,
//!   the presence bits of the ODP key, and the Ethernet, VLAN, IPv4 and
//!   L4 fields, each as the flow key defines it ([`steer_key`]);
//! * up to [`MASK_SLOTS`] distinct masks, all in one array-map value that
//!   one lookup brings in (with the count of slots in use);
//! * one hash map of masked keys, each carrying its slot number, so a
//!   masked packet key finds the entries of its own mask only.
//!
//! The program builds the packet's key once, then for each slot in use
//! ANDs it with the slot's mask and looks it up: at most 16 lookups, no
//! loop for the verifier to bound (the slots are unrolled). Exact entries
//! (one per microflow) were the other choice: one lookup, but the engine
//! would have to learn every microflow of a megaflow, and a megaflow of
//! 10k connections would need 10k entries. Per-mask hash maps (as in the
//! XDP flow offload once proposed for Open vSwitch) need a map of maps;
//! the slot number in the key gives the same partition in one map.
//!
//! # Precision and correctness
//! Steering only picks the datapath; the kernel still matches each packet
//! against its own flows. A packet steered to the kernel that misses there
//! is upcalled to the same translator, so imprecise steering costs speed,
//! never a wrong decision. [`steer_match`] accepts only megaflows whose
//! mask it can express exactly, and the program agrees with
//! [`odpx_classifier::extract`] field for field on every packet it looks
//! up (the tests check that on crafted and mutated frames), so a packet is
//! steered to the kernel exactly when an offloaded megaflow matches it.
//! The program looks up untagged or single-tagged (802.1Q) Ethernet, with
//! IPv4 (options allowed) and TCP, UDP or ICMP, or any other Ethertype
//! with no L3 parsing. Everything else (truncated headers, IPv6, ARP,
//! MPLS, 802.1ad, SCTP, LLC) goes to AF_XDP: the PMDs handle it.
//!
//! # Native or generic
//! A packet the program passes must become an skb for the kernel's
//! datapath. In native mode on a NIC that is the skb the driver would
//! have built anyway. A veth, though, runs native XDP in NAPI on a copy of
//! the skb it was handed, and builds a second skb for `XDP_PASS`; generic
//! mode runs the program on the skb itself. Measured in the test VM, a
//! flow the kernel carries went twice as fast through generic mode on
//! veth (60-66k against 31-33k pps). So the daemon attaches in generic
//! mode on interfaces without a bus device (veth, tap) and in native mode
//! on the others, unless told (`[switch] xdp_mode`).
//!
//! # Ownership and ordering
//! The [`SteeringTable`] belongs to the megaflow owner (in `odpx-control`)
//! and is written under its lock only; the XDP programs of every port read
//! it. A mask is written before the first entry that uses it, and cleared
//! after the last one goes. The owner adds an entry after the kernel flow
//! is installed and removes it before the kernel flow is deleted, so a
//! steered packet finds its kernel flow (and if a race says otherwise, the
//! kernel upcalls it). An update of the masks value may be read half-done
//! by a program running on another CPU: that mis-steers a packet, which
//! the paragraph above makes harmless.

use crate::bpf::{helper, xdp, xdp_md, Asm, Cond, Size, R0, R1, R10, R2, R3, R4, R5, R6, R7, R8, R9};
use crate::sys::bpf::{BpfMap, XdpAttach, XdpLink, XdpProgram};
use crate::sys::xsk::XskSocket;
use crate::xdp::Steer;
use odpx_classifier::key::{attr, frag, FlowKey, Match, VLAN_CFI};
use odpx_classifier::wire::{
    eth_field, ethertype, icmp_field, ip_proto, ipv4_field, tcp_field, udp_field, vlan_field, ETHERNET_LEN,
    IPV4_FRAGMENT, IPV4_FRAG_OFFSET, IPV4_LEN, UDP_LEN, VLAN_TAG_LEN,
};
use std::collections::HashMap;
use std::io;

/// Bytes of a steering key.
pub const KEY_LEN: usize = 48;
/// Distinct masks the tables hold.
pub const MASK_SLOTS: usize = 16;

/// Offsets in a steering key. Multi-byte packet fields are in network
/// byte order, as the packet carries them; `in_port`, `slot` and `attrs`
/// in host order.
pub mod off {
    pub const IN_PORT: usize = 0;
    pub const SLOT: usize = 4;
    /// [`odpx_classifier::key::attr`] bits.
    pub const ATTRS: usize = 8;
    /// The outer TCI with the tag-present bit, as the flow key has it.
    pub const VLAN_TCI: usize = 12;
    pub const ETH_TYPE: usize = 14;
    pub const ETH_DST: usize = 16;
    pub const ETH_SRC: usize = 22;
    pub const NW_SRC: usize = 28;
    pub const NW_DST: usize = 32;
    pub const NW_PROTO: usize = 36;
    pub const NW_TOS: usize = 37;
    pub const NW_TTL: usize = 38;
    pub const NW_FRAG: usize = 39;
    /// L4 ports; ICMP type and code as 16-bit values, as the flow key.
    pub const TP_SRC: usize = 40;
    pub const TP_DST: usize = 42;
}

/// The presence bits every key the kernel or the PMDs extract carries.
const BASE_ATTRS: u32 =
    attr::RECIRC_ID | attr::DP_HASH | attr::PRIORITY | attr::IN_PORT | attr::SKB_MARK | attr::ETHERNET;

/// The steering key of a flow key: its steered fields, slot 0.
pub fn steer_key(k: &FlowKey) -> [u8; KEY_LEN] {
    let mut b = [0u8; KEY_LEN];
    b[off::IN_PORT..off::IN_PORT + 4].copy_from_slice(&k.in_port.to_ne_bytes());
    b[off::ATTRS..off::ATTRS + 4].copy_from_slice(&k.attrs.to_ne_bytes());
    b[off::VLAN_TCI..off::VLAN_TCI + 2].copy_from_slice(&k.vlan_tci.to_be_bytes());
    b[off::ETH_TYPE..off::ETH_TYPE + 2].copy_from_slice(&k.eth_type.to_be_bytes());
    b[off::ETH_DST..off::ETH_DST + 6].copy_from_slice(&k.eth_dst);
    b[off::ETH_SRC..off::ETH_SRC + 6].copy_from_slice(&k.eth_src);
    b[off::NW_SRC..off::NW_SRC + 4].copy_from_slice(&k.ipv4_src.to_be_bytes());
    b[off::NW_DST..off::NW_DST + 4].copy_from_slice(&k.ipv4_dst.to_be_bytes());
    b[off::NW_PROTO] = k.ip_proto;
    b[off::NW_TOS] = k.ip_tos;
    b[off::NW_TTL] = k.ip_ttl;
    b[off::NW_FRAG] = k.ip_frag;
    b[off::TP_SRC..off::TP_SRC + 2].copy_from_slice(&k.tp_src.to_be_bytes());
    b[off::TP_DST..off::TP_DST + 2].copy_from_slice(&k.tp_dst.to_be_bytes());
    b
}

/// A megaflow as a steering entry: its key under its mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SteerEntry {
    pub key: [u8; KEY_LEN],
    pub mask: [u8; KEY_LEN],
}

impl SteerEntry {
    /// Does a packet with this flow key fall in the entry?
    pub fn matches(&self, k: &FlowKey) -> bool {
        let pk = steer_key(k);
        (0..KEY_LEN).all(|i| pk[i] & self.mask[i] == self.key[i])
    }
}

/// Ethertypes the program never looks up (they go to AF_XDP): parsed by
/// the flow key beyond what the program parses, or stacked tags.
const UNSTEERED_TYPES: [u16; 6] = [
    ethertype::ARP,
    ethertype::RARP,
    ethertype::IPV6,
    ethertype::MPLS,
    ethertype::MPLS_MC,
    ethertype::QINQ,
];

/// The steering entry of megaflow `m`, or why it cannot have one that
/// steers exactly its packets.
pub fn steer_match(m: &Match) -> Result<SteerEntry, String> {
    let (k, mk) = (&m.key, &m.mask);
    // The input port is the program's constant: a megaflow that leaves it
    // wild is steered on every port (its mask has zeros there).
    // Fields the program does not read: a mask may only pin them to the
    // value every packet it looks up has (zero; 0x8100 for a VLAN TPID).
    let mut zero_only = FlowKey::ZERO;
    zero_only.skb_priority = mk.skb_priority;
    zero_only.skb_mark = mk.skb_mark;
    zero_only.recirc_id = mk.recirc_id;
    zero_only.dp_hash = mk.dp_hash;
    zero_only.tun_id = mk.tun_id;
    zero_only.tun_ipv4_src = mk.tun_ipv4_src;
    zero_only.tun_ipv4_dst = mk.tun_ipv4_dst;
    zero_only.tun_ipv6_src = mk.tun_ipv6_src;
    zero_only.tun_ipv6_dst = mk.tun_ipv6_dst;
    zero_only.tun_flags = mk.tun_flags;
    zero_only.tun_tp_src = mk.tun_tp_src;
    zero_only.tun_tp_dst = mk.tun_tp_dst;
    zero_only.tun_tos = mk.tun_tos;
    zero_only.tun_ttl = mk.tun_ttl;
    zero_only.cvlan_tpid = mk.cvlan_tpid;
    zero_only.cvlan_tci = mk.cvlan_tci;
    zero_only.ipv6_label = mk.ipv6_label;
    zero_only.ipv6_src = mk.ipv6_src;
    zero_only.ipv6_dst = mk.ipv6_dst;
    zero_only.nd_target = mk.nd_target;
    zero_only.arp_sha = mk.arp_sha;
    zero_only.arp_op = mk.arp_op;
    zero_only.arp_tha = mk.arp_tha;
    zero_only.mpls_depth = mk.mpls_depth;
    zero_only.mpls_lse = mk.mpls_lse;
    if !k.masked(&zero_only).is_zero() {
        return Err("it matches fields steering does not read (tunnel, IPv6, ARP, MPLS, 802.1ad or metadata)".into());
    }
    if mk.tcp_flags != 0 {
        return Err("it matches TCP flags".into());
    }
    let tpid_expected = if k.attrs & attr::VLAN != 0 { ethertype::VLAN } else { 0 };
    if k.vlan_tpid & mk.vlan_tpid != tpid_expected & mk.vlan_tpid {
        return Err("it matches an 802.1ad tag".into());
    }
    let not_looked_up = mk.attrs
        & k.attrs
        & !(BASE_ATTRS | attr::VLAN | attr::ENCAP | attr::ETHERTYPE | attr::IPV4)
        & !(attr::TCP | attr::TCP_FLAGS | attr::UDP | attr::ICMP);
    if not_looked_up != 0 {
        return Err("its packets carry headers steering does not parse".into());
    }
    if mk.eth_type == 0xffff && (UNSTEERED_TYPES.contains(&k.eth_type) || k.eth_type < 0x0600) {
        return Err(format!("steering does not parse Ethertype {:#06x}", k.eth_type));
    }
    if mk.attrs & attr::ETHERTYPE != 0 && k.attrs & attr::ETHERTYPE == 0 {
        return Err("it matches frames without an Ethertype".into());
    }
    let mut key = steer_key(k);
    let mut mask = steer_key(mk);
    key[off::SLOT..off::SLOT + 4].fill(0);
    mask[off::SLOT..off::SLOT + 4].fill(0);
    for i in 0..KEY_LEN {
        key[i] &= mask[i];
    }
    Ok(SteerEntry { key, mask })
}

/// Bytes of the masks value: the slots in use, padding, the masks.
const MASKS_VALUE: usize = 8 + MASK_SLOTS * KEY_LEN;
/// Bytes of a steering entry's value (unused: presence is the answer).
const ENTRY_VALUE: [u8; 1] = [1];

/// Why an entry was not added.
#[derive(Debug, PartialEq, Eq)]
pub enum SteerRefusal {
    /// Every mask slot holds another mask.
    NoMaskSlot,
    /// The entry table is full.
    Full,
}

impl std::fmt::Display for SteerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SteerRefusal::NoMaskSlot => write!(f, "all {MASK_SLOTS} steering mask slots in use"),
            SteerRefusal::Full => write!(f, "the steering table is full"),
        }
    }
}

/// The steering tables of a switch (see the module documentation), with
/// the owner's copy of what they hold.
pub struct SteeringTable {
    masks_map: BpfMap,
    entries_map: BpfMap,
    capacity: usize,
    /// Each slot's mask and how many entries use it.
    slots: [Option<([u8; KEY_LEN], usize)>; MASK_SLOTS],
    /// Entry (key with its slot) by steering entry.
    entries: HashMap<SteerEntry, [u8; KEY_LEN]>,
}

impl SteeringTable {
    /// Empty tables for up to `capacity` entries.
    pub fn new(capacity: usize) -> io::Result<SteeringTable> {
        let capacity = capacity.max(1);
        Ok(SteeringTable {
            masks_map: BpfMap::array(MASKS_VALUE, 1, "odpx_steer_mask")?,
            entries_map: BpfMap::hash(KEY_LEN, ENTRY_VALUE.len(), capacity as u32, "odpx_steer")?,
            capacity,
            slots: [None; MASK_SLOTS],
            entries: HashMap::new(),
        })
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct masks in use.
    pub fn masks(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn contains(&self, e: &SteerEntry) -> bool {
        self.entries.contains_key(e)
    }

    fn write_masks(&self) -> io::Result<()> {
        let mut v = vec![0u8; MASKS_VALUE];
        let used = self.slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        v[..4].copy_from_slice(&(used as u32).to_ne_bytes());
        for (i, s) in self.slots.iter().enumerate() {
            if let Some((mask, _)) = s {
                v[8 + i * KEY_LEN..8 + (i + 1) * KEY_LEN].copy_from_slice(mask);
            }
        }
        self.masks_map.update(&0u32.to_ne_bytes(), &v)
    }

    /// Steers `e`'s packets to the kernel from now on.
    pub fn insert(&mut self, e: &SteerEntry) -> io::Result<Result<(), SteerRefusal>> {
        if self.entries.contains_key(e) {
            return Ok(Ok(()));
        }
        if self.entries.len() >= self.capacity {
            return Ok(Err(SteerRefusal::Full));
        }
        let slot = match self.slots.iter().position(|s| s.is_some_and(|(m, _)| m == e.mask)) {
            Some(i) => i,
            None => {
                let Some(free) = self.slots.iter().position(Option::is_none) else {
                    return Ok(Err(SteerRefusal::NoMaskSlot));
                };
                self.slots[free] = Some((e.mask, 0));
                if let Err(err) = self.write_masks() {
                    self.slots[free] = None;
                    return Err(err);
                }
                free
            }
        };
        let mut key = e.key;
        key[off::SLOT..off::SLOT + 4].copy_from_slice(&(slot as u32).to_ne_bytes());
        if let Err(err) = self.entries_map.update(&key, &ENTRY_VALUE) {
            self.release_slot(slot)?;
            return Err(err);
        }
        if let Some((_, n)) = self.slots[slot].as_mut() {
            *n += 1;
        }
        self.entries.insert(*e, key);
        Ok(Ok(()))
    }

    /// Stops steering `e`'s packets; false when it was not steered.
    pub fn remove(&mut self, e: &SteerEntry) -> io::Result<bool> {
        let Some(key) = self.entries.remove(e) else {
            return Ok(false);
        };
        self.entries_map.delete(&key)?;
        let slot = u32::from_ne_bytes([
            key[off::SLOT],
            key[off::SLOT + 1],
            key[off::SLOT + 2],
            key[off::SLOT + 3],
        ]);
        if let Some((_, n)) = self.slots[slot as usize].as_mut() {
            *n -= 1;
        }
        self.release_slot(slot as usize)?;
        Ok(true)
    }

    /// Frees a slot no entry uses any more.
    fn release_slot(&mut self, slot: usize) -> io::Result<()> {
        if self.slots[slot].is_some_and(|(_, n)| n == 0) {
            self.slots[slot] = None;
            self.write_masks()?;
        }
        Ok(())
    }

    /// Removes every entry.
    pub fn clear(&mut self) -> io::Result<()> {
        let all: Vec<SteerEntry> = self.entries.keys().copied().collect();
        for e in all {
            self.remove(&e)?;
        }
        Ok(())
    }

    /// The XDP program of port `in_port` over these tables.
    pub fn program(&self, in_port: u32, steer: Steer) -> Vec<u8> {
        program(in_port, self.masks_map.fd(), self.entries_map.fd(), steer)
    }
}

/// A switched port's steering program on one interface, with its XSKMAP.
pub struct SteeredProgram {
    /// Attached in driver mode (else generic).
    pub native: bool,
    xsks: BpfMap,
    prog: XdpProgram,
    mode: XdpAttach,
    _link: XdpLink,
    pub ifindex: u32,
}

impl SteeredProgram {
    /// Loads port `in_port`'s program over `table` and attaches it in
    /// `mode`; `queues` is the XSKMAP size.
    pub fn attach(
        ifindex: u32,
        queues: u32,
        table: &SteeringTable,
        in_port: u32,
        mode: XdpAttach,
    ) -> io::Result<SteeredProgram> {
        let xsks = BpfMap::xsk(queues)?;
        let prog = XdpProgram::load(
            &table.program(in_port, Steer::Redirect { xskmap_fd: xsks.fd() }),
            "odpx_steer",
        )?;
        let link = prog.attach_in(ifindex, mode)?;
        Ok(SteeredProgram {
            native: link.native,
            xsks,
            prog,
            mode,
            _link: link,
            ifindex,
        })
    }

    /// Attaches the same program (same port number, steering tables and
    /// XSKMAP) to another interface: the port's interface re-created under
    /// its name. The link lives as long as the value returned.
    pub fn attach_again(&self, ifindex: u32) -> io::Result<XdpLink> {
        self.prog.attach_in(ifindex, self.mode)
    }

    /// Points queue `queue`'s packets (those not steered to the kernel)
    /// at a socket.
    pub fn register(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        self.xsks.set_socket(queue, sock)
    }
}

/// A 16-bit constant as a little-endian load of its network-order bytes
/// reads it.
fn wire16(v: u16) -> i32 {
    v.swap_bytes() as i32
}

/// The steering program of port `in_port` (see the module documentation):
/// `XDP_PASS` for packets with a steering entry, `steer` for the others.
pub fn program(in_port: u32, masks_fd: i32, entries_fd: i32, steer: Steer) -> Vec<u8> {
    let mut a = Asm::new();
    emit_ethernet(&mut a, in_port);
    emit_ipv4(&mut a);
    emit_l4(&mut a);
    emit_lookup(&mut a, masks_fd, entries_fd);
    a.label("xsk");
    crate::xdp::steer_tail(&mut a, R6, steer);
    a.label("kernel").ret(xdp::PASS);
    a.assemble().expect("the steering program's labels are all defined")
}

// Stack: the packet's key at fp-48, the masked key at fp-96, the masks
// map's index at fp-104.
const PKT: i16 = -48;
const KEY: i16 = -96;
const INDEX: i16 = -104;

/// Where field `o` of the packet's key sits on the stack.
fn at(o: usize) -> i16 {
    PKT + o as i16
}

/// The key zeroed, the input port, the Ethernet addresses and type, one
/// 802.1Q tag; then (label `ethertype`) the Ethertype in r3, r9 at L3.
fn emit_ethernet(a: &mut Asm, in_port: u32) {
    use Cond::*;
    use Size::*;
    // r6 = ctx, r7 = data, r8 = data_end, r5 = presence bits.
    a.mov(R6, R1)
        .load(W, R7, R6, xdp_md::DATA)
        .load(W, R8, R6, xdp_md::DATA_END);
    for w in 0..(KEY_LEN / 8) as i16 {
        a.store_imm(DW, R10, PKT + 8 * w, 0);
    }
    a.store_imm(W, R10, at(off::IN_PORT), in_port as i32)
        .mov_imm(R5, BASE_ATTRS as i32)
        .mov(R9, R7)
        .add_imm(R9, ETHERNET_LEN as i32)
        .jump_reg(Gt, R9, R8, "xsk");
    // Ethernet addresses, in stores aligned on the stack: the
    // destination as 4 + 2 bytes, the source (at 22) as 2 + 4.
    a.load(W, R3, R7, eth_field::DST as i16)
        .store(W, R10, at(off::ETH_DST), R3)
        .load(H, R3, R7, eth_field::DST as i16 + 4)
        .store(H, R10, at(off::ETH_DST + 4), R3)
        .load(H, R3, R7, eth_field::SRC as i16)
        .store(H, R10, at(off::ETH_SRC), R3)
        .load(W, R3, R7, eth_field::SRC as i16 + 2)
        .store(W, R10, at(off::ETH_SRC + 2), R3);
    a.load(H, R3, R7, eth_field::TYPE as i16)
        .jump_imm(Eq, R3, wire16(ethertype::VLAN), "vlan")
        .goto("ethertype");
    // One 802.1Q tag (it takes the Ethertype's place): its TCI with the
    // present bit, then the inner type.
    a.label("vlan")
        .mov(R9, R7)
        .add_imm(R9, (ETHERNET_LEN + VLAN_TAG_LEN) as i32)
        .jump_reg(Gt, R9, R8, "xsk")
        .load(H, R4, R7, (eth_field::TYPE + vlan_field::TCI) as i16)
        .or_imm(R4, wire16(VLAN_CFI))
        .store(H, R10, at(off::VLAN_TCI), R4)
        .or_imm(R5, (attr::VLAN | attr::ENCAP) as i32)
        .load(H, R3, R7, (eth_field::TYPE + VLAN_TAG_LEN) as i16)
        .jump_imm(Eq, R3, wire16(ethertype::VLAN), "xsk");
}

/// The Ethertype (802.2, unsteered types to AF_XDP), then IPv4's fields
/// and fragment kind; r2 = the protocol, r9 at L4 (label `l4`).
fn emit_ipv4(a: &mut Asm) {
    use Cond::*;
    use Size::*;
    // r9 = the L3 header; r3 = the Ethertype as loaded.
    a.label("ethertype").store(H, R10, at(off::ETH_TYPE), R3);
    for t in UNSTEERED_TYPES {
        a.jump_imm(Eq, R3, wire16(t), "xsk");
    }
    // 802.2 length fields: the type in host order below 0x600.
    a.mov(R4, R3)
        .and_imm(R4, 0xff)
        .lsh_imm(R4, 8)
        .mov(R0, R3)
        .rsh_imm(R0, 8)
        .or_reg(R4, R0)
        .jump_imm(Lt, R4, 0x0600, "xsk")
        .or_imm(R5, attr::ETHERTYPE as i32)
        .jump_imm(Ne, R3, wire16(ethertype::IPV4), "lookup");
    // IPv4: a header that fits (options allowed), r4 = its length.
    a.mov(R0, R9)
        .add_imm(R0, IPV4_LEN as i32)
        .jump_reg(Gt, R0, R8, "xsk")
        .or_imm(R5, attr::IPV4 as i32)
        .load(B, R4, R9, ipv4_field::VER_IHL as i16)
        .and_imm(R4, 0x0f)
        .jump_imm(Lt, R4, (IPV4_LEN / 4) as i32, "xsk")
        .lsh_imm(R4, 2);
    for (field, to) in [(ipv4_field::SRC, off::NW_SRC), (ipv4_field::DST, off::NW_DST)] {
        a.load(W, R3, R9, field as i16).store(W, R10, at(to), R3);
    }
    for (field, to) in [
        (ipv4_field::TOS, off::NW_TOS),
        (ipv4_field::TTL, off::NW_TTL),
        (ipv4_field::PROTO, off::NW_PROTO),
    ] {
        a.load(B, R3, R9, field as i16).store(B, R10, at(to), R3);
    }
    // r2 = protocol, kept across the move to L4.
    a.mov(R2, R3).load(H, R3, R9, ipv4_field::FRAG as i16);
    // The options must fit too: r9 = the L4 header.
    a.add_reg(R9, R4)
        .jump_reg(Gt, R9, R8, "xsk")
        .jump_imm(Set, R3, wire16(IPV4_FRAGMENT), "fragment")
        .goto("l4");
    a.label("fragment")
        .jump_imm(Set, R3, wire16(IPV4_FRAG_OFFSET), "later")
        .store_imm(B, R10, at(off::NW_FRAG), frag::FIRST as i32)
        .goto("l4");
    a.label("later")
        .store_imm(B, R10, at(off::NW_FRAG), frag::LATER as i32)
        .goto("lookup");
}

/// TCP, UDP (ports) and ICMP (type, code) fields.
fn emit_l4(a: &mut Asm) {
    use Cond::*;
    use Size::*;
    a.label("l4")
        .jump_imm(Eq, R2, ip_proto::TCP as i32, "tcp")
        .jump_imm(Eq, R2, ip_proto::UDP as i32, "udp")
        .jump_imm(Eq, R2, ip_proto::ICMP as i32, "icmp")
        .jump_imm(Eq, R2, ip_proto::SCTP as i32, "xsk")
        .goto("lookup");
    // TCP: the whole header (data offset included) must be there.
    a.label("tcp")
        .mov(R0, R9)
        .add_imm(R0, odpx_classifier::wire::TcpHeader::<&[u8]>::LEN as i32)
        .jump_reg(Gt, R0, R8, "xsk")
        .load(B, R4, R9, tcp_field::OFFSET_FLAGS as i16)
        .rsh_imm(R4, 4)
        .jump_imm(Lt, R4, 5, "xsk")
        .lsh_imm(R4, 2)
        .mov(R0, R9)
        .add_reg(R0, R4)
        .jump_reg(Gt, R0, R8, "xsk")
        .or_imm(R5, (attr::TCP | attr::TCP_FLAGS) as i32)
        .goto("ports");
    a.label("udp")
        .mov(R0, R9)
        .add_imm(R0, UDP_LEN as i32)
        .jump_reg(Gt, R0, R8, "xsk")
        .or_imm(R5, attr::UDP as i32);
    a.label("ports");
    for (field, to) in [(udp_field::SRC_PORT, off::TP_SRC), (udp_field::DST_PORT, off::TP_DST)] {
        a.load(H, R3, R9, field as i16).store(H, R10, at(to), R3);
    }
    a.goto("lookup");
    // ICMP: type and code as the low bytes of the 16-bit port fields.
    a.label("icmp")
        .mov(R0, R9)
        .add_imm(R0, odpx_classifier::wire::IcmpHeader::<&[u8]>::LEN as i32)
        .jump_reg(Gt, R0, R8, "xsk")
        .or_imm(R5, attr::ICMP as i32)
        .load(B, R3, R9, icmp_field::TYPE as i16)
        .store(B, R10, at(off::TP_SRC + 1), R3)
        .load(B, R3, R9, icmp_field::CODE as i16)
        .store(B, R10, at(off::TP_DST + 1), R3);
}

/// The masks map, then one masked lookup in the entries map per mask slot
/// in use: a hit goes to `kernel`, the rest to `xsk`.
fn emit_lookup(a: &mut Asm, masks_fd: i32, entries_fd: i32) {
    use Cond::*;
    use Size::*;
    // The masks, then one lookup per slot in use.
    a.label("lookup")
        .store(W, R10, at(off::ATTRS), R5)
        .store_imm(W, R10, INDEX, 0)
        .load_map(R1, masks_fd)
        .mov(R2, R10)
        .add_imm(R2, INDEX as i32)
        .call(helper::MAP_LOOKUP_ELEM)
        .jump_imm(Eq, R0, 0, "xsk")
        .mov(R9, R0)
        .load(W, R7, R9, 0);
    for slot in 0..MASK_SLOTS {
        a.jump_imm(Lt, R7, slot as i32 + 1, "xsk");
        for w in 0..(KEY_LEN / 8) as i16 {
            a.load(DW, R3, R10, PKT + 8 * w)
                .load(DW, R4, R9, 8 + (slot * KEY_LEN) as i16 + 8 * w)
                .and_reg(R3, R4)
                .store(DW, R10, KEY + 8 * w, R3);
        }
        a.store_imm(W, R10, KEY + off::SLOT as i16, slot as i32)
            .load_map(R1, entries_fd)
            .mov(R2, R10)
            .add_imm(R2, KEY as i32)
            .call(helper::MAP_LOOKUP_ELEM)
            .jump_imm(Ne, R0, 0, "kernel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odpx_classifier::odp::parse_key;

    fn entry(text: &str) -> Result<SteerEntry, String> {
        steer_match(&parse_key(text).unwrap().matched)
    }

    #[test]
    fn megaflows_of_steered_headers_have_entries_and_others_say_why_not() {
        let e = entry(
            "recirc_id(0),in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),\
             ipv4(dst=10.0.0.0/255.0.0.0,frag=no),tcp(dst=80)",
        )
        .unwrap();
        assert_eq!(&e.mask[off::IN_PORT..off::IN_PORT + 4], &[0xff; 4]);
        assert_eq!(&e.key[off::NW_DST..off::NW_DST + 4], &[10, 0, 0, 0]);
        assert_eq!(&e.mask[off::NW_DST..off::NW_DST + 4], &[255, 0, 0, 0]);
        assert_eq!(&e.key[off::TP_DST..off::TP_DST + 2], &[0, 80]);
        assert_eq!(&e.mask[off::SLOT..off::SLOT + 4], &[0; 4]);
        let why = |t: &str| entry(t).unwrap_err();
        // Any input port: the mask leaves the port out.
        let any = entry("eth(),eth_type(0x0800),ipv4(dst=10.0.0.1,frag=no)").unwrap();
        assert_eq!(&any.mask[off::IN_PORT..off::IN_PORT + 4], &[0; 4]);
        assert!(why("in_port(1),eth(),eth_type(0x86dd),ipv6(dst=2001:db8::1)").contains("fields"));
        assert!(why("in_port(1),eth(),eth_type(0x0806),arp()").contains("parse"));
        assert!(why("in_port(1),eth(),eth_type(0x0800),ipv4(frag=no),tcp(),tcp_flags(0x002)").contains("TCP flags"));
        assert!(why("in_port(1),skb_mark(5),eth()").contains("fields"));
        // Pinned to the value every steered packet has: fine.
        assert!(entry("recirc_id(0),skb_mark(0),in_port(2),eth()").is_ok());
    }
}
