//! Printing keys and masks in the `ovs-dpctl` syntax (see the parent module).

use super::{attr_fields, opaque_id, OpaqueAttr};
use crate::key::{attr, frag, tun_flag, FlowKey, Match, VLAN_CFI};
use crate::text::{fmt_ipv4, fmt_ipv6, fmt_mac, hexc};

/// A masked key, as a datapath flow prints.
pub fn format_match(m: &Match) -> String {
    format_key(&m.key, &m.mask, false, &[])
}

/// A packet's key: every present attribute with all its fields.
pub fn format_exact_key(key: &FlowKey) -> String {
    format_key(key, &FlowKey::exact_mask(), true, &[])
}

/// A packet's key with the attributes odpx keeps opaque (as a kernel
/// upcall reports them), each in its kernel position.
pub fn format_exact_key_with(key: &FlowKey, opaque: &[OpaqueAttr]) -> String {
    format_key(key, &FlowKey::exact_mask(), true, opaque)
}

/// Collects `name=value` fields of one attribute.
struct Fields {
    items: Vec<String>,
}

impl Fields {
    fn new() -> Self {
        Fields { items: Vec::new() }
    }

    fn done(self) -> String {
        self.items.join(",")
    }

    /// An integer field; `dec` picks `%u` over `%#x` for the value. Partial
    /// masks always print as `%#x`.
    fn int(&mut self, name: &str, v: u64, m: u64, full: u64, dec: bool) {
        if m == 0 {
            return;
        }
        let mut s = if dec {
            format!("{name}={v}")
        } else {
            format!("{name}={}", hexc(v))
        };
        if m != full {
            s.push_str(&format!("/{}", hexc(m)));
        }
        self.items.push(s);
    }

    fn ipv4(&mut self, name: &str, v: u32, m: u32) {
        if m == 0 {
            return;
        }
        let mut s = format!("{name}={}", fmt_ipv4(v));
        if m != u32::MAX {
            s.push_str(&format!("/{}", fmt_ipv4(m)));
        }
        self.items.push(s);
    }

    fn ipv6(&mut self, name: &str, v: &[u8; 16], m: &[u8; 16]) {
        if *m == [0; 16] {
            return;
        }
        let mut s = format!("{name}={}", fmt_ipv6(v));
        if *m != [0xff; 16] {
            s.push_str(&format!("/{}", fmt_ipv6(m)));
        }
        self.items.push(s);
    }

    fn mac(&mut self, name: &str, v: &[u8; 6], m: &[u8; 6]) {
        if *m == [0; 6] {
            return;
        }
        let mut s = format!("{name}={}", fmt_mac(v));
        if *m != [0xff; 6] {
            s.push_str(&format!("/{}", fmt_mac(m)));
        }
        self.items.push(s);
    }

    fn frag(&mut self, v: u8, m: u8) {
        match m {
            0 => {}
            0xff => self.items.push(format!("frag={}", frag_name(v))),
            _ => self.items.push(format!(
                "error: partial mask not supported for frag ({})",
                hexc(m as u64)
            )),
        }
    }

    fn raw(&mut self, s: String) {
        self.items.push(s);
    }
}

pub(crate) fn frag_name(v: u8) -> &'static str {
    match v {
        frag::NO => "no",
        frag::FIRST => "first",
        frag::LATER => "later",
        _ => "<error>",
    }
}

/// OVS `format_flags`: names joined by `|`, unknown bits as hex, zero as `0`.
fn format_flags(flags: u32, name: impl Fn(u32) -> Option<&'static str>) -> String {
    if flags == 0 {
        return "0".into();
    }
    let mut parts = Vec::new();
    let mut bad = 0;
    let mut rest = flags;
    while rest != 0 {
        let bit = rest & rest.wrapping_neg();
        match name(bit) {
            Some(n) => parts.push(n.to_string()),
            None => bad |= bit,
        }
        rest &= !bit;
    }
    if bad != 0 {
        parts.push(format!("0x{bad:x}"));
    }
    parts.join("|")
}

