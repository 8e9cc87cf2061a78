//! The RabbitMQ pool NIFs: `rabbit_pool_start/2`, `rabbit_declare_exchanges/4`
//! and `rabbit_publish/2`, and the pool resource, closed when its owner dies
//! (monitor) or when the last reference is collected.
//!
//! Besides the outcome batches every pool sends, a rabbit pool sends its
//! owner `{mongoose_event_pusher_nif, event, EventTag, {connection, opened |
//! closed | {failed, Reason}}}`, and answers a declaration to the process
//! that asked with `{mongoose_event_pusher_nif, declared, Ref, ok | {error,
//! [{Name, Reason}]}}`; both from the pool's reporter thread, in order with
//! the outcomes.

use crate::json_term::decode_fields;
use crate::pools::{monitored, ManagedPool};
use crate::sink::{CloseNotice, ErlangSink};
use crate::tag::{TagBlob, TagCache};
use crate::{atoms, error};
use event_pusher_core::http::Secret;
use event_pusher_core::rabbit::{
    ConnectionEvent, DeclareResult, ExchangeSpec, PoolEvents, RabbitPool, RabbitPoolConfig,
    SubmitError,
};
use event_pusher_core::Bytes;
use rustler::env::SavedTerm;
use rustler::types::ListIterator;
use rustler::{
    Atom, Binary, Encoder, Env, Error, LocalPid, Monitor, NifResult, OwnedBinary, OwnedEnv,
    Resource, ResourceArc, Term, TermType,
};
use std::time::Duration;

mod keys {
    rustler::atoms! {
        // config
        host,
        port,
        username,
        virtual_host,
        confirms_enabled,
        reconnect_attempts,
        reconnect_delay,
        confirm_timeout,
        event_tag,
        // messages
        event,
        declared,
        connection,
        opened,
        failed,
        // stats
        confirmed,
        nacked,
        republished,
        confirm_timeouts,
        connections_opened,
        connections_failed,
    }
}

/// Drain granted to a pool whose owner died without closing it: results can
/// no longer be reported, but accepted messages may still be published.
const OWNER_GONE_DRAIN: Duration = event_pusher_core::rabbit::DROP_DRAIN;

pub struct RabbitPoolResource {
    pub pool: RabbitPool<TagBlob>,
    pub owner: LocalPid,
    /// Its tags are all alike: encoded once (see `tag`).
    pub tags: TagCache,
}

#[rustler::resource_impl]
impl Resource for RabbitPoolResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.owner_gone();
    }
}

impl ManagedPool for RabbitPoolResource {
    fn stats(&self) -> Vec<(Atom, u64)> {
        let s = self.pool.stats();
        vec![
            (atoms::submitted(), s.submitted),
            (atoms::published(), s.published),
            (keys::confirmed(), s.confirmed),
            (keys::nacked(), s.nacked),
            (keys::republished(), s.republished),
            (keys::confirm_timeouts(), s.confirm_timeouts),
            (atoms::queued(), s.queued),
            (atoms::in_flight(), s.in_flight),
            (atoms::dropped_overloaded(), s.dropped_overloaded),
            (atoms::dropped_closed(), s.dropped_closed),
            (
                atoms::dropped_retries_exhausted(),
                s.dropped_retries_exhausted,
            ),
            (keys::connections_opened(), s.connections_opened),
            (keys::connections_failed(), s.connections_failed),
            (atoms::panics(), s.panics),
        ]
    }

    fn close(&self, drain: Duration, notice: CloseNotice) {
        self.pool.close(drain, move |report| notice.send(report));
    }

    fn owner(&self) -> LocalPid {
        self.owner
    }

    fn owner_gone(&self) {
        self.pool.close(OWNER_GONE_DRAIN, |_| {});
    }
}

/// `rabbit_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`. Reads
/// TLS files (a dirty scheduler); connects in the background.
#[rustler::nif(schedule = "DirtyIo")]
fn rabbit_pool_start<'a>(env: Env<'a>, owner: LocalPid, config: Term<'a>) -> NifResult<Term<'a>> {
    let event_tag = config.map_get(keys::event_tag())?;
    let config = match decode_config(config)? {
        Ok(config) => config,
        Err(reason) => return Ok(error(env, &reason)),
    };
    let events = ErlangEvents {
        owner,
        tag: event_tag.to_binary(),
        env: OwnedEnv::new(),
    };
    let pool = match RabbitPool::start(config, ErlangSink::new(owner), events) {
        Ok(pool) => pool,
        Err(e) => return Ok(error(env, &e.to_string())),
    };
    let resource = ResourceArc::new(RabbitPoolResource {
        pool,
        owner,
        tags: TagCache::default(),
    });
    Ok(monitored(env, resource))
}

