//! Declaring exchanges on one of the pool's live connections, and the state
//! of those connections that a declaration waits on.
//!
//! A declaration waits (within its timeout) until some worker is connected,
//! or fails at once with the reason of the last failed connection attempt
//! when no worker is connected (a wrong port or bad credentials show up
//! there). Each exchange is declared on a fresh channel: a failed declare
//! makes the broker close the channel it came on.

use super::connect::reason;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ExchangeKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One exchange to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    pub name: String,
    /// `topic`, `direct`, `fanout`, `headers`, or a plugin's type.
    pub kind: String,
    pub durable: bool,
}

/// An exchange that could not be declared, with the reason: the broker's
/// text (`PRECONDITION_FAILED - inequivalent arg 'type' ...`) or why no
/// connection was there (`127.0.0.1:1: Connection refused (os error 111)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclareFailure {
    pub exchange: String,
    pub reason: String,
    /// The broker could not be reached (refused or timed-out connections):
    /// the pool declares the exchange on its next connection, before it
    /// publishes. False for the broker's own refusals (a type clash, bad
    /// credentials), which no reconnection fixes.
    pub pending: bool,
}

/// `Ok` when every exchange was declared.
pub type DeclareResult = Result<(), Vec<DeclareFailure>>;

pub(crate) type DeclareCallback = Box<dyn FnOnce(DeclareResult) + Send + 'static>;

/// Every exchange failed for the same reason.
pub(crate) fn all_failed(exchanges: &[ExchangeSpec], why: &str) -> DeclareResult {
    failed(exchanges, why, false)
}

fn failed(exchanges: &[ExchangeSpec], why: &str, pending: bool) -> DeclareResult {
    Err(exchanges
        .iter()
        .map(|e| DeclareFailure {
            exchange: e.name.clone(),
            reason: why.to_owned(),
            pending,
        })
        .collect())
}

/// Why no connection was there for a declaration.
struct NoLink {
    reason: String,
    /// The broker could not be reached (as opposed to refusing us).
    unreachable: bool,
}

#[derive(Default)]
struct LinkState {
    /// Each worker's connection while it is up.
    live: Vec<Option<Arc<Connection>>>,
    /// Reason of the last failed attempt, and whether the broker could not
    /// be reached at all; cleared when a worker connects.
    failure: Option<(String, bool)>,
}

/// The exchanges declared through the pool, to declare again on every new
/// connection: a broker restart forgets non-durable exchanges (MongooseIM's
/// default), and publishes to a missing exchange would fail until their
/// retries run out. Declaring an existing exchange again is a no-op.
#[derive(Default)]
pub(crate) struct Declared(Mutex<Vec<ExchangeSpec>>);

impl Declared {
    /// Keeps the exchanges a declaration created (a later one of the same
    /// name replaces an earlier one).
    pub fn remember(&self, exchanges: &[ExchangeSpec], result: &DeclareResult) {
        // A pending exchange is kept too: the next connection declares it.
        let failed = |e: &ExchangeSpec| match result {
            Ok(()) => false,
            Err(failures) => failures.iter().any(|f| f.exchange == e.name && !f.pending),
        };
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for exchange in exchanges.iter().filter(|e| !failed(e)) {
            known.retain(|k| k.name != exchange.name);
            known.push(exchange.clone());
        }
    }

    pub fn snapshot(&self) -> Vec<ExchangeSpec> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Declares `exchanges` again on a new `connection`, each on its own channel.
/// A failure is left to the publishes: they fail with the broker's reason.
pub(crate) async fn redeclare(connection: &Connection, exchanges: &[ExchangeSpec]) {
    for exchange in exchanges {
        let _ = declare_one(connection, exchange).await;
    }
}

/// The workers' connections, as declarations see them.
pub(crate) struct Links(watch::Sender<LinkState>);

impl Links {
    pub fn new(workers: usize) -> Links {
        let state = LinkState {
            live: vec![None; workers],
            failure: None,
        };
        Links(watch::Sender::new(state))
    }

    pub fn up(&self, worker: usize, connection: Arc<Connection>) {
        self.0.send_modify(|s| {
            s.live[worker] = Some(connection);
            s.failure = None;
        });
    }

    pub fn down(&self, worker: usize) {
        self.0.send_if_modified(|s| s.live[worker].take().is_some());
    }

    /// A connection attempt failed; `unreachable`: the broker was not
    /// reached (refused or timed-out connection), rather than refusing us.
    pub fn failed(&self, why: &str, unreachable: bool) {
        self.0
            .send_modify(|s| s.failure = Some((why.to_owned(), unreachable)));
    }

    /// A live connection, or the reason why there is none, within `deadline`.
    async fn wait(&self, deadline: Instant) -> Result<Arc<Connection>, NoLink> {
        let mut rx = self.0.subscribe();
        loop {
            {
                let state = rx.borrow_and_update();
                if let Some(c) = state.live.iter().flatten().find(|c| c.status().connected()) {
                    return Ok(c.clone());
                }
                if let Some((why, unreachable)) = &state.failure {
                    return Err(NoLink {
                        reason: why.clone(),
                        unreachable: *unreachable,
                    });
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(NoLink {
                        reason: "closed".into(),
                        unreachable: false,
                    })
                }
                Err(_) => {
                    return Err(NoLink {
                        reason: "timeout: no connection to the broker".into(),
                        unreachable: true,
                    })
                }
            }
        }
    }
}

/// Declares `exchanges` (see the module doc); `stop` ends it early ("closed").
pub(crate) async fn run(
    links: &Links,
    exchanges: &[ExchangeSpec],
    timeout: Duration,
    stop: &CancellationToken,
) -> DeclareResult {
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400));
    let connection = tokio::select! {
        _ = stop.cancelled() => return all_failed(exchanges, "closed"),
        c = links.wait(deadline) => c,
    };
    let connection = match connection {
        Ok(c) => c,
        Err(no) => return failed(exchanges, &no.reason, no.unreachable),
    };
    let mut failures = Vec::new();
    for exchange in exchanges {
        let result = tokio::select! {
            _ = stop.cancelled() => Err("closed".to_owned()),
            r = tokio::time::timeout_at(deadline, declare_one(&connection, exchange)) => {
                r.unwrap_or_else(|_| Err("timeout".to_owned()))
            }
        };
        if let Err(reason) = result {
            failures.push(DeclareFailure {
                exchange: exchange.name.clone(),
                pending: false,
                reason,
            });
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

async fn declare_one(connection: &Connection, exchange: &ExchangeSpec) -> Result<(), String> {
    let name = ShortString::try_new(exchange.name.as_str())
        .map_err(|_| "exchange name longer than 255 bytes".to_owned())?;
    let kind = match exchange.kind.as_str() {
        "topic" => ExchangeKind::Topic,
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_owned()),
    };
    let options = ExchangeDeclareOptions {
        durable: exchange.durable,
        ..ExchangeDeclareOptions::default()
    };
    let channel = connection.create_channel().await.map_err(|e| reason(&e))?;
    channel
        .exchange_declare(name, kind, options, FieldTable::default())
        .await
        .map_err(|e| reason(&e))?;
    // Best effort: the channel also closes with its last handle.
    let _ = channel.close(200, "OK".into()).await;
    Ok(())
}
