//! Rustler NIF `mongoose_event_pusher_nif`: decodes Erlang terms into
//! `event_pusher_core` types, calls the core, and encodes the answers.
//!
//! Every NIF returns in microseconds; the slow part (reading TLS files at pool
//! start) runs on a dirty I/O scheduler. Results reach the pool's owner as
//! messages sent from the pool's reporter thread, never from a scheduler.
//!
//! - `resource`: the pool resource (one generic type for every backend),
//!   `pool_stats/1` and `pool_close/3`; `dead_letters`: `dead_letters/3`;
//! - `http`, `rabbit`, `sns`: each backend's NIFs;
//! - `config`: the pools' config maps; `json_term`: event bodies; `list`:
//!   every list a NIF takes (an improper one is badarg);
//! - `reply`: every message to Erlang; `error`: every `{error, Reason}`;
//! - `tag`: job tags carried through the core; `event_id`: new event IDs;
//! - `spool`: a pool's disk spool option and how its tags go to disk.

mod atoms;
mod config;
mod dead_letters;
mod error;
mod event_id;
mod http;
mod json_term;
mod list;
mod rabbit;
mod reply;
mod resource;
mod sns;
mod spool;
mod tag;

use rustler::{Env, Term};

fn load(env: Env<'_>, _info: Term<'_>) -> bool {
    resource::register(env)
}

rustler::init!("mongoose_event_pusher_nif", load = load);
