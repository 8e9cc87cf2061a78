//! TLS options against a real TLS server: trust roots, verify modes, client
//! certificates, versions, SNI, and the settings rustls cannot honour.

mod common;

use common::*;
use event_pusher_core::http::HttpPool;
use event_pusher_core::secret::Secret;
use event_pusher_core::tls::{TlsOptions, VerifyMode};
use event_pusher_core::Outcome;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// A CA, a server certificate it signed (localhost, 127.0.0.1), a client
/// certificate it signed, and a self-signed server certificate, as PEM files.
struct Pki {
    dir: PathBuf,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: String,
    self_signed: CertificateDer<'static>,
    self_signed_key: String,
    ca: CertificateDer<'static>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ep_tls_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server_key = KeyPair::generate().expect("key");
        let server = CertificateParams::new(names.clone())
            .expect("params")
            .signed_by(&server_key, &ca)
            .expect("server cert");
        let client_key = KeyPair::generate().expect("key");
        let client = CertificateParams::new(vec!["client".to_string()])
            .expect("params")
            .signed_by(&client_key, &ca)
            .expect("client cert");
        let own = rcgen::generate_simple_self_signed(names).expect("self-signed");
        let write = |file: &str, pem: String| std::fs::write(dir.join(file), pem).expect("write");
        write("ca.pem", ca.pem());
        write("other_ca.pem", own.cert.pem());
        write("client.pem", client.pem());
        write("client.key", client_key.serialize_pem());
        write(
            "encrypted.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .into(),
        );
        Pki {
            dir,
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_pem(),
            self_signed: own.cert.der().clone(),
            self_signed_key: own.signing_key.serialize_pem(),
            ca: ca.der().clone(),
        }
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join(name))
    }

    fn server(&self, self_signed: bool, client_auth: bool, tls12_only: bool) -> TestServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("versions");
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).expect("ca");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let (chain, key) = if self_signed {
            (vec![self.self_signed.clone()], &self.self_signed_key)
        } else {
            (self.server_chain.clone(), &self.server_key)
        };
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
        let config = builder.with_single_cert(chain, key).expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        TestServer::start_with(Arc::new(|_, _| Reply::status(200)), Some(acceptor))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn https(server: &TestServer, host: &str) -> String {
    format!("https://{host}:{}/", server.addr.port())
}

