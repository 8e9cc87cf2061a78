//! The SNS pool NIFs: `sns_pool_start/2` and `sns_publish/2`, and the pool
//! resource, closed when its owner dies (monitor) or when the last
//! reference is collected.

use crate::json_term::decode_fields;
use crate::pools::{monitored, ManagedPool};
use crate::sink::{CloseNotice, ErlangSink};
use crate::tag::{TagBlob, TagCache};
use crate::{atoms, error};
use event_pusher_core::http::Secret;
use event_pusher_core::sns::{
    AttributeValue, SnsJob, SnsPool, SnsPoolConfig, SubmitError, DEFAULT_REQUEST_TIMEOUT,
};
use rustler::types::ListIterator;
use rustler::{
    Atom, Binary, Encoder, Env, Error, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term,
};
use std::time::Duration;

mod keys {
    rustler::atoms! {
        // config
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        pool_size,
        retry_count,
        retry_time_ms,
        batching,
        // attribute types
        string,
        binary,
        number,
        // stats
        requests,
    }
}

/// Drain granted to a pool whose owner died without closing it: results can
/// no longer be reported, but accepted notifications may still be delivered.
const OWNER_GONE_DRAIN: Duration = event_pusher_core::sns::DROP_DRAIN;

pub struct SnsPoolResource {
    pub pool: SnsPool<TagBlob>,
    pub owner: LocalPid,
    /// Its tags are all alike: encoded once (see `tag`).
    pub tags: TagCache,
}

#[rustler::resource_impl]
impl Resource for SnsPoolResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.owner_gone();
    }
}

impl ManagedPool for SnsPoolResource {
    fn stats(&self) -> Vec<(Atom, u64)> {
        let s = self.pool.stats();
        vec![
            (atoms::submitted(), s.submitted),
            (atoms::published(), s.published),
            (atoms::rejected(), s.rejected),
            (atoms::failed_attempts(), s.failed_attempts),
            (atoms::retried(), s.retried),
            (keys::requests(), s.requests),
            (atoms::queued(), s.queued),
            (atoms::in_flight(), s.in_flight),
            (atoms::dropped_overloaded(), s.dropped_overloaded),
            (atoms::dropped_closed(), s.dropped_closed),
            (
                atoms::dropped_retries_exhausted(),
                s.dropped_retries_exhausted,
            ),
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

/// `sns_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`. Builds the
/// SDK client (no I/O, but not a microsecond job either): a dirty scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn sns_pool_start<'a>(env: Env<'a>, owner: LocalPid, config: Term<'a>) -> NifResult<Term<'a>> {
    let config = match decode_config(config)? {
        Ok(config) => config,
        Err(reason) => return Ok(error(env, &reason)),
    };
    let pool = match SnsPool::start(config, ErlangSink::new(owner)) {
        Ok(pool) => pool,
        Err(e) => return Ok(error(env, &e.to_string())),
    };
    let resource = ResourceArc::new(SnsPoolResource {
        pool,
        owner,
        tags: TagCache::default(),
    });
    Ok(monitored(env, resource))
}

/// `sns_publish(Pool, {Tag, TopicArn, Fields, Metadata, Attributes})
///  -> ok | {error, overloaded | closed}`.
#[rustler::nif]
fn sns_publish<'a>(
    env: Env<'a>,
    pool: ResourceArc<SnsPoolResource>,
    job: Term<'a>,
) -> NifResult<Term<'a>> {
    let (tag, topic_arn, fields, metadata, attributes): (Term, Term, Term, Term, Term) =
        job.decode()?;
    let body =
        event_pusher_core::json::encode_object(decode_fields(fields)?, decode_fields(metadata)?);
    let job = SnsJob {
        tag: pool.tags.blob(tag),
        topic_arn: utf8(topic_arn)?,
        // serde_json writes UTF-8; a failure here would be a bug, not bad input.
        message: String::from_utf8(body).map_err(|_| Error::BadArg)?,
        attributes: decode_attributes(attributes)?,
    };
    Ok(match pool.pool.publish(job) {
        Ok(()) => atoms::ok().encode(env),
        Err(SubmitError::Overloaded) => (atoms::error(), atoms::overloaded()).encode(env),
        Err(SubmitError::Closed) => (atoms::error(), atoms::closed()).encode(env),
        Err(SubmitError::InvalidAttribute) => return Err(Error::BadArg),
    })
}

