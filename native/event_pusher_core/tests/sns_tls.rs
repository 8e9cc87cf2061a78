//! An `https://` SNS endpoint: the pool speaks TLS (rustls with ring) and
//! checks the server's certificate against the system roots. The "system"
//! here is a file named by SSL_CERT_FILE, set before the first TLS
//! connection of this process (alone in its binary for that reason), in
//! front of moto through a TLS-terminating proxy.

mod common;
mod sns_common;

use common::Collector;
use event_pusher_core::sns::SnsPool;
use event_pusher_core::Outcome;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sns_common::*;
use std::sync::Arc;

/// A TLS acceptor for a self-signed "localhost" certificate, whose PEM is
/// made the process's trusted roots.
fn trusted_localhost_acceptor() -> tokio_rustls::TlsAcceptor {
    let own = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let pem = std::env::temp_dir().join(format!("ep_sns_tls_{}.pem", std::process::id()));
    std::fs::write(&pem, own.cert.pem()).expect("write");
    // Read once, at the first TLS connection of the process (rustls-native-certs).
    std::env::set_var("SSL_CERT_FILE", &pem);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key =
        PrivateKeyDer::from_pem_slice(own.signing_key.serialize_pem().as_bytes()).expect("key");
    let chain: Vec<CertificateDer<'static>> = vec![own.cert.der().clone()];
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[test]
fn an_https_endpoint_is_verified_and_delivers() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("tls");
    let proxy = Proxy::start_with(0, &moto.url, Some(trusted_localhost_acceptor()));
    let port = proxy.addr.port();

    // The certificate names localhost: delivered over TLS.
    let (events, sink) = Collector::new();
    let pool = SnsPool::start(config(&format!("https://localhost:{port}")), sink).expect("starts");
    pool.publish(job(1, &topic, r#"{"tls":true}"#))
        .expect("accepted");
    let got = common::outcomes(&events.take(1));
    assert!(matches!(got[0], Outcome::Published { .. }), "{got:?}");
    assert_eq!(moto.receive(&queue, 1)[0].body, r#"{"tls":true}"#);
    assert_eq!(proxy.actions(), vec!["Publish".to_owned()]);

    // Not for 127.0.0.1: the handshake fails, the attempt is an error.
    let (events, sink) = Collector::new();
    let mut cfg = config(&format!("https://127.0.0.1:{port}"));
    cfg.retry_count = 0;
    let pool = SnsPool::start(cfg, sink).expect("starts");
    pool.publish(job(2, &topic, "{}")).expect("accepted");
    let got = common::outcomes(&events.take(2));
    let Outcome::Error { reason, .. } = &got[0] else {
        panic!("expected an error, got {got:?}");
    };
    assert!(reason.starts_with("connect_failed: "), "{reason}");
    assert_eq!(pool.stats().panics, 0);
    // Nothing more reached moto.
    assert_eq!(proxy.actions().len(), 1);
}
