//! A packet inside a frame buffer, with headroom in front of it: what the
//! datapath's actions ([`crate::exec`], [`crate::tunnel`]) run on.
//!
//! # Invariants
//! `start + len <= frame.len()` always holds: every constructor and every
//! change clamps to the frame, so no accessor panics. Growing the packet
//! at its front ([`Packet::push_front`]) takes headroom; it fails, and
//! changes nothing, when there is not enough.

use odpx_classifier::wire::{VLAN_TAG_LEN, VXLAN_OVER_IPV6};

/// Bytes of headroom a frame must leave in front of a packet for the
/// actions that grow it: an IPv6 VXLAN header, or VLAN tags, rounded up to
/// whole cache lines.
pub const HEADROOM: usize = 128;
const _: () = assert!(HEADROOM >= VXLAN_OVER_IPV6 + 2 * VLAN_TAG_LEN);

/// A packet inside a frame buffer: `frame[start..start + len]`, with
/// `frame[..start]` free headroom.
pub struct Packet<'a> {
    frame: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> Packet<'a> {
    pub fn new(frame: &'a mut [u8], start: usize, len: usize) -> Packet<'a> {
        let start = start.min(frame.len());
        let len = len.min(frame.len() - start);
        Packet { frame, start, len }
    }

    pub fn data(&self) -> &[u8] {
        &self.frame[self.start..self.start + self.len]
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.frame[self.start..self.start + self.len]
    }

    /// Where the packet starts in its frame (after actions that grew it).
    pub fn start(&self) -> usize {
        self.start
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_front(&mut self, n: usize) -> bool {
        if self.start < n {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    pub fn pop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start += n;
        self.len -= n;
    }

    /// Drops the bytes after the first `n` (trailing padding).
    pub fn trim_to(&mut self, n: usize) {
        self.len = self.len.min(n);
    }
}
