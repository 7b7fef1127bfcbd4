//! Classic pcap files (the libpcap format, microsecond or nanosecond
//! timestamps, either byte order). pcapng is refused with a clear error.

use std::fmt;

/// One captured packet.
pub struct Packet<'a> {
    pub ts_sec: u32,
    pub ts_frac: u32,
    /// Length on the wire (may exceed `data.len()` when the capture was cut).
    pub orig_len: u32,
    pub data: &'a [u8],
}

#[derive(Debug)]
pub enum PcapError {
    TooShort,
    PcapNg,
    BadMagic(u32),
    LinkType(u32),
    Truncated { packet: usize },
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::TooShort => write!(f, "not a pcap file: shorter than the 24-byte header"),
            PcapError::PcapNg => write!(
                f,
                "this is a pcapng file; odpx reads classic pcap (convert with: editcap -F pcap IN OUT)"
            ),
            PcapError::BadMagic(m) => write!(f, "not a pcap file: magic number {m:#010x}"),
            PcapError::LinkType(l) => write!(f, "link type {l} is not Ethernet (1)"),
            PcapError::Truncated { packet } => write!(f, "packet {packet}: record runs past the end of the file"),
        }
    }
}

/// Parses a whole pcap file held in memory.
pub fn read(buf: &[u8]) -> Result<Vec<Packet<'_>>, PcapError> {
    if buf.len() >= 4 && buf[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return Err(PcapError::PcapNg);
    }
    if buf.len() < 24 {
        return Err(PcapError::TooShort);
    }
    let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => return Err(PcapError::BadMagic(m)),
    };
    let u32_at = |at: usize| {
        let b = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link = u32_at(20);
    if link != 1 {
        return Err(PcapError::LinkType(link));
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off < buf.len() {
        if off + 16 > buf.len() {
            return Err(PcapError::Truncated { packet: out.len() + 1 });
        }
        let caplen = u32_at(off + 8) as usize;
        let start = off + 16;
        if start + caplen > buf.len() {
            return Err(PcapError::Truncated { packet: out.len() + 1 });
        }
        out.push(Packet {
            ts_sec: u32_at(off),
            ts_frac: u32_at(off + 4),
            orig_len: u32_at(off + 12),
            data: &buf[start..start + caplen],
        });
        off = start + caplen;
    }
    Ok(out)
}

/// Writes a classic pcap header (microseconds, Ethernet, little-endian).
pub fn write_header(out: &mut Vec<u8>, snaplen: u32) {
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
}

/// Appends one packet record.
pub fn write_packet(out: &mut Vec<u8>, ts_sec: u32, ts_usec: u32, data: &[u8]) {
    out.extend_from_slice(&ts_sec.to_le_bytes());
    out.extend_from_slice(&ts_usec.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut f = Vec::new();
        write_header(&mut f, 65535);
        write_packet(&mut f, 1, 2, &[1, 2, 3]);
        write_packet(&mut f, 3, 4, &[]);
        let p = read(&f).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].data, &[1, 2, 3]);
        f.truncate(f.len() - 1);
        assert!(matches!(read(&f), Err(PcapError::Truncated { packet: 2 })));
        assert!(matches!(read(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]), Err(PcapError::PcapNg)));
    }
}

/// Writes a classic pcap stream (microsecond timestamps, Ethernet), e.g.
/// to a pipe into `tcpdump -r -`.
pub struct Writer<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> Writer<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        out.flush()?;
        Ok(Writer { out })
    }

    /// Writes one packet (flushed, so a reader on a pipe sees it at once).
    pub fn packet(&mut self, ts: std::time::SystemTime, data: &[u8], orig_len: u32) -> std::io::Result<()> {
        let d = ts.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&(d.as_secs() as u32).to_le_bytes());
        h.extend_from_slice(&d.subsec_micros().to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod writer_tests {
    #[test]
    fn written_stream_reads_back() {
        let mut buf = Vec::new();
        {
            let mut w = super::Writer::new(&mut buf).unwrap();
            w.packet(std::time::UNIX_EPOCH, &[1, 2, 3], 0).unwrap();
            w.packet(std::time::UNIX_EPOCH, &[4; 60], 100).unwrap();
        }
        let p = super::read(&buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].data, &[1, 2, 3]);
        assert_eq!(p[1].orig_len, 100);
    }
}
