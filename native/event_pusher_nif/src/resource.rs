//! The pool resource Erlang holds, one generic type for every backend: a core
//! pool and its owner (the process that gets its messages), closed when the
//! owner dies (monitor) or when the last reference is collected (dropping a
//! core pool closes it). Also `pool_stats/1` and `pool_close/3`, which take a
//! pool of any backend: the owner process (mongoose_event_pusher_pool)
//! treats pools alike.

use crate::atoms;
use crate::error::NifError;
use crate::reply::Reply;
use crate::tag::{TagBlob, TagCache};
use event_pusher_core::http::{self, HttpPool};
use event_pusher_core::pool::{DeadLetterInfo, Select};
use event_pusher_core::rabbit::{self, RabbitPool};
use event_pusher_core::sns::{self, SnsPool};
use event_pusher_core::CloseReport;
use rustler::{Atom, Env, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term, TermType};
use std::time::Duration;

/// What the NIF needs of a core pool; implemented for each backend's pool
/// type below by [`impl_pool!`].
pub trait Pool: Send + Sync + Sized + 'static {
    /// Drain granted to a pool whose owner died without closing it: results
    /// can no longer be reported, but accepted work may still go out.
    const OWNER_GONE_DRAIN: Duration;
    /// `pool_stats/1`'s map: `#{atom() => non_neg_integer()}`.
    fn stats<'a>(&self, env: Env<'a>) -> NifResult<Term<'a>>;
    /// Stop taking work, drain for at most `drain`, then call `done`.
    fn close(&self, drain: Duration, done: impl FnOnce(CloseReport) + Send + 'static);
    fn dead_letters(&self, limit: usize) -> Vec<DeadLetterInfo<TagBlob>>;
    fn replay_dead_letters(&self, select: &Select) -> u64;
    fn purge_dead_letters(&self, select: &Select) -> u64;
}

/// Implements [`Pool`] for a core pool type: its drop drain, and its stats
/// as a map whose keys are the names of its stats struct's fields (each an
/// atom in `atoms`).
macro_rules! impl_pool {
    ($pool:ident, $drain:path, [$($stat:ident),* $(,)?]) => {
        impl $crate::resource::Pool for $pool<$crate::tag::TagBlob> {
            const OWNER_GONE_DRAIN: ::std::time::Duration = $drain;

            fn stats<'a>(&self, env: ::rustler::Env<'a>) -> ::rustler::NifResult<::rustler::Term<'a>> {
                let stats = $pool::stats(self);
                let dead = $pool::dead_letter_stats(self);
                let map = ::rustler::Term::map_from_arrays(
                    env,
                    &[$($crate::atoms::$stat(),)* $crate::atoms::dead_letters(),
                      $crate::atoms::dead_lettered(), $crate::atoms::dead_letters_evicted(),
                      $crate::atoms::dead_letters_replayed(), $crate::atoms::dead_letters_purged()],
                    &[$(stats.$stat,)* dead.dead_letters, dead.dead_lettered,
                      dead.dead_letters_evicted, dead.dead_letters_replayed,
                      dead.dead_letters_purged],
                )?;
                $crate::resource::with_spool_stats(env, map, $pool::spool_stats(self))
            }

            fn dead_letters(&self, limit: usize) -> Vec<::event_pusher_core::pool::DeadLetterInfo<$crate::tag::TagBlob>> {
                $pool::dead_letters(self, limit)
            }

            fn replay_dead_letters(&self, select: &::event_pusher_core::pool::Select) -> u64 {
                $pool::replay_dead_letters(self, select)
            }

            fn purge_dead_letters(&self, select: &::event_pusher_core::pool::Select) -> u64 {
                $pool::purge_dead_letters(self, select)
            }

            fn close(
                &self,
                drain: ::std::time::Duration,
                done: impl FnOnce(::event_pusher_core::CloseReport) + Send + 'static,
            ) {
                $pool::close(self, drain, done)
            }
        }
    };
}

pub struct PoolResource<P> {
    pub pool: P,
    owner: LocalPid,
    /// The last tag submitted, encoded once (see `tag`): a rabbit or sns
    /// pool's tags are all alike.
    pub tags: TagCache,
}

pub type HttpResource = PoolResource<HttpPool<TagBlob>>;
pub type RabbitResource = PoolResource<RabbitPool<TagBlob>>;
pub type SnsResource = PoolResource<SnsPool<TagBlob>>;

impl_pool! {
    HttpPool, http::DROP_DRAIN,
    [submitted, sent, rejected, failed_attempts, retried, dropped_overloaded, dropped_closed,
     dropped_retries_exhausted, timeouts, dropped_expired, queued, in_flight, panics]
}

impl_pool! {
    RabbitPool, rabbit::DROP_DRAIN,
    [submitted, published, confirmed, nacked, republished, confirm_timeouts, queued, in_flight,
     dropped_overloaded, dropped_closed, dropped_retries_exhausted, unroutable,
     dropped_unroutable, connections_opened, connections_failed, panics]
}

impl_pool! {
    SnsPool, sns::DROP_DRAIN,
    [submitted, published, rejected, failed_attempts, retried, requests, queued, in_flight,
     dropped_overloaded, dropped_closed, dropped_retries_exhausted, panics]
}

