//! TLS termination for `tako serve` (`tls_cert`, `tls_key`), for agents and
//! browsers that reach the server without a TLS proxy in front of it.
//!
//! [`ServerTls::load`] reads the PEM files once at start-up and says what is
//! wrong with them (which file, what, what to do) instead of failing at the
//! first handshake; [`ServerTls::fingerprint`] is the SHA-256 of the
//! server's certificate, the value an agent pins with
//! `--server-fingerprint`. [`TlsListener`] is an `axum::serve` listener:
//! handshakes run in their own tasks (bounded in number and time, so a slow
//! or silent client holds up nobody), and a plain-HTTP request on the HTTPS
//! port gets a short `400` saying to use `https://` rather than a dropped
//! connection. Everything after the handshake is the same server as without
//! TLS (routes, limits, timeouts).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, InconsistentKeys};
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// Handshakes in progress at once; a connection past them is closed.
pub const MAX_HANDSHAKES: usize = 256;
/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{setting} {}: cannot read the file ({source}): {hint}", path.display())]
    Read {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// A file holds no usable certificate or key.
    #[error("{setting} {}: {problem}", path.display())]
    Invalid {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The key is not the certificate's.
    #[error(
        "tls_key {} is not the private key of the certificate in tls_cert {}: give the key the certificate was issued for (or the certificate issued for this key)",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// A loaded certificate and key, ready to serve.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    fingerprint: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| {
        let hint = match source.kind() {
            io::ErrorKind::NotFound => "check the path (a relative one is taken from the directory tako serve starts in)",
            io::ErrorKind::PermissionDenied => {
                "let the user tako serve runs as read it (the key may be mode 0600, owned by that user)"
            }
            _ => "check the path and the file",
        };
        TlsError::Read {
            setting,
            path: path.to_owned(),
            source,
            hint,
        }
    })
}

impl ServerTls {
    /// Reads and checks the certificate chain and its key.
    pub fn load(files: &TlsFiles) -> Result<ServerTls, TlsError> {
        let invalid = |setting: &'static str, path: &Path, problem: String| TlsError::Invalid {
            setting,
            path: path.to_owned(),
            problem,
        };
        let cert_pem = read("tls_cert", &files.cert)?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                invalid(
                    "tls_cert",
                    &files.cert,
                    format!("not a valid PEM file ({e}): give the certificate chain in PEM form"),
                )
            })?;
        let Some(leaf) = certs.first() else {
            return Err(invalid(
                "tls_cert",
                &files.cert,
                "no certificate in it: expected a PEM certificate chain \
                 (-----BEGIN CERTIFICATE-----), the server's own certificate first"
                    .to_owned(),
            ));
        };
        let fingerprint = fingerprint(leaf.as_ref());

        let key_pem = read("tls_key", &files.key)?;
        // The key file's content never reaches a message.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            let problem = match e {
                pem::Error::NoItemsFound => "no private key in it: expected a PEM private key \
                     (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
                    .to_owned(),
                _ => "not a valid PEM file: give the certificate's private key in PEM form"
                    .to_owned(),
            };
            invalid("tls_key", &files.key, problem)
        })?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                invalid(
                    "tls_cert",
                    &files.cert,
                    format!("TLS cannot be set up: {e}"),
                )
            })?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                    TlsError::Mismatch {
                        cert: files.cert.clone(),
                        key: files.key.clone(),
                    }
                }
                other => invalid(
                    "tls_key",
                    &files.key,
                    format!(
                        "the key cannot be used with this certificate ({other}): \
                         use an RSA, ECDSA (P-256, P-384) or Ed25519 key"
                    ),
                ),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint of the server's certificate, as
    /// `openssl x509 -fingerprint -sha256` prints it (`AB:CD:…`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The SHA-256 of a certificate (DER), uppercase hex pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex = hex::encode_upper(digest);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// An `axum::serve` listener that hands over connections once their TLS
/// handshake is done.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; the accepting task ends when the listener
    /// is dropped.
    pub fn new(tcp: TcpListener, tls: &ServerTls) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (sender, incoming) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(Arc::clone(&tls.config));
        tokio::spawn(accept_loop(tcp, acceptor, sender));
        Ok(TlsListener { incoming, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accepting task is gone (it only ends with the listener).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

type Connections = mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>;

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, connections: Connections) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = connections.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of
                // spinning (as axum's own listener does).
                if !matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "connection closed: {MAX_HANDSHAKES} TLS handshakes in progress");
            continue;
        };
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                Ok(Ok(Some(tls))) => {
                    drop(slot);
                    let _ = connections.send((tls, peer)).await;
                }
                Ok(Ok(None)) => {
                    tracing::debug!(%peer, "plain HTTP on the HTTPS port: answered 400");
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The handshake; `None` when the client spoke plain HTTP (and was told).
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    if read == 1 && first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        answer_plain_http(stream).await;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// Tells a plain-HTTP client to use HTTPS, then closes without a reset.
async fn answer_plain_http(mut stream: TcpStream) {
    const BODY: &str = "This port speaks HTTPS: use https:// instead of http://\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut request = [0u8; 8192];
    let _ = stream.read(&mut request).await;
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
        // Read what the client still sends until it closes, so the close
        // is a clean FIN rather than a reset that could lose the answer.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while matches!(stream.read(&mut request).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, cert).unwrap();
        std::fs::write(&files.key, key).unwrap();
        files
    }

    fn certificate() -> (String, String) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (cert.pem(), signing_key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_load_with_the_certificates_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = certificate();
        let tls = ServerTls::load(&files(dir.path(), &cert, &key)).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let hex = hex::encode_upper(Sha256::digest(der.as_ref()));
        assert_eq!(tls.fingerprint().replace(':', ""), hex);
        assert_eq!(tls.fingerprint().len(), 32 * 3 - 1);
    }

    #[test]
    fn missing_files_name_the_setting_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = ServerTls::load(&TlsFiles {
            cert: dir.path().join("nowhere.pem"),
            key: dir.path().join("key.pem"),
        })
        .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("tls_cert "), "{text}");
        assert!(text.contains("nowhere.pem: cannot read the file"), "{text}");
        assert!(text.contains("check the path"), "{text}");

        let (cert, _) = certificate();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, cert).unwrap();
        let text = ServerTls::load(&TlsFiles {
            cert: cert_file,
            key: dir.path().join("gone.pem"),
        })
        .unwrap_err()
        .to_string();
        assert!(text.starts_with("tls_key "), "{text}");
        assert!(text.contains("gone.pem"), "{text}");
    }

    #[test]
    fn swapped_or_garbage_files_say_what_is_missing_without_showing_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = certificate();
        // Swapped: the key file where the certificate belongs.
        let text = ServerTls::load(&files(dir.path(), &key, &cert))
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("tls_cert "), "{text}");
        assert!(text.contains("no certificate in it"), "{text}");

        let text = ServerTls::load(&files(dir.path(), &cert, "not a key at all\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("tls_key"), "{text}");
        assert!(text.contains("no private key in it"), "{text}");

        let broken = key.replace("-----END PRIVATE KEY-----", "");
        let text = ServerTls::load(&files(dir.path(), &cert, &broken))
            .unwrap_err()
            .to_string();
        assert!(text.contains("tls_key"), "{text}");
        let body: String = key.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!text.contains(&body), "the key's content leaked: {text}");
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = certificate();
        let (_, other_key) = certificate();
        let error = ServerTls::load(&files(dir.path(), &cert, &other_key)).unwrap_err();
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("is not the private key of the certificate in tls_cert"),
            "{error}"
        );
    }
}
