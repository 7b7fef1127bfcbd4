//! Upcalls: packets the kernel datapath sends to userspace (a miss, or a
//! `userspace()` action), received on sockets of their own.
//!
//! [`UpcallListener`] owns one socket; [`UpcallListener::attach`] points a
//! datapath's misses at it (every CPU's pid with per-CPU dispatch, every
//! vport's otherwise), and pure-kernel mode's handler threads
//! ([`crate::kernel`]) each own one.
//!
//! # The socket
//! An upcall socket only receives, so it is a plain netlink socket made
//! with rustix (the client's, with its acks and extended acks, is neli's):
//! its receive buffer is forced to [`RECEIVE_BUFFER`] bytes past the
//! system's `rmem_max` (as Open vSwitch does for its handlers), because a
//! burst of new flows arrives faster than any translator answers and the
//! kernel drops, and counts as lost, what does not fit; and it can wait
//! with a timeout, so a handler thread notices when it is told to stop.

use crate::channel::{parse_reply, split_datagram, Reply, RECV_BUF};
use crate::client::{Datapath, DatapathSettings, OdpClient, VportId};
use crate::error::{DecodeError, OdpError};
use crate::keys::decode_packet_key;
use crate::uapi::{dp_feature, packet_attr, packet_cmd};
use neli::nl::NlPayload;
use odpx_classifier::FlowKey;
use rustix::fd::OwnedFd;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};
use std::time::Duration;

/// The receive buffer of an upcall socket.
pub const RECEIVE_BUFFER: usize = 16 << 20;

/// A packet the kernel sent up: a miss, or a `userspace()` action.
#[derive(Clone, Debug)]
pub struct Upcall {
    /// [`packet_cmd::MISS`] or [`packet_cmd::ACTION`].
    pub cmd: u8,
    pub dp_ifindex: i32,
    pub packet: Vec<u8>,
    pub key_raw: Vec<u8>,
    pub userdata: Option<Vec<u8>>,
    /// Original length before truncation, when truncated.
    pub orig_len: Option<u32>,
    pub mru: Option<u16>,
    pub hash: Option<u64>,
}

impl Upcall {
    pub fn is_miss(&self) -> bool {
        self.cmd == packet_cmd::MISS
    }

    /// The kernel's flow key of the packet.
    pub fn key(&self) -> Result<(FlowKey, Vec<odpx_classifier::odp::OpaqueAttr>), DecodeError> {
        decode_packet_key(&self.key_raw)
    }
}

pub(crate) fn parse_upcall(r: &Reply) -> Result<Upcall, OdpError> {
    const W: &str = "upcall";
    r.check_unique(W)?;
    let need = |ty| r.required(ty, W).map(|a| a.payload.to_vec());
    Ok(Upcall {
        cmd: r.cmd,
        dp_ifindex: r.dp_ifindex,
        packet: need(packet_attr::PACKET)?,
        key_raw: need(packet_attr::KEY)?,
        userdata: r.get(packet_attr::USERDATA).map(|a| a.payload.to_vec()),
        orig_len: r.get(packet_attr::LEN).map(|a| a.u32(W)).transpose()?,
        mru: r.get(packet_attr::MRU).map(|a| a.u16(W)).transpose()?,
        hash: r.get(packet_attr::HASH).map(|a| a.u64(W)).transpose()?,
    })
}

/// Receives upcalls on a socket of its own.
pub struct UpcallListener {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// The receive timeout set on the socket (`None`: not set yet).
    timeout: Option<Option<Duration>>,
    packet_family: u16,
    /// Upcalls that arrived and did not parse.
    pub malformed: u64,
}

fn io_err(e: rustix::io::Errno) -> OdpError {
    OdpError::Io(e.into())
}

