//! The pool resource Erlang holds: a core HTTP pool plus its owner, closed
//! when the owner dies (monitor) or when the last reference is collected.

use crate::sink::TagBlob;
use event_pusher_core::http::HttpPool;
use rustler::{Env, LocalPid, Monitor, Resource};
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
    // Runs on a scheduler thread: `close` only signals the pool's dispatcher.
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.pool.close(OWNER_GONE_DRAIN, |_| {});
    }
}
