//! The pool resource Erlang holds: a core HTTP pool plus its owner, closed
//! when the owner dies (monitor) or when the last reference is collected.

use crate::atoms;
use crate::pools::ManagedPool;
use crate::sink::CloseNotice;
use crate::tag::TagBlob;
use event_pusher_core::http::HttpPool;
use rustler::{Atom, Env, LocalPid, Monitor, Resource};
use std::time::Duration;

/// Drain granted to a pool whose owner died without closing it: results can
/// no longer be reported, but accepted events may still be delivered.
pub const OWNER_GONE_DRAIN: Duration = event_pusher_core::http::DROP_DRAIN;

pub struct PoolResource {
    pub pool: HttpPool<TagBlob>,
    pub owner: LocalPid,
}

#[rustler::resource_impl]
impl Resource for PoolResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.owner_gone();
    }
}

impl ManagedPool for PoolResource {
    fn stats(&self) -> Vec<(Atom, u64)> {
        let s = self.pool.stats();
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
        keys.into_iter().zip(values).collect()
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
