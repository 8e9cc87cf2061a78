//! Rustler NIF `mongoose_event_pusher_nif`: decodes Erlang terms into
//! `event_pusher_core` types, calls the core, and encodes the answers.
//!
//! Every NIF returns in microseconds; the slow part (reading TLS files at pool
//! start) runs on a dirty I/O scheduler. Results reach the pool's owner as
//! messages sent from the pool's reporter thread, never from a scheduler.

mod atoms;
mod config;
mod http;
mod json_term;
mod pool;
mod pools;
mod rabbit;
mod sink;
mod sns;
mod tag;

use rustler::{Encoder, Env, Term};

pub(crate) fn error<'a>(env: Env<'a>, reason: &str) -> Term<'a> {
    (atoms::error(), reason).encode(env)
}

rustler::init!("mongoose_event_pusher_nif");
