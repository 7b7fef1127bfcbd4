//! `bpf(2)`: maps (XSKMAP, hash, array), loading an XDP program (with the
//! verifier's log on refusal), running it on a test frame
//! (`BPF_PROG_TEST_RUN`) and attaching it through a bpf_link, which the
//! kernel removes when its last fd closes (at the latest when the process
//! exits). The programs themselves are bytes made by [`crate::bpf`].

use super::last_err;
use super::xsk::XskSocket;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const SYS_BPF: libc::c_long = 321;
const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_MAP_DELETE_ELEM: i32 = 3;
const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_TEST_RUN: i32 = 10;
const BPF_LINK_CREATE: i32 = 28;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// The kernel's limit on an object name, NUL included.
const BPF_OBJ_NAME_LEN: usize = 16;

/// Union bpf_attr, large enough for the commands used here.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> Self {
        BpfAttr([0; 128])
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn read_u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    fn name(&mut self, at: usize, name: &str) -> &mut Self {
        let n = name.len().min(BPF_OBJ_NAME_LEN - 1);
        self.0[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
}

/// bpf(2) for the commands that answer 0 or a count.
fn bpf_call(cmd: i32, attr: &mut BpfAttr, what: &str) -> io::Result<i64> {
    // SAFETY: bpf(2) reads and writes at most `size_of(BpfAttr)` bytes of
    // `attr`, which lives for the call; pointers inside it (instructions,
    // license, log, keys, values, packet buffers) point to buffers the
    // callers below keep alive across the call, with the sizes they pass.
    let r = unsafe { libc::syscall(SYS_BPF, cmd, attr.0.as_mut_ptr(), std::mem::size_of::<BpfAttr>() as u32) };
    if r < 0 {
        return Err(last_err(what));
    }
    Ok(r)
}

/// bpf(2) for the commands that answer a new file descriptor.
fn bpf_fd(cmd: i32, attr: &mut BpfAttr, what: &str) -> io::Result<OwnedFd> {
    let r = bpf_call(cmd, attr, what)?;
    // SAFETY: MAP_CREATE, PROG_LOAD and LINK_CREATE return a new fd that
    // nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A BPF map: an XSKMAP (queue -> AF_XDP socket) or a hash map of fixed
/// key and value sizes. Closed with its last fd (programs that use it hold
/// their own reference).
pub struct BpfMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl BpfMap {
    fn create(kind: u32, key_size: usize, value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        let mut a = BpfAttr::new();
        a.u32(0, kind)
            .u32(4, key_size as u32)
            .u32(8, value_size as u32)
            .u32(12, entries.max(1))
            .name(28, name);
        let fd = bpf_fd(BPF_MAP_CREATE, &mut a, &format!("bpf(BPF_MAP_CREATE {name})"))?;
        Ok(BpfMap {
            fd,
            key_size,
            value_size,
        })
    }

    /// An XSKMAP of `queues` slots.
    pub fn xsk(queues: u32) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_XSKMAP, 4, 4, queues, "odpx_xsks")
    }

    /// A hash map.
    pub fn hash(key_size: usize, value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_HASH, key_size, value_size, entries, name)
    }

    /// An array map (keys are `u32` indexes, every slot exists, zeroed).
    pub fn array(value_size: usize, entries: u32, name: &str) -> io::Result<BpfMap> {
        BpfMap::create(BPF_MAP_TYPE_ARRAY, 4, value_size, entries, name)
    }

    /// The fd programs refer to (an `ld_imm64` pseudo map fd).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn check_sizes(&self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bpf map entry of {}+{} bytes, the map holds {}+{}",
                    key.len(),
                    value.map_or(0, <[u8]>::len),
                    self.key_size,
                    self.value_size
                ),
            ));
        }
        Ok(())
    }

    /// Inserts or replaces an entry.
    pub fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.check_sizes(key, Some(value))?;
        let mut a = BpfAttr::new();
        a.u32(0, self.fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_ptr() as u64)
            .u64(24, 0);
        bpf_call(BPF_MAP_UPDATE_ELEM, &mut a, "bpf(BPF_MAP_UPDATE_ELEM)").map(drop)
    }

    /// Removes an entry; `Ok(false)` when there was none.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check_sizes(key, None)?;
        let mut a = BpfAttr::new();
        a.u32(0, self.fd() as u32).u64(8, key.as_ptr() as u64);
        match bpf_call(BPF_MAP_DELETE_ELEM, &mut a, "bpf(BPF_MAP_DELETE_ELEM)") {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Points an XSKMAP's slot `queue` at a socket.
    pub fn set_socket(&self, queue: u32, sock: &XskSocket) -> io::Result<()> {
        self.update(&queue.to_ne_bytes(), &(sock.fd() as u32).to_ne_bytes())
    }
}