/// `rabbit_declare_exchanges(Pool, Ref, [{Name, Type, Durable}], TimeoutMs) -> ok`;
/// the calling process later gets `{mongoose_event_pusher_nif, declared, Ref, Result}`
/// (it is the one waiting for it, e.g. a module starting).
#[rustler::nif]
fn rabbit_declare_exchanges<'a>(
    env: Env<'a>,
    pool: ResourceArc<RabbitPoolResource>,
    reference: Term<'a>,
    exchanges: Term<'a>,
    timeout_ms: u64,
) -> NifResult<Term<'a>> {
    if reference.get_type() != TermType::Ref {
        return Err(Error::BadArg);
    }
    let iter: ListIterator = exchanges.decode()?;
    let exchanges = iter
        .map(|item| {
            let (name, kind, durable): (Term, Term, bool) = item.decode()?;
            Ok(ExchangeSpec {
                name: utf8(name)?,
                kind: utf8(kind)?,
                durable,
            })
        })
        .collect::<NifResult<Vec<_>>>()?;
    let notice = DeclareNotice::new(env.pid(), reference);
    pool.pool.declare_exchanges(
        exchanges,
        Duration::from_millis(timeout_ms),
        move |result| notice.send(result),
    );
    Ok(atoms::ok().encode(env))
}

/// `rabbit_publish(Pool, {Tag, Exchange, RoutingKey, Fields, Metadata})
///  -> ok | {error, overloaded | closed}`. The body is the JSON object of
/// Fields with Metadata merged over them.
#[rustler::nif]
fn rabbit_publish<'a>(
    env: Env<'a>,
    pool: ResourceArc<RabbitPoolResource>,
    message: Term<'a>,
) -> NifResult<Term<'a>> {
    let (tag, exchange, routing_key, fields, metadata): (Term, Binary, Binary, Term, Term) =
        message.decode()?;
    let exchange = std::str::from_utf8(exchange.as_slice()).map_err(|_| Error::BadArg)?;
    let routing_key = std::str::from_utf8(routing_key.as_slice()).map_err(|_| Error::BadArg)?;
    let body =
        event_pusher_core::json::encode_object(decode_fields(fields)?, decode_fields(metadata)?);
    let result = pool.pool.publish(
        pool.tags.blob(tag),
        exchange,
        routing_key,
        Bytes::from(body),
    );
    Ok(match result {
        Ok(()) => atoms::ok().encode(env),
        Err(SubmitError::Overloaded) => (atoms::error(), atoms::overloaded()).encode(env),
        Err(SubmitError::Closed) => (atoms::error(), atoms::closed()).encode(env),
        // AMQP short strings hold at most 255 bytes.
        Err(SubmitError::TooLong) => return Err(Error::BadArg),
    })
}

/// Connection events to the owner, tagged with the pool's EventTag.
struct ErlangEvents {
    owner: LocalPid,
    /// `term_to_binary(EventTag)`, decoded for each message.
    tag: OwnedBinary,
    env: OwnedEnv,
}

impl PoolEvents for ErlangEvents {
    fn connection(&mut self, event: ConnectionEvent) {
        let tag = &self.tag;
        // A failed send means the owner is gone: nobody is left to tell.
        let _ = self.env.send_and_clear(&self.owner, |env| {
            // SAFETY: the bytes come from `enif_term_to_binary` in this VM
            // and were never modified, which is what the trusted decoder requires.
            let tag = match unsafe { env.binary_to_term_trusted(tag.as_slice()) } {
                Some((term, _)) => term,
                None => rustler::types::atom::undefined().encode(env),
            };
            let event = match &event {
                ConnectionEvent::Opened => keys::opened().encode(env),
                ConnectionEvent::Closed => atoms::closed().encode(env),
                ConnectionEvent::Failed(reason) => (keys::failed(), reason.as_str()).encode(env),
            };
            (
                atoms::mongoose_event_pusher_nif(),
                keys::event(),
                tag,
                (keys::connection(), event),
            )
        });
    }
}

