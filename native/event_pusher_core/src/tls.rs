//! TLS settings of a pool (HTTP, and AMQPS for rabbit), turned into a rustls
//! client configuration.
//!
//! Mirrors MongooseIM's TLS options as far as rustls allows: `verify_mode`
//! (`peer`, `selfsigned_peer`, `none`), `cacertfile`, `certfile` + `keyfile`
//! (PEM), `versions`, `disconnect_on_failure` and `server_name_indication`
//! (`enabled`, and `host`, which replaces the name sent and checked, as
//! Erlang's `{server_name_indication, Host}` does). What rustls cannot do (an
//! encrypted private key, TLS 1.0/1.1 only) is a start error, never a
//! weaker connection. Errors name files, never the password.

use crate::secret::Secret;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    SupportedProtocolVersion,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// Chain to a trusted root and match the host name.
    #[default]
    Peer,
    /// As `Peer`, but a self-signed certificate (valid, matching the host) is
    /// accepted too.
    SelfsignedPeer,
    /// No check at all. Only when configured.
    None,
}

/// A pool's TLS section.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub verify_mode: VerifyMode,
    /// Trusted roots (PEM); without it, the system's roots.
    pub cacertfile: Option<PathBuf>,
    /// Client certificate chain (PEM); needs `keyfile`.
    pub certfile: Option<PathBuf>,
    /// Client private key (PEM, unencrypted).
    pub keyfile: Option<PathBuf>,
    /// Accepted for compatibility; rustls cannot decrypt keys, so an
    /// encrypted key is refused whatever the password.
    pub password: Option<Secret>,
    /// Allowed versions, MongooseIM's names (`tlsv1.2`, `tlsv1.3`); empty means both.
    pub versions: Vec<String>,
    pub server_name_indication: bool,
    /// `server_name_indication.host`: the name sent in SNI and matched
    /// against the certificate instead of the URL's host (only while
    /// `server_name_indication` is on). Applied by the HTTP pool's connector
    /// (see [`server_name_override`]).
    pub sni_host: Option<String>,
    /// `false`: a certificate that fails verification is accepted anyway
    /// (MongooseIM connects and only records the failure). The handshake's
    /// signatures are still checked.
    pub disconnect_on_failure: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            verify_mode: VerifyMode::Peer,
            cacertfile: None,
            certfile: None,
            keyfile: None,
            password: None,
            versions: Vec::new(),
            server_name_indication: true,
            sni_host: None,
            disconnect_on_failure: true,
        }
    }
}

/// A TLS setting that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("tls: {0}")]
    Unsupported(String),
    #[error("tls: {0}")]
    Invalid(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server name that replaces the URL's host in the handshake, if any:
/// `sni_host` while SNI is enabled (MongooseIM ignores the host when SNI is
/// disabled).
pub fn server_name_override(opts: &TlsOptions) -> Result<Option<ServerName<'static>>, TlsError> {
    match (&opts.sni_host, opts.server_name_indication) {
        (Some(host), true) => {
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            ServerName::try_from(host.to_owned())
                .map(Some)
                .map_err(|_| {
                    TlsError::Invalid(format!(
                        "server_name_indication.host {host:?} is not a DNS name or an IP address"
                    ))
                })
        }
        _ => Ok(None),
    }
}