/// Where an XDP program runs: in the driver, before an skb exists
/// (native), or on the skb in the core receive path (generic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    Native,
    Generic,
}

/// A loaded XDP program (its bytes from [`crate::bpf::Asm`]).
pub struct XdpProgram {
    fd: OwnedFd,
}

/// Where an XDP program is attached: the bpf_link, detached by the kernel
/// when its last fd closes (at the latest when the process exits).
pub struct XdpLink {
    _fd: OwnedFd,
    /// Driver (native) mode, or generic (skb) mode as a fallback.
    pub native: bool,
}

impl XdpProgram {
    /// Verifies and loads `code`; a refusal carries the verifier's log.
    pub fn load(code: &[u8], name: &str) -> io::Result<XdpProgram> {
        let license = b"GPL\0";
        let mut log = vec![0u8; 64 * 1024];
        let mut a = BpfAttr::new();
        a.u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, (code.len() / 8) as u32)
            .u64(8, code.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .name(48, name)
            .u32(68, BPF_XDP); // expected_attach_type
        let fd = bpf_fd(BPF_PROG_LOAD, &mut a, &format!("bpf(BPF_PROG_LOAD {name})")).map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let msg = String::from_utf8_lossy(&log[..end]).into_owned();
            io::Error::new(e.kind(), format!("{e}; verifier: {msg}"))
        })?;
        Ok(XdpProgram { fd })
    }

    /// Runs the program once on `frame` without attaching it
    /// (`BPF_PROG_TEST_RUN`) and answers its verdict.
    pub fn test_run(&self, frame: &[u8]) -> io::Result<u32> {
        let mut a = BpfAttr::new();
        a.u32(0, self.fd.as_raw_fd() as u32)
            .u32(8, frame.len() as u32)
            .u64(16, frame.as_ptr() as u64)
            .u32(32, 1); // repeat
        bpf_call(BPF_PROG_TEST_RUN, &mut a, "bpf(BPF_PROG_TEST_RUN)")?;
        Ok(a.read_u32(4))
    }

    /// Attaches to an interface, in driver mode when it has one.
    pub fn attach(&self, ifindex: u32) -> io::Result<XdpLink> {
        self.attach_in(ifindex, XdpAttach::Native)
    }

    /// Attaches to an interface in `mode` (native falls back to generic
    /// where the driver has no XDP).
    pub fn attach_in(&self, ifindex: u32, mode: XdpAttach) -> io::Result<XdpLink> {
        let link = |flags: u32| {
            let mut a = BpfAttr::new();
            a.u32(0, self.fd.as_raw_fd() as u32)
                .u32(4, ifindex)
                .u32(8, BPF_XDP)
                .u32(12, flags);
            bpf_fd(BPF_LINK_CREATE, &mut a, "bpf(BPF_LINK_CREATE xdp)")
        };
        if mode == XdpAttach::Generic {
            return Ok(XdpLink {
                _fd: link(XDP_FLAGS_SKB_MODE)?,
                native: false,
            });
        }
        match link(XDP_FLAGS_DRV_MODE) {
            Ok(fd) => Ok(XdpLink { _fd: fd, native: true }),
            Err(_) => Ok(XdpLink {
                _fd: link(XDP_FLAGS_SKB_MODE)?,
                native: false,
            }),
        }
    }
}
