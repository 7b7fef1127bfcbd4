//! OpenFlow over TLS (`ssl:` and `pssl:` targets), with rustls.
//!
//! # What
//! The keys and certificates of `[openflow.ssl]`, as Open vSwitch's
//! `set-ssl` takes them (`../shared/reference/ssl.md`): the switch's
//! private key and certificate, and the CA certificate that signs the
//! controllers'. Both ends must show a certificate: a controller odpx
//! dials must chain to the CA, and so must a client of a `pssl:` socket
//! (`ovs-ofctl --private-key --certificate --ca-cert`). A peer whose
//! certificate the CA did not sign is refused, and the handshake's error
//! says why ("invalid peer certificate: UnknownIssuer").
//!
//! As Open vSwitch, odpx does not match the controller's certificate to
//! the name or address it dialed: `ovs-pki` certificates name a switch
//! or controller by its common name, and have no subject alternative
//! name. The chain, the validity dates and the signatures are checked.
//!
//! # The stream, split
//! A connection's reader and writer are two threads ([`super::conn`]),
//! and one TLS session has one state. The session sits behind a lock that
//! is held to decrypt what the socket gave, or to encrypt what the writer
//! sends, never while waiting on the socket for bytes; the reader waits
//! on the socket with its read tick, as on a plain stream. Records go out
//! in the order they were made: a second lock orders the socket writes,
//! taken before the session's lock is let go.

use crate::config::SslSection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, Connection, DigitallySignedStruct, RootCertStore, ServerConfig};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The TLS settings of both directions, loaded once.
#[derive(Clone, Debug)]
pub struct Tls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

/// ring's provider: built from Rust and assembly with no build tool
/// beyond cc, where aws-lc wants CMake. Its lack, post-quantum key
/// exchange, is one no OpenFlow controller offers.
#[expect(
    deprecated,
    reason = "ring is the provider that builds on a fresh machine; see above"
)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Loads `[openflow.ssl]`'s files; an error names the file and what is wrong.
    pub fn load(ssl: &SslSection) -> Result<Tls, String> {
        let file = |p: &std::path::Path, e: &dyn std::fmt::Display| format!("openflow.ssl: {}: {e}", p.display());
        let certs = CertificateDer::pem_file_iter(&ssl.certificate)
            .map_err(|e| file(&ssl.certificate, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file(&ssl.certificate, &e))?;
        if certs.is_empty() {
            return Err(file(&ssl.certificate, &"no certificate in it"));
        }
        let key = PrivateKeyDer::from_pem_file(&ssl.private_key).map_err(|e| file(&ssl.private_key, &e))?;
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&ssl.ca_cert)
            .map_err(|e| file(&ssl.ca_cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file(&ssl.ca_cert, &e))?;
        for ca in cas {
            roots.add(ca).map_err(|e| file(&ssl.ca_cert, &e))?;
        }
        if roots.is_empty() {
            return Err(file(&ssl.ca_cert, &"no CA certificate in it"));
        }
        let roots = Arc::new(roots);
        let p = provider();
        let chain = WebPkiServerVerifier::builder_with_provider(roots.clone(), p.clone())
            .build()
            .map_err(|e| file(&ssl.ca_cert, &e))?;
        let client = ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("openflow.ssl: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| file(&ssl.private_key, &e))?;
        let clients = WebPkiClientVerifier::builder_with_provider(roots, p.clone())
            .build()
            .map_err(|e| file(&ssl.ca_cert, &e))?;
        let server = ServerConfig::builder_with_provider(p)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("openflow.ssl: {e}"))?
            .with_client_cert_verifier(clients)
            .with_single_cert(certs, key)
            .map_err(|e| file(&ssl.private_key, &e))?;
        Ok(Tls {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// TLS as the client on a connected socket to `host`, handshake done
    /// within `timeout`; reads then wait `read_tick` at most.
    pub fn connect(&self, sock: &TcpStream, host: &str, timeout: Duration, read_tick: Duration) -> io::Result<Halves> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        let conn = rustls::ClientConnection::new(self.client.clone(), name).map_err(io::Error::other)?;
        split(sock, conn.into(), timeout, read_tick)
    }

    /// TLS as the server on an accepted socket (see [`Tls::connect`]).
    pub fn accept(&self, sock: &TcpStream, timeout: Duration, read_tick: Duration) -> io::Result<Halves> {
        let conn = rustls::ServerConnection::new(self.server.clone()).map_err(io::Error::other)?;
        split(sock, conn.into(), timeout, read_tick)
    }
}

/// A controller's certificate must chain to the CA; its names are not
/// matched to the one dialed (see the module documentation).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: a name error means the
        // chain held.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One TLS session over one socket, shared by a reader and a writer.
struct Session {
    conn: Mutex<Connection>,
    /// Orders the socket writes (see the module documentation).
    send: Mutex<()>,
    sock: TcpStream,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Sends what the session has to send; takes the session's guard so
    /// that records leave in order.
    fn flush(&self, mut conn: MutexGuard<'_, Connection>) -> io::Result<()> {
        if !conn.wants_write() {
            return Ok(());
        }
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out)?;
        }
        let _send = lock(&self.send);
        drop(conn);
        (&self.sock).write_all(&out)
    }
}

/// A TLS session's two halves, for a reading and a writing thread.
pub struct Halves {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
}

/// Runs the handshake, then splits the session.
fn split(sock: &TcpStream, mut conn: Connection, timeout: Duration, read_tick: Duration) -> io::Result<Halves> {
    let _ = sock.set_nodelay(true);
    let deadline = Instant::now() + timeout;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let mut s = sock;
    while conn.is_handshaking() {
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"));
        }
        // An error here is the handshake's reason (a certificate the CA
        // did not sign, a closed socket, ...), for the logs.
        conn.complete_io(&mut s)?;
    }
    sock.set_read_timeout(Some(read_tick))?;
    sock.set_write_timeout(None)?;
    let session = Arc::new(Session {
        conn: Mutex::new(conn),
        send: Mutex::new(()),
        sock: sock.try_clone()?,
    });
    Ok(Halves {
        reader: Box::new(TlsReader(session.clone(), Vec::new())),
        writer: Box::new(TlsWriter(session)),
    })
}

/// The reading half: the session, and the bytes of the socket it has
/// not taken in yet.
struct TlsReader(Arc<Session>, Vec<u8>);

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let TlsReader(s, pending) = self;
        loop {
            match lock(&s.conn).reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // Nothing decrypted waits: more records from the socket (a
            // read tick's timeout goes up to the caller, as on a plain
            // stream).
            if pending.is_empty() {
                let mut raw = [0u8; 16 * 1024];
                let n = (&s.sock).read(&mut raw)?;
                if n == 0 {
                    return Ok(0);
                }
                pending.extend_from_slice(&raw[..n]);
            }
            let mut conn = lock(&s.conn);
            let mut fed = &pending[..];
            // Refused only while decrypted bytes wait to be read: they are,
            // on the next turn.
            if conn.read_tls(&mut fed).is_ok() {
                let used = pending.len() - fed.len();
                pending.drain(..used);
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            s.flush(conn)?;
        }
    }
}

struct TlsWriter(Arc<Session>);

impl Write for TlsWriter {
    /// Takes what the session's plaintext buffer has room for (rustls
    /// keeps at most 64 KiB) and sends it; `write_all` comes back for
    /// the rest.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = &self.0;
        let mut conn = lock(&s.conn);
        let n = conn.writer().write(buf)?;
        s.flush(conn)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