/// OVS `format_flags_masked`: `a|b` when fully masked, `0/0` when empty,
/// otherwise `+a-b` for every masked bit (numeric `value/mask` when a
/// masked bit has no name).
fn format_flags_masked(flags: u32, mask: u32, max: u32, name: impl Fn(u32) -> Option<&'static str>) -> String {
    if mask == max {
        return format_flags(flags, name);
    }
    if mask == 0 {
        return "0/0".into();
    }
    // OVS would print "[Unknown]" for a masked bit without a name, which no
    // parser reads back; the numeric form does.
    if (0..32).map(|i| 1u32 << i).any(|b| mask & b != 0 && name(b).is_none()) {
        return format!("{}/{}", hexc((flags & mask) as u64), hexc(mask as u64));
    }
    let mut s = String::new();
    let mut rest = mask;
    while rest != 0 {
        let bit = rest & rest.wrapping_neg();
        s.push(if flags & bit != 0 { '+' } else { '-' });
        s.push_str(name(bit).unwrap_or("[Unknown]"));
        rest &= !bit;
    }
    s
}

pub(crate) fn tun_flag_name(bit: u32) -> Option<&'static str> {
    Some(match bit as u16 {
        tun_flag::OAM => "oam",
        tun_flag::DF => "df",
        tun_flag::CSUM => "csum",
        tun_flag::KEY => "key",
        _ => return None,
    })
}

pub(crate) fn tcp_flag_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0x001 => "fin",
        0x002 => "syn",
        0x004 => "rst",
        0x008 => "psh",
        0x010 => "ack",
        0x020 => "urg",
        0x040 => "ece",
        0x080 => "cwr",
        0x100 => "ns",
        0x200 => "[200]",
        0x400 => "[400]",
        0x800 => "[800]",
        _ => return None,
    })
}

pub(crate) fn ct_state_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        0x01 => "new",
        0x02 => "est",
        0x04 => "rel",
        0x08 => "rpl",
        0x10 => "inv",
        0x20 => "trk",
        0x40 => "snat",
        0x80 => "dnat",
        _ => return None,
    })
}

/// TCP flags as `ovs-dpctl` prints them in flow statistics (`flags:S.`).
pub fn fmt_tcp_flags(flags: u16) -> String {
    format_flags(flags as u32 & 0x0fff, tcp_flag_name)
}

/// `vlan(...)` content, as OVS `format_vlan_tci`.
pub(crate) fn format_vlan_tci(tci: u16, mask: u16, verbose: bool) -> String {
    let mut f = Fields::new();
    let (vid, vid_m) = (tci & 0x0fff, mask & 0x0fff);
    let (pcp, pcp_m) = (tci >> 13, mask >> 13);
    if verbose || vid != 0 || vid_m != 0 {
        let mut s = format!("vid={vid}");
        if vid_m != 0x0fff {
            s.push_str(&format!("/0x{vid_m:x}"));
        }
        f.raw(s);
    }
    if verbose || pcp != 0 || pcp_m != 0 {
        let mut s = format!("pcp={pcp}");
        if pcp_m != 7 {
            s.push_str(&format!("/0x{pcp_m:x}"));
        }
        f.raw(s);
    }
    if tci & VLAN_CFI == 0 {
        f.raw("cfi=0".into());
    }
    f.done()
}

fn is_wild(m: &FlowKey, bit: u32) -> bool {
    m.masked(&attr_fields(bit)).is_zero()
}

