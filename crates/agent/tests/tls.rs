//! Whom the agent trusts, against a real TLS server on 127.0.0.1 (rustls,
//! with a certificate made by rcgen): a pinned fingerprint lets the agent
//! in, a wrong one is refused naming both fingerprints (also when it tries
//! to enroll, through the agent's own `run`), and an unknown authority is
//! refused with what to do.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tako_agent::client::{CallError, Client};
use tako_agent::run::{AgentError, Event, Options, Reporter};
use tako_agent::tls::{Fingerprint, Trust};
use tako_agent::transport::ServerUrl;
use tako_protocol::agent::Secret;

/// A TLS server answering every request with an agent's record.
struct TlsServer {
    address: String,
    certificate: CertificateDer<'static>,
}

impl TlsServer {
    fn start() -> TlsServer {
        let made = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let certificate = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let connection = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(connection, stream);
                    let mut reader = BufReader::new(&mut tls);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let body = r#"{"name":"win-01","state":"active","environments":["Production"],"roles":["ps"]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes());
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        TlsServer {
            address,
            certificate,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    fn client(&self, trust: &Trust) -> Client {
        Client::new(ServerUrl::parse(&self.url(), false).unwrap(), trust)
            .unwrap()
            .with_credential(Secret("takoagent_x".to_owned()))
    }
}

fn wrong() -> Fingerprint {
    Fingerprint::parse(&"AB".repeat(32)).unwrap()
}

#[tokio::test]
async fn a_pinned_certificate_is_trusted_and_a_wrong_pin_is_refused_naming_both() {
    let server = TlsServer::start();
    let right = Fingerprint::of(server.certificate.as_ref());
    let me = server
        .client(&Trust::Fingerprint(right))
        .me()
        .await
        .unwrap();
    assert_eq!(me.name, "win-01");

    let error = server
        .client(&Trust::Fingerprint(wrong()))
        .me()
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Trust { .. }), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains(&right.to_string()), "{message}");
    assert!(message.contains(&wrong().to_string()), "{message}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_authority_is_refused_with_what_to_do() {
    let server = TlsServer::start();
    let url = ServerUrl::parse(&server.url(), false).unwrap();
    // A machine without system roots cannot even build the client: also a
    // clear refusal.
    match Client::new(url, &Trust::System) {
        Err(error) => assert!(error.to_string().contains("--ca-file"), "{error}"),
        Ok(client) => {
            let error = client.me().await.unwrap_err();
            assert!(matches!(error, CallError::Trust { .. }), "{error:?}");
            assert!(
                error.to_string().contains("--server-fingerprint"),
                "{error}"
            );
        }
    }
}

struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _event: Event<'_>) {}
}

#[tokio::test]
async fn an_agent_enrolling_with_a_wrong_pin_stops_with_both_fingerprints() {
    let server = TlsServer::start();
    let data = tempfile::tempdir().unwrap();
    let options = Options {
        data_dir: data.path().join("agent"),
        server: Some(server.url()),
        enroll: Some(Secret("takoenroll_x".to_owned())),
        name: Some("win-01".to_owned()),
        trust: Trust::Fingerprint(wrong()),
        insecure_http: false,
        once: true,
    };
    let error = tako_agent::run::run(options, &Quiet, Default::default())
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::Enroll(_)), "{error:?}");
    let message = error.to_string();
    let right = Fingerprint::of(server.certificate.as_ref());
    assert!(
        message.contains(&right.to_string()) && message.contains(&wrong().to_string()),
        "{message}"
    );
    assert!(
        !data.path().join("agent/credential").exists(),
        "nothing was kept"
    );
}
