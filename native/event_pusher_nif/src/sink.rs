//! Messages to the pool's owner: outcome batches, panics and the close
//! notice, all sent from non-scheduler threads (the pool's reporter thread or
//! a runtime thread), as `enif_send` without a caller env requires.

use crate::atoms;
use crate::tag::{Decoder, TagBlob};
use event_pusher_core::{CloseReport, DropReason, Outcome, OutcomeSink};
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

/// Sends each batch as `{mongoose_event_pusher_nif, results, [{Tag, Outcome}]}`.
pub struct ErlangSink {
    owner: LocalPid,
    env: OwnedEnv,
}

impl ErlangSink {
    pub fn new(owner: LocalPid) -> ErlangSink {
        ErlangSink {
            owner,
            env: OwnedEnv::new(),
        }
    }
}

impl OutcomeSink<TagBlob> for ErlangSink {
    fn results(&mut self, batch: &mut Vec<(TagBlob, Outcome)>) {
        // A failed send means the owner is gone: nobody is left to tell.
        let _ = self.env.send_and_clear(&self.owner, |env| {
            let mut tags = Decoder::new(env);
            let items: Vec<Term> = batch
                .drain(..)
                .map(|(tag, outcome)| (tags.decode(tag), encode_outcome(env, &outcome)).encode(env))
                .collect();
            (atoms::mongoose_event_pusher_nif(), atoms::results(), items)
        });
    }

    fn panicked(&mut self, location: &'static str) {
        let _ = self.env.send_and_clear(&self.owner, |_| {
            (atoms::mongoose_event_pusher_nif(), atoms::panic(), location)
        });
    }
}

fn encode_outcome<'a>(env: Env<'a>, outcome: &Outcome) -> Term<'a> {
    match outcome {
        Outcome::Response { status, elapsed_us } => {
            (atoms::response(), *status, *elapsed_us).encode(env)
        }
        Outcome::Error {
            reason,
            elapsed_us,
            payload: None,
        } => (atoms::error(), reason.as_ref(), *elapsed_us).encode(env),
        Outcome::Error {
            reason,
            elapsed_us,
            payload: Some(payload),
        } => (
            atoms::error(),
            reason.as_ref(),
            *elapsed_us,
            binary(env, payload),
        )
            .encode(env),
        Outcome::Dropped(DropReason::RetriesExhausted) => {
            (atoms::dropped(), atoms::retries_exhausted()).encode(env)
        }
        Outcome::Dropped(DropReason::Closed) => (atoms::dropped(), atoms::closed()).encode(env),
        Outcome::Dropped(DropReason::Overloaded) => {
            (atoms::dropped(), atoms::overloaded()).encode(env)
        }
        Outcome::Published {
            elapsed_us,
            payload,
        } => (atoms::published(), *elapsed_us, binary(env, payload)).encode(env),
    }
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> rustler::Binary<'a> {
    let mut bin = rustler::NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    bin.into()
}

/// `{mongoose_event_pusher_nif, closed, Ref, #{dropped => N}}` to the owner.
pub struct CloseNotice {
    owner: LocalPid,
    env: OwnedEnv,
    reference: SavedTerm,
}

impl CloseNotice {
    pub fn new(owner: LocalPid, reference: Term<'_>) -> CloseNotice {
        let env = OwnedEnv::new();
        let reference = env.save(reference);
        CloseNotice {
            owner,
            env,
            reference,
        }
    }

    pub fn send(mut self, report: CloseReport) {
        let reference = self.reference;
        let _ = self.env.send_and_clear(&self.owner, |env| {
            let info = Term::map_from_arrays(env, &[atoms::dropped()], &[report.dropped])
                .unwrap_or_else(|_| rustler::types::map::map_new(env));
            (
                atoms::mongoose_event_pusher_nif(),
                atoms::closed(),
                reference.load(env),
                info,
            )
        });
    }
}
