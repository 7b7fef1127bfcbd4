//! Parsing the `ovs-dpctl` key/mask syntax (see the parent module).

use super::format::{ct_state_name, tcp_flag_name, tun_flag_name};
use super::{canonicalize, opaque_id, opaque_name, OdpKey, OpaqueAttr};
use crate::key::{attr, frag, tun_flag, FlowKey, Match, VLAN_CFI};
use crate::text::{Cursor, PResult};

/// Parses a masked key (`in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,frag=no)`).
pub fn parse_key(s: &str) -> PResult<OdpKey> {
    let mut c = Cursor::new(s);
    c.skip_ws();
    let k = parse_key_at(&mut c)?;
    c.skip_ws();
    if !c.at_end() {
        return c.err(format!("unexpected text after the key: '{}'", c.rest()));
    }
    Ok(k)
}

/// Parses a key and returns it as an exact packet key (masks ignored), as
/// used to describe one packet (`odpx trace`).
pub fn parse_key_exact(s: &str) -> PResult<FlowKey> {
    let k = parse_key(s)?;
    Ok(k.matched.key)
}

/// Parses a key starting at the cursor, stopping before ` actions:`, `, packets:` or the end.
pub(crate) fn parse_key_at(c: &mut Cursor) -> PResult<OdpKey> {
    let mut b = Builder::default();
    // An empty key prints as `<empty>`, as in OVS.
    if c.eat("<empty>") {
        return b.finish(c);
    }
    parse_attr_list(c, &mut b, 0, true)?;
    b.finish(c)
}

#[derive(Default)]
struct Builder {
    key: FlowKey,
    mask: FlowKey,
    levels: [super::EncapLevel; 3],
    opaque: Vec<OpaqueAttr>,
}

impl Builder {
    fn set_present(&mut self, c: &Cursor, bit: u32, name: &str) -> PResult<()> {
        if self.key.attrs & bit != 0 {
            return c.err(format!("duplicate attribute {name}()"));
        }
        self.key.attrs |= bit;
        self.mask.attrs |= bit;
        if let Err(e) = super::check_layers(self.key.attrs) {
            return c.err(e);
        }
        Ok(())
    }

    fn finish(mut self, c: &Cursor) -> PResult<OdpKey> {
        // `eth_type(0/M)` at the top is the kernel's mask-only Ethertype (no
        // key attribute, a mask attribute), as OVS prints it. (Judged on the
        // masked value, so `eth_type(12/2)` and `eth_type(0/2)` are one flow
        // with one printed form.)
        let top = self.levels[0];
        if top.vlan.is_none() {
            if let Some((_, m)) = top.eth_type.filter(|(v, m)| v & m == 0) {
                if self.opaque.iter().any(|o| o.attr == super::opaque_id::ETHERTYPE) {
                    return c.err("duplicate attribute eth_type()");
                }
                self.opaque.push(OpaqueAttr::mask_only_ethertype(m));
                self.levels[0].eth_type = None;
            }
        }
        if let Err(e) = super::apply_encap_levels(&self.levels, &mut self.key, &mut self.mask) {
            return c.err(e.to_string());
        }
        let matched = canonicalize(&Match::new(self.key, self.mask));
        Ok(OdpKey {
            matched,
            opaque: self.opaque,
        })
    }
}

fn at_key_end(c: &Cursor) -> bool {
    let r = c.rest();
    r.is_empty() || r.starts_with(')') || r.starts_with(' ') || r.starts_with(", ") || r.starts_with("actions:")
}

fn parse_attr_list(c: &mut Cursor, b: &mut Builder, level: usize, top: bool) -> PResult<()> {
    if at_key_end(c) {
        return Ok(());
    }
    loop {
        parse_attr(c, b, level)?;
        // At top level ", " (comma space) introduces the statistics part.
        if top && c.rest().starts_with(", ") {
            return Ok(());
        }
        if !c.eat(",") {
            return Ok(());
        }
    }
}

