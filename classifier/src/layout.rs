//! Where each header of a frame starts: the one parser of header
//! positions.
//!
//! # What
//! [`layout`] walks a frame's headers once (Ethernet, up to two VLAN tags,
//! LLC/SNAP, IPv4 or IPv6 with its extension headers) and answers where
//! each one starts, without reading any field a caller does not need.
//! Action execution (odpx-dataplane's `exec`) rewrites fields at these
//! offsets, and the VXLAN source-port hash reads the inner flow at them.
//! Key extraction ([`crate::extract`]) walks the headers itself, reading
//! fields as it goes (a third of the cost); a property test holds the two
//! walks to the same headers, so a packet the datapath edits has the
//! headers its flow key was made from.
//!
//! # The rules it follows (the kernel's `key_extract()`)
//! * A VLAN tag counts when its TPID, its TCI and the Ethertype after it
//!   are all there; a TPID cut short is reported in [`Layout::cut_tag`] and
//!   ends the walk.
//! * A length field instead of an Ethertype is 802.2; SNAP with a zero OUI
//!   takes the SNAP Ethertype, and the network header starts after it.
//! * IPv4: a header shorter than 20 bytes, or an IHL that does not fit,
//!   has no [`IpLayout`]. Later fragments have no transport header.
//! * IPv6: hop-by-hop, routing, destination options, AH and fragment
//!   headers are skipped; one cut short ends the walk with protocol 59 (no
//!   next header); a later fragment has protocol 44 and no transport header.
//!
//! # Cost
//! No allocation, bounds-checked reads through [`crate::wire`]'s views;
//! never panics on any input.

use crate::key::{frag, ETH_TYPE_802_2};
use crate::wire::{self, eth_field, ethertype, Ipv4Header, Ipv6Header, VLAN_TAG_LEN};

/// The header positions of one frame (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The TPIDs of the complete VLAN tags, outer first (`vlan_tags` of
    /// them); the first tag, when there is one, is at [`eth_field::TYPE`].
    pub tpids: [u16; 2],
    pub vlan_tags: u8,
    /// A VLAN TPID whose TCI or next Ethertype is cut off (the walk ends).
    pub cut_tag: Option<u16>,
    /// Offset of the Ethertype (or 802.2 length) after the tags: 12, 16 or
    /// 20. `None` for a runt or a cut tag.
    pub ethertype_at: Option<usize>,
    /// The Ethertype (SNAP's for SNAP frames; [`ETH_TYPE_802_2`] for other
    /// 802.2 frames; 0 without one).
    pub eth_type: u16,
    /// Where the network header starts.
    pub l3: usize,
    /// IPv4 or IPv6 whose header is complete enough to read.
    pub ip: Option<IpLayout>,
}

/// The IP part of a [`Layout`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpLayout {
    /// [`frag::NO`], [`frag::FIRST`] or [`frag::LATER`].
    pub frag: u8,
    /// The transport protocol: IPv4's, or IPv6's after its extension
    /// headers (44 for a later fragment, 59 when they are cut short).
    pub proto: u8,
    /// Where the transport header starts; `None` for a later fragment or
    /// when the extension headers run past the frame.
    pub l4: Option<usize>,
}

impl Layout {
    /// The network header's offset if the frame is of Ethertype `et`.
    pub fn l3_of(&self, et: u16) -> Option<usize> {
        (self.ethertype_at.is_some() && self.eth_type == et).then_some(self.l3)
    }

