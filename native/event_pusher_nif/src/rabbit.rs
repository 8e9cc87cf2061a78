//! The RabbitMQ pool NIFs: `rabbit_pool_start/2`, `rabbit_declare_exchanges/4`
//! and `rabbit_publish/2`.
//!
//! Besides the outcome batches every pool sends, a rabbit pool sends its
//! owner `{mongoose_event_pusher_nif, event, EventTag, {connection, opened |
//! closed | {failed, Reason}}}`, and answers a declaration to the process
//! that asked with `{mongoose_event_pusher_nif, declared, Ref, ok | {error,
//! [{Name, Reason}]}}`; both from the pool's reporter thread, in order with
//! the outcomes (see `reply`).

use crate::atoms;
use crate::config;
use crate::error::NifError;
use crate::json_term::{decode_fields, utf8};
use crate::reply::Reply;
use crate::resource::{RabbitResource, Started};
use event_pusher_core::rabbit::{ExchangeSpec, PublishOptions, RabbitPool};
use event_pusher_core::Bytes;
use rustler::{Atom, Binary, Encoder, Env, Error, LocalPid, NifResult, NifTuple, Term, TermType};
use std::time::Duration;

/// `rabbit_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`. Reads
/// TLS files (a dirty scheduler); connects in the background.
#[rustler::nif(schedule = "DirtyIo")]
fn rabbit_pool_start(env: Env<'_>, owner: LocalPid, config: Term<'_>) -> Started<RabbitResource> {
    let spool = crate::spool::config(config)?;
    let (config, event_tag) = config::rabbit(config)?;
    let events = Reply::keyed(owner, event_tag);
    let pool = match spool {
        Some(spool) => RabbitPool::start_spooled(config, &spool, Reply::to(owner), events),
        None => RabbitPool::start(config, Reply::to(owner), events),
    };
    RabbitResource::start(env, owner, pool)
}

/// `{Name, Type, Durable}`, e.g. `{<<"presence">>, <<"topic">>, false}`.
#[derive(NifTuple)]
#[rustler(decode)]
struct Exchange<'a> {
    name: Term<'a>,
    kind: Term<'a>,
    durable: bool,
}

/// `rabbit_declare_exchanges(Pool, Ref, [{Name, Type, Durable}], TimeoutMs) -> ok`;
/// the calling process later gets `{mongoose_event_pusher_nif, declared, Ref, Result}`
/// (it is the one waiting for it, e.g. a module starting).
#[rustler::nif]
fn rabbit_declare_exchanges<'a>(
    env: Env<'a>,
    pool: &'a RabbitResource,
    reference: Term<'a>,
    exchanges: Term<'a>,
    timeout_ms: u64,
) -> NifResult<Atom> {
    if reference.get_type() != TermType::Ref {
        return Err(Error::BadArg);
    }
    let exchanges = exchange_specs(exchanges)?;
    let reply = Reply::keyed(env.pid(), reference);
    pool.pool.declare_exchanges(
        exchanges,
        Duration::from_millis(timeout_ms),
        move |result| reply.declared(result),
    );
    Ok(atoms::ok())
}

fn exchange_specs(list: Term<'_>) -> Result<Vec<ExchangeSpec>, NifError> {
    let exchanges: Vec<Exchange> = crate::list::decode(list)?;
    exchanges
        .into_iter()
        .map(|exchange| {
            Ok(ExchangeSpec {
                name: utf8(exchange.name)?,
                kind: utf8(exchange.kind)?,
                durable: exchange.durable,
            })
        })
        .collect()
}

/// `rabbit_publish(Pool, {Tag, Exchange, RoutingKey, Fields, Metadata})` or
/// `rabbit_publish(Pool, {Tag, Exchange, RoutingKey, Fields, Metadata, Wire})`
///  -> ok | {error, overloaded | closed}`. The body is the JSON object of
/// Fields with Metadata merged over them. `Wire` is `{EventProperties,
/// Persistent, Mandatory}`: two booleans and `false` or the unroutable retry
/// time in ms (see `rabbit::PublishOptions`); without it, none of them.
#[rustler::nif]
fn rabbit_publish<'a>(pool: &'a RabbitResource, message: Term<'a>) -> NifResult<Atom> {
    let (tag, exchange, routing_key, fields, metadata, options) =
        match rustler::types::tuple::get_tuple(message)?.len() {
            6 => {
                let (tag, exchange, routing_key, fields, metadata, wire): (
                    Term,
                    Binary,
                    Binary,
                    Term,
                    Term,
                    Term,
                ) = message.decode()?;
                (
                    tag,
                    exchange,
                    routing_key,
                    fields,
                    metadata,
                    wire_options(wire)?,
                )
            }
            _ => {
                let (tag, exchange, routing_key, fields, metadata): (
                    Term,
                    Binary,
                    Binary,
                    Term,
                    Term,
                ) = message.decode()?;
                let options = PublishOptions::default();
                (tag, exchange, routing_key, fields, metadata, options)
            }
        };
    let exchange = std::str::from_utf8(exchange.as_slice()).map_err(|_| Error::BadArg)?;
    let routing_key = std::str::from_utf8(routing_key.as_slice()).map_err(|_| Error::BadArg)?;
    let body =
        event_pusher_core::json::encode_object(decode_fields(fields)?, decode_fields(metadata)?);
    // An exchange or routing key over AMQP's 255 bytes is badarg.
    pool.pool
        .publish_with(
            pool.tags.blob(tag),
            exchange,
            routing_key,
            Bytes::from(body),
            options,
        )
        .map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// `{EventProperties, Persistent, false | RetryMs}`.
fn wire_options(term: Term<'_>) -> NifResult<PublishOptions> {
    let (event_properties, persistent, mandatory): (bool, bool, Term) = term.decode()?;
    let mandatory = if mandatory == atoms::false_().encode(term.get_env()) {
        None
    } else {
        Some(Duration::from_millis(mandatory.decode::<u64>()?))
    };
    Ok(PublishOptions {
        event_properties,
        persistent,
        mandatory,
    })
}