/// `[{Name, {string | binary | number, Value}}]`, names and string/number
/// values UTF-8.
fn decode_attributes(list: Term<'_>) -> NifResult<Vec<(String, AttributeValue)>> {
    let iter: ListIterator = list.decode()?;
    iter.map(|item| {
        let (name, (kind, value)): (Term, (Atom, Term)) = item.decode()?;
        let value = if kind == keys::string() {
            AttributeValue::String(utf8(value)?)
        } else if kind == keys::number() {
            AttributeValue::Number(utf8(value)?)
        } else if kind == keys::binary() {
            let bytes: Binary = value.decode()?;
            AttributeValue::Binary(bytes.as_slice().to_vec())
        } else {
            return Err(Error::BadArg);
        };
        Ok((utf8(name)?, value))
    })
    .collect()
}

fn utf8(term: Term<'_>) -> NifResult<String> {
    let bin: Binary = term.decode()?;
    String::from_utf8(bin.as_slice().to_vec()).map_err(|_| Error::BadArg)
}

/// `Ok(Err(reason))` is a config the caller should hear about; `Err` is badarg.
/// Unknown keys are ignored. Reasons never hold the secret key.
fn decode_config(map: Term<'_>) -> NifResult<Result<SnsPoolConfig, String>> {
    if !map.is_map() {
        return Err(Error::BadArg);
    }
    let text = |key: Atom, name: &str| -> NifResult<Result<String, String>> {
        let bin: Binary = map.map_get(key)?.decode()?;
        Ok(String::from_utf8(bin.as_slice().to_vec())
            .map_err(|_| format!("{name} is not valid UTF-8")))
    };
    let int = |key: Atom| -> NifResult<i64> { map.map_get(key)?.decode() };
    let endpoint = text(keys::endpoint(), "endpoint")?;
    let region = text(keys::region(), "region")?;
    let access_key_id = text(keys::access_key_id(), "access_key_id")?;
    let secret_access_key = text(keys::secret_access_key(), "secret_access_key")?;
    let pool_size = int(keys::pool_size())?;
    let retry_count = int(keys::retry_count())?;
    let retry_time_ms = int(keys::retry_time_ms())?;
    let batching: bool = map.map_get(keys::batching())?.decode()?;
    let queue_capacity = int(atoms::queue_capacity())?;
    let request_timeout = match map.map_get(atoms::request_timeout()) {
        Ok(term) => Some(term.decode::<i64>()?),
        Err(_) => None,
    };
    Ok((|| {
        let pool_size = positive(pool_size, "pool_size")?;
        let queue_capacity = positive(queue_capacity, "queue_capacity")?;
        let retry_count = u32::try_from(retry_count)
            .map_err(|_| "retry_count must be a non-negative integer".to_owned())?;
        let retry_time_ms = non_negative(retry_time_ms, "retry_time_ms")?;
        let request_timeout = match request_timeout {
            Some(ms) => Duration::from_millis(non_negative(ms, "request_timeout")?),
            None => DEFAULT_REQUEST_TIMEOUT,
        };
        Ok(SnsPoolConfig {
            endpoint: endpoint?,
            region: region?,
            access_key_id: access_key_id?,
            secret_access_key: Secret(secret_access_key?),
            pool_size,
            retry_count,
            retry_time: Duration::from_millis(retry_time_ms),
            batching,
            queue_capacity,
            request_timeout,
        })
    })())
}

fn positive(n: i64, name: &str) -> Result<usize, String> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{name} must be a positive integer"))
}

fn non_negative(n: i64, name: &str) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("{name} must be a non-negative integer"))
}