impl UpcallListener {
    pub fn open(client: &OdpClient) -> Result<UpcallListener, OdpError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )
        .map_err(io_err)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0)).map_err(io_err)?;
        // Past rmem_max when allowed (root); the plain limit otherwise.
        if sockopt::set_socket_recv_buffer_size_force(&fd, RECEIVE_BUFFER).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&fd, RECEIVE_BUFFER);
        }
        Ok(UpcallListener {
            fd,
            buf: vec![0; RECV_BUF],
            timeout: None,
            packet_family: client.families().packet,
            malformed: 0,
        })
    }

    pub fn pid(&self) -> Result<u32, OdpError> {
        let addr = rustix::net::getsockname(&self.fd).map_err(io_err)?;
        SocketAddrNetlink::try_from(addr).map(|a| a.pid()).map_err(io_err)
    }

    /// Points a datapath's misses at this socket: every CPU's pid when the
    /// datapath dispatches per CPU, otherwise every vport's upcall pid.
    /// Returns a description of what was set.
    pub fn attach(&self, client: &mut OdpClient, dp: &Datapath) -> Result<String, OdpError> {
        let pid = self.pid()?;
        if dp.user_features & dp_feature::DISPATCH_UPCALL_PER_CPU != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            let ncpu = possible_cpus().unwrap_or(n);
            client.set_datapath(
                &dp.name,
                &DatapathSettings {
                    per_cpu_pids: Some(vec![pid; ncpu]),
                    ..Default::default()
                },
            )?;
            Ok(format!("per-CPU upcall dispatch, {ncpu} CPUs -> pid {pid}"))
        } else {
            let ports = client.list_vports(dp.dp_ifindex)?;
            for p in &ports {
                client.set_vport_upcall_pids(
                    &VportId::Number {
                        dp_ifindex: dp.dp_ifindex,
                        port_no: p.port_no,
                    },
                    &[pid],
                )?;
            }
            Ok(format!("per-vport upcall pids, {} vports -> pid {pid}", ports.len()))
        }
    }

    /// Blocks until at least one upcall arrives and returns what the
    /// datagram held: each upcall, or why it did not parse (a malformed
    /// upcall is reported, never silently dropped).
    pub fn recv(&mut self) -> Result<Vec<Result<Upcall, OdpError>>, OdpError> {
        loop {
            if let Some(out) = self.recv_timeout(None)? {
                return Ok(out);
            }
        }
    }

    /// [`UpcallListener::recv`], giving up after `timeout` (`Ok(None)`).
    pub fn recv_timeout(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<Result<Upcall, OdpError>>>, OdpError> {
        if self.timeout != Some(timeout) {
            sockopt::set_socket_timeout(&self.fd, Timeout::Recv, timeout).map_err(io_err)?;
            self.timeout = Some(timeout);
        }
        self.receive(RecvFlags::empty())
    }

    /// What has arrived already, without waiting (`Ok(None)`: nothing).
    pub fn try_recv(&mut self) -> Result<Option<Vec<Result<Upcall, OdpError>>>, OdpError> {
        self.receive(RecvFlags::DONTWAIT)
    }

    fn receive(&mut self, flags: RecvFlags) -> Result<Option<Vec<Result<Upcall, OdpError>>>, OdpError> {
        loop {
            let n = match rustix::net::recv(&self.fd, &mut self.buf[..RECV_BUF - 4], flags) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e)),
            };
            let mut out = Vec::new();
            for m in split_datagram(&mut self.buf, n)? {
                if *m.nl_type() != self.packet_family {
                    continue;
                }
                if let NlPayload::Payload(p) = m.nl_payload() {
                    let u = parse_reply(p).and_then(|r| parse_upcall(&r));
                    if u.is_err() {
                        self.malformed += 1;
                    }
                    out.push(u);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`, "0-N"):
/// the kernel indexes per-CPU upcall pids by CPU id.
pub fn possible_cpus() -> Option<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    let last = s.trim().split(',').next_back()?;
    let hi = last.split('-').next_back()?.parse::<usize>().ok()?;
    Some(hi + 1)
}
