//! The built-in messenger behind TLS (`inrush serve --tls-cert F --tls-key F`), so a TLS run can
//! be rehearsed locally, and inrush's own tests have an HTTPS and WSS server.
//!
//! Handshakes run on tasks of their own, not in the accept loop: one slow client must not hold
//! up the others (a surge is many handshakes at once). The server counts full and resumed
//! handshakes, which is how a test sees that clients resume their sessions.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{HandshakeKind, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake after this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server terminates TLS with.
pub struct TlsServer {
    config: Arc<ServerConfig>,
}

/// Handshakes the server completed, by kind.
#[derive(Debug, Default)]
pub struct HandshakeCounts {
    full: AtomicU64,
    resumed: AtomicU64,
}

impl HandshakeCounts {
    /// Full handshakes (certificate sent and verified).
    pub fn full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }

    /// Handshakes that resumed an earlier session.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsServer {
    /// A server certificate chain and its key, both PEM files; with `client_ca`, clients must
    /// present a certificate issued by one of its CAs (mutual TLS).
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<TlsServer, String> {
        let chain = certs(cert)?;
        let key_pem = crate::input_file::read(key)
            .map_err(|e| format!("cannot read {}: {e}", key.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("{}: no private key: {e}", key.display()))?;
        let client_roots = match client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for c in certs(path)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("{}: not a CA certificate: {e}", path.display()))?;
                }
                Some(roots)
            }
            None => None,
        };
        TlsServer::new(chain, key, client_roots)
    }

    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_roots: Option<RootCertStore>,
    ) -> Result<TlsServer, String> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let builder = match client_roots {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("client CA: {e}"))?,
            ),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("server certificate: {e}"))?;
        // Stateless session tickets, as most servers issue them, so clients can resume.
        config.ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS tickets: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsServer {
            config: Arc::new(config),
        })
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::input_file::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Accepted connections whose handshake is done, for axum to serve.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

/// Accepts on `tcp` and runs each handshake on its own task; the accept loop ends when the
/// returned listener is dropped (the server stopped).
pub fn listen(
    tcp: TcpListener,
    tls: &TlsServer,
    counts: Arc<HandshakeCounts>,
) -> std::io::Result<TlsListener> {
    let addr = tcp.local_addr()?;
    let (tx, ready) = mpsc::channel(1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = tcp.accept() => match accepted {
                    Ok(a) => a,
                    // Out of descriptors and the like: wait a little, as axum does.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx, counts) = (acceptor.clone(), tx.clone(), counts.clone());
            tokio::spawn(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                else {
                    return;
                };
                let counter = match tls.get_ref().1.handshake_kind() {
                    Some(HandshakeKind::Resumed) => &counts.resumed,
                    _ => &counts.full,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send((tls, peer)).await;
            });
        }
    });
    Ok(TlsListener { ready, addr })
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
