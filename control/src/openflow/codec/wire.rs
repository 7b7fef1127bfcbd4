//! A bounds-checked reader and a writer for OpenFlow's big-endian
//! structures.
//!
//! Every read returns the error its [`Reader`] was made with when the
//! bytes run out, so a structure nested in a message reports the spec's
//! length error for its own kind (a short action is `OFPBAC_BAD_LEN`, a
//! short match `OFPBMC_BAD_LEN`). Nothing here panics on any input.

use super::error::OfError;

/// Reads big-endian fields from a byte slice; never past its end.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    short: OfError,
}

impl<'a> Reader<'a> {
    /// A reader of `buf` whose reads past the end fail with `short`.
    pub fn new(buf: &'a [u8], short: OfError) -> Self {
        Reader { buf, pos: 0, short }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The error for running out of bytes.
    pub fn short(&self) -> OfError {
        self.short
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfError> {
        if self.remaining() < n {
            return Err(self.short);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OfError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Skips `n` bytes (padding).
    pub fn skip(&mut self, n: usize) -> Result<(), OfError> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, OfError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, OfError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, OfError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, OfError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// The next 2 bytes without consuming them.
    pub fn peek_u16(&self) -> Result<u16, OfError> {
        self.clone().u16()
    }

    /// The next `n` bytes as a reader of their own, failing with `short`.
    pub fn sub(&mut self, n: usize, short: OfError) -> Result<Reader<'a>, OfError> {
        Ok(Reader::new(self.bytes(n)?, short))
    }

    /// A NUL-terminated string in a field of `n` bytes (as
    /// `ofp_port.name`): at most `n - 1` bytes of text, invalid UTF-8
    /// replaced, so that it writes back into the same field unchanged.
    pub fn string(&mut self, n: usize) -> Result<String, OfError> {
        let raw = self.bytes(n)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let mut s = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut cut = s.len().min(n.saturating_sub(1));
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        Ok(s)
    }
}

/// Appends big-endian fields to a byte vector.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    /// `n` zero bytes.
    fn put_zeros(&mut self, n: usize);
    /// Pads with zeros up to a multiple of 8 bytes from `start`.
    fn pad8_from(&mut self, start: usize);
    /// A string in a NUL-padded field of `n` bytes (cut to `n - 1`).
    fn put_string(&mut self, s: &str, n: usize);
    /// Writes `len` as a u16 at `at` (a length field filled in last).
    fn patch_u16(&mut self, at: usize, len: usize);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn pad8_from(&mut self, start: usize) {
        let used = self.len() - start;
        self.put_zeros(used.next_multiple_of(8) - used);
    }
    fn put_string(&mut self, s: &str, n: usize) {
        let mut cut = s.len().min(n.saturating_sub(1));
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.extend_from_slice(&s.as_bytes()[..cut]);
        self.put_zeros(n - cut);
    }
    fn patch_u16(&mut self, at: usize, len: usize) {
        let v = u16::try_from(len).unwrap_or(u16::MAX);
        self[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::{BadRequest, OfError};
    use super::*;

    const SHORT: OfError = OfError::BadRequest(BadRequest::BadLen);

    #[test]
    fn reads_stop_at_the_end_with_the_readers_error() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 9], SHORT);
        assert_eq!(r.u16(), Ok(1));
        assert_eq!(r.u32(), Ok(2));
        assert_eq!(r.u16(), Err(SHORT));
        assert_eq!(r.u8(), Ok(9));
        assert!(r.is_empty());
    }

    #[test]
    fn strings_are_nul_padded_and_cut() {
        let mut v = Vec::new();
        v.put_string("br0", 16);
        assert_eq!(v.len(), 16);
        assert_eq!(Reader::new(&v, SHORT).string(16).unwrap(), "br0");
        let mut v = Vec::new();
        v.put_string("abcdefghijklmnopqrst", 16);
        assert_eq!(Reader::new(&v, SHORT).string(16).unwrap(), "abcdefghijklmno");
    }
}