/// Formats one attribute's content (the part inside the parentheses).
/// `exact` selects the "no mask" style (tunnel fields by presence, flags
/// always printed).
pub(crate) fn attr_content(bit: u32, k: &FlowKey, m: &FlowKey, exact: bool) -> String {
    let mut f = Fields::new();
    match bit {
        attr::PRIORITY => return int_attr(k.skb_priority, m.skb_priority),
        attr::SKB_MARK => return int_attr(k.skb_mark, m.skb_mark),
        attr::RECIRC_ID => return int_attr(k.recirc_id, m.recirc_id),
        attr::DP_HASH => return int_attr(k.dp_hash, m.dp_hash),
        attr::IN_PORT => {
            return if m.in_port == u32::MAX {
                k.in_port.to_string()
            } else {
                format!("{}/{}", k.in_port, hexc(m.in_port as u64))
            }
        }
        attr::TUNNEL => {
            // Without a mask, a field prints when the kernel would emit its
            // netlink attribute; with one, when its mask is not empty.
            let show = |present: bool, mask_nonzero: bool| if exact { present } else { mask_nonzero };
            if show(k.tun_flags & tun_flag::KEY != 0, m.tun_id != 0) {
                let mut s = format!("tun_id=0x{:x}", k.tun_id);
                if m.tun_id != u64::MAX {
                    s.push_str(&format!("/{}", hexc(m.tun_id)));
                }
                f.raw(s);
            }
            if show(k.tun_ipv4_src != 0, m.tun_ipv4_src != 0) {
                f.ipv4("src", k.tun_ipv4_src, m.tun_ipv4_src);
            }
            if show(k.tun_ipv4_dst != 0, m.tun_ipv4_dst != 0) {
                f.ipv4("dst", k.tun_ipv4_dst, m.tun_ipv4_dst);
            }
            if show(k.tun_ipv6_src != [0; 16], m.tun_ipv6_src != [0; 16]) {
                f.ipv6("ipv6_src", &k.tun_ipv6_src, &m.tun_ipv6_src);
            }
            if show(k.tun_ipv6_dst != [0; 16], m.tun_ipv6_dst != [0; 16]) {
                f.ipv6("ipv6_dst", &k.tun_ipv6_dst, &m.tun_ipv6_dst);
            }
            if show(k.tun_tos != 0, m.tun_tos != 0) {
                f.int("tos", k.tun_tos as u64, m.tun_tos as u64, 0xff, false);
            }
            if show(true, m.tun_ttl != 0) {
                f.int("ttl", k.tun_ttl as u64, m.tun_ttl as u64, 0xff, true);
            }
            if show(k.tun_tp_src != 0, m.tun_tp_src != 0) {
                f.int("tp_src", k.tun_tp_src as u64, m.tun_tp_src as u64, 0xffff, true);
            }
            if show(k.tun_tp_dst != 0, m.tun_tp_dst != 0) {
                f.int("tp_dst", k.tun_tp_dst as u64, m.tun_tp_dst as u64, 0xffff, true);
            }
            let fm = m.tun_flags & tun_flag::ALL;
            if exact {
                f.raw(format!("flags({})", format_flags(k.tun_flags as u32, tun_flag_name)));
            } else if fm != 0 {
                f.raw(format!(
                    "flags({})",
                    format_flags_masked(k.tun_flags as u32, fm as u32, tun_flag::ALL as u32, tun_flag_name)
                ));
            }
        }
        attr::ETHERNET => {
            f.mac("src", &k.eth_src, &m.eth_src);
            f.mac("dst", &k.eth_dst, &m.eth_dst);
        }
        attr::VLAN => return format_vlan_tci(k.vlan_tci, m.vlan_tci, false),
        attr::CVLAN => return format_vlan_tci(k.cvlan_tci, m.cvlan_tci, false),
        attr::ETHERTYPE => return ethertype(k.eth_type, m.eth_type),
        attr::IPV4 => {
            f.ipv4("src", k.ipv4_src, m.ipv4_src);
            f.ipv4("dst", k.ipv4_dst, m.ipv4_dst);
            f.int("proto", k.ip_proto as u64, m.ip_proto as u64, 0xff, true);
            f.int("tos", k.ip_tos as u64, m.ip_tos as u64, 0xff, false);
            f.int("ttl", k.ip_ttl as u64, m.ip_ttl as u64, 0xff, true);
            f.frag(k.ip_frag, m.ip_frag);
        }
        attr::IPV6 => {
            f.ipv6("src", &k.ipv6_src, &m.ipv6_src);
            f.ipv6("dst", &k.ipv6_dst, &m.ipv6_dst);
            let lm = m.ipv6_label & 0x000f_ffff;
            if lm != 0 {
                let mut s = format!("label={}", hexc(k.ipv6_label as u64));
                if lm != 0x000f_ffff {
                    s.push_str(&format!("/{}", hexc(lm as u64)));
                }
                f.raw(s);
            }
            f.int("proto", k.ip_proto as u64, m.ip_proto as u64, 0xff, true);
            f.int("tclass", k.ip_tos as u64, m.ip_tos as u64, 0xff, false);
            f.int("hlimit", k.ip_ttl as u64, m.ip_ttl as u64, 0xff, true);
            f.frag(k.ip_frag, m.ip_frag);
        }
        attr::TCP | attr::UDP | attr::SCTP => {
            f.int("src", k.tp_src as u64, m.tp_src as u64, 0xffff, true);
            f.int("dst", k.tp_dst as u64, m.tp_dst as u64, 0xffff, true);
        }
        attr::ICMP | attr::ICMPV6 => {
            f.int("type", k.tp_src as u64, (m.tp_src & 0xff) as u64, 0xff, true);
            f.int("code", k.tp_dst as u64, (m.tp_dst & 0xff) as u64, 0xff, true);
        }
        attr::TCP_FLAGS => {
            let fm = (m.tcp_flags & 0x0fff) as u32;
            return if fm == 0x0fff {
                format_flags(k.tcp_flags as u32 & 0x0fff, tcp_flag_name)
            } else {
                format_flags_masked(k.tcp_flags as u32, fm, 0x0fff, tcp_flag_name)
            };
        }
        attr::ARP => {
            f.ipv4("sip", k.ipv4_src, m.ipv4_src);
            f.ipv4("tip", k.ipv4_dst, m.ipv4_dst);
            f.int("op", k.arp_op as u64, m.arp_op as u64, 0xffff, true);
            f.mac("sha", &k.arp_sha, &m.arp_sha);
            f.mac("tha", &k.arp_tha, &m.arp_tha);
        }
        attr::ND => {
            f.ipv6("target", &k.nd_target, &m.nd_target);
            f.mac("sll", &k.arp_sha, &m.arp_sha);
            f.mac("tll", &k.arp_tha, &m.arp_tha);
        }
        attr::MPLS => {
            let depth = (k.mpls_depth as usize).clamp(1, 3);
            let exact_lses = m.mpls_lse[..depth].iter().all(|&x| x == u32::MAX);
            for i in 0..depth {
                let (v, mk) = (k.mpls_lse[i], m.mpls_lse[i]);
                let (label, tc, bos, ttl) = (v >> 12, (v >> 9) & 7, (v >> 8) & 1, v & 0xff);
                if exact_lses {
                    f.raw(format!("label={label},tc={tc},ttl={ttl},bos={bos}"));
                } else {
                    f.raw(format!(
                        "label={label}/0x{:x},tc={tc}/{:x},ttl={ttl}/0x{:x},bos={bos}/{:x}",
                        mk >> 12,
                        (mk >> 9) & 7,
                        mk & 0xff,
                        (mk >> 8) & 1
                    ));
                }
            }
        }
        _ => {}
    }
    f.done()
}