/// One attribute `NAME(...)` of a key at encapsulation `level`.
fn parse_attr(c: &mut Cursor, b: &mut Builder, level: usize) -> PResult<()> {
    let start = c.pos;
    let name = c.ident();
    if name.is_empty() {
        return c.err("expected an attribute name");
    }
    c.expect("(")?;
    let known =
        parse_level_attr(c, b, level, name, start)? || parse_meta_attr(c, b, name)? || parse_header_attr(c, b, name)?;
    if !known {
        let id = opaque_number(name).map_or_else(|| c.err_at(start, format!("unknown attribute '{name}'")), Ok)?;
        if b.opaque.iter().any(|o| o.attr == id) {
            return c.err_at(start, format!("duplicate attribute {name}()"));
        }
        let o = opaque_value(c, id)?;
        b.opaque.push(o);
    }
    c.expect(")")
}

/// The attributes each encapsulation level has of its own: `encap`,
/// `eth_type`, `vlan`. False if `name` is none of them.
fn parse_level_attr(c: &mut Cursor, b: &mut Builder, level: usize, name: &str, start: usize) -> PResult<bool> {
    let lvl = &mut b.levels[level];
    match name {
        "encap" => {
            if lvl.encap {
                return c.err_at(start, "duplicate attribute encap()");
            }
            if level >= 2 {
                return c.err_at(start, "more than two VLAN encapsulations");
            }
            lvl.encap = true;
            parse_attr_list(c, b, level + 1, false)?;
        }
        "eth_type" => {
            if lvl.eth_type.is_some() {
                return c.err_at(start, "duplicate attribute eth_type()");
            }
            lvl.eth_type = Some(u16_masked(c)?);
        }
        "vlan" => {
            if lvl.vlan.is_some() {
                return c.err_at(start, "duplicate attribute vlan()");
            }
            lvl.vlan = Some(vlan_fields(c)?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Metadata and other single-value attributes. False if `name` is none.
fn parse_meta_attr(c: &mut Cursor, b: &mut Builder, name: &str) -> PResult<bool> {
    match name {
        "recirc_id" => {
            b.set_present(c, attr::RECIRC_ID, name)?;
            (b.key.recirc_id, b.mask.recirc_id) = u32_masked(c)?;
        }
        "dp_hash" => {
            b.set_present(c, attr::DP_HASH, name)?;
            (b.key.dp_hash, b.mask.dp_hash) = u32_masked(c)?;
        }
        "skb_priority" => {
            b.set_present(c, attr::PRIORITY, name)?;
            (b.key.skb_priority, b.mask.skb_priority) = u32_masked(c)?;
        }
        "skb_mark" => {
            b.set_present(c, attr::SKB_MARK, name)?;
            (b.key.skb_mark, b.mask.skb_mark) = u32_masked(c)?;
        }
        "in_port" => {
            b.set_present(c, attr::IN_PORT, name)?;
            (b.key.in_port, b.mask.in_port) = u32_masked(c)?;
        }
        "tunnel" => {
            b.set_present(c, attr::TUNNEL, name)?;
            tunnel_fields(c, &mut b.key, &mut b.mask)?;
        }
        "tcp_flags" => {
            b.set_present(c, attr::TCP_FLAGS, name)?;
            let (v, m) = flags_value(c, 0x0fff, tcp_flag_name)?;
            (b.key.tcp_flags, b.mask.tcp_flags) = (v as u16, m as u16);
        }
        "mpls" => {
            b.set_present(c, attr::MPLS, name)?;
            mpls_fields(c, &mut b.key, &mut b.mask)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Header attributes with named fields (`eth(src=..,dst=..)`, `ipv4(...)`,
/// ...). False if `name` is none of them.
fn parse_header_attr(c: &mut Cursor, b: &mut Builder, name: &str) -> PResult<bool> {
    match name {
        "eth" => {
            b.set_present(c, attr::ETHERNET, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["src", "dst"], |c, f| {
                match f {
                    "src" => (k.eth_src, m.eth_src) = c.mac_masked()?,
                    _ => (k.eth_dst, m.eth_dst) = c.mac_masked()?,
                }
                Ok(())
            })?;
        }
        "ipv4" => {
            b.set_present(c, attr::IPV4, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["src", "dst", "proto", "tos", "ttl", "frag"], |c, f| {
                match f {
                    "src" => (k.ipv4_src, m.ipv4_src) = c.ipv4_masked()?,
                    "dst" => (k.ipv4_dst, m.ipv4_dst) = c.ipv4_masked()?,
                    "proto" => (k.ip_proto, m.ip_proto) = u8_masked(c)?,
                    "tos" => (k.ip_tos, m.ip_tos) = u8_masked(c)?,
                    "ttl" => (k.ip_ttl, m.ip_ttl) = u8_masked(c)?,
                    _ => (k.ip_frag, m.ip_frag) = frag_value(c)?,
                }
                Ok(())
            })?;
        }
        "ipv6" => {
            b.set_present(c, attr::IPV6, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(
                c,
                name,
                &["src", "dst", "label", "proto", "tclass", "hlimit", "frag"],
                |c, f| {
                    match f {
                        "src" => (k.ipv6_src, m.ipv6_src) = c.ipv6_masked()?,
                        "dst" => (k.ipv6_dst, m.ipv6_dst) = c.ipv6_masked()?,
                        "label" => {
                            let (v, mk) = c.uint_masked(0x000f_ffff)?;
                            (k.ipv6_label, m.ipv6_label) = (v as u32, mk as u32);
                        }
                        "proto" => (k.ip_proto, m.ip_proto) = u8_masked(c)?,
                        "tclass" => (k.ip_tos, m.ip_tos) = u8_masked(c)?,
                        "hlimit" => (k.ip_ttl, m.ip_ttl) = u8_masked(c)?,
                        _ => (k.ip_frag, m.ip_frag) = frag_value(c)?,
                    }
                    Ok(())
                },
            )?;
        }
        "tcp" | "udp" | "sctp" => {
            let bit = match name {
                "tcp" => attr::TCP,
                "udp" => attr::UDP,
                _ => attr::SCTP,
            };
            b.set_present(c, bit, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["src", "dst"], |c, f| {
                match f {
                    "src" => (k.tp_src, m.tp_src) = u16_masked(c)?,
                    _ => (k.tp_dst, m.tp_dst) = u16_masked(c)?,
                }
                Ok(())
            })?;
        }
        "icmp" | "icmpv6" => {
            b.set_present(c, if name == "icmp" { attr::ICMP } else { attr::ICMPV6 }, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["type", "code"], |c, f| {
                let (v, mk) = u8_masked(c)?;
                match f {
                    "type" => (k.tp_src, m.tp_src) = (v as u16, mk as u16),
                    _ => (k.tp_dst, m.tp_dst) = (v as u16, mk as u16),
                }
                Ok(())
            })?;
        }
        "arp" => {
            b.set_present(c, attr::ARP, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["sip", "tip", "op", "sha", "tha"], |c, f| {
                match f {
                    "sip" => (k.ipv4_src, m.ipv4_src) = c.ipv4_masked()?,
                    "tip" => (k.ipv4_dst, m.ipv4_dst) = c.ipv4_masked()?,
                    "op" => (k.arp_op, m.arp_op) = u16_masked(c)?,
                    "sha" => (k.arp_sha, m.arp_sha) = c.mac_masked()?,
                    _ => (k.arp_tha, m.arp_tha) = c.mac_masked()?,
                }
                Ok(())
            })?;
        }
        "nd" => {
            b.set_present(c, attr::ND, name)?;
            let (k, m) = (&mut b.key, &mut b.mask);
            fields(c, name, &["target", "sll", "tll"], |c, f| {
                match f {
                    "target" => (k.nd_target, m.nd_target) = c.ipv6_masked()?,
                    "sll" => (k.arp_sha, m.arp_sha) = c.mac_masked()?,
                    _ => (k.arp_tha, m.arp_tha) = c.mac_masked()?,
                }
                Ok(())
            })?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn opaque_number(name: &str) -> Option<u16> {
    if let Some(n) = name.strip_prefix("key") {
        // Any attribute number odpx does not interpret (ODP's own numbers
        // for those are 22 and up, minus the named ones).
        return n
            .parse()
            .ok()
            .filter(|&id: &u16| opaque_name(id).is_none() && id >= opaque_id::CT_STATE);
    }
    (opaque_id::CT_STATE..=opaque_id::IPV6_EXTHDRS).find(|&id| opaque_name(id) == Some(name))
}

fn opaque_value(c: &mut Cursor, id: u16) -> PResult<OpaqueAttr> {
    match id {
        opaque_id::CT_STATE => {
            let (v, m) = flags_value(c, u32::MAX, ct_state_name)?;
            Ok(OpaqueAttr {
                attr: id,
                key: v.to_ne_bytes().to_vec(),
                mask: Some(m.to_ne_bytes().to_vec()),
            })
        }
        opaque_id::CT_ZONE => {
            let (v, m) = u16_masked(c)?;
            Ok(OpaqueAttr {
                attr: id,
                key: v.to_ne_bytes().to_vec(),
                mask: Some(m.to_ne_bytes().to_vec()),
            })
        }
        opaque_id::CT_MARK => {
            let (v, m) = u32_masked(c)?;
            Ok(OpaqueAttr {
                attr: id,
                key: v.to_ne_bytes().to_vec(),
                mask: Some(m.to_ne_bytes().to_vec()),
            })
        }
        _ => {
            let key = hex_bytes(c)?;
            let mask = if c.eat("/") {
                hex_bytes(c)?
            } else {
                vec![0xff; key.len()]
            };
            if mask.len() != key.len() {
                return c.err(format!("mask has {} bytes but the value has {}", mask.len(), key.len()));
            }
            Ok(OpaqueAttr {
                attr: id,
                key,
                mask: Some(mask),
            })
        }
    }
}

/// Space-separated (or contiguous) hex bytes, as OVS prints unknown attributes.
pub(crate) fn hex_bytes(c: &mut Cursor) -> PResult<Vec<u8>> {
    let start = c.pos;
    let tok = c.take_while(|ch| ch.is_ascii_hexdigit() || ch == ' ');
    let digits: String = tok.chars().filter(|ch| *ch != ' ').collect();
    if !digits.len().is_multiple_of(2) {
        return c.err_at(start, "hex bytes must have an even number of digits");
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_or_else(|_| c.err_at(start, "bad hex byte"), Ok))
        .collect()
}

/// Parses `name=value` fields up to (not including) `)`, in any order,
/// rejecting unknown and repeated names.
fn fields(
    c: &mut Cursor,
    attr_name: &str,
    names: &[&str],
    mut each: impl FnMut(&mut Cursor, &str) -> PResult<()>,
) -> PResult<()> {
    let mut seen: u32 = 0;
    if c.peek() == Some(')') {
        return Ok(());
    }
    loop {
        let start = c.pos;
        let f = c.ident();
        let Some(idx) = names.iter().position(|n| *n == f) else {
            return c.err_at(
                start,
                format!("{attr_name}() has no field '{f}' (fields: {})", names.join(", ")),
            );
        };
        if seen & (1 << idx) != 0 {
            return c.err_at(start, format!("field '{f}' given twice in {attr_name}()"));
        }
        seen |= 1 << idx;
        // `name=value`, or `name(...)` (tunnel flags): the closure sees '('.
        if c.peek() != Some('(') {
            c.expect("=")?;
        }
        each(c, f)?;
        if !c.eat(",") {
            return Ok(());
        }
    }
}

fn u32_masked(c: &mut Cursor) -> PResult<(u32, u32)> {
    let (v, m) = c.uint_masked(u32::MAX as u64)?;
    Ok((v as u32, m as u32))
}

fn u16_masked(c: &mut Cursor) -> PResult<(u16, u16)> {
    let (v, m) = c.uint_masked(u16::MAX as u64)?;
    Ok((v as u16, m as u16))
}

fn u8_masked(c: &mut Cursor) -> PResult<(u8, u8)> {
    let (v, m) = c.uint_masked(u8::MAX as u64)?;
    Ok((v as u8, m as u8))
}

fn frag_value(c: &mut Cursor) -> PResult<(u8, u8)> {
    let start = c.pos;
    let v = match c.ident() {
        "no" => frag::NO,
        "first" => frag::FIRST,
        "later" => frag::LATER,
        other => return c.err_at(start, format!("frag must be no, first or later, not '{other}'")),
    };
    Ok((v, 0xff))
}

/// Flags in either OVS notation: `a|b` / `0` (exact), or `+a-b` (masked),
/// or a number with an optional mask. Stops before `)`.
fn flags_value(c: &mut Cursor, allowed: u32, name: impl Fn(u32) -> Option<&'static str>) -> PResult<(u32, u32)> {
    let lookup = |word: &str| {
        (0..32)
            .map(|i| 1u32 << i)
            .find(|&b| allowed & b != 0 && name(b) == Some(word))
    };
    let start = c.pos;
    if c.rest().starts_with('+') || c.rest().starts_with('-') {
        let (mut v, mut m) = (0, 0);
        while let Some(sign) = c.peek().filter(|ch| *ch == '+' || *ch == '-') {
            c.pos += 1;
            let wpos = c.pos;
            let word = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '[' || ch == ']');
            let Some(bit) = lookup(word) else {
                return c.err_at(wpos, format!("unknown flag '{word}'"));
            };
            m |= bit;
            if sign == '+' {
                v |= bit;
            }
        }
        return Ok((v, m));
    }
    if c.rest().starts_with(|ch: char| ch.is_ascii_digit()) {
        let (v, m) = c.uint_masked(allowed as u64)?;
        return Ok((v as u32, m as u32));
    }
    let mut v = 0;
    loop {
        let wpos = c.pos;
        let word = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '[' || ch == ']');
        // Bits without a name print as hex inside the list (`est|0x8600`).
        if let Some(bits) = word.strip_prefix("0x").and_then(|h| u32::from_str_radix(h, 16).ok()) {
            if bits & !allowed != 0 {
                return c.err_at(wpos, format!("flag bits {word} are outside {allowed:#x}"));
            }
            v |= bits;
            if !c.eat("|") {
                return Ok((v, allowed));
            }
            continue;
        }
        let Some(bit) = lookup(word) else {
            return c.err_at(
                if word.is_empty() { start } else { wpos },
                format!("unknown flag '{word}'"),
            );
        };
        v |= bit;
        if !c.eat("|") {
            return Ok((v, allowed));
        }
    }
}

fn vlan_fields(c: &mut Cursor) -> PResult<(u16, u16)> {
    // As OVS: the tag is present (CFI set, and matched) unless cfi=0 is given.
    let (mut tci, mut mask) = (VLAN_CFI, VLAN_CFI);
    fields(c, "vlan", &["vid", "pcp", "cfi"], |c, f| {
        let (shift, width): (u32, u16) = match f {
            "vid" => (0, 0x0fff),
            "pcp" => (13, 0x7),
            _ => (12, 0x1),
        };
        let (v, m) = c.uint_masked(width as u64)?;
        tci = (tci & !(width << shift)) | ((v as u16) << shift);
        mask = (mask & !(width << shift)) | ((m as u16) << shift);
        Ok(())
    })?;
    Ok((tci, mask))
}

fn mpls_fields(c: &mut Cursor, k: &mut FlowKey, m: &mut FlowKey) -> PResult<()> {
    let mut depth = 0usize;
    let mut seen = 0u8;
    if c.peek() == Some(')') {
        return c.err("mpls() needs at least one label");
    }
    loop {
        let start = c.pos;
        let f = c.ident();
        let (bit, shift, width): (u8, u32, u32) = match f {
            "label" => (1, 12, 0xfffff),
            "tc" => (2, 9, 7),
            "ttl" => (4, 0, 0xff),
            "bos" => (8, 8, 1),
            _ => {
                return c.err_at(
                    start,
                    format!("mpls() has no field '{f}' (fields: label, tc, ttl, bos)"),
                )
            }
        };
        if seen & bit != 0 || depth == 0 {
            if depth == 3 {
                return c.err_at(start, "more than 3 MPLS labels");
            }
            depth += 1;
            seen = 0;
        }
        seen |= bit;
        c.expect("=")?;
        let i = depth - 1;
        let v = c.uint(width as u64)? as u32;
        // OVS prints the tc and bos masks without 0x; both parse the same.
        let mk = if c.eat("/") {
            let mstart = c.pos;
            let tok = c.take_while(|ch| ch.is_ascii_alphanumeric());
            let parsed = crate::text::parse_uint(tok).or_else(|| u64::from_str_radix(tok, 16).ok());
            match parsed {
                Some(x) if x <= width as u64 => x as u32,
                _ => return c.err_at(mstart, format!("bad mask '{tok}'")),
            }
        } else {
            width
        };
        k.mpls_lse[i] = (k.mpls_lse[i] & !(width << shift)) | (v << shift);
        m.mpls_lse[i] = (m.mpls_lse[i] & !(width << shift)) | (mk << shift);
        if !c.eat(",") {
            break;
        }
    }
    k.mpls_depth = depth as u8;
    m.mpls_depth = 0xff;
    Ok(())
}

fn tunnel_fields(c: &mut Cursor, k: &mut FlowKey, m: &mut FlowKey) -> PResult<()> {
    let names = [
        "tun_id", "src", "dst", "ipv6_src", "ipv6_dst", "tos", "ttl", "tp_src", "tp_dst", "flags",
    ];
    fields(c, "tunnel", &names, |c, f| {
        match f {
            "flags" => {
                c.expect("(")?;
                let (v, mk) = flags_value(c, tun_flag::ALL as u32, tun_flag_name)?;
                c.expect(")")?;
                // Flags given without '+'/'-' are exact; `0/0` means not matched.
                k.tun_flags = (k.tun_flags & tun_flag::KEY) | v as u16;
                m.tun_flags = (m.tun_flags & tun_flag::KEY) | mk as u16;
            }
            "tun_id" => {
                let (v, mk) = c.uint_masked(u64::MAX)?;
                k.tun_id = v;
                m.tun_id = mk;
                // A tunnel ID implies the key flag, as in OVS.
                k.tun_flags |= tun_flag::KEY;
                m.tun_flags |= tun_flag::KEY;
            }
            "src" => (k.tun_ipv4_src, m.tun_ipv4_src) = c.ipv4_masked()?,
            "dst" => (k.tun_ipv4_dst, m.tun_ipv4_dst) = c.ipv4_masked()?,
            "ipv6_src" => (k.tun_ipv6_src, m.tun_ipv6_src) = c.ipv6_masked()?,
            "ipv6_dst" => (k.tun_ipv6_dst, m.tun_ipv6_dst) = c.ipv6_masked()?,
            "tos" => (k.tun_tos, m.tun_tos) = u8_masked(c)?,
            "ttl" => (k.tun_ttl, m.tun_ttl) = u8_masked(c)?,
            "tp_src" => (k.tun_tp_src, m.tun_tp_src) = u16_masked(c)?,
            _ => (k.tun_tp_dst, m.tun_tp_dst) = u16_masked(c)?,
        }
        Ok(())
    })
}
