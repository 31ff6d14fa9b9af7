//! TLS for a user's connections (`https://` and `wss://` targets), with rustls on the ring
//! provider.
//!
//! One [`Tls`] per run holds what every user shares: the trusted roots (the system's, or the
//! scenario's `ca`), the verifier, the client certificate. Each user gets its own [`UserTls`]
//! with its own session store, because a user is a device: its reconnects resume its own TLS
//! session, while a newly arrived user does a full handshake as a new phone would. (One store
//! shared by the whole run would hand a new user another user's ticket, and a signup surge would
//! measure resumed handshakes the real surge never gets.)

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::clients::OpError;
use crate::metrics::ErrorClass;

/// The scenario's `[target]` TLS settings, as plain data (paths already resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of the CA certificates to trust instead of the system's.
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate chain and its private key (PEM), for mutual TLS.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Accept any server certificate (the handshake's signatures are still checked).
    pub insecure: bool,
}

/// The run's TLS settings, shared by every user.
pub struct Tls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    /// The name as errors say it.
    server: Arc<str>,
    /// Whether server certificates are verified (`insecure = true` turns it off).
    pub verifies: bool,
    /// Whether users present a client certificate.
    pub client_certificate: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("verifies", &self.verifies)
            .field("client_certificate", &self.client_certificate)
            .finish()
    }
}

/// ring's suites, AES-128-GCM first as phones' TLS stacks (BoringSSL, Apple's) offer them, so a
/// server that follows the client's order picks what it would pick for a phone (and the cheaper
/// cipher: fewer AES rounds per record, on both sides).
fn provider() -> Arc<CryptoProvider> {
    use rustls::CipherSuite as C;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            C::TLS13_AES_128_GCM_SHA256
                | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

impl Tls {
    /// Builds the run's TLS settings for a server named `host` (a DNS name or an IP address;
    /// it is sent as SNI and checked against the certificate).
    pub fn new(options: &TlsOptions, host: &str) -> Result<Tls, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))?;
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let builder = if options.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            let roots = match &options.ca {
                Some(path) => read_roots(path)?,
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &options.client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
                .map_err(|e| {
                    format!(
                        "client certificate {} with key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?,
            None => builder.with_no_client_auth(),
        };
        // HTTP/1.1 for requests and for the WebSocket upgrade alike.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            server: server_name.to_str().into(),
            server_name,
            verifies: !options.insecure,
            client_certificate: options.client_cert.is_some(),
        })
    }

    /// A new user's TLS state: the run's settings with a session store of its own.
    pub fn for_user(&self) -> std::rc::Rc<UserTls> {
        let mut config = (*self.config).clone();
        // One server name per user; rustls keeps a few TLS 1.3 tickets per name.
        config.resumption = Resumption::in_memory_sessions(1);
        std::rc::Rc::new(UserTls {
            config: Arc::new(config),
            server_name: self.server_name.clone(),
            server: self.server.clone(),
            done: Rc::default(),
        })
    }
}

/// One completed TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// From the TCP connection being up to the TLS session being established.
    pub took: Duration,
    /// The server accepted the user's earlier session (no certificate exchange).
    pub resumed: bool,
}

/// One user's TLS state, shared by its HTTP connection and its WebSocket: the session store
/// (so a reconnect resumes) and the handshakes done and not yet recorded.
pub struct UserTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    server: Arc<str>,
    /// Handshakes since the runtime last took them (usually none or one); shared with the
    /// connections whose handshake is not confirmed yet ([`Unconfirmed`]).
    done: Rc<RefCell<Vec<Handshake>>>,
}

impl UserTls {
    /// Runs the TLS handshake over a connected TCP stream and times it; it is noted once the
    /// server is seen to accept it ([`Unconfirmed`]).
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Unconfirmed), OpError> {
        let started = Instant::now();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| {
                // rustls's own text names the certificate problem (unknown issuer, expired,
                // not valid for this name).
                OpError::new(
                    ErrorClass::Connect,
                    format!(
                        "tls handshake with {}: {e}",
                        self.server_name.to_str().as_ref()
                    ),
                )
            })?;
        let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        let handshake = Handshake {
            took: started.elapsed(),
            resumed,
        };
        let unconfirmed = Unconfirmed {
            handshake,
            to: self.done.clone(),
            server: self.server.clone(),
            rejected: false,
        };
        Ok((stream, unconfirmed))
    }

    /// The handshakes done since the last call, oldest first.
    pub fn take_handshakes(&self, mut each: impl FnMut(Handshake)) {
        let mut done = self.done.borrow_mut();
        for h in done.drain(..) {
            each(h);
        }
    }
}

