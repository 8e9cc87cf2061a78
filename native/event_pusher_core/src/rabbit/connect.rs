//! Opening one AMQP connection: TCP (and TLS through our own rustls
//! configuration, the one HTTP pools use) under lapin, bounded by
//! [`CONNECT_TIMEOUT`], and readable reasons for every failure.
//!
//! The password lives only in the AMQP URI handed to lapin, which is never
//! formatted: reasons are built from error kinds and the broker's text.

use super::{RabbitPoolConfig, StartError, CONNECT_TIMEOUT};
use crate::tls;
use lapin::tcp::{AsyncTcpStream, RustlsConnector};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Connection, ConnectionProperties, ErrorKind};
use std::net::SocketAddr;

/// Name the broker shows for our connections.
const CONNECTION_NAME: &str = "mongoose_event_pusher";
/// Heartbeat interval proposed to the broker, in seconds: amqp_client's
/// default (MongooseIM's client). It also bounds how long lapin's heartbeat
/// task lingers after a connection closed (half of it).
const HEARTBEAT_S: u16 = 10;
/// Largest frame proposed to the broker. lapin keeps a receive and a send
/// buffer of 32 frames per connection: at RabbitMQ's default 128 kB that is
/// 8 MB of memory per connection; events are a few hundred bytes (longer
/// bodies go in several frames).
const FRAME_MAX: u32 = 16384;

/// Where and how a pool connects. Cheap to share (one per pool).
pub(crate) struct Endpoint {
    uri: AMQPUri,
    /// The TLS client and the name the server's certificate must match (the
    /// host, or `server_name_indication.host`).
    tls: Option<(RustlsConnector, String)>,
    /// `host:port`, for reasons (never the URI, which holds the password).
    address: String,
}

impl Endpoint {
    pub fn new(cfg: &RabbitPoolConfig) -> Result<Endpoint, StartError> {
        let tls = match &cfg.tls {
            Some(opts) => {
                let mut config = tls::client_config(Some(opts), true)?;
                // The shared builder offers HTTP/1.1; AMQP negotiates no ALPN.
                config.alpn_protocols.clear();
                let name = match tls::server_name_override(opts)? {
                    Some(name) => name.to_str().into_owned(),
                    None => cfg.host.clone(),
                };
                Some((RustlsConnector::from(config), name))
            }
            None => None,
        };
        let uri = AMQPUri {
            scheme: if tls.is_some() {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: cfg.username.clone(),
                    password: cfg.password.0.clone(),
                },
                host: cfg.host.clone(),
                port: cfg.port,
            },
            vhost: cfg.virtual_host.clone(),
            query: AMQPQueryString {
                heartbeat: Some(HEARTBEAT_S),
                frame_max: Some(FRAME_MAX),
                ..AMQPQueryString::default()
            },
        };
        Ok(Endpoint {
            uri,
            tls,
            address: format!("{}:{}", cfg.host, cfg.port),
        })
    }

    /// One connection attempt. Must run on the shared runtime (lapin binds
    /// the connection's I/O to the current one).
    /// A new connection, or why not and whether the broker was reached.
    pub async fn connect(&self) -> Result<Connection, ConnectFailure> {
        let runtime = lapin::runtime::default_runtime().map_err(|e| ConnectFailure {
            reason: reason(&e),
            unreachable: false,
        })?;
        let tls = self.tls.clone();
        let props = ConnectionProperties::default().with_connection_name(CONNECTION_NAME.into());
        // Runs on lapin's I/O thread (inside our runtime's context).
        let transport = async move |uri: AMQPUri, runtime| {
            let host = uri.authority.host.as_str();
            let open = async {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, uri.authority.port))
                    .await?
                    .collect();
                let stream = AsyncTcpStream::connect(&runtime, addrs).await?;
                match &tls {
                    Some((tls, name)) => stream.into_rustls(tls, name).await,
                    None => Ok(stream),
                }
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
                Ok(result) => result.map_err(lapin::Error::from),
                Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
            }
        };
        let connecting = Connection::connector(self.uri.clone(), runtime, transport, props);
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(ConnectFailure {
                reason: format!("{}: {}", self.address, reason(&e)),
                // I/O: refused, reset, unreachable, timed out; an AMQP
                // error means the broker answered and refused.
                unreachable: matches!(e.kind(), ErrorKind::IOError(_)),
            }),
            Err(_) => Err(ConnectFailure {
                reason: format!("{}: timeout", self.address),
                unreachable: true,
            }),
        }
    }
}

/// Why a connection attempt failed.
pub(crate) struct ConnectFailure {
    pub reason: String,
    /// The broker was not reached (as opposed to refusing the connection).
    pub unreachable: bool,
}

/// A short reason a person can act on: the broker's own text for AMQP errors
/// (`ACCESS_REFUSED - Login was refused...`, `PRECONDITION_FAILED - ...`),
/// the OS error for I/O (`Connection refused (os error 111)`).
pub(crate) fn reason(e: &lapin::Error) -> String {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        ErrorKind::IOError(io) => io_reason(io),
        ErrorKind::RuntimeShutdownError(io) => format!("runtime shut down: {}", io_reason(io)),
        _ => e.to_string(),
    }
}

fn io_reason(io: &std::io::Error) -> String {
    match io.kind() {
        std::io::ErrorKind::TimedOut => "timeout".to_owned(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionAborted => {
            // RabbitMQ closes the socket without a word when the handshake
            // fails before authentication (e.g. a wrong virtual host is a
            // protocol error, but a TLS port spoken to in plain is this).
            format!("connection closed by the server ({io})")
        }
        _ => io.to_string(),
    }
}