/// A pool with a spool has its counters in its stats map too.
pub fn with_spool_stats<'a>(
    _env: Env<'a>,
    map: Term<'a>,
    spool: Option<event_pusher_core::pool::spool::SpoolStats>,
) -> NifResult<Term<'a>> {
    let Some(s) = spool else {
        return Ok(map);
    };
    let pairs = [
        (atoms::spool_bytes(), s.spool_bytes),
        (atoms::spool_events(), s.spool_events),
        (atoms::spool_waiting(), s.spool_waiting),
        (atoms::spool_replayed(), s.spool_replayed),
        (atoms::spool_corrupt(), s.spool_corrupt),
        (atoms::spool_corrupt_bytes(), s.spool_corrupt_bytes),
        (atoms::spool_skipped(), s.spool_skipped),
        (atoms::dropped_spool_full(), s.dropped_spool_full),
    ];
    pairs
        .into_iter()
        .try_fold(map, |map, (key, value)| map.map_put(key, value))
}

/// Registers each backend's resource type; from the library's `load`.
pub fn register(env: Env<'_>) -> bool {
    env.register::<HttpResource>().is_ok()
        && env.register::<RabbitResource>().is_ok()
        && env.register::<SnsResource>().is_ok()
}

impl<P: Pool> Resource for PoolResource<P> {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.owner_gone();
    }
}

/// What a `*_pool_start/2` NIF returns: `{ok, Pool}` or `{error, Reason}`.
pub type Started<R> = NifResult<(Atom, ResourceArc<R>)>;

impl<P: Pool> PoolResource<P> {
    /// `{ok, Pool}` for a pool the core started, once it monitors its owner:
    /// the pool lives as long as its owner. An owner already dead closes the
    /// pool at once.
    pub fn start<E>(env: Env<'_>, owner: LocalPid, pool: Result<P, E>) -> Started<Self>
    where
        NifError: From<E>,
    {
        let resource = ResourceArc::new(PoolResource {
            pool: pool.map_err(NifError::from)?,
            owner,
            tags: TagCache::default(),
        });
        if resource.monitor(Some(env), &owner).is_none() {
            resource.owner_gone();
            return Err(NifError::OwnerNotAlive.into());
        }
        Ok((atoms::ok(), resource))
    }

    /// Its owner died without closing it. Runs on a scheduler thread: it
    /// only signals the pool.
    fn owner_gone(&self) {
        self.pool.close(P::OWNER_GONE_DRAIN, |_| {});
    }
}

/// A pool resource of any backend, as `pool_stats/1`, `pool_close/3` and
/// `dead_letters/3` see it.
pub(crate) trait AnyPool {
    fn stats<'a>(&self, env: Env<'a>) -> NifResult<Term<'a>>;
    fn close(&self, drain: Duration, reference: Term<'_>);
    fn dead_letters(&self, limit: usize) -> Vec<DeadLetterInfo<TagBlob>>;
    fn replay_dead_letters(&self, select: &Select) -> u64;
    fn purge_dead_letters(&self, select: &Select) -> u64;
}

impl<P: Pool> AnyPool for PoolResource<P> {
    fn stats<'a>(&self, env: Env<'a>) -> NifResult<Term<'a>> {
        self.pool.stats(env)
    }

    fn dead_letters(&self, limit: usize) -> Vec<DeadLetterInfo<TagBlob>> {
        self.pool.dead_letters(limit)
    }

    fn replay_dead_letters(&self, select: &Select) -> u64 {
        self.pool.replay_dead_letters(select)
    }

    fn purge_dead_letters(&self, select: &Select) -> u64 {
        self.pool.purge_dead_letters(select)
    }

    fn close(&self, drain: Duration, reference: Term<'_>) {
        let notice = Reply::keyed(self.owner, reference);
        self.pool.close(drain, move |report| notice.closed(report));
    }
}

pub(crate) fn any_pool(term: Term<'_>) -> Result<&dyn AnyPool, NifError> {
    fn of<P: Pool>(term: Term<'_>) -> Option<&dyn AnyPool> {
        term.try_get_resource::<PoolResource<P>>()
            .map(|pool| pool as &dyn AnyPool)
    }
    of::<HttpPool<TagBlob>>(term)
        .or_else(|| of::<RabbitPool<TagBlob>>(term))
        .or_else(|| of::<SnsPool<TagBlob>>(term))
        .ok_or(NifError::BadArg)
}

/// `pool_stats(Pool) -> #{atom() => non_neg_integer()}`.
#[rustler::nif]
fn pool_stats<'a>(env: Env<'a>, pool: Term<'a>) -> NifResult<Term<'a>> {
    any_pool(pool)?.stats(env)
}

/// `pool_close(Pool, Ref, DrainMs) -> ok`; the owner later gets
/// `{mongoose_event_pusher_nif, closed, Ref, #{dropped => N}}`.
#[rustler::nif]
fn pool_close(pool: Term<'_>, reference: Term<'_>, drain_ms: u64) -> NifResult<Atom> {
    let pool = any_pool(pool)?;
    if reference.get_type() != TermType::Ref {
        return Err(rustler::Error::BadArg);
    }
    pool.close(Duration::from_millis(drain_ms), reference);
    Ok(atoms::ok())
}
