//! The one error type of the NIFs, as explorer has it: a typed enum that
//! encodes itself as the `Reason` of `{error, Reason}`.
//!
//! Decoding and validation return `Result<_, NifError>`; a NIF returns
//! `NifResult<_>` and `?` turns a [`NifError`] into rustler's error: `BadArg`
//! raises `badarg`, every other variant is returned as `{error, Reason}`.
//! Any rustler decode error becomes `BadArg` (the derives raise strings or
//! `invalid_variant` for a field of the wrong type; a bad term is `badarg`).

use crate::atoms;
use event_pusher_core::pool::StartError;
use event_pusher_core::{http, rabbit, sns};
use rustler::{Atom, Encoder, Env, Term};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug)]
pub enum NifError {
    /// A term of the wrong shape: raised as `badarg`, never returned.
    BadArg,
    /// `{error, overloaded}`: the pool's queue is full.
    Overloaded,
    /// `{error, closed}`: the pool is closing or closed.
    Closed,
    /// `{error, spool_full}`: the pool's disk spool is at its byte limit.
    SpoolFull,
    /// `{error, <<"workers must be a positive integer">>}`: a config value of
    /// the right type that makes no sense. Names the option, never a secret.
    InvalidConfig(Cow<'static, str>),
    /// `{error, <<Message>>}`: the core could not start the pool.
    Start(String),
    /// `{error, <<"owner is not alive">>}`.
    OwnerNotAlive,
}

impl NifError {
    pub fn invalid(reason: impl Into<Cow<'static, str>>) -> NifError {
        NifError::InvalidConfig(reason.into())
    }
}

impl fmt::Display for NifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NifError::BadArg => "badarg",
            NifError::Overloaded => "overloaded",
            NifError::Closed => "closed",
            NifError::SpoolFull => "spool_full",
            NifError::InvalidConfig(reason) => reason,
            NifError::Start(reason) => reason,
            NifError::OwnerNotAlive => "owner is not alive",
        })
    }
}

impl std::error::Error for NifError {}

/// The `Reason` of `{error, Reason}`: an atom for a refused submit, the
/// message as a binary otherwise.
impl Encoder for NifError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            NifError::BadArg => rustler::types::atom::badarg().encode(env),
            NifError::Overloaded => atoms::overloaded().encode(env),
            NifError::Closed => atoms::closed().encode(env),
            NifError::SpoolFull => atoms::spool_full().encode(env),
            other => other.to_string().as_str().encode(env),
        }
    }
}

impl From<rustler::Error> for NifError {
    fn from(_: rustler::Error) -> NifError {
        NifError::BadArg
    }
}

impl From<NifError> for rustler::Error {
    fn from(error: NifError) -> rustler::Error {
        match error {
            NifError::BadArg => rustler::Error::BadArg,
            // A submit refused under load is per event: its reason is boxed
            // as a zero-sized value (an atom's function item), which
            // allocates nothing.
            NifError::Overloaded => rustler::Error::Term(Box::new(AtomReason(atoms::overloaded))),
            NifError::Closed => rustler::Error::Term(Box::new(AtomReason(atoms::closed))),
            NifError::SpoolFull => rustler::Error::Term(Box::new(AtomReason(atoms::spool_full))),
            other => rustler::Error::Term(Box::new(other)),
        }
    }
}

/// An atom reason, as the function of `rustler::atoms!` that makes it.
struct AtomReason<F>(F);

impl<F: Fn() -> Atom> Encoder for AtomReason<F> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        (self.0)().encode(env)
    }
}

/// Why a core pool could not start: its message, which never holds a secret.
impl From<StartError> for NifError {
    fn from(error: StartError) -> NifError {
        NifError::Start(error.to_string())
    }
}

/// Why a core pool refused a job: `{error, overloaded | closed | spool_full}`, or a job no
/// request can carry (too long a path, exchange or routing key; an attribute
/// SNS cannot hold), which is a bad argument.
macro_rules! from_submit_error {
    ($($backend:ident :: $unfit:ident),*) => {$(
        impl From<$backend::SubmitError> for NifError {
            fn from(error: $backend::SubmitError) -> NifError {
                match error {
                    $backend::SubmitError::Overloaded => NifError::Overloaded,
                    $backend::SubmitError::Closed => NifError::Closed,
                    $backend::SubmitError::SpoolFull => NifError::SpoolFull,
                    $backend::SubmitError::$unfit => NifError::BadArg,
                }
            }
        }
    )*};
}

from_submit_error!(http::InvalidPath, rabbit::TooLong, sns::InvalidAttribute);
