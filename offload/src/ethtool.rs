//! One ethtool setting over the kernel's `ethtool` generic-netlink family:
//! turning off transmit checksum offload on an interface.
//!
//! Why it is here: a veth that offloads checksums hands its peer packets
//! whose TCP/UDP checksum is unfinished (the peer is trusted to know).
//! AF_XDP in copy mode gives userspace those raw bytes, so a switch that
//! forwards them sends out bad checksums. Open vSwitch's AF_XDP guide has
//! users run `ethtool -K <veth> tx off` on such veths; this does the same
//! without the ethtool program (which a minimal machine may lack).

use crate::channel::{resolve_family, Channel};
use crate::error::{OdpError, Op};
use crate::nla::Writer;
use neli::genl::{AttrTypeBuilder, GenlmsghdrBuilder, NlattrBuilder};
use neli::nl::NlPayload;
use neli::types::{Buffer, GenlBuffer};

const FEATURES_SET: u8 = 12;
const A_FEATURES_HEADER: u16 = 1;
const A_FEATURES_WANTED: u16 = 3;
const A_HEADER_DEV_NAME: u16 = 2;
const A_BITSET_BITS: u16 = 3;
const A_BITSET_BITS_BIT: u16 = 1;
const A_BITSET_BIT_NAME: u16 = 2;

/// Turns off `tx-checksum-ip-generic` (the checksum feature veths offer) on
/// `ifname` in the calling thread's network namespace.
pub fn disable_tx_checksum(ifname: &str) -> Result<(), OdpError> {
    let mut ch = Channel::open()?;
    let family = resolve_family(&mut ch, "ethtool")?.0;
    let mut header = Writer::new();
    header.put_str(A_HEADER_DEV_NAME, ifname);
    let mut wanted = Writer::new();
    let bits = wanted.begin_nested_flagged(A_BITSET_BITS);
    let bit = wanted.begin_nested_flagged(A_BITSET_BITS_BIT);
    wanted.put_str(A_BITSET_BIT_NAME, "tx-checksum-ip-generic");
    // No VALUE flag: the bit is wanted off.
    wanted.end_nested(bit);
    wanted.end_nested(bits);
    let mut attrs = GenlBuffer::new();
    for (ty, payload) in [
        (A_FEATURES_HEADER, header.into_bytes()),
        (A_FEATURES_WANTED, wanted.into_bytes()),
    ] {
        attrs.push(
            NlattrBuilder::default()
                .nla_type(
                    AttrTypeBuilder::default()
                        .nla_type(ty)
                        .nla_nested(true)
                        .build()
                        .map_err(|e| OdpError::Netlink(e.to_string()))?,
                )
                .nla_payload(Buffer::from(payload.as_slice()))
                .build()
                .map_err(|e| OdpError::Netlink(e.to_string()))?,
        );
    }
    let genl = GenlmsghdrBuilder::<u8, u16>::default()
        .cmd(FEATURES_SET)
        .version(1)
        .attrs(attrs)
        .build()
        .map_err(|e| OdpError::Netlink(e.to_string()))?;
    let seq = ch.send_plain(family, genl)?;
    loop {
        for m in ch.recv_msgs()? {
            if *m.nl_seq() != seq {
                continue;
            }
            match m.nl_payload() {
                NlPayload::Err(e) => {
                    return Err(OdpError::Kernel {
                        op: Op::Family,
                        errno: -*e.error(),
                        context: format!("ethtool features of {ifname}"),
                        ext_ack: None,
                    })
                }
                NlPayload::Ack(_) => return Ok(()),
                _ => {}
            }
        }
    }
}
