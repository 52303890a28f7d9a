//! HTTPS for `assay server --tls-cert FILE --tls-key FILE`: a PEM certificate chain and
//! its private key, served with rustls (ring provider) through tokio-rustls.
//!
//! The TLS handshake happens off the accept loop: every accepted TCP connection gets its
//! own task with a [`HANDSHAKE_TIMEOUT`], so a client that connects and says nothing (or
//! says it slowly) holds up no one else. At most [`MAX_PENDING_HANDSHAKES`] handshakes are
//! in flight; beyond that, accepting waits. Finished handshakes are handed to axum through
//! a channel, so axum's serve loop (graceful shutdown, `ConnectInfo<SocketAddr>`) works as
//! it does on plain TCP.

use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The rustls server configuration [`load_server_config`] builds (named here so callers
/// need no rustls dependency of their own).
pub type TlsConfig = rustls::ServerConfig;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; more connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Why the certificate or key cannot be used. Each message names the flag (and file) to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // `error` is part of the message rather than a `source`: callers print one line.
    #[error("--tls-cert {path}: cannot read the file: {error}")]
    ReadCert {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "--tls-cert {path}: no PEM certificate in the file (expected a \
         -----BEGIN CERTIFICATE----- block: the server's certificate first, then any \
         intermediates)"
    )]
    NoCert { path: PathBuf },
    #[error("--tls-cert {path}: a certificate is not valid PEM: {reason}")]
    BadCert { path: PathBuf, reason: String },
    #[error("--tls-key {path}: cannot read the file: {error}")]
    ReadKey {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "--tls-key {path}: no PEM private key in the file (expected a -----BEGIN PRIVATE \
         KEY-----, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY block, unencrypted)"
    )]
    NoKey { path: PathBuf },
    #[error(
        "--tls-key {key} does not belong to the certificate in --tls-cert {cert}: pass the \
         private key the certificate was issued for"
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("--tls-cert {cert} / --tls-key {key}: cannot be used for TLS: {reason}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Reads and checks the certificate chain and key: both PEM, the key the certificate's.
/// Errors name the flag and file at fault.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|error| TlsError::ReadCert {
        path: cert.to_owned(),
        error,
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCert {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_owned(),
        });
    }
    let key_pem = std::fs::read(key).map_err(|error| TlsError::ReadKey {
        path: key.to_owned(),
        error,
    })?;
    // Any PEM problem (none found, an unreadable block) is "no usable key": never echo
    // what the file holds, it may be a secret in the wrong format.
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key.to_owned(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Unusable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    let mut config = builder
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            other => TlsError::Unusable {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: other.to_string(),
            },
        })?;
    // axum serves HTTP/1.1 (its http2 feature is off).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener yielding connections whose TLS handshake has completed.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` (handshakes run in their own tasks).
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self {
            accepted,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    /// Stops accepting (and closes the socket) when the server lets go of the listener.
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped; never reached
            // while it is in use. Waiting forever is the Listener contract for "no more".
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = pending.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = handshaken.closed() => return,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let handshaken = handshaken.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // Fails only when the server has stopped; the connection just closes.
                    let _ = handshaken.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// As axum does for plain TCP: per-connection errors are dropped; others (out of file
/// descriptors) are logged and accepting pauses briefly instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, made by the `openssl` CLI in `dir`.
    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }

    fn error(cert: &Path, key: &Path) -> String {
        load_server_config(cert, key).err().unwrap().to_string()
    }

    #[test]
    fn a_matching_pem_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let config = load_server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_files_name_their_flag() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let missing = dir.path().join("missing.pem");
        let e = error(&missing, &key);
        assert!(
            e.starts_with(&format!(
                "--tls-cert {}: cannot read the file: ",
                missing.display()
            )),
            "{e}"
        );
        let e = error(&cert, &missing);
        assert!(
            e.starts_with(&format!(
                "--tls-key {}: cannot read the file: ",
                missing.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn files_without_pem_name_their_flag_and_echo_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "a");
        let junk = dir.path().join("junk.txt");
        std::fs::write(&junk, "s3cr3t-not-pem\n").unwrap();
        let e = error(&junk, &key);
        assert_eq!(
            e,
            format!(
                "--tls-cert {}: no PEM certificate in the file (expected a -----BEGIN \
                 CERTIFICATE----- block: the server's certificate first, then any intermediates)",
                junk.display()
            )
        );
        let e = error(&cert, &junk);
        assert_eq!(
            e,
            format!(
                "--tls-key {}: no PEM private key in the file (expected a -----BEGIN PRIVATE \
                 KEY-----, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY block, unencrypted)",
                junk.display()
            )
        );
        assert!(!e.contains("s3cr3t"));
        // The key file given as the certificate (and the other way round).
        assert!(error(&key, &key).starts_with("--tls-cert "), "key as cert");
        assert!(error(&cert, &cert).starts_with("--tls-key "), "cert as key");
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(dir.path(), "a");
        let (_, other_key) = self_signed(dir.path(), "b");
        assert_eq!(
            error(&cert, &other_key),
            format!(
                "--tls-key {} does not belong to the certificate in --tls-cert {}: pass the \
                 private key the certificate was issued for",
                other_key.display(),
                cert.display()
            )
        );
    }
}
