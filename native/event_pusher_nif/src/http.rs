//! The HTTP pool NIFs: `http_pool_start/2` and `http_submit/2`.

use crate::atoms;
use crate::error;
use crate::pool::PoolResource;
use crate::pools::monitored;
use crate::sink::ErlangSink;
use crate::tag::TagBlob;
use event_pusher_core::http::header::{HeaderMap, HeaderName, HeaderValue};
use event_pusher_core::http::{HttpJob, HttpPool, SubmitError};
use event_pusher_core::Bytes;
use rustler::types::ListIterator;
use rustler::{Binary, Encoder, Env, Error, LocalPid, NifResult, ResourceArc, Term};
use std::time::Duration;

/// `http_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`.
#[rustler::nif(schedule = "DirtyIo")]
fn http_pool_start<'a>(env: Env<'a>, owner: LocalPid, config: Term<'a>) -> NifResult<Term<'a>> {
    let config = match crate::config::decode(config)? {
        Ok(config) => config,
        Err(reason) => return Ok(error(env, &reason)),
    };
    let pool = match HttpPool::start(config, ErlangSink::new(owner)) {
        Ok(pool) => pool,
        Err(e) => return Ok(error(env, &e.to_string())),
    };
    Ok(monitored(
        env,
        ResourceArc::new(PoolResource { pool, owner }),
    ))
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