/// A handshake the client finished and the server has not yet been seen to accept. In TLS 1.3
/// the client is done first, and the server judges the client's part (its certificate) after
/// it: a rejection (`CertificateRequired`, `BadCertificate`, `UnknownCA`, …) arrives as a fatal
/// alert with the connection's first read. So a handshake is noted when that first read brings
/// anything else (bytes, the stream's end, an error that is not TLS's) or when the connection
/// is let go before any read (dropped); an alert first makes it the handshake's failure
/// instead, which is not a sample (README, "TLS").
pub(crate) struct Unconfirmed {
    handshake: Handshake,
    /// Where it is noted.
    to: Rc<RefCell<Vec<Handshake>>>,
    server: Arc<str>,
    rejected: bool,
}

impl Unconfirmed {
    /// Notes it with `user`'s handshakes instead (a pooled connection opened for the user's
    /// request: the user waited for it).
    pub(crate) fn note_in(&mut self, user: &UserTls) {
        self.to = user.done.clone();
    }

    /// The server rejected the handshake: `e`, the first read's TLS error, becomes the
    /// handshake's failure (found by [`rejection`]); the handshake is not noted.
    pub(crate) fn reject(mut self, e: &std::io::Error) -> std::io::Error {
        self.rejected = true;
        let why = format!("tls handshake with {}: {e}", self.server);
        std::io::Error::new(e.kind(), Rejected(why))
    }
}

impl Drop for Unconfirmed {
    fn drop(&mut self) {
        if !self.rejected {
            self.to.borrow_mut().push(self.handshake);
        }
    }
}

/// A handshake the server rejected after the client finished it, inside the I/O error of the
/// read (or write) that found out.
#[derive(Debug)]
struct Rejected(String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejected {}

/// Whether an I/O error is TLS's own (an alert the server sent, a record it broke), not the
/// transport's.
pub(crate) fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// The failed handshake an I/O error carries, when the server rejected it after the client
/// finished it: a `connect` error, as every failed handshake is.
pub(crate) fn rejection(e: &std::io::Error) -> Option<OpError> {
    let rejected = e.get_ref()?.downcast_ref::<Rejected>()?;
    Some(OpError::new(ErrorClass::Connect, rejected.0.clone()))
}

/// Reads a PEM file of CA certificates into a root store.
pub fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_chain(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

/// Reads the certificates of a PEM file (at least one).
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = crate::input_file::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1, PEM).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = crate::input_file::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no private key: {e}", path.display()))
}

/// Whether the key at `key` belongs to the first certificate at `cert` (and rustls can sign
/// with it): checked at load, so that `validate` finds a mismatched pair, not the run.
pub fn check_client_pair(cert: &Path, key: &Path) -> Result<(), String> {
    let chain = read_chain(cert)?;
    let private = read_key(key)?;
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, private)
        .map(drop)
        .map_err(|e| {
            format!(
                "the key {} does not go with the certificate {} ({e})",
                key.display(),
                cert.display()
            )
        })
}

/// The system's trusted roots (as `SSL_CERT_FILE` / `SSL_CERT_DIR` or the OS store say).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or(String::new(), |e| format!(" ({e})"));
        return Err(format!(
            "no trusted root certificates found on this system{why}; install the system's CA \
             bundle (ca-certificates), set SSL_CERT_FILE, or give `[target] ca = \"FILE\"`"
        ));
    }
    Ok(roots)
}

/// `insecure = true`: any certificate is accepted, but the handshake's signatures are still
/// verified, so the client does the same work as with verification on (its CPU cost stays
/// comparable) and a broken handshake still fails.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_problems_are_named() {
        let insecure = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        let e = Tls::new(&insecure, "bad host!").expect_err("not a server name");
        assert!(e.contains("not a valid TLS server name"), "{e}");
        // IP addresses (bracketed IPv6 too) are names a certificate can carry.
        assert!(Tls::new(&insecure, "127.0.0.1").is_ok_and(|t| !t.verifies));
        assert!(Tls::new(&insecure, "[::1]").is_ok());
        let missing = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let e = Tls::new(&missing, "localhost").expect_err("no CA file");
        assert!(e.contains("cannot read /nonexistent/ca.pem"), "{e}");
    }
}
