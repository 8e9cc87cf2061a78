//! The one way a message reaches Erlang. Every message is
//! `{mongoose_event_pusher_nif, Kind, Body}`, or `{mongoose_event_pusher_nif,
//! Kind, Key, Body}` where Key is a term given with the request (`pool_close`'s
//! or `rabbit_declare_exchanges`' `Ref`) or with the pool (a rabbit pool's
//! `EventTag`):
//!
//! - `{.., results, [{Tag, Outcome}]}` and `{.., panic, Where}`: a pool's
//!   [`OutcomeSink`], to its owner;
//! - `{.., event, EventTag, {connection, opened | closed | {failed, Reason}}}`:
//!   a rabbit pool's [`PoolEvents`], to its owner;
//! - `{.., closed, Ref, #{dropped => N}}`: the close notice, to the owner;
//! - `{.., declared, Ref, ok | {error, [{Name, Reason}]}}`: to the caller.
//!
//! All are sent from threads that are not schedulers (a pool's reporter
//! thread or a runtime thread), as `enif_send` without a caller env requires,
//! each [`Reply`] reusing its own env.

use crate::atoms;
use crate::tag::{Decoder, TagBlob};
use event_pusher_core::rabbit::{ConnectionEvent, DeclareResult, PoolEvents};
use event_pusher_core::{CloseReport, DropReason, Outcome, OutcomeSink};
use rustler::{Atom, Binary, Encoder, Env, LocalPid, NewBinary, NifMap, OwnedEnv, Term};

pub struct Reply {
    to: LocalPid,
    /// Kept as `term_to_binary(Key)`: the env is cleared after each message.
    key: Option<TagBlob>,
    env: OwnedEnv,
}

impl Reply {
    /// Messages without a key, to `to`.
    pub fn to(to: LocalPid) -> Reply {
        Reply {
            to,
            key: None,
            env: OwnedEnv::new(),
        }
    }

    /// Messages carrying `key`, to `to`.
    pub fn keyed(to: LocalPid, key: Term<'_>) -> Reply {
        Reply {
            key: Some(TagBlob::new(key)),
            ..Reply::to(to)
        }
    }

    /// Sends `{mongoose_event_pusher_nif, Kind, [Key,] Body}`. A failed send
    /// means the process is gone: nobody is left to tell.
    pub fn send<F>(&mut self, kind: Atom, body: F)
    where
        F: for<'a> FnOnce(Env<'a>) -> Term<'a>,
    {
        let key = &self.key;
        let _ = self.env.send_and_clear(&self.to, |env| {
            let body = body(env);
            let nif = atoms::mongoose_event_pusher_nif();
            match key {
                None => (nif, kind, body).encode(env),
                Some(key) => (nif, kind, key.load(env), body).encode(env),
            }
        });
    }

    /// `{mongoose_event_pusher_nif, closed, Ref, #{dropped => N}}`.
    pub fn closed(mut self, report: CloseReport) {
        self.send(atoms::closed(), |env| {
            CloseInfo {
                dropped: report.dropped,
            }
            .encode(env)
        });
    }

    /// `{mongoose_event_pusher_nif, declared, Ref, ok | {error, [{Name, Reason}]}}`.
    /// `ok`, `{pending, Reason}` (the broker could not be reached: the pool
    /// declares them on its next connection) or `{error, [{Name, Reason}]}`.
    pub fn declared(mut self, result: DeclareResult) {
        self.send(atoms::declared(), |env| match &result {
            Ok(()) => atoms::ok().encode(env),
            Err(failures) if failures.iter().all(|f| f.pending) => {
                let reason = failures.first().map_or("", |f| f.reason.as_str());
                (atoms::pending(), reason).encode(env)
            }
            Err(failures) => {
                let failures: Vec<Term> = failures
                    .iter()
                    .filter(|f| !f.pending)
                    .map(|f| (f.exchange.as_str(), f.reason.as_str()).encode(env))
                    .collect();
                (atoms::error(), failures).encode(env)
            }
        });
    }
}

#[derive(NifMap)]
#[rustler(encode)]
struct CloseInfo {
    dropped: u64,
}

impl OutcomeSink<TagBlob> for Reply {
    fn results(&mut self, batch: &mut Vec<(TagBlob, Outcome)>) {
        self.send(atoms::results(), |env| {
            let mut tags = Decoder::new(env);
            let items: Vec<Term> = batch
                .drain(..)
                .map(|(tag, outcome)| (tags.decode(tag), encode_outcome(env, &outcome)).encode(env))
                .collect();
            items.encode(env)
        });
    }

    fn panicked(&mut self, location: &'static str) {
        self.send(atoms::panic(), |env| location.encode(env));
    }
}

/// A rabbit pool's events, keyed with its EventTag: `{connection, opened |
/// closed | {failed, Reason}}`, or `{unroutable, Count, Exchange, RoutingKey,
/// ReplyText}` (rate-limited, see `rabbit::UnroutableNotice`).
impl PoolEvents for Reply {
    fn connection(&mut self, event: ConnectionEvent) {
        self.send(atoms::event(), |env| {
            let state = match &event {
                ConnectionEvent::Opened => atoms::opened().encode(env),
                ConnectionEvent::Closed => atoms::closed().encode(env),
                ConnectionEvent::Failed(reason) => (atoms::failed(), reason.as_str()).encode(env),
                ConnectionEvent::Unroutable(n) => {
                    return (
                        atoms::unroutable(),
                        n.count,
                        n.exchange.as_str(),
                        n.routing_key.as_str(),
                        n.reply_text.as_str(),
                    )
                        .encode(env)
                }
            };
            (atoms::connection(), state).encode(env)
        });
    }
}

fn encode_outcome<'a>(env: Env<'a>, outcome: &Outcome) -> Term<'a> {
    match outcome {
        Outcome::Response { status, elapsed_us } => {
            (atoms::response(), *status, *elapsed_us).encode(env)
        }
        Outcome::Error {
            reason,
            elapsed_us,
            payload: None,
        } => (atoms::error(), reason.as_ref(), *elapsed_us).encode(env),
        Outcome::Error {
            reason,
            elapsed_us,
            payload: Some(payload),
        } => (
            atoms::error(),
            reason.as_ref(),
            *elapsed_us,
            binary(env, payload),
        )
            .encode(env),
        Outcome::Dropped(DropReason::RetriesExhausted) => {
            (atoms::dropped(), atoms::retries_exhausted()).encode(env)
        }
        Outcome::Dropped(DropReason::Closed) => (atoms::dropped(), atoms::closed()).encode(env),
        Outcome::Dropped(DropReason::Overloaded) => {
            (atoms::dropped(), atoms::overloaded()).encode(env)
        }
        Outcome::Dropped(DropReason::Expired) => (atoms::dropped(), atoms::expired()).encode(env),
        Outcome::TimedOut { elapsed_us } => (atoms::timeout(), *elapsed_us).encode(env),
        Outcome::Dropped(DropReason::Unroutable) => {
            (atoms::dropped(), atoms::unroutable()).encode(env)
        }
        Outcome::Published {
            elapsed_us,
            payload,
        } => (atoms::published(), *elapsed_us, binary(env, payload)).encode(env),
    }
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut bin = NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    bin.into()
}
