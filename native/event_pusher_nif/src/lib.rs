//! Rustler NIF `mongoose_event_pusher_nif`: decodes Erlang terms into
//! `event_pusher_core` types, calls the core, and encodes the answers.
//!
//! Every NIF returns in microseconds; the slow part (reading TLS files at pool
//! start) runs on a dirty I/O scheduler. Results reach the pool's owner as
//! messages sent from the pool's reporter thread, never from a scheduler.

mod atoms;
mod config;
mod pool;
mod sink;

use event_pusher_core::http::header::{HeaderMap, HeaderName, HeaderValue};
use event_pusher_core::http::{HttpJob, HttpPool, SubmitError};
use event_pusher_core::Bytes;
use pool::PoolResource;
use rustler::types::ListIterator;
use rustler::{Binary, Encoder, Env, Error, LocalPid, NifResult, ResourceArc, Term, TermType};
use sink::{CloseNotice, ErlangSink, TagBlob};
use std::time::Duration;

/// `http_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`.
#[rustler::nif(schedule = "DirtyIo")]
fn http_pool_start<'a>(env: Env<'a>, owner: LocalPid, config: Term<'a>) -> NifResult<Term<'a>> {
    let config = match config::decode(config)? {
        Ok(config) => config,
        Err(reason) => return Ok(error(env, &reason)),
    };
    let pool = match HttpPool::start(config, ErlangSink::new(owner)) {
        Ok(pool) => pool,
        Err(e) => return Ok(error(env, &e.to_string())),
    };
    let resource = ResourceArc::new(PoolResource { pool, owner });
    // The pool lives as long as its owner: when the owner dies, `down` closes it.
    if resource.monitor(Some(env), &owner).is_none() {
        resource.pool.close(pool::OWNER_GONE_DRAIN, |_| {});
        return Ok(error(env, "owner is not alive"));
    }
    Ok((atoms::ok(), resource).encode(env))
}

/// `http_submit(Pool, {Tag, Path, Headers, Body, MaxRetries, RetryBaseMs})
///  -> ok | {error, overloaded | closed}`.
#[rustler::nif]
fn http_submit<'a>(
    env: Env<'a>,
    pool: ResourceArc<PoolResource>,
    job: Term<'a>,
) -> NifResult<Term<'a>> {
    let (tag, path, headers, body, max_retries, retry_base_ms): (
        Term,
        Binary,
        Term,
        Binary,
        u32,
        u64,
    ) = job.decode()?;
    let path = std::str::from_utf8(path.as_slice()).map_err(|_| Error::BadArg)?;
    let job = HttpJob {
        tag: TagBlob::new(tag),
        path,
        headers: decode_headers(headers)?,
        body: Bytes::copy_from_slice(body.as_slice()),
        max_retries,
        retry_base: Duration::from_millis(retry_base_ms),
    };
    Ok(match pool.pool.submit(job) {
        Ok(()) => atoms::ok().encode(env),
        Err(SubmitError::Overloaded) => (atoms::error(), atoms::overloaded()).encode(env),
        Err(SubmitError::Closed) => (atoms::error(), atoms::closed()).encode(env),
        Err(SubmitError::InvalidPath) => return Err(Error::BadArg),
    })
}

/// `pool_stats(Pool) -> #{atom() => non_neg_integer()}`.
#[rustler::nif]
fn pool_stats(env: Env<'_>, pool: ResourceArc<PoolResource>) -> NifResult<Term<'_>> {
    let s = pool.pool.stats();
    let keys = [
        atoms::submitted(),
        atoms::sent(),
        atoms::rejected(),
        atoms::failed_attempts(),
        atoms::retried(),
        atoms::dropped_overloaded(),
        atoms::dropped_closed(),
        atoms::dropped_retries_exhausted(),
        atoms::queued(),
        atoms::in_flight(),
        atoms::panics(),
    ];
    let values = [
        s.submitted,
        s.sent,
        s.rejected,
        s.failed_attempts,
        s.retried,
        s.dropped_overloaded,
        s.dropped_closed,
        s.dropped_retries_exhausted,
        s.queued,
        s.in_flight,
        s.panics,
    ];
    Term::map_from_arrays(env, &keys, &values)
}

/// `pool_close(Pool, Ref, DrainMs) -> ok`; the owner later gets
/// `{mongoose_event_pusher_nif, closed, Ref, #{dropped => N}}`.
#[rustler::nif]
fn pool_close<'a>(
    env: Env<'a>,
    pool: ResourceArc<PoolResource>,
    reference: Term<'a>,
    drain_ms: u64,
) -> NifResult<Term<'a>> {
    if reference.get_type() != TermType::Ref {
        return Err(Error::BadArg);
    }
    let notice = CloseNotice::new(pool.owner, reference);
    pool.pool
        .close(Duration::from_millis(drain_ms), move |report| {
            notice.send(report)
        });
    Ok(atoms::ok().encode(env))
}

fn decode_headers(list: Term<'_>) -> NifResult<HeaderMap> {
    let iter: ListIterator = list.decode()?;
    let mut headers = HeaderMap::new();
    for header in iter {
        let (name, value): (Binary, Binary) = header.decode()?;
        let name = HeaderName::from_bytes(name.as_slice()).map_err(|_| Error::BadArg)?;
        let value = HeaderValue::from_bytes(value.as_slice()).map_err(|_| Error::BadArg)?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn error<'a>(env: Env<'a>, reason: &str) -> Term<'a> {
    (atoms::error(), reason).encode(env)
}

rustler::init!("mongoose_event_pusher_nif");
