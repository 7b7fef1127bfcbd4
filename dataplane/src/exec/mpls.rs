//! MPLS label stack entries on the wire: `push_mpls`, `pop_mpls` and
//! `set(mpls(...))` of the outermost entry.
//!
//! The stack sits after the Ethernet header and any VLAN tags, announced
//! by the Ethertype just before it (as the kernel datapath puts it). A
//! push moves everything up to that Ethertype 4 bytes into the headroom;
//! a pop moves it back. No copy of the payload either way.

use super::{write_masked, Packet};
use odpx_classifier::layout::layout;
use odpx_classifier::odp::SetAction;
use odpx_classifier::wire::{ethertype, MPLS_LSE_LEN};

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pushed {
    Done,
    /// No Ethernet header to push after (a runt): the packet goes on as
    /// it is, as a set action that finds no header.
    NoHeader,
    /// No headroom for the entry: the packet is dropped.
    NoHeadroom,
}

/// Ethertype field's width.
const ETHERTYPE_LEN: usize = 2;

/// Pushes `lse` as the outermost entry; the Ethertype before it becomes
/// `ethertype`.
pub(super) fn push(p: &mut Packet, lse: u32, ethertype: u16) -> Pushed {
    let Some(et_at) = layout(p.data()).ethertype_at else {
        return Pushed::NoHeader;
    };
    if !p.push_front(MPLS_LSE_LEN) {
        return Pushed::NoHeadroom;
    }
    let d = p.data_mut();
    let stack = et_at + ETHERTYPE_LEN;
    d.copy_within(MPLS_LSE_LEN..MPLS_LSE_LEN + et_at, 0);
    d[et_at..stack].copy_from_slice(&ethertype.to_be_bytes());
    d[stack..stack + MPLS_LSE_LEN].copy_from_slice(&lse.to_be_bytes());
    Pushed::Done
}

/// Pops the outermost entry; the Ethertype becomes `ethertype`. False
/// when the packet has no label stack.
pub(super) fn pop(p: &mut Packet, ethertype: u16) -> bool {
    let Some(stack) = mpls_at(p) else { return false };
    let et_at = stack - ETHERTYPE_LEN;
    let d = p.data_mut();
    d[et_at..stack].copy_from_slice(&ethertype.to_be_bytes());
    d.copy_within(0..stack, MPLS_LSE_LEN);
    p.pop_front(MPLS_LSE_LEN);
    true
}

/// Writes the outermost entry's bits under the set's mask.
pub(super) fn set(p: &mut Packet, s: &SetAction) -> bool {
    let Some(at) = mpls_at(p) else { return false };
    let (v, m) = (s.key.mpls_lse[0].to_be_bytes(), s.mask.mpls_lse[0].to_be_bytes());
    write_masked(p.data_mut(), at, &v, &m, &[]);
    true
}

/// Where the outermost label stack entry starts, if the packet has a
/// whole one.
fn mpls_at(p: &Packet) -> Option<usize> {
    let l = layout(p.data());
    let at = l.l3_of(ethertype::MPLS).or_else(|| l.l3_of(ethertype::MPLS_MC))?;
    (p.len() >= at + MPLS_LSE_LEN).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{run_on, tcp_frame};
    use odpx_classifier::extract::extract;
    use odpx_classifier::odp::format_exact_key;
    use odpx_classifier::wire::eth_field;

    /// `f` with an 802.1Q tag (VID 10) after its MAC addresses.
    fn tagged(f: &[u8]) -> Vec<u8> {
        let mut t = f[..eth_field::TYPE].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        t.extend_from_slice(&f[eth_field::TYPE..]);
        t
    }

    #[test]
    fn push_puts_the_entry_after_the_tags_and_pop_gives_the_frame_back() {
        for frame in [tcp_frame(), tagged(&tcp_frame())] {
            let (out, r) = run_on(
                &frame,
                "push_mpls(label=100,tc=3,ttl=64,bos=1,eth_type=0x8847),1,pop_mpls(eth_type=0x800),2",
            );
            assert_eq!(r.skipped_sets, 0);
            let pushed = &out[0].1;
            assert_eq!(pushed.len(), frame.len() + 4);
            let k = format_exact_key(&extract(pushed, 1));
            assert!(k.contains("eth_type(0x8847),mpls(label=100,tc=3,ttl=64,bos=1)"), "{k}");
            // Everything after the label is the IPv4 packet as it was.
            let ip = frame.len() - (tcp_frame().len() - eth_field::TYPE - 2);
            assert_eq!(&pushed[ip + 4..], &frame[ip..]);
            assert_eq!(out[1].1, frame);
        }
        let k = format_exact_key(&extract(
            &run_on(
                &tagged(&tcp_frame()),
                "push_mpls(label=1,tc=0,ttl=1,bos=1,eth_type=0x8847),1",
            )
            .0[0]
                .1,
            1,
        ));
        assert!(k.contains("vlan(vid=10,pcp=0),encap(eth_type(0x8847),mpls("), "{k}");
    }

    #[test]
    fn a_set_writes_the_outer_entry_under_its_mask() {
        let (out, _) = run_on(
            &tcp_frame(),
            "push_mpls(label=100,tc=3,ttl=64,bos=1,eth_type=0x8847),set(mpls(label=203/0xfffff,tc=0/0,ttl=63/0xff,bos=0/0)),1",
        );
        let k = format_exact_key(&extract(&out[0].1, 1));
        assert!(k.contains("mpls(label=203,tc=3,ttl=63,bos=1)"), "{k}");
    }

    #[test]
    fn a_pop_or_set_without_a_label_stack_leaves_the_packet_alone() {
        let f = tcp_frame();
        let (out, r) = run_on(&f, "pop_mpls(eth_type=0x800),set(mpls(label=1,tc=0,ttl=1,bos=1)),1");
        assert_eq!(out, vec![(1, f)]);
        assert_eq!(r.skipped_sets, 2);
    }
}
