//! Throwaway certificates for TLS tests (rcgen): a CA and leaf certificates it issues.

use std::net::SocketAddr;
use std::sync::Arc;

use inrush::target::tls::HandshakeCounts;
use inrush::target::{Knobs, TlsServer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that can issue certificates, and its certificate's PEM.
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `names` (DNS names or IP addresses) issued by `ca`: (cert, key).
pub fn leaf(
    ca: &Ca,
    names: &[&str],
) -> (
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
    String,
    String,
) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = CertificateParams::new(names).expect("leaf params");
    let key = KeyPair::generate().expect("leaf key");
    let cert = params
        .signed_by(&key, &ca.issuer)
        .expect("leaf certificate");
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), der, cert.pem(), key.serialize_pem())
}

/// Serves `app` on `listener` from `rt`, over TLS when `tls` is given (the built-in target's
/// acceptor: each handshake on its own task).
pub fn serve(
    rt: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<inrush::target::TlsServer>,
) {
    match tls {
        None => {
            rt.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        Some(tls) => {
            let counts = std::sync::Arc::new(inrush::target::tls::HandshakeCounts::default());
            let listener = rt
                .block_on(async { inrush::target::tls::listen(listener, &tls, counts) })
                .expect("TLS listener");
            rt.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
    }
}

/// The built-in messenger over TLS on 127.0.0.1:0, on a thread of its own for the test binary's
/// life; returns its address and its handshake counts.
pub fn serve_tls_with(server: TlsServer, knobs: Knobs) -> (SocketAddr, Arc<HandshakeCounts>) {
    super::on_own_thread(move |tx| async move {
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let target = inrush::target::start_with(listen, knobs, Some(&server))
            .await
            .expect("TLS target starts");
        let counts = target.tls.clone().expect("TLS counts");
        tx.send((target.addr, counts)).expect("send address");
        std::future::pending::<()>().await;
    })
}
