//! The SNS pool NIFs: `sns_pool_start/2` and `sns_publish/2`.

use crate::atoms;
use crate::config;
use crate::error::NifError;
use crate::json_term::{decode_fields, utf8};
use crate::reply::Reply;
use crate::resource::{SnsResource, Started};
use event_pusher_core::sns::{AttributeValue, SnsJob, SnsPool};
use event_pusher_core::EventId;
use rustler::{Atom, Binary, Env, Error, LocalPid, NifResult, NifUnitEnum, Term};

/// `sns_pool_start(Owner, Config) -> {ok, Pool} | {error, Reason}`. Builds the
/// SDK client (no I/O, but not a microsecond job either): a dirty scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn sns_pool_start(env: Env<'_>, owner: LocalPid, config: Term<'_>) -> Started<SnsResource> {
    let spool = crate::spool::config(config)?;
    let config = config::sns(config)?;
    let pool = match spool {
        Some(spool) => SnsPool::start_spooled(config, &spool, Reply::to(owner)),
        None => SnsPool::start(config, Reply::to(owner)),
    };
    SnsResource::start(env, owner, pool)
}

/// `sns_publish(Pool, {Tag, TopicArn, Fields, Metadata, Attributes, EventId})`
/// or `{..., EventId, Group}` `-> ok | {error, overloaded | closed}`; EventId
/// as `event_id/0` makes it; Group (a binary, the user's bare JID, or
/// `undefined`) is the `MessageGroupId` on a FIFO topic.
#[rustler::nif]
fn sns_publish<'a>(pool: &'a SnsResource, job: Term<'a>) -> NifResult<Atom> {
    let (tag, topic_arn, fields, metadata, attributes, id, group) =
        match rustler::types::tuple::get_tuple(job)?.len() {
            7 => {
                let (tag, arn, fields, metadata, attributes, id, group): (
                    Term,
                    Term,
                    Term,
                    Term,
                    Term,
                    Binary,
                    Term,
                ) = job.decode()?;
                let group = match group.atom_to_string() {
                    Ok(atom) if atom == "undefined" => None,
                    Ok(_) => return Err(Error::BadArg),
                    Err(_) => Some(utf8(group)?),
                };
                (tag, arn, fields, metadata, attributes, id, group)
            }
            _ => {
                let (tag, arn, fields, metadata, attributes, id): (
                    Term,
                    Term,
                    Term,
                    Term,
                    Term,
                    Binary,
                ) = job.decode()?;
                (tag, arn, fields, metadata, attributes, id, None)
            }
        };
    let body =
        event_pusher_core::json::encode_object(decode_fields(fields)?, decode_fields(metadata)?);
    let job = SnsJob {
        tag: pool.tags.blob(tag),
        id: EventId::parse(id.as_slice()).ok_or(Error::BadArg)?,
        topic_arn: utf8(topic_arn)?,
        // serde_json writes UTF-8; a failure here would be a bug, not bad input.
        message: String::from_utf8(body).map_err(|_| Error::BadArg)?,
        attributes: decode_attributes(attributes)?,
        group,
    };
    // An attribute the SDK cannot represent is badarg.
    pool.pool.publish(job).map_err(NifError::from)?;
    Ok(atoms::ok())
}

/// An attribute's type.
#[derive(NifUnitEnum)]
enum Kind {
    String,
    Binary,
    Number,
}

/// `[{Name, {string | binary | number, Value}}]`, names and string/number
/// values UTF-8.
fn decode_attributes(list: Term<'_>) -> Result<Vec<(String, AttributeValue)>, NifError> {
    crate::list::iter(list)?
        .map(|item| {
            let (name, (kind, value)): (Term, (Kind, Term)) = item.decode()?;
            let value = match kind {
                Kind::String => AttributeValue::String(utf8(value)?),
                Kind::Number => AttributeValue::Number(utf8(value)?),
                Kind::Binary => {
                    AttributeValue::Binary(value.decode::<Binary>()?.as_slice().to_vec())
                }
            };
            Ok((utf8(name)?, value))
        })
        .collect()
}
