//! Megaflow identity and the operations on installed megaflows, as data.
//!
//! # What
//! * [`Ufid`]: the 128-bit unique flow identifier of the ODP API
//!   (`OVS_FLOW_ATTR_UFID`), used by odpx for every megaflow in every
//!   datapath, userspace PMDs included.
//! * [`Holder`]: which datapath holds a megaflow (one PMD, or the kernel).
//! * [`FlowOp`]: install, modify or delete a megaflow. The megaflow owner
//!   (the revalidator in `odpx-control`) decides; the holder carries the
//!   operation out. The same value reaches a PMD (as a message) or the
//!   kernel (as a netlink request), so nothing here is a closure.
//!
//! # Why UFIDs are computed, not counted
//! [`Ufid::of`] hashes the megaflow's match (key under mask, and the mask)
//! together with its holder. The same megaflow thus gets the same UFID
//! after a restart, which lets a restarted daemon recognise the kernel
//! flows of its previous run, and a second install of one megaflow (two
//! upcalls of one flow that raced) is recognised as the same flow. Two
//! PMDs that hold equal matches hold two megaflows, with two UFIDs. The
//! hash is not cryptographic: the owner checks, on every install, that a
//! UFID it already knows belongs to the same match, and refuses to mix
//! them up otherwise.
//!
//! # Text
//! UFIDs print as Open vSwitch prints them (`ufid:` followed by a UUID made
//! of the four 32-bit words in host order), see [`format_ufid`].

use crate::key::{mix_word, Match};
use crate::odp::OdpAction;
use std::sync::Arc;

/// Datapath actions, shared between the owner's record and the holders.
pub type Actions = Arc<[OdpAction]>;

/// A unique flow identifier: 16 bytes, as the kernel stores them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ufid(pub [u8; 16]);

/// The datapath that holds a megaflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    /// The userspace PMD thread with this id.
    Pmd(u32),
    /// The Linux Open vSwitch kernel datapath.
    Kernel,
}

impl Holder {
    pub fn is_kernel(self) -> bool {
        self == Holder::Kernel
    }
}

/// The 64-bit finaliser of splitmix64: every input bit reaches every
/// output bit.
fn avalanche(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Ufid {
    /// The UFID of megaflow `m` in `holder` (see the module documentation).
    pub fn of(m: &Match, holder: Holder) -> Ufid {
        let salt = match holder {
            Holder::Kernel => 0,
            Holder::Pmd(id) => 1 + id as u64,
        };
        let mut a = 0x6a09_e667_f3bc_c908 ^ salt;
        let mut b = 0xbb67_ae85_84ca_a73b ^ salt.rotate_left(32);
        for (i, w) in m.key.words().iter().chain(m.mask.words()).enumerate() {
            a = mix_word(a, *w);
            b = mix_word(b, w.rotate_left(17) ^ i as u64);
        }
        let (a, b) = (avalanche(a), avalanche(b ^ a.rotate_left(23)));
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        Ufid(out)
    }

    /// A UFID from the kernel's bytes (exactly 16; shorter ones are not
    /// odpx's and are refused).
    pub fn from_bytes(b: &[u8]) -> Option<Ufid> {
        b.try_into().ok().map(Ufid)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl core::fmt::Display for Ufid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&format_ufid(&self.0))
    }
}

impl core::fmt::Debug for Ufid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ufid:{self}")
    }
}

/// One change to the megaflows of one datapath.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowOp {
    /// A new megaflow.
    Install {
        ufid: Ufid,
        /// Boxed: a match is 400 bytes and the other variants are small.
        matched: Box<Match>,
        actions: Actions,
    },
    /// New actions for an installed megaflow; its match stays (the kernel
    /// needs the match to check the actions against it).
    Modify {
        ufid: Ufid,
        matched: Box<Match>,
        actions: Actions,
    },
    /// Remove an installed megaflow.
    Delete { ufid: Ufid },
}

impl FlowOp {
    pub fn ufid(&self) -> Ufid {
        match self {
            FlowOp::Install { ufid, .. } | FlowOp::Modify { ufid, .. } | FlowOp::Delete { ufid } => *ufid,
        }
    }
}

/// A UFID as Open vSwitch prints it: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`
/// for 16 bytes (the four 32-bit words of its `ovs_u128` in host order),
/// plain hex for other lengths.
pub fn format_ufid(u: &[u8]) -> String {
    if u.len() != 16 {
        return u.iter().map(|b| format!("{b:02x}")).collect();
    }
    let w: Vec<String> = u
        .chunks(4)
        .map(|c| format!("{:08x}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    format!(
        "{}-{}-{}-{}-{}{}",
        w[0],
        &w[1][..4],
        &w[1][4..],
        &w[2][..4],
        &w[2][4..],
        w[3]
    )
}

/// Parses a UFID: 32 hex digits (dashes allowed) are a UUID read as Open
/// vSwitch does (four 32-bit words); fewer are raw bytes.
pub fn parse_ufid(s: &str) -> Result<Vec<u8>, String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("bad UFID '{s}' (1 to 16 bytes of hex)"));
    }
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    if bytes.len() == 16 {
        // Undo the per-word host order of format_ufid.
        let mut out = Vec::with_capacity(16);
        for c in bytes.chunks(4) {
            out.extend_from_slice(&u32::from_be_bytes([c[0], c[1], c[2], c[3]]).to_ne_bytes());
        }
        return Ok(out);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odp::parse_key;

    #[test]
    fn ufids_depend_on_match_and_holder_and_are_stable() {
        let a = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0,frag=no)")
            .unwrap()
            .matched;
        let b = parse_key("in_port(1),eth(),eth_type(0x0800),ipv4(dst=10.0.0.0/255.255.0.0,frag=no)")
            .unwrap()
            .matched;
        assert_eq!(Ufid::of(&a, Holder::Kernel), Ufid::of(&a, Holder::Kernel));
        assert_ne!(Ufid::of(&a, Holder::Kernel), Ufid::of(&b, Holder::Kernel));
        assert_ne!(Ufid::of(&a, Holder::Kernel), Ufid::of(&a, Holder::Pmd(0)));
        assert_ne!(Ufid::of(&a, Holder::Pmd(0)), Ufid::of(&a, Holder::Pmd(1)));
        // Fixed value: a restarted daemon must compute the same UFIDs.
        let u = Ufid::of(&Match::default(), Holder::Kernel);
        assert_eq!(Ufid::of(&Match::default(), Holder::Kernel), u);
        assert_eq!(Ufid::from_bytes(u.as_bytes()), Some(u));
        assert_eq!(Ufid::from_bytes(&[1, 2]), None);
    }

    #[test]
    fn ufid_text_round_trips() {
        let u: Vec<u8> = (1..=16).collect();
        let s = format_ufid(&u);
        assert_eq!(s.len(), 36);
        assert_eq!(parse_ufid(&s).unwrap(), u);
        assert_eq!(parse_ufid("0a0b").unwrap(), vec![10, 11]);
        let plain = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            format_ufid(&parse_ufid(plain).unwrap()),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert!(parse_ufid("xyz").is_err());
    }
}
