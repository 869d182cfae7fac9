//! Whom the agent trusts to be its server (`agents.md` §3): the system's
//! root certificates, a CA file (PEM), or one certificate pinned by its
//! SHA-256 fingerprint, as Octopus trusts a server by thumbprint. A pinned
//! certificate is checked by a [`ServerCertVerifier`] of our own; a wrong
//! one is refused naming both fingerprints.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// How the agent checks the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trust {
    /// The operating system's root certificates.
    #[default]
    System,
    /// The certificate authorities in a PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint.
    Fingerprint(Fingerprint),
}

/// A certificate's SHA-256 fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits, with or without `:` (or spaces) between
    /// pairs, and an optional `sha256:` prefix.
    pub fn parse(text: &str) -> Result<Fingerprint, TlsError> {
        let trimmed = text.trim();
        let without_prefix = trimmed
            .get(..7)
            .filter(|head| head.eq_ignore_ascii_case("sha256:"))
            .map_or(trimmed, |_| &trimmed[7..]);
        let digits: String = without_prefix
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| TlsError::Fingerprint {
            given: text.to_owned(),
        })?;
        Ok(Fingerprint(bytes))
    }

    /// The fingerprint of a DER certificate.
    pub fn of(certificate: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(certificate).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why the agent cannot set up its trust.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `--server-fingerprint` is not a SHA-256 fingerprint.
    #[error(
        "--server-fingerprint {given:?} is not a SHA-256 fingerprint: give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256 -in cert.pem prints it)"
    )]
    Fingerprint {
        /// What was given.
        given: String,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("--ca-file {path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No system root certificate could be loaded.
    #[error(
        "no root certificates found on this system ({0}): install the CA certificates package, or pass --ca-file or --server-fingerprint"
    )]
    NoSystemRoots(String),
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client configuration for `trust`.
pub fn client_config(trust: &Trust) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = match trust {
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none installed".to_owned(), ToString::to_string);
                return Err(TlsError::NoSystemRoots(why));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::CaFile(path) => builder
            .with_root_certificates(ca_file(path)?)
            .with_no_client_auth(),
        Trust::Fingerprint(expected) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                expected: *expected,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let error = |message: String| TlsError::CaFile {
        path: path.to_owned(),
        message,
    };
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(format!("cannot read it: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(format!("not a PEM certificate file: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(error(format!(
            "holds no usable CA certificate ({ignored} could not be parsed)"
        )));
    }
    Ok(roots)
}

/// Accepts exactly one certificate, by fingerprint (no chain, no name, no
/// dates: the operator vouched for this certificate), and checks that the
/// server holds its key.
#[derive(Debug)]
struct Pinned {
    expected: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of(end_entity.as_ref());
        if actual == self.expected {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the server's certificate has SHA-256 fingerprint {actual}, but --server-fingerprint is {}: check the fingerprint with the server's admin (a different certificate may mean someone is in between)",
            self.expected
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        let a = Fingerprint::parse(&plain).unwrap();
        assert_eq!(Fingerprint::parse(&colons).unwrap(), a);
        assert_eq!(Fingerprint::parse(&format!("sha256:{plain}")).unwrap(), a);
        assert_eq!(a.to_string(), vec!["AB"; 32].join(":"));
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(31)] {
            let error = Fingerprint::parse(bad).unwrap_err().to_string();
            assert!(error.contains("64 hex digits"), "{error}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client_config(&Trust::CaFile(path)).unwrap_err().to_string();
        assert!(error.contains("no usable CA certificate"), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = client_config(&Trust::CaFile(missing))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read it"), "{error}");
    }
}
