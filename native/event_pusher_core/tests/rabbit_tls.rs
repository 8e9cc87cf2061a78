//! AMQPS: the pool's TLS section (the same options as an HTTP pool) against
//! a TLS front (rustls, a certificate for localhost signed by a test CA) that
//! forwards to the real broker. Skips when no broker runs unless
//! EP_REQUIRE_RABBIT is set.

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::rabbit::{ConnectionEvent, ExchangeSpec};
use event_pusher_core::tls::{TlsOptions, VerifyMode};
use event_pusher_core::Outcome;
use lapin::types::FieldTable;
use rabbit_common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A TLS listener on 127.0.0.1 that hands each connection, decrypted, to the
/// broker; with the CA that signed its certificate and another CA, as files.
struct TlsFront {
    port: u16,
    dir: PathBuf,
    stop: tokio_util::sync::CancellationToken,
}

impl TlsFront {
    fn start(name: &str) -> TlsFront {
        let dir = std::env::temp_dir().join(format!("ep_rabbit_tls_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("server cert");
        let other =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("self-signed");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        std::fs::write(dir.join("other_ca.pem"), other.cert.pem()).expect("write");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key"),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = tokio_util::sync::CancellationToken::new();
        let st = stop.clone();
        event_pusher_core::runtime::handle()
            .expect("runtime")
            .spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        _ = st.cancelled() => return,
                        a = listener.accept() => a,
                    };
                    let Ok((socket, _)) = accepted else { continue };
                    let (acceptor, st) = (acceptor.clone(), st.clone());
                    tokio::spawn(async move {
                        // A failed handshake (the client refused us) just ends here.
                        let Ok(mut tls) = acceptor.accept(socket).await else {
                            return;
                        };
                        let Ok(mut broker) = tokio::net::TcpStream::connect(BROKER).await else {
                            return;
                        };
                        tokio::select! {
                            _ = st.cancelled() => {}
                            _ = tokio::io::copy_bidirectional(&mut tls, &mut broker) => {}
                        }
                    });
                }
            });
        TlsFront { port, dir, stop }
    }

    fn tls(&self, verify_mode: VerifyMode, ca: &str) -> TlsOptions {
        TlsOptions {
            verify_mode,
            cacertfile: Some(self.dir.join(ca)),
            ..TlsOptions::default()
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn declare(
    pool: &event_pusher_core::rabbit::RabbitPool<u64>,
    events: &Collector,
    name: &str,
) -> Result<(), String> {
    pool.declare_exchanges(
        vec![ExchangeSpec {
            name: name.into(),
            kind: "topic".into(),
            durable: false,
        }],
        Duration::from_secs(5),
        events.on_declared(),
    );
    events
        .declared()
        .0
        .map_err(|failures| failures[0].reason.clone())
}

#[test]
fn amqps_with_the_servers_ca_trusted_publishes() {
    if !broker_available("amqps_trusted") {
        return;
    }
    let front = TlsFront::start("trusted");
    let mut cfg = config(1, true);
    cfg.host = "localhost".into();
    cfg.port = front.port;
    cfg.tls = Some(front.tls(VerifyMode::Peer, "ca.pem"));
    let (pool, events) = start(cfg);
    let exchange = unique("tls");
    declare(&pool, &events, &exchange).expect("declared over TLS");
    let broker = TestBroker::connect();
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let body = Bytes::from_static(br#"{"over":"tls"}"#);
    pool.publish(1, &exchange, "k", body.clone())
        .expect("accepted");
    assert_eq!(queue.take(1)[0].body, body.to_vec());
    let (outcomes, _) = events.outcomes(1);
    assert!(matches!(outcomes[0], (1, Outcome::Published { .. })));
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}

#[test]
fn amqps_with_an_untrusted_certificate_fails_with_the_certificate_error() {
    if !broker_available("amqps_untrusted") {
        return;
    }
    let front = TlsFront::start("unknown");
    let mut cfg = config(1, false);
    cfg.host = "localhost".into();
    cfg.port = front.port;
    cfg.tls = Some(front.tls(VerifyMode::Peer, "other_ca.pem"));
    let (pool, events) = start(cfg);
    let reason = declare(&pool, &events, &unique("tls_bad")).expect_err("refused");
    // The other CA has the same (rcgen default) name: a bad signature.
    assert!(
        reason.starts_with(&format!(
            "localhost:{}: invalid peer certificate",
            front.port
        )),
        "{reason}"
    );
    assert_eq!(pool.stats().connections_opened, 0);
    close(&pool, &events, Duration::ZERO);
}

#[test]
fn amqps_with_verify_none_accepts_any_certificate() {
    if !broker_available("amqps_verify_none") {
        return;
    }
    let front = TlsFront::start("none");
    let mut cfg = config(1, false);
    cfg.host = "127.0.0.1".into(); // not even the name in the certificate
    cfg.port = front.port;
    cfg.tls = Some(front.tls(VerifyMode::None, "other_ca.pem"));
    let (pool, events) = start(cfg);
    declare(&pool, &events, &unique("tls_none")).expect("declared over TLS");
    let (report, got) = close(&pool, &events, Duration::from_secs(5));
    assert_eq!(report.dropped, 0);
    assert!(
        got.contains(&Event::Connection(ConnectionEvent::Closed)),
        "{got:?}"
    );
}
