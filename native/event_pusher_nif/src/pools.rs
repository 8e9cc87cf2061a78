//! `pool_stats/1` and `pool_close/3` for every kind of pool resource: the
//! owner process (mongoose_event_pusher_pool) treats pools alike, whatever
//! backend they speak.

use crate::atoms;
use crate::sink::CloseNotice;
use rustler::{Encoder, Env, Error, NifResult, ResourceArc, Term, TermType};
use std::time::Duration;

/// What every pool resource offers the generic NIFs.
pub trait ManagedPool {
    /// Counters as `(atom name, value)` pairs.
    fn stats(&self) -> Vec<(rustler::Atom, u64)>;
    /// Stop taking work, drain for at most `drain`, then send the notice.
    fn close(&self, drain: Duration, notice: CloseNotice);
    /// The process that receives this pool's messages.
    fn owner(&self) -> rustler::LocalPid;
    /// Its owner died without closing it: results can no longer be
    /// reported, but accepted work may still go out within the pool's drop
    /// drain. Runs on a scheduler thread: it only signals the pool.
    fn owner_gone(&self);
}

/// `{ok, Pool}` for a pool just started, once it monitors its owner: the
/// pool lives as long as its owner (the resource's `down` calls
/// `owner_gone`). An owner already dead closes the pool at once.
pub fn monitored<'a, R: ManagedPool + rustler::Resource>(
    env: Env<'a>,
    resource: ResourceArc<R>,
) -> Term<'a> {
    let owner = resource.owner();
    if resource.monitor(Some(env), &owner).is_none() {
        resource.owner_gone();
        return crate::error(env, "owner is not alive");
    }
    (atoms::ok(), resource).encode(env)
}

/// Any pool resource, decoded from its term.
enum AnyPool {
    Http(ResourceArc<crate::pool::PoolResource>),
    Rabbit(ResourceArc<crate::rabbit::RabbitPoolResource>),
    Sns(ResourceArc<crate::sns::SnsPoolResource>),
}

impl AnyPool {
    fn decode(term: Term<'_>) -> NifResult<AnyPool> {
        if let Ok(p) = term.decode() {
            return Ok(AnyPool::Http(p));
        }
        if let Ok(p) = term.decode() {
            return Ok(AnyPool::Rabbit(p));
        }
        if let Ok(p) = term.decode() {
            return Ok(AnyPool::Sns(p));
        }
        Err(Error::BadArg)
    }

    fn get(&self) -> &dyn ManagedPool {
        match self {
            AnyPool::Http(p) => &**p,
            AnyPool::Rabbit(p) => &**p,
            AnyPool::Sns(p) => &**p,
        }
    }
}

/// `pool_stats(Pool) -> #{atom() => non_neg_integer()}`.
#[rustler::nif]
fn pool_stats<'a>(env: Env<'a>, pool: Term<'a>) -> NifResult<Term<'a>> {
    let pool = AnyPool::decode(pool)?;
    let (keys, values): (Vec<_>, Vec<_>) = pool.get().stats().into_iter().unzip();
    Term::map_from_arrays(env, &keys, &values)
}

/// `pool_close(Pool, Ref, DrainMs) -> ok`; the owner later gets
/// `{mongoose_event_pusher_nif, closed, Ref, #{dropped => N}}`.
#[rustler::nif]
fn pool_close<'a>(
    env: Env<'a>,
    pool: Term<'a>,
    reference: Term<'a>,
    drain_ms: u64,
) -> NifResult<Term<'a>> {
    let pool = AnyPool::decode(pool)?;
    if reference.get_type() != TermType::Ref {
        return Err(Error::BadArg);
    }
    let pool = pool.get();
    let notice = CloseNotice::new(pool.owner(), reference);
    pool.close(Duration::from_millis(drain_ms), notice);
    Ok(atoms::ok().encode(env))
}
