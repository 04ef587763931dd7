//! The optional TLS mode. Microsoft's own SDKs refuse a plain `http://`
//! authority (msal, azure-identity) and kiota sends a bearer token only over
//! https, so to run them against the emulator it can serve https with a
//! throwaway CA made at start: the caller trusts [`TlsIdentity::ca_pem`]
//! (e.g. `SSL_CERT_FILE`) and nothing else changes.
//!
//! The CA signs a separate server certificate (rather than one self-signed
//! leaf) because strict verifiers (OpenSSL's `X509_STRICT`, webpki) refuse a
//! CA certificate used as a server's and want the usual key identifiers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::EmulatorError;

/// A client that connects and never finishes its handshake is dropped after
/// this long, so it cannot hold a slot forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The server's certificate chain and key, and the CA a client must trust.
pub(crate) struct TlsIdentity {
    pub ca_pem: String,
    acceptor: TlsAcceptor,
}

fn cert_error(e: rcgen::Error) -> EmulatorError {
    EmulatorError::Config(format!("emulator TLS certificate: {e}"))
}

impl TlsIdentity {
    /// A fresh CA and a server certificate for `127.0.0.1`, `::1` and
    /// `localhost`, the only names a loopback emulator answers to.
    pub(crate) fn generate() -> Result<Self, EmulatorError> {
        let ca_key = KeyPair::generate().map_err(cert_error)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(DnType::CommonName, "entra-daemon emulator CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(cert_error)?;

        let names = ["127.0.0.1", "::1", "localhost"].map(String::from);
        let mut leaf = CertificateParams::new(names.to_vec()).map_err(cert_error)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "entra-daemon emulator");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_key = KeyPair::generate().map_err(cert_error)?;
        let issuer = Issuer::new(ca, ca_key);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(cert_error)?;

        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let tls_error = |e: tokio_rustls::rustls::Error| {
            EmulatorError::Config(format!("emulator TLS configuration: {e}"))
        };
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(tls_error)?;
        // The server speaks HTTP/1.1 only; saying so lets an HTTP/2-capable
        // client (httpx with h2) settle on 1.1 during the handshake.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Connections that finished their TLS handshake. Handshakes run in their
/// own tasks, so one slow client never holds up the accept loop.
pub(crate) struct TlsIncoming {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept_task: JoinHandle<()>,
}

impl TlsIncoming {
    pub(crate) fn start(listener: TcpListener, identity: &TlsIdentity) -> Self {
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = identity.acceptor.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!("emulator accept error: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("emulator TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("emulator TLS handshake timed out"),
                    }
                });
            }
        });
        Self { ready, accept_task }
    }

    /// The next handshaken connection; pending forever once the accept loop
    /// is gone (the server is shutting down).
    pub(crate) async fn next(&mut self) -> (TlsStream<TcpStream>, SocketAddr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}
