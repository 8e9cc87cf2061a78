//! The HTTP pool NIFs: `http_pool_start/2` and `http_submit/2`.

use crate::atoms;
use crate::config;
use crate::error::NifError;
use crate::reply::Reply;
use crate::resource::{HttpResource, Started};
use crate::tag::TagBlob;
use event_pusher_core::http::header::{HeaderMap, HeaderName, HeaderValue};
use event_pusher_core::http::{HttpJob, HttpPool};
use event_pusher_core::{Bytes, EventId};
use rustler::types::ListIterator;
use rustler::{Atom, Binary, Env, Error, LocalPid, NifResult, Term};
use std::time::Duration;

/// `http_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`.
#[rustler::nif(schedule = "DirtyIo")]
fn http_pool_start(env: Env<'_>, owner: LocalPid, config: Term<'_>) -> Started<HttpResource> {
    let spool = crate::spool::config(config)?;
    let config = config::http(config)?;
    let pool = match spool {
        Some(spool) => HttpPool::start_spooled(config, &spool, Reply::to(owner)),
        None => HttpPool::start(config, Reply::to(owner)),
    };
    HttpResource::start(env, owner, pool)
}

/// `http_submit(Pool, {Tag, Path, Headers, Body, MaxRetries, RetryBaseMs, EventId})
///  -> ok | {error, overloaded | closed}`; EventId as `event_id/0` makes it.
#[rustler::nif]
fn http_submit<'a>(pool: &'a HttpResource, job: Term<'a>) -> NifResult<Atom> {
    let (tag, path, headers, body, max_retries, retry_base_ms, id): (
        Term,
        Binary,
        Term,
        Binary,
        u32,
        u64,
        Binary,
    ) = job.decode()?;
    let path = std::str::from_utf8(path.as_slice()).map_err(|_| Error::BadArg)?;
    let job = HttpJob {
        tag: TagBlob::new(tag),
        id: EventId::parse(id.as_slice()).ok_or(Error::BadArg)?,
        path,
        headers: decode_headers(headers)?,
        body: Bytes::copy_from_slice(body.as_slice()),
        max_retries,
        retry_base: Duration::from_millis(retry_base_ms),
    };
    pool.pool.submit(job).map_err(NifError::from)?;
    Ok(atoms::ok())
}

fn decode_headers(list: Term<'_>) -> NifResult<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(list.list_length()?);
    let iter: ListIterator = list.decode()?;
    for header in iter {
        let (name, value): (Binary, Binary) = header.decode()?;
        let name = HeaderName::from_bytes(name.as_slice()).map_err(|_| Error::BadArg)?;
        let value = HeaderValue::from_bytes(value.as_slice()).map_err(|_| Error::BadArg)?;
        headers.append(name, value);
    }
    Ok(headers)
}
