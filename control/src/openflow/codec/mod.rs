//! The OpenFlow 1.3 codec: bytes to typed messages and back, no I/O.
//!
//! # What
//! [`message::decode`] turns one framed message into a [`Message`], an
//! enum of typed bodies: matches as lists of [`oxm::Oxm`], instructions
//! and actions as enums, multipart requests and replies, ports. And
//! [`message::encode`] turns a message back into bytes. The codec knows
//! the wire and nothing else: what a flow entry means to odpx's rule
//! tables is the rule converter's business (`openflow::convert`).
//!
//! # Why its own room
//! No maintained Rust crate implements the switch side of OpenFlow 1.3.
//! Every byte a controller sends crosses this code first, so it is kept
//! small, pure and fuzzed (`tools/fuzz`, target `openflow_message`), and
//! tested with bytes captured from real peers (`testdata/`).
//!
//! # Invariants
//! * Decoding never panics and never reads past the message: every read
//!   goes through a bounds-checked [`wire::Reader`].
//! * A malformed message yields the spec's error type and code for it
//!   ([`error::OfError`]): `OFPBRC_BAD_LEN` for a bad length,
//!   `OFPBMC_*` inside a match, `OFPBAC_*` inside actions, `OFPBIC_*`
//!   inside instructions, `OFPBRC_BAD_TYPE` / `OFPBRC_BAD_MULTIPART` for
//!   types odpx does not know. The connection answers it and goes on.
//! * What decodes encodes back to the same bytes when the sender padded
//!   with zeros, as every real peer does (tested on the captures).
//!
//! # Threads
//! Plain functions over byte slices; each connection's thread calls them.

pub mod action;
pub mod error;
pub mod flow;
pub mod group;
pub mod instruction;
pub mod message;
pub mod meter;
pub mod multipart;
pub mod nicira;
pub mod oxm;
pub mod packet;
pub mod port;
pub mod wire;

pub use self::error::OfError;
pub use self::message::{decode, encode, Header, Message};

/// Bytes from hex digits, for the codec's tests.
#[cfg(test)]
pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::message::{decode, encode, frame_len, DecodeError, MAX_LEN};
    use super::*;

    /// Every message ovs-ofctl 3.1 and ovs-vswitchd 3.1 exchanged in the
    /// capture decodes, and encodes back byte for byte.
    #[test]
    fn captured_ovs_messages_decode_and_encode_back() {
        let capture = include_str!("testdata/ovs-ofctl-3.1.txt");
        let mut n = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for line in capture.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let (_dir, _kind, bytes) = (parts.next(), parts.next(), hex(parts.next().unwrap()));
            assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
            let (h, msg) = decode(&bytes).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            assert_eq!(encode(h.xid, &msg), bytes, "{line}: {msg:?}");
            kinds.insert(msg.name());
            n += 1;
        }
        assert!(n > 80, "{n} messages");
        for k in [
            "OFPT_FLOW_MOD",
            "OFPT_PACKET_OUT",
            "OFPT_PORT_MOD",
            "OFPT_MULTIPART_REPLY",
            "OFPT_FEATURES_REPLY",
        ] {
            assert!(kinds.contains(k), "{k} in {kinds:?}");
        }
    }

    #[test]
    fn a_captured_flow_mod_reads_as_ovs_ofctl_wrote_it() {
        use super::flow::FlowModCommand;
        use super::instruction::Instruction;
        use super::oxm::{Oxm, OxmField};
        // ovs-ofctl add-flow "cookie=0x5adc15c0,table=0,priority=9000,in_port=1,
        // vlan_tci=0x0000/0x1fff,idle_timeout=300,actions=push_vlan:0x8100,
        // set_field:4196->vlan_vid,goto_table:1"
        let bytes = hex(concat!(
            "040e007000000006", // header: v4, FLOW_MOD, 112 bytes, xid 6
            "000000005adc15c0", // cookie
            "0000000000000000", // cookie mask
            "00",
            "00",
            "012c",
            "0000",
            "2328", // table 0, ADD, idle 300, hard 0, priority 9000
            "ffffffff",
            "ffffffff",
            "ffffffff", // no buffer, out_port ANY, out_group ANY
            "0000",
            "0000", // flags, padding
            "00010012",
            "8000000400000001",
            "80000c020000",
            "000000000000", // match: in_port=1, vlan_vid=0
            "00040020",
            "00000000",                         // apply_actions, 32 bytes
            "0011000881000000",                 // push_vlan 0x8100
            "0019001080000c021064000000000000", // set_field vlan_vid=0x1064
            "0001000801000000",                 // goto_table 1
        ));
        let (h, msg) = decode(&bytes).unwrap();
        assert_eq!(h.xid, 6);
        let Message::FlowMod(fm) = msg else { panic!("{msg:?}") };
        assert_eq!(
            (fm.cookie, fm.table_id, fm.command, fm.idle_timeout, fm.priority),
            (0x5adc15c0, 0, FlowModCommand::Add, 300, 9000)
        );
        assert_eq!(
            fm.matched,
            vec![Oxm::exact(OxmField::InPort, 1), Oxm::exact(OxmField::VlanVid, 0)]
        );
        assert_eq!(fm.instructions.len(), 2);
        assert_eq!(fm.instructions[1], Instruction::GotoTable(1));
    }

    #[test]
    fn bad_headers_and_types_are_errors_not_panics() {
        let err = |b: &[u8]| {
            decode(b)
                .map(|_| ())
                .map_err(|DecodeError { error, .. }| error.to_string())
        };
        // Version 1 FEATURES_REQUEST.
        assert_eq!(err(&hex("0105000800000001")), Err("OFPBRC_BAD_VERSION".into()));
        // Type 99.
        assert_eq!(err(&hex("0463000800000001")), Err("OFPBRC_BAD_TYPE".into()));
        // A BARRIER_REQUEST with 4 bytes too many.
        assert_eq!(err(&hex("0414000c0000000100000000")), Err("OFPBRC_BAD_LEN".into()));
        // A multipart request of type 77.
        assert_eq!(
            err(&hex("0412001000000001004d000000000000")),
            Err("OFPBRC_BAD_MULTIPART".into())
        );
        // A header that claims 4 bytes cannot be framed.
        assert!(frame_len(&hex("0400000400000001")).is_err());
        assert_eq!(frame_len(&hex("040000")), Ok(None));
        // HELLO of any version, with or without a bitmap.
        assert_eq!(
            decode(&hex("0100000800000001")).unwrap().1,
            Message::Hello { bitmap: vec![] }
        );
    }

    #[test]
    fn long_multipart_replies_are_split_between_items() {
        use super::multipart::{MultipartReply, TableStats};
        let tables: Vec<TableStats> = (0..=254)
            .cycle()
            .take(6000)
            .map(|t| TableStats {
                table_id: t,
                active_count: 1,
                lookup_count: 2,
                matched_count: 3,
            })
            .collect();
        let parts = message::encode_multipart_reply(9, &MultipartReply::Table(tables.clone()));
        assert!(parts.len() >= 3);
        let mut back = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= MAX_LEN);
            let (h, m) = decode(p).unwrap();
            assert_eq!(h.xid, 9);
            let Message::MultipartReply {
                flags,
                body: MultipartReply::Table(t),
            } = m
            else {
                panic!()
            };
            assert_eq!(flags, u16::from(i + 1 < parts.len()));
            back.extend(t);
        }
        assert_eq!(back, tables);
    }
}