fn int_attr(v: u32, m: u32) -> String {
    if m == u32::MAX {
        hexc(v as u64)
    } else {
        format!("{}/{}", hexc(v as u64), hexc(m as u64))
    }
}

fn ethertype(v: u16, m: u16) -> String {
    if m == u16::MAX {
        format!("0x{v:04x}")
    } else {
        format!("0x{v:04x}/0x{m:04x}")
    }
}

fn opaque_content(o: &OpaqueAttr) -> String {
    if o.is_mask_only_ethertype() {
        let m = o.mask.as_deref().unwrap_or(&[0, 0]);
        return format!("0/0x{:04x}", u16::from_be_bytes([m[0], m[1]]));
    }
    let int = |b: &[u8]| -> Option<u64> {
        match b.len() {
            2 => Some(u16::from_ne_bytes([b[0], b[1]]) as u64),
            4 => Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64),
            _ => None,
        }
    };
    let exact = o.mask.as_ref().is_none_or(|m| m.iter().all(|&b| b == 0xff));
    match (o.attr, int(&o.key)) {
        (opaque_id::CT_STATE, Some(v)) if o.key.len() == 4 => {
            let m = o.mask.as_deref().and_then(int).unwrap_or(u32::MAX as u64) as u32;
            if exact {
                format_flags(v as u32, ct_state_name)
            } else {
                format_flags_masked(v as u32, m, u32::MAX, ct_state_name)
            }
        }
        (opaque_id::CT_ZONE | opaque_id::CT_MARK, Some(v)) => {
            let mut s = hexc(v);
            if !exact {
                if let Some(m) = o.mask.as_deref().and_then(int) {
                    s.push_str(&format!("/{}", hexc(m)));
                }
            }
            s
        }
        _ => {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ");
            let mut s = hex(&o.key);
            if !exact {
                if let Some(m) = &o.mask {
                    s.push('/');
                    s.push_str(&hex(m));
                }
            }
            s
        }
    }
}

