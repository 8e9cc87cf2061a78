//! The HTTP pool NIFs: `http_pool_start/2` and `http_submit/2`.

use crate::atoms;
use crate::config;
use crate::error::NifError;
use crate::reply::Reply;
use crate::resource::{HttpResource, Started};
use crate::tag::TagBlob;
use event_pusher_core::http::header::{HeaderMap, HeaderName, HeaderValue};
use event_pusher_core::http::{Delivery, HttpJob, HttpPool};
use event_pusher_core::{Bytes, EventId};
use rustler::types::tuple::get_tuple;
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

/// `http_submit(Pool, {Tag, Path, Headers, Body, MaxRetries, RetryBaseMs, EventId[, Delivery]})
///  -> ok | {error, overloaded | closed}`; EventId as `event_id/0` makes it;
/// Delivery is `{RetryOnTimeout, MaxAgeMs | infinity, RetryAfterMaxMs}`
/// (without it: no retry on timeout, no hold, Retry-After capped at 60 s).
#[rustler::nif]
fn http_submit<'a>(pool: &'a HttpResource, job: Term<'a>) -> NifResult<Atom> {
    let fields = get_tuple(job)?;
    let (delivery, fields) = match fields.len() {
        7 => (Delivery::default(), &fields[..]),
        8 => (decode_delivery(fields[7])?, &fields[..7]),
        _ => return Err(Error::BadArg),
    };
    let [tag, path, headers, body, max_retries, retry_base_ms, id] = fields else {
        return Err(Error::BadArg);
    };
    let path: Binary = path.decode()?;
    let body: Binary = body.decode()?;
    let id: Binary = id.decode()?;
    let retry_base_ms: u64 = retry_base_ms.decode()?;
    let path = std::str::from_utf8(path.as_slice()).map_err(|_| Error::BadArg)?;
    let job = HttpJob {
        tag: TagBlob::new(*tag),
        id: EventId::parse(id.as_slice()).ok_or(Error::BadArg)?,
        path,
        headers: decode_headers(*headers)?,
        body: Bytes::copy_from_slice(body.as_slice()),
        max_retries: max_retries.decode()?,
        retry_base: Duration::from_millis(retry_base_ms),
        delivery,
    };
    pool.pool.submit(job).map_err(NifError::from)?;
    Ok(atoms::ok())
}

fn decode_delivery(term: Term<'_>) -> NifResult<Delivery> {
    let (retry_on_timeout, max_age, retry_after_max_ms): (bool, Term, u64) = term.decode()?;
    let max_age = if max_age.is_atom() {
        if max_age != atoms::infinity().to_term(term.get_env()) {
            return Err(Error::BadArg);
        }
        None
    } else {
        Some(Duration::from_millis(max_age.decode()?))
    };
    Ok(Delivery {
        retry_on_timeout,
        max_age,
        retry_after_max: Duration::from_millis(retry_after_max_ms),
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
