//! `event_id/0`: a new event ID (see `event_pusher_core::event_id`).

use event_pusher_core::EventId;
use rustler::{Binary, Env, NewBinary};

/// `event_id() -> <<"0190a5e2-7c1d-7b3e-9f2a-4c6d8e0f1a2b">>`.
#[rustler::nif]
fn event_id(env: Env<'_>) -> Binary<'_> {
    let text = EventId::new().text();
    let mut bin = NewBinary::new(env, text.len());
    bin.as_mut_slice().copy_from_slice(&text);
    bin.into()
}