/// Sends one job without retries and returns its outcome.
fn send_once(base_url: String, tls: TlsOptions) -> Outcome {
    let (events, sink) = Collector::new();
    let mut cfg = config(base_url);
    cfg.tls = Some(tls);
    let pool = HttpPool::start(cfg, sink).expect("pool starts");
    pool.submit(job(1, "tls")).expect("accepted");
    match events.take(1).remove(0) {
        Event::Outcome(1, outcome) => outcome,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn peer_verification_with_cacertfile_delivers() {
    let pki = Pki::new("peer");
    let server = pki.server(false, false, false);
    let tls = TlsOptions {
        cacertfile: pki.file("ca.pem"),
        ..TlsOptions::default()
    };
    assert_eq!(status(&send_once(https(&server, "localhost"), tls)), 200);
    assert_eq!(server.received().len(), 1);
}

#[test]
fn peer_verification_fails_for_an_unknown_issuer() {
    let pki = Pki::new("unknown");
    let server = pki.server(false, false, false);
    let tls = TlsOptions {
        cacertfile: pki.file("other_ca.pem"),
        ..TlsOptions::default()
    };
    let outcome = send_once(https(&server, "127.0.0.1"), tls);
    let reason = error_reason(&outcome);
    assert!(
        reason.starts_with("connect_failed: invalid peer certificate"),
        "{reason}"
    );
    assert!(server.received().is_empty());
}

#[test]
fn verify_none_accepts_any_certificate() {
    let pki = Pki::new("none");
    let server = pki.server(true, false, false);
    let tls = TlsOptions {
        verify_mode: VerifyMode::None,
        ..TlsOptions::default()
    };
    assert_eq!(status(&send_once(https(&server, "127.0.0.1"), tls)), 200);
}

#[test]
fn selfsigned_peer_accepts_a_self_signed_certificate_for_the_host_only() {
    let pki = Pki::new("selfsigned");
    let server = pki.server(true, false, false);
    let tls = TlsOptions {
        verify_mode: VerifyMode::SelfsignedPeer,
        ..TlsOptions::default()
    };
    assert_eq!(
        status(&send_once(https(&server, "localhost"), tls.clone())),
        200
    );
    // A certificate signed by an unknown CA is not self-signed: refused.
    let ca_signed = pki.server(false, false, false);
    let reason = error_reason(&send_once(https(&ca_signed, "localhost"), tls));
    assert!(reason.contains("certificate"), "{reason}");
}

#[test]
fn client_certificate_is_presented_when_configured() {
    let pki = Pki::new("client");
    let server = pki.server(false, true, false);
    let with_cert = TlsOptions {
        cacertfile: pki.file("ca.pem"),
        certfile: pki.file("client.pem"),
        keyfile: pki.file("client.key"),
        ..TlsOptions::default()
    };
    let without = TlsOptions {
        cacertfile: pki.file("ca.pem"),
        ..TlsOptions::default()
    };
    assert_eq!(
        status(&send_once(https(&server, "localhost"), with_cert)),
        200
    );
    assert!(matches!(
        send_once(https(&server, "localhost"), without),
        Outcome::Error { .. }
    ));
    assert_eq!(server.received().len(), 1);
}

#[test]
fn sni_is_sent_unless_disabled() {
    let pki = Pki::new("sni");
    let server = pki.server(false, false, false);
    for sni in [true, false] {
        let tls = TlsOptions {
            cacertfile: pki.file("ca.pem"),
            server_name_indication: sni,
            ..TlsOptions::default()
        };
        assert_eq!(status(&send_once(https(&server, "localhost"), tls)), 200);
    }
    assert_eq!(server.sni(), [Some("localhost".to_string()), None]);
}

#[test]
fn sni_host_replaces_the_name_sent_and_checked() {
    let pki = Pki::new("sni_host");
    let server = pki.server(false, false, false);
    let tls = |sni_host: &str, sni: bool| TlsOptions {
        cacertfile: pki.file("ca.pem"),
        server_name_indication: sni,
        sni_host: Some(sni_host.to_string()),
        ..TlsOptions::default()
    };
    // Connecting to an IP sends no SNI; with a host set, that name is sent.
    let url = https(&server, "127.0.0.1");
    assert_eq!(status(&send_once(url.clone(), tls("localhost", true))), 200);
    // The certificate is checked against the configured name, not the URL's.
    let reason = error_reason(&send_once(url.clone(), tls("other.test", true)));
    assert!(reason.contains("certificate"), "{reason}");
    // SNI disabled: the host is ignored, as MongooseIM does.
    assert_eq!(status(&send_once(url, tls("other.test", false))), 200);
    // (The server records handshakes that completed: the refused one is not there.)
    assert_eq!(server.sni(), [Some("localhost".to_string()), None]);
}

#[test]
fn disconnect_on_failure_false_connects_despite_a_failed_check() {
    let pki = Pki::new("no_disconnect");
    let server = pki.server(false, false, false);
    let tls = |disconnect_on_failure| TlsOptions {
        cacertfile: pki.file("other_ca.pem"),
        disconnect_on_failure,
        ..TlsOptions::default()
    };
    let url = https(&server, "localhost");
    assert!(matches!(
        send_once(url.clone(), tls(true)),
        Outcome::Error { .. }
    ));
    assert_eq!(status(&send_once(url, tls(false))), 200);
    assert_eq!(server.received().len(), 1);
}

#[test]
fn versions_restrict_the_handshake() {
    let pki = Pki::new("versions");
    let server = pki.server(false, false, true);
    let tls = |versions: &[&str]| TlsOptions {
        cacertfile: pki.file("ca.pem"),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        ..TlsOptions::default()
    };
    let url = https(&server, "localhost");
    assert_eq!(status(&send_once(url.clone(), tls(&["tlsv1.2"]))), 200);
    assert!(matches!(
        send_once(url, tls(&["tlsv1.3"])),
        Outcome::Error { .. }
    ));
}

#[test]
fn unsupported_settings_fail_the_start_without_revealing_the_password() {
    let pki = Pki::new("unsupported");
    let start = |tls: TlsOptions| {
        let (_events, sink) = Collector::new();
        let mut cfg = config("https://localhost:1/".into());
        cfg.tls = Some(tls);
        HttpPool::<u64>::start(cfg, sink)
            .err()
            .expect("refused")
            .to_string()
    };
    let encrypted = start(TlsOptions {
        certfile: pki.file("client.pem"),
        keyfile: pki.file("encrypted.key"),
        password: Some(Secret("hunter2".into())),
        ..TlsOptions::default()
    });
    assert!(encrypted.contains("encrypted"), "{encrypted}");
    assert!(!encrypted.contains("hunter2"));
    let old = start(TlsOptions {
        versions: vec!["tlsv1.1".into()],
        ..TlsOptions::default()
    });
    assert!(old.contains("only tlsv1.2 and tlsv1.3"), "{old}");
    let missing = start(TlsOptions {
        cacertfile: pki.file("nope.pem"),
        ..TlsOptions::default()
    });
    assert!(missing.contains("cannot read cacertfile"), "{missing}");
    let half = start(TlsOptions {
        certfile: pki.file("client.pem"),
        ..TlsOptions::default()
    });
    assert_eq!(half, "tls: certfile needs keyfile");
}