/// The client configuration for a pool. `https` says whether the pool's URL
/// needs TLS at all: a plain-HTTP pool without a TLS section reads no files.
pub fn client_config(opts: Option<&TlsOptions>, https: bool) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let defaults = TlsOptions::default();
    let (opts, need_roots) = match opts {
        Some(opts) => (opts, true),
        None => (&defaults, https),
    };
    let versions = protocol_versions(&opts.versions)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let mut verifier: Arc<dyn ServerCertVerifier> = match opts.verify_mode {
        VerifyMode::None => Arc::new(AcceptAny(provider.clone())),
        _ if !need_roots => Arc::new(AcceptAny(provider.clone())),
        VerifyMode::Peer => {
            let roots = roots(opts.cacertfile.as_deref())?;
            if roots.is_empty() {
                return Err(TlsError::Invalid(
                    "no trusted CA certificates (set cacertfile)".into(),
                ));
            }
            webpki_verifier(roots, &provider)?
        }
        VerifyMode::SelfsignedPeer => {
            let roots = roots(opts.cacertfile.as_deref())?;
            let chained = if roots.is_empty() {
                None
            } else {
                Some(webpki_verifier(roots, &provider)?)
            };
            Arc::new(SelfSignedOrChained {
                chained,
                provider: provider.clone(),
            })
        }
    };
    if !opts.disconnect_on_failure {
        verifier = Arc::new(AcceptOnFailure(verifier));
    }
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&opts.certfile, &opts.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let chain = certificates("certfile", certfile)?;
            let key = private_key(keyfile)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Invalid(format!("certfile/keyfile: {e}")))?
        }
        (Some(_), None) => return Err(TlsError::Invalid("certfile needs keyfile".into())),
        (None, Some(_)) => return Err(TlsError::Invalid("keyfile needs certfile".into())),
        (None, None) => builder.with_no_client_auth(),
    };
    config.enable_sni = opts.server_name_indication;
    // No ALPN, as MongooseIM's clients offer none (hyper-rustls also wants
    // an empty list for an HTTP/1-only connector).
    Ok(config)
}

fn protocol_versions(names: &[String]) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if names.is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for name in names {
        match name.as_str() {
            "tlsv1.3" => versions.push(&rustls::version::TLS13),
            "tlsv1.2" => versions.push(&rustls::version::TLS12),
            // Older than rustls supports: allowed but never negotiated.
            "tlsv1" | "tlsv1.1" => {}
            other => {
                return Err(TlsError::Invalid(format!(
                    "unknown TLS version {other:?} (expected tlsv1.2 or tlsv1.3)"
                )))
            }
        }
    }
    if versions.is_empty() {
        return Err(TlsError::Unsupported(format!(
            "versions {names:?}: only tlsv1.2 and tlsv1.3 are supported"
        )));
    }
    Ok(versions)
}

fn roots(cacertfile: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match cacertfile {
        Some(path) => {
            for cert in certificates("cacertfile", path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    what: "cacertfile",
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            // Unreadable entries in the system store are skipped, as browsers do.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    Ok(roots)
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    Ok(verifier)
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::File {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            what,
            path: path.display().to_string(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("keyfile", path)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::Unsupported(format!(
            "keyfile {} is encrypted; rustls cannot decrypt private keys, so \
             password-protected keys are not supported: use an unencrypted key file",
            path.display()
        )));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::File {
        what: "keyfile",
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The handshake-signature methods of a [`ServerCertVerifier`], which our
/// verifiers only change in how they check the certificate: checked with
/// the algorithms of a crypto provider (`provider`), or left to an inner
/// verifier (`delegated`).
macro_rules! signatures {
    ($self:ident => provider $provider:expr) => {
        fn verify_tls12_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &$provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &$provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&$self) -> Vec<SignatureScheme> {
            $provider.signature_verification_algorithms.supported_schemes()
        }
    };
    ($self:ident => delegated $inner:expr) => {
        fn verify_tls12_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            $inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &$self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            $inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&$self) -> Vec<SignatureScheme> {
            $inner.supported_verify_schemes()
        }
    };
}

/// `verify_mode = none`: any certificate, but handshake signatures are still
/// checked so the session keys belong to whoever sent the certificate.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signatures!(self => provider self.0);
}

/// `disconnect_on_failure = false`: the certificate check runs, and its
/// failure is ignored (as MongooseIM's verify_fun does); the handshake
/// signatures are checked by the inner verifier as usual.
#[derive(Debug)]
struct AcceptOnFailure(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for AcceptOnFailure {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let checked =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        Ok(checked.unwrap_or_else(|_| ServerCertVerified::assertion()))
    }

    signatures!(self => delegated self.0);
}

/// `verify_mode = selfsigned_peer`: a chain to a trusted root, or a
/// self-signed certificate that is itself valid for the host name (checked by
/// verifying it with itself as the only trust anchor).
#[derive(Debug)]
struct SelfSignedOrChained {
    chained: Option<Arc<dyn ServerCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SelfSignedOrChained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chained) = &self.chained {
            match chained.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {}
                other => return other,
            }
        }
        let mut own = RootCertStore::empty();
        own.add(end_entity.clone().into_owned())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(own), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    signatures!(self => provider self.provider);
}