    /// The transport protocol and header offset, when there is one.
    /// (Read field by field: a copy of the whole `ip` right after
    /// [`layout`] wrote it field by field stalls on store forwarding.)
    pub fn l4(&self) -> Option<(u8, usize)> {
        match &self.ip {
            Some(ip) => ip.l4.map(|at| (ip.proto, at)),
            None => None,
        }
    }
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The TPID at `off` if it is a VLAN Ethertype and present.
#[inline(always)]
fn vlan_tpid(frame: &[u8], off: usize) -> Option<u16> {
    let t = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    (t == ethertype::VLAN || t == ethertype::QINQ).then_some(t)
}

/// The header positions of `frame` (see the module documentation).
pub fn layout(frame: &[u8]) -> Layout {
    let mut l = Layout::default();
    if frame.len() < wire::ETHERNET_LEN {
        return l;
    }
    let mut off = eth_field::TYPE;
    while l.vlan_tags < 2 {
        let Some(tpid) = vlan_tpid(frame, off) else { break };
        if frame.len() < off + VLAN_TAG_LEN + 2 {
            l.cut_tag = Some(tpid);
            return l;
        }
        l.tpids[l.vlan_tags as usize] = tpid;
        l.vlan_tags += 1;
        off += VLAN_TAG_LEN;
    }
    l.ethertype_at = Some(off);
    let raw_type = be16(frame, off);
    l.l3 = off + 2;
    l.eth_type = if raw_type >= 0x0600 {
        raw_type
    } else {
        // LLC/SNAP: AA AA 03 + OUI 00 00 00 + type.
        match frame.get(l.l3..l.l3 + 8) {
            Some(s) if s[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] && be16(s, 6) >= 0x0600 => {
                l.l3 += 8;
                be16(s, 6)
            }
            _ => ETH_TYPE_802_2,
        }
    };
    let net = &frame[l.l3.min(frame.len())..];
    l.ip = match l.eth_type {
        ethertype::IPV4 => ipv4(net, l.l3),
        ethertype::IPV6 => ipv6(net, l.l3),
        _ => None,
    };
    l
}

fn ipv4(net: &[u8], l3: usize) -> Option<IpLayout> {
    let ip = Ipv4Header::new_checked(net).ok()?;
    let hlen = ip.header_len();
    if hlen < Ipv4Header::<&[u8]>::LEN || hlen > net.len() {
        return None;
    }
    let fragf = ip.frag_field();
    let kind = match fragf & wire::IPV4_FRAGMENT {
        0 => frag::NO,
        // MF or a non-zero offset.
        _ if fragf & wire::IPV4_FRAG_OFFSET != 0 => frag::LATER,
        _ => frag::FIRST,
    };
    Some(IpLayout {
        frag: kind,
        proto: ip.proto(),
        l4: (kind != frag::LATER).then_some(l3 + hlen),
    })
}

fn ipv6(net: &[u8], l3: usize) -> Option<IpLayout> {
    let ip = Ipv6Header::new_checked(net).ok()?;
    let mut out = IpLayout {
        frag: frag::NO,
        proto: ip.next_header(),
        l4: None,
    };
    let mut off = Ipv6Header::<&[u8]>::LEN;
    loop {
        let ext = net.get(off..off + 8);
        let len = match out.proto {
            // Hop-by-hop, routing, destination options: 8-byte units.
            0 | 43 | 60 => ext.map(|h| (h[0], (h[1] as usize + 1) * 8)),
            // Authentication header: 4-byte units, minus 2.
            51 => ext.map(|h| (h[0], (h[1] as usize + 2) * 4)),
            44 => match ext {
                Some(h) if be16(h, 2) & 0xfff8 != 0 => {
                    out.frag = frag::LATER;
                    return Some(out);
                }
                Some(h) => {
                    out.frag = frag::FIRST;
                    Some((h[0], 8))
                }
                None => None,
            },
            _ => break,
        };
        match len {
            Some((next, skip)) => {
                out.proto = next;
                off += skip;
            }
            None => {
                out.proto = 59;
                break;
            }
        }
    }
    out.l4 = (off <= net.len()).then_some(l3 + off);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tags: &[u16], et: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 5]);
        }
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_header(proto: u8, frag_field: u16) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 28, 0, 0];
        h.extend_from_slice(&frag_field.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        h.extend_from_slice(&[0; 8]);
        h
    }

    #[test]
    fn tags_ethertype_and_transport_header_are_found() {
        let l = layout(&frame(
            &[ethertype::VLAN, ethertype::VLAN],
            ethertype::IPV4,
            &ipv4_header(17, 0),
        ));
        assert_eq!(l.vlan_tags, 2);
        assert_eq!(l.ethertype_at, Some(20));
        assert_eq!(l.l3_of(ethertype::IPV4), Some(22));
        assert_eq!(l.l4(), Some((17, 42)));
    }

    #[test]
    fn later_fragments_and_short_headers_have_no_transport_header() {
        let later = layout(&frame(&[], ethertype::IPV4, &ipv4_header(6, 0x0010)));
        assert_eq!(later.ip.map(|i| (i.frag, i.l4)), Some((frag::LATER, None)));
        let first = layout(&frame(&[], ethertype::IPV4, &ipv4_header(6, 0x2000)));
        assert_eq!(first.ip.map(|i| (i.frag, i.l4)), Some((frag::FIRST, Some(34))));
        let short = layout(&frame(&[], ethertype::IPV4, &[0x45, 0, 0]));
        assert_eq!(short.ip, None);
    }

    #[test]
    fn a_cut_tag_ends_the_walk_and_snap_takes_its_ethertype() {
        let mut cut = vec![0u8; 12];
        cut.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        cut.extend_from_slice(&[0]);
        let l = layout(&cut);
        assert_eq!((l.cut_tag, l.ethertype_at), (Some(ethertype::VLAN), None));
        let snap = layout(&frame(&[], 40, &[0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00]));
        assert_eq!((snap.eth_type, snap.l3), (ethertype::IPV4, 22));
        let llc = layout(&frame(&[], 40, &[0x42, 0x42, 3]));
        assert_eq!(llc.eth_type, ETH_TYPE_802_2);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        ip.extend_from_slice(&[0; 32]);
        // Hop-by-hop (8 bytes) then UDP.
        ip.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        ip.extend_from_slice(&[0; 8]);
        let l = layout(&frame(&[], ethertype::IPV6, &ip));
        assert_eq!(l.l4(), Some((17, 14 + 48)));
        // Cut inside the extension header: protocol 59 (no next header).
        let cut = layout(&frame(&[], ethertype::IPV6, &ip[..44]));
        assert_eq!(cut.ip.map(|i| i.proto), Some(59));
    }
}
