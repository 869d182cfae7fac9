//! `tako serve` terminating TLS itself (`tls_cert`, `tls_key`): the real
//! binary with a certificate issued by a test CA (rcgen) answers over HTTPS
//! to a client trusting that CA, tells a plain-HTTP client to use https://,
//! prints the certificate's fingerprint, and refuses bad settings at
//! start-up with a clear message.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};
use tako_test_support::http::request;
use tako_test_support::server::{DataDir, TakoServer};

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

/// A CA and a server certificate it issued for `localhost` and 127.0.0.1.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
    }
}

/// Writes the certificate, the key and a tako.toml naming them beside the
/// data directory; returns the tako.toml.
fn configure(data: &DataDir, cert: &str, key: &str, extra: &str) -> PathBuf {
    let dir = data.path.parent().unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    let config = dir.join("tako.toml");
    std::fs::write(
        &config,
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n{extra}",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ),
    )
    .unwrap();
    config
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn serve_answers_over_https_with_its_certificate_and_tells_plain_http_to_use_https() {
    let pki = pki();
    let data = DataDir::new();
    let config = configure(&data, &pki.cert_pem, &pki.key_pem, "");
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--config", config.to_str().unwrap()],
        &[],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let expected = fingerprint(&pki.cert_der);
    assert!(
        server.startup_output.contains(&expected),
        "the fingerprint {expected} is printed: {}",
        server.startup_output
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let health = runtime.block_on(async {
        let answer = trusting
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    });
    assert_eq!(health.0, 200, "{}", health.1);

    // A client that does not trust the CA is refused by its own TLS.
    let stranger = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let refused = runtime.block_on(stranger.get(format!("{}/healthz", server.url)).send());
    assert!(refused.is_err(), "{refused:?}");

    // Plain HTTP on the HTTPS port: a short 400 saying what to do.
    let plain = request(&server.address, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(plain.status, 400);
    assert!(plain.text().contains("use https://"), "{}", plain.text());
    // Garbage that is neither: the connection is closed, nothing breaks.
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(&server.address).unwrap();
        raw.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        raw.write_all(&[0x01, 0x02, 0x03, 0x04, 0x05]).unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest);
        assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1 200"));
    }

    // And it still serves HTTPS.
    let again = runtime.block_on(async {
        trusting
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(again, 200);

    // --print-fingerprint prints the same value and exits.
    let printed = Command::new(tako_bin())
        .args(["serve", "--print-fingerprint", "--config"])
        .arg(&config)
        .env("TAKO_LOG", "error")
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), expected);
}

fn start_up_error(data: &DataDir, config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(tako_bin())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data.path)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TAKO_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!data.path.join("tako.db").exists(), "nothing was started");
    (output.status.code(), stderr)
}

#[test]
fn bad_tls_settings_are_clear_start_up_errors() {
    let issued = pki();
    let other = pki();

    // Only one of the two.
    let data = DataDir::new();
    let config = data.path.parent().unwrap().join("tako.toml");
    std::fs::write(&config, "tls_cert = \"cert.pem\"\n").unwrap();
    let (code, stderr) = start_up_error(&data, &config, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("tls_cert from the configuration file (key tls_cert): tls_key is not set")
            && stderr.contains("set both"),
        "{stderr}"
    );

    // A missing key file: which setting, which file, what to do.
    let data = DataDir::new();
    let config = configure(&data, &issued.cert_pem, &issued.key_pem, "");
    let missing = data.path.parent().unwrap().join("missing-key.pem");
    let (code, stderr) = start_up_error(&data, &config, &["--tls-key", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "tls_key {}: cannot read the file",
            missing.display()
        )) && stderr.contains("check the path"),
        "{stderr}"
    );

    // Certificate and key swapped.
    let data = DataDir::new();
    let config = configure(&data, &issued.key_pem, &issued.cert_pem, "");
    let (code, stderr) = start_up_error(&data, &config, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no certificate in it"), "{stderr}");

    // A key that is not the certificate's.
    let data = DataDir::new();
    let config = configure(&data, &issued.cert_pem, &other.key_pem, "");
    let (code, stderr) = start_up_error(&data, &config, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not the private key of the certificate in tls_cert"),
        "{stderr}"
    );
    // The key never appears in the message.
    let key_body = other.key_pem.lines().nth(1).unwrap();
    assert!(!stderr.contains(key_body), "{stderr}");
}
