//! `dead_letters/3`: list, replay or purge a pool's dead letters (jobs that
//! failed for good), for a pool of any backend.

use crate::atoms;
use crate::error::NifError;
use crate::resource::any_pool;
use event_pusher_core::pool::{DeadLetterInfo, Select};
use event_pusher_core::EventId;
use rustler::{Atom, Binary, Encoder, Env, NewBinary, NifMap, NifResult, Term};

/// A letter as Erlang gets it.
#[derive(NifMap)]
struct Letter<'a> {
    id: Binary<'a>,
    tag: Term<'a>,
    reason: Binary<'a>,
    attempts: u32,
    failed_at: u64,
    target: Binary<'a>,
    size: u64,
}

/// `dead_letters(Pool, list, Limit) -> [#{id, tag, reason, attempts,
/// failed_at, target, size}]` (oldest first);
/// `dead_letters(Pool, replay | purge, all | [EventId]) -> Count`.
/// Returns in microseconds: the letters are in memory.
#[rustler::nif]
fn dead_letters<'a>(env: Env<'a>, pool: Term<'a>, op: Atom, arg: Term<'a>) -> NifResult<Term<'a>> {
    let pool = any_pool(pool)?;
    if op == atoms::list() {
        let limit: u64 = arg.decode()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let letters: Vec<Term<'a>> = pool
            .dead_letters(limit)
            .iter()
            .map(|letter| encode(env, letter))
            .collect();
        return Ok(letters.encode(env));
    }
    let select = select(arg)?;
    let count = if op == atoms::replay() {
        pool.replay_dead_letters(&select)
    } else if op == atoms::purge() {
        pool.purge_dead_letters(&select)
    } else {
        return Err(NifError::BadArg.into());
    };
    Ok(count.encode(env))
}

fn select(arg: Term<'_>) -> NifResult<Select> {
    if let Ok(atom) = arg.decode::<Atom>() {
        return if atom == atoms::all() {
            Ok(Select::All)
        } else {
            Err(NifError::BadArg.into())
        };
    }
    crate::list::iter(arg)?
        .map(|id| {
            let id: Binary = id.decode()?;
            EventId::parse(id.as_slice()).ok_or(rustler::Error::BadArg)
        })
        .collect::<NifResult<Vec<_>>>()
        .map(Select::Ids)
}

fn encode<'a>(env: Env<'a>, letter: &DeadLetterInfo<crate::tag::TagBlob>) -> Term<'a> {
    Letter {
        id: bytes(env, &letter.id.text()),
        tag: letter.tag.load(env),
        reason: bytes(env, letter.reason.as_bytes()),
        attempts: letter.attempts,
        failed_at: letter.failed_at_ms,
        target: bytes(env, letter.target.as_bytes()),
        size: letter.size as u64,
    }
    .encode(env)
}

fn bytes<'a>(env: Env<'a>, data: &[u8]) -> Binary<'a> {
    let mut bin = NewBinary::new(env, data.len());
    bin.as_mut_slice().copy_from_slice(data);
    bin.into()
}