/// `{mongoose_event_pusher_nif, declared, Ref, ok | {error, [{Name, Reason}]}}`.
struct DeclareNotice {
    owner: LocalPid,
    env: OwnedEnv,
    reference: SavedTerm,
}

impl DeclareNotice {
    fn new(owner: LocalPid, reference: Term<'_>) -> DeclareNotice {
        let env = OwnedEnv::new();
        let reference = env.save(reference);
        DeclareNotice {
            owner,
            env,
            reference,
        }
    }

    fn send(mut self, result: DeclareResult) {
        let reference = self.reference;
        let _ = self.env.send_and_clear(&self.owner, |env| {
            let answer = match &result {
                Ok(()) => atoms::ok().encode(env),
                Err(failures) => {
                    let failures: Vec<Term> = failures
                        .iter()
                        .map(|f| (f.exchange.as_str(), f.reason.as_str()).encode(env))
                        .collect();
                    (atoms::error(), failures).encode(env)
                }
            };
            (
                atoms::mongoose_event_pusher_nif(),
                keys::declared(),
                reference.load(env),
                answer,
            )
        });
    }
}

fn utf8(term: Term<'_>) -> NifResult<String> {
    let bin: Binary = term.decode()?;
    String::from_utf8(bin.as_slice().to_vec()).map_err(|_| Error::BadArg)
}

/// `Ok(Err(reason))` is a config the caller should hear about; `Err` is
/// badarg. Unknown keys are ignored. Reasons never hold the password.
fn decode_config(map: Term<'_>) -> NifResult<Result<RabbitPoolConfig, String>> {
    if !map.is_map() {
        return Err(Error::BadArg);
    }
    let get = |key: Atom| map.map_get(key);
    let host: Binary = get(keys::host())?.decode()?;
    let port: i64 = get(keys::port())?.decode()?;
    let username: Binary = get(keys::username())?.decode()?;
    let password: Binary = get(atoms::password())?.decode()?;
    let virtual_host: Binary = get(keys::virtual_host())?.decode()?;
    let confirms_enabled: bool = get(keys::confirms_enabled())?.decode()?;
    let reconnect_attempts: i64 = get(keys::reconnect_attempts())?.decode()?;
    let reconnect_delay: i64 = get(keys::reconnect_delay())?.decode()?;
    let workers: i64 = get(atoms::workers())?.decode()?;
    let queue_capacity: i64 = get(atoms::queue_capacity())?.decode()?;
    let confirm_timeout: i64 = get(keys::confirm_timeout())?.decode()?;
    let tls = match get(atoms::tls()) {
        Ok(tls) => match crate::config::decode_tls(tls)? {
            Ok(tls) => Some(tls),
            Err(reason) => return Ok(Err(reason)),
        },
        Err(_) => None,
    };
    let text = |bin: &Binary, name: &str| {
        String::from_utf8(bin.as_slice().to_vec()).map_err(|_| format!("{name} is not valid UTF-8"))
    };
    Ok((|| -> Result<RabbitPoolConfig, String> {
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or("port must be in 1..65535")?;
        let reconnect_attempts = u32::try_from(reconnect_attempts)
            .map_err(|_| "reconnect_attempts must be a non-negative integer")?;
        let reconnect_delay = u64::try_from(reconnect_delay)
            .map_err(|_| "reconnect_delay must be a non-negative integer")?;
        let confirm_timeout = u64::try_from(confirm_timeout)
            .ok()
            .filter(|t| *t > 0)
            .ok_or("confirm_timeout must be a positive integer")?;
        Ok(RabbitPoolConfig {
            host: text(&host, "host")?,
            port,
            username: text(&username, "username")?,
            // The password is never echoed, even when it is not UTF-8.
            password: Secret(
                String::from_utf8(password.as_slice().to_vec())
                    .map_err(|_| "password is not valid UTF-8")?,
            ),
            virtual_host: text(&virtual_host, "virtual_host")?,
            confirms_enabled,
            reconnect_attempts,
            reconnect_delay: Duration::from_millis(reconnect_delay),
            workers: positive(workers, "workers")?,
            queue_capacity: positive(queue_capacity, "queue_capacity")?,
            confirm_timeout: Duration::from_millis(confirm_timeout),
            tls,
        })
    })())
}

fn positive(n: i64, name: &str) -> Result<usize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{name} must be a positive integer"))
}
