//! A job's tag: the Erlang term the owner gets back with the job's outcome,
//! carried through the core as `term_to_binary(Tag)` (the core never holds an
//! Erlang term).
//!
//! Encoding a tag at submit and decoding it in the reporter is a large share
//! of what a publish costs the BEAM, and a rabbit or sns pool's tags are all
//! the same term (the module and its context). So a pool keeps its last tag
//! ([`TagCache`]) and shares its blob while the next one is identical, and
//! the reporter decodes a run of shared blobs once ([`Decoder`]).

use rustler::env::SavedTerm;
use rustler::{Encoder, Env, OwnedBinary, OwnedEnv, Term};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct TagBlob(Arc<OwnedBinary>);

impl TagBlob {
    pub fn new(tag: Term<'_>) -> TagBlob {
        TagBlob(Arc::new(tag.to_binary()))
    }

    /// The blob from a term's external format that a safe decode accepted
    /// (a tag read back from the spool: see `spool`).
    pub fn from_checked(bytes: &[u8]) -> Option<TagBlob> {
        let mut binary = OwnedBinary::new(bytes.len());
        binary.as_mut_slice().copy_from_slice(bytes);
        Some(TagBlob(Arc::new(binary)))
    }

    /// The term's external format.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The term again, in `env`.
    pub fn load<'a>(&self, env: Env<'a>) -> Term<'a> {
        // SAFETY: the bytes come from `enif_term_to_binary` in this VM and
        // were never modified, which is what the trusted decoder requires.
        match unsafe { env.binary_to_term_trusted(self.0.as_slice()) } {
            Some((term, _)) => term,
            None => rustler::types::atom::undefined().encode(env),
        }
    }
}

/// The last tag given to a pool, as a term (to compare) and as its blob.
#[derive(Default)]
pub struct TagCache(Mutex<Option<Cached>>);

struct Cached {
    env: OwnedEnv,
    term: SavedTerm,
    blob: TagBlob,
}

impl TagCache {
    /// The blob of `tag`: the cached one if `tag` is identical to the last
    /// tag, otherwise a new one (which becomes the cached one).
    pub fn blob(&self, tag: Term<'_>) -> TagBlob {
        // A panic while holding the lock cannot leave a half-written entry
        // (it is replaced whole), so a poisoned lock is used as it is.
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = slot.as_ref() {
            let same = cached.env.run(|env| identical(cached.term.load(env), tag));
            if same {
                return cached.blob.clone();
            }
        }
        let blob = TagBlob::new(tag);
        let env = OwnedEnv::new();
        let term = env.save(tag);
        *slot = Some(Cached {
            env,
            term,
            blob: blob.clone(),
        });
        blob
    }
}

fn identical(a: Term<'_>, b: Term<'_>) -> bool {
    // SAFETY: both terms are alive (their envs outlive this call);
    // enif_is_identical only reads them, whichever env they belong to.
    unsafe { rustler::sys::enif_is_identical(a.as_c_arg(), b.as_c_arg()) != 0 }
}

/// Decodes the tags of one batch, once per run of the same blob.
pub struct Decoder<'a> {
    env: Env<'a>,
    last: Option<(TagBlob, Term<'a>)>,
}

impl<'a> Decoder<'a> {
    pub fn new(env: Env<'a>) -> Decoder<'a> {
        Decoder { env, last: None }
    }

    pub fn decode(&mut self, tag: TagBlob) -> Term<'a> {
        if let Some((blob, term)) = &self.last {
            if Arc::ptr_eq(&blob.0, &tag.0) {
                return *term;
            }
        }
        let term = tag.load(self.env);
        self.last = Some((tag, term));
        term
    }
}
