//! `event_pusher_core`: the pure-Rust half of the event pusher NIF.
//!
//! Everything here is plain Rust (no rustler): one shared tokio runtime
//! ([`runtime`]), the pool runtime every backend shares ([`pool`]: bounded
//! queue, submit, drain-bounded close, supervised tasks), the backends that
//! plug their delivery into it ([`http`], [`rabbit`], [`sns`]), outcome
//! reporting to a caller-chosen sink on a batching reporter thread
//! ([`report`]), counters ([`stats`]), retry backoff ([`retry`]), TLS
//! options ([`tls`]), event IDs ([`event_id`]) and credentials kept out of logs ([`secret`]). The NIF
//! crate turns Erlang terms into these types and back; `cargo test`
//! exercises this crate against real servers without a BEAM.

pub mod background;
pub mod event_id;
pub mod http;
pub mod json;
pub mod pool;
pub mod rabbit;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod secret;
pub mod sns;
pub mod stats;
pub mod tls;

pub use bytes::Bytes;
pub use event_id::EventId;
pub use report::{CloseReport, DropReason, Outcome, OutcomeSink, Tag};
pub use stats::Stats;
