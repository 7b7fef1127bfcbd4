//! Netlink attributes inside ODP payloads: a writer for nested attribute
//! lists and a zero-copy reader that checks lengths and duplicates.
//!
//! neli frames the messages (netlink header, generic-netlink header,
//! `ovs_header`, top-level attributes; see [`crate::client`]). The *content*
//! of the nested attributes (flow keys, masks, actions, tunnel keys, vport
//! options) is ODP-specific and lives in this small codec, so that keys and
//! actions can be encoded straight into one buffer, and decoded without
//! copying, with byte-exact control over what the kernel sees.
//!
//! Layout (RFC 3549): `u16 len` (header + payload, unpadded), `u16 type`
//! (top two bits: nested, network byte order), payload, zero padding to a
//! multiple of 4.

use crate::error::DecodeError;

pub const HDRLEN: usize = 4;
const F_NESTED: u16 = 1 << 15;
const F_NET_BYTEORDER: u16 = 1 << 14;
const TYPE_MASK: u16 = !(F_NESTED | F_NET_BYTEORDER);

pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends attributes to a byte buffer.
#[derive(Default, Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn put(&mut self, ty: u16, payload: &[u8]) {
        let len = HDRLEN + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    pub fn put_u8(&mut self, ty: u16, v: u8) {
        self.put(ty, &[v]);
    }

    pub fn put_u16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_ne_bytes());
    }

    pub fn put_be16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_be_bytes());
    }

    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_ne_bytes());
    }

    pub fn put_be32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_be_bytes());
    }

    pub fn put_be64(&mut self, ty: u16, v: u64) {
        self.put(ty, &v.to_be_bytes());
    }

    pub fn put_flag(&mut self, ty: u16) {
        self.put(ty, &[]);
    }

    pub fn put_str(&mut self, ty: u16, s: &str) {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.put(ty, &b);
    }

    /// Starts a nested attribute; close it with [`Writer::end_nested`].
    pub fn begin_nested(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        at
    }

    /// Starts a nested attribute carrying NLA_F_NESTED, which strictly
    /// validated families (ethtool, newer ones) require. ODP does not use
    /// the flag, and neither do the kernel's own ODP replies.
    pub fn begin_nested_flagged(&mut self, ty: u16) -> usize {
        self.begin_nested(ty | F_NESTED)
    }

    pub fn end_nested(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends already-encoded attributes (e.g. a kernel-provided key).
    pub fn put_raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
        self.pad();
    }

    fn pad(&mut self) {
        let n = align4(self.buf.len()) - self.buf.len();
        self.buf.extend_from_slice(&[0u8; 3][..n]);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// One attribute: its type (flag bits removed) and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ty: u16,
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The payload as a fixed-size array, or a length error naming `what`.
    pub fn array<const N: usize>(&self, what: &'static str) -> Result<[u8; N], DecodeError> {
        self.payload.try_into().map_err(|_| DecodeError::Length {
            what,
            attr: self.ty,
            len: self.payload.len(),
            expected: N,
        })
    }

    pub fn u8(&self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_ne_bytes(self.array(what)?))
    }

    pub fn be16(&self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_ne_bytes(self.array(what)?))
    }

    pub fn be32(&self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_ne_bytes(self.array(what)?))
    }

    pub fn be64(&self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A NUL-terminated string (the terminator is optional).
    pub fn str(&self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.payload.split(|&c| c == 0).next().unwrap_or(&[]);
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid {
            what,
            detail: format!("attribute {} is not UTF-8", self.ty),
        })
    }
}

/// Iterates the attributes of a buffer; an item is an error when an
/// attribute's header is cut off or its length runs past the buffer.
pub fn iter<'a>(buf: &'a [u8], what: &'static str) -> impl Iterator<Item = Result<Attr<'a>, DecodeError>> + 'a {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let rest = &buf[pos..];
        if rest.len() < HDRLEN {
            failed = true;
            return Some(Err(DecodeError::Truncated { what, offset: pos }));
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & TYPE_MASK;
        if len < HDRLEN || len > rest.len() {
            failed = true;
            return Some(Err(DecodeError::Truncated { what, offset: pos }));
        }
        pos += align4(len);
        Some(Ok(Attr {
            ty,
            payload: &rest[HDRLEN..len],
        }))
    })
}

/// All attributes of a buffer, in order, rejecting duplicates (ODP's rule).
pub fn unique<'a>(buf: &'a [u8], what: &'static str) -> Result<Vec<Attr<'a>>, DecodeError> {
    let mut seen = 0u128;
    let mut out = Vec::new();
    for a in iter(buf, what) {
        let a = a?;
        if a.ty < 128 {
            let bit = 1u128 << a.ty;
            if seen & bit != 0 {
                return Err(DecodeError::Duplicate { what, attr: a.ty });
            }
            seen |= bit;
        } else if out.iter().any(|o: &Attr| o.ty == a.ty) {
            return Err(DecodeError::Duplicate { what, attr: a.ty });
        }
        out.push(a);
    }
    Ok(out)
}

/// Finds one attribute by type in an already-checked list.
pub fn find<'a, 'b>(attrs: &'b [Attr<'a>], ty: u16) -> Option<&'b Attr<'a>> {
    attrs.iter().find(|a| a.ty == ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pads_and_nests() {
        let mut w = Writer::new();
        w.put_u8(1, 7);
        let at = w.begin_nested(2);
        w.put_u32(3, 0x01020304);
        w.end_nested(at);
        let b = w.into_bytes();
        assert_eq!(b.len(), 8 + 4 + 8);
        let top: Vec<_> = iter(&b, "t").collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].u8("t").unwrap(), 7);
        let inner: Vec<_> = iter(top[1].payload, "t").collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].u32("t").unwrap(), 0x01020304);
    }

    #[test]
    fn reader_rejects_truncation_and_duplicates() {
        let mut w = Writer::new();
        w.put_u32(5, 1);
        let mut b = w.into_bytes();
        assert!(matches!(
            iter(&b[..6], "k").next(),
            Some(Err(DecodeError::Truncated { .. }))
        ));
        b.extend_from_slice(&b.clone());
        assert_eq!(
            unique(&b, "k").unwrap_err(),
            DecodeError::Duplicate { what: "k", attr: 5 }
        );
        let a = iter(&b, "k").next().unwrap().unwrap();
        assert!(matches!(
            a.u16("k"),
            Err(DecodeError::Length {
                expected: 2,
                len: 4,
                ..
            })
        ));
    }
}
