//! Where OpenFlow connections come from: dialing and listening on the
//! targets of the configuration ([`Target`]), and the byte streams they
//! give, split into a read half and a write half so that one thread
//! reads while another writes.
//!
//! Passive Unix sockets get mode 0600, like the control socket.

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

/// Connects to an active target within `timeout`.
pub fn dial(t: &Target, timeout: Duration) -> io::Result<Stream> {
    match t {
        Target::Tcp { host, port } => {
            let addrs: Vec<SocketAddr> = (host.as_str(), *port).to_socket_addrs()?.collect();
            let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(s) => return Stream::tcp(s),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        Target::Unix(p) => Stream::unix(UnixStream::connect(p)?, format!("unix:{}", p.display())),
        Target::Ssl { .. } => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "ssl: TLS connections are not supported yet",
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{t} is a passive target"),
        )),
    }
}

/// A passive target's listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Listens on a passive target.
    pub fn bind(t: &Target) -> Result<Listener, String> {
        match t {
            Target::PTcp { port, ip } => TcpListener::bind((*ip, *port))
                .map(Listener::Tcp)
                .map_err(|e| format!("{t}: {e}")),
            Target::PUnix(p) => crate::ctl::bind(p).map(|l| Listener::Unix(l, p.clone())),
            Target::PSsl { .. } => Err(format!("{t}: TLS connections are not supported yet")),
            _ => Err(format!("{t} is an active target")),
        }
    }

    /// The next connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => Stream::tcp(l.accept()?.0),
            Listener::Unix(l, p) => Stream::unix(l.accept()?.0, format!("punix:{}", p.display())),
        }
    }

    /// The TCP port it listens on (`ptcp:0` picks one).
    pub fn local_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// Makes a blocked `accept` return (the agent is stopping).
    pub fn wake(&self) {
        match self {
            Listener::Tcp(l) => {
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
