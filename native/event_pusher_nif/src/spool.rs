//! The `spool` option of a pool's config map, and how a tag goes to disk:
//! `#{dir => Binary, max_bytes => pos_integer(), fsync => never | always |
//! {interval, Ms}}` (Erlang has made `dir` the pool's own directory).
//!
//! A tag is its `term_to_binary` blob. Read back from disk it is checked
//! with the safe `binary_to_term` (no new atoms, no bad terms) before the
//! pool may decode it again: the file could have been changed by anyone.

use crate::atoms;
use crate::error::NifError;
use crate::tag::TagBlob;
use event_pusher_core::pool::spool::{Fsync, PersistTag, SpoolConfig};
use rustler::{Binary, OwnedEnv, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

impl PersistTag for TagBlob {
    fn persist(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bytes());
    }

    fn restore(bytes: &[u8]) -> Option<Self> {
        let env = OwnedEnv::new();
        let whole = env.run(|env| {
            env.binary_to_term(bytes)
                .is_some_and(|(_, used)| used == bytes.len())
        });
        if whole {
            TagBlob::from_checked(bytes)
        } else {
            None
        }
    }
}

/// The pool's spool, if its config map has one.
pub fn config(map: Term<'_>) -> Result<Option<SpoolConfig>, NifError> {
    let Ok(spool) = map.map_get(atoms::spool()) else {
        return Ok(None);
    };
    if !spool.is_map() {
        return Err(NifError::BadArg);
    }
    let dir: Binary = spool.map_get(atoms::dir())?.decode()?;
    if dir.is_empty() {
        return Err(NifError::invalid("spool directory must not be empty"));
    }
    let max_bytes: i64 = spool.map_get(atoms::max_bytes())?.decode()?;
    let max_bytes = u64::try_from(max_bytes)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(NifError::invalid(
            "spool max_bytes must be a positive integer",
        ))?;
    let fsync = fsync(spool.map_get(atoms::fsync())?)?;
    let segment_bytes = match spool.map_get(atoms::segment_bytes()) {
        Ok(n) => Some(
            u64::try_from(n.decode::<i64>()?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or(NifError::invalid(
                    "spool segment_bytes must be a positive integer",
                ))?,
        ),
        Err(_) => None,
    };
    Ok(Some(SpoolConfig {
        dir: PathBuf::from(OsStr::from_bytes(dir.as_slice())),
        max_bytes,
        fsync,
        segment_bytes,
    }))
}

fn fsync(term: Term<'_>) -> Result<Fsync, NifError> {
    if term.is_atom() {
        let atom: rustler::Atom = term.decode()?;
        return if atom == atoms::never() {
            Ok(Fsync::Never)
        } else if atom == atoms::always() {
            Ok(Fsync::Always)
        } else {
            Err(NifError::invalid(
                "spool fsync must be never, always or {interval, Ms}",
            ))
        };
    }
    let (kind, ms): (rustler::Atom, i64) = term.decode()?;
    match u64::try_from(ms) {
        Ok(ms) if kind == atoms::interval() && ms > 0 => {
            Ok(Fsync::Interval(Duration::from_millis(ms)))
        }
        _ => Err(NifError::invalid(
            "spool fsync interval must be a positive integer (ms)",
        )),
    }
}
