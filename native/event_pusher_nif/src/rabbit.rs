//! The RabbitMQ pool NIFs (issue: rabbit backend). Placeholder resource until
//! the backend lands, so the generic pool NIFs can already name it.

use crate::pools::ManagedPool;
use crate::sink::CloseNotice;
use rustler::{Atom, LocalPid, Resource};
use std::time::Duration;

pub struct RabbitPoolResource {
    pub owner: LocalPid,
}

#[rustler::resource_impl]
impl Resource for RabbitPoolResource {}

impl ManagedPool for RabbitPoolResource {
    fn stats(&self) -> Vec<(Atom, u64)> {
        Vec::new()
    }

    fn close(&self, _drain: Duration, notice: CloseNotice) {
        notice.send(Default::default());
    }

    fn owner(&self) -> LocalPid {
        self.owner
    }
}