/// The printer behind every key format. `exact` = no mask (packet keys).
pub(crate) fn format_key(k: &FlowKey, m: &FlowKey, exact: bool, opaque: &[OpaqueAttr]) -> String {
    let mut out: Vec<String> = Vec::new();
    let present = |bit: u32| k.attrs & bit != 0;
    // Non-nested attributes print unless all their fields are wildcarded.
    let simple = |out: &mut Vec<String>, bit: u32, name: &str| {
        if present(bit) && (exact || !is_wild(m, bit)) {
            out.push(format!("{name}({})", attr_content(bit, k, m, exact)));
        }
    };
    simple(&mut out, attr::RECIRC_ID, "recirc_id");
    simple(&mut out, attr::DP_HASH, "dp_hash");
    simple(&mut out, attr::PRIORITY, "skb_priority");
    if present(attr::TUNNEL) {
        out.push(format!("tunnel({})", attr_content(attr::TUNNEL, k, m, exact)));
    }
    simple(&mut out, attr::IN_PORT, "in_port");
    simple(&mut out, attr::SKB_MARK, "skb_mark");
    for o in opaque
        .iter()
        .filter(|o| o.placement() == super::OpaquePlacement::AfterSkbMark)
    {
        if exact || o.shown_when_masked() {
            out.push(format!("{}({})", o.name(), opaque_content(o)));
        }
    }
    if present(attr::ETHERNET) {
        out.push(format!("eth({})", attr_content(attr::ETHERNET, k, m, exact)));
    }
    let inner = format_inner(k, m, exact, opaque);
    if present(attr::VLAN) {
        out.push(format!("eth_type({})", ethertype(k.vlan_tpid, m.vlan_tpid)));
        out.push(format!("vlan({})", format_vlan_tci(k.vlan_tci, m.vlan_tci, false)));
        if present(attr::ENCAP) {
            let mut enc: Vec<String> = Vec::new();
            if present(attr::CVLAN) {
                enc.push(format!("eth_type({})", ethertype(k.cvlan_tpid, m.cvlan_tpid)));
                enc.push(format!("vlan({})", format_vlan_tci(k.cvlan_tci, m.cvlan_tci, false)));
                if present(attr::CENCAP) {
                    enc.push(format!("encap({})", inner.join(",")));
                }
            } else {
                enc.extend(inner);
            }
            out.push(format!("encap({})", enc.join(",")));
        }
    } else {
        out.extend(inner);
    }
    for o in opaque.iter().filter(|o| o.placement() == super::OpaquePlacement::Last) {
        if exact || o.shown_when_masked() {
            out.push(format!("{}({})", o.name(), opaque_content(o)));
        }
    }
    if out.is_empty() {
        return "<empty>".into();
    }
    out.join(",")
}

/// eth_type and everything below it (the innermost encapsulation level).
/// Opaque attributes that the kernel emits among these (IPv6 extension
/// headers, after `ipv6`) print in the same place.
fn format_inner(k: &FlowKey, m: &FlowKey, exact: bool, opaque: &[OpaqueAttr]) -> Vec<String> {
    let mut out = Vec::new();
    let order: [(u32, &str); 12] = [
        (attr::ETHERTYPE, "eth_type"),
        (attr::IPV4, "ipv4"),
        (attr::IPV6, "ipv6"),
        (attr::ARP, "arp"),
        (attr::MPLS, "mpls"),
        (attr::TCP, "tcp"),
        (attr::TCP_FLAGS, "tcp_flags"),
        (attr::UDP, "udp"),
        (attr::SCTP, "sctp"),
        (attr::ICMP, "icmp"),
        (attr::ICMPV6, "icmpv6"),
        (attr::ND, "nd"),
    ];
    for (bit, name) in order {
        if k.attrs & bit != 0 && (exact || !is_wild(m, bit)) {
            out.push(format!("{name}({})", attr_content(bit, k, m, exact)));
        }
        if bit == attr::IPV6 {
            for o in opaque
                .iter()
                .filter(|o| o.placement() == super::OpaquePlacement::AfterL3)
            {
                if exact || o.shown_when_masked() {
                    out.push(format!("{}({})", o.name(), opaque_content(o)));
                }
            }
        }
    }
    out
}

/// Keys and matches print as their ODP text (tests, logs).
impl core::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FlowKey({})", format_exact_key(self))
    }
}

impl core::fmt::Debug for Match {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Match({})", format_match(self))
    }
}
