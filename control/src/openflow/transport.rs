//! Where OpenFlow connections come from: dialing and listening on the
//! targets of the configuration ([`Target`]), and the byte streams they
//! give, split into a read half and a write half so that one thread
//! reads while another writes.
//!
//! Passive Unix sockets get mode 0600, like the control socket. `ssl:`
//! and `pssl:` are TCP with TLS ([`super::tls`]); a passive socket's TLS
//! handshake runs on the connection's own thread, not the accepting one.

use super::tls::{Halves, Tls};
pub use crate::config::openflow::{Target, OPENFLOW_PORT};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// How long a read waits before it gives its thread a turn (liveness
/// probes, a stopping agent).
pub const READ_TICK: Duration = Duration::from_millis(200);

/// A socket, as far as closing it goes.
#[derive(Debug)]
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Closes a connection from another thread (its reader then sees the
/// end of the stream).
#[derive(Clone, Debug)]
pub struct Closer(std::sync::Arc<Socket>);

impl Closer {
    pub fn close(&self) {
        let _ = match &*self.0 {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// A connected byte stream, split.
pub struct Stream {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    pub closer: Closer,
    /// Who is on the other side, for the logs.
    pub peer: String,
}

impl Stream {
    fn tcp(s: TcpStream) -> io::Result<Stream> {
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(READ_TICK))?;
        let peer = s
            .peer_addr()
            .map_or_else(|_| "tcp peer".to_string(), |a| format!("tcp:{a}"));
        Ok(Stream {
            reader: Box::new(s.try_clone()?),
            writer: Box::new(s.try_clone()?),
            closer: Closer(std::sync::Arc::new(Socket::Tcp(s))),
            peer,
        })
    }

    /// TLS over `s` (`scheme`: ssl or pssl, for the logs).
    fn tls(s: TcpStream, halves: Halves, scheme: &str) -> io::Result<Stream> {
        let peer = s
            .peer_addr()
            .map_or_else(|_| format!("{scheme} peer"), |a| format!("{scheme}:{a}"));
        Ok(Stream {
            reader: halves.reader,
            writer: halves.writer,
            closer: Closer(std::sync::Arc::new(Socket::Tcp(s))),
            peer,
        })
    }

    fn unix(s: UnixStream, peer: String) -> io::Result<Stream> {
        s.set_read_timeout(Some(READ_TICK))?;
        Ok(Stream {
            reader: Box::new(s.try_clone()?),
            writer: Box::new(s.try_clone()?),
            closer: Closer(std::sync::Arc::new(Socket::Unix(s))),
            peer,
        })
    }
}

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP connection to `host`'s first address that answers.
fn tcp_connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to an active target within `timeout` (`tls`: for `ssl:`).
pub fn dial(t: &Target, timeout: Duration, tls: Option<&Tls>) -> io::Result<Stream> {
    match t {
        Target::Tcp { host, port } => Stream::tcp(tcp_connect(host, *port, timeout)?),
        Target::Unix(p) => Stream::unix(UnixStream::connect(p)?, format!("unix:{}", p.display())),
        Target::Ssl { host, port } => {
            let tls = tls.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "ssl: needs [openflow.ssl]"))?;
            let s = tcp_connect(host, *port, timeout)?;
            let halves = tls.connect(&s, host, HANDSHAKE_TIMEOUT, READ_TICK)?;
            Stream::tls(s, halves, "ssl")
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{t} is a passive target"),
        )),
    }
}

/// A passive target's listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Ssl(TcpListener, Tls),
    Unix(UnixListener, PathBuf),
}

/// An accepted connection, before its TLS handshake if it has one.
pub enum Accepted {
    Ready(Stream),
    Tls(TcpStream, Tls),
}

impl Accepted {
    /// The connection's stream, once its handshake (if any) is done.
    pub fn stream(self) -> io::Result<Stream> {
        match self {
            Accepted::Ready(s) => Ok(s),
            Accepted::Tls(sock, tls) => {
                let halves = tls.accept(&sock, HANDSHAKE_TIMEOUT, READ_TICK)?;
                Stream::tls(sock, halves, "pssl")
            }
        }
    }
}

impl Listener {
    /// Listens on a passive target (`tls`: for `pssl:`).
    pub fn bind(t: &Target, tls: Option<&Tls>) -> Result<Listener, String> {
        let tcp = |port: u16, ip: std::net::IpAddr| TcpListener::bind((ip, port)).map_err(|e| format!("{t}: {e}"));
        match t {
            Target::PTcp { port, ip } => tcp(*port, *ip).map(Listener::Tcp),
            Target::PUnix(p) => crate::ctl::bind(p).map(|l| Listener::Unix(l, p.clone())),
            Target::PSsl { port, ip } => {
                let tls = tls.ok_or_else(|| format!("{t}: needs [openflow.ssl]"))?;
                tcp(*port, *ip).map(|l| Listener::Ssl(l, tls.clone()))
            }
            _ => Err(format!("{t} is an active target")),
        }
    }

    /// The next connection.
    pub fn accept(&self) -> io::Result<Accepted> {
        Ok(match self {
            Listener::Tcp(l) => Accepted::Ready(Stream::tcp(l.accept()?.0)?),
            Listener::Ssl(l, tls) => Accepted::Tls(l.accept()?.0, tls.clone()),
            Listener::Unix(l, p) => Accepted::Ready(Stream::unix(l.accept()?.0, format!("punix:{}", p.display()))?),
        })
    }

    /// The TCP port it listens on (`ptcp:0` and `pssl:0` pick one).
    pub fn local_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) | Listener::Ssl(l, _) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// Makes a blocked `accept` return (the agent is stopping).
    pub fn wake(&self) {
        match self {
            Listener::Tcp(l) | Listener::Ssl(l, _) => {
                if let Ok(a) = l.local_addr() {
                    let _ = TcpStream::connect_timeout(&a, Duration::from_millis(100));
                }
            }
            Listener::Unix(_, p) => {
                let _ = UnixStream::connect(p);
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}
