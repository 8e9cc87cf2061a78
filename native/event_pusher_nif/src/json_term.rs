//! Event bodies and metadata from Erlang terms for `event_pusher_core::json`:
//! `[{Key, Value}]` lists or `#{Key => Value}` maps with atom or binary keys;
//! values binaries, numbers, or atoms (`true`/`false`/`null` become JSON
//! literals, other atoms strings: SPEC.md §3).
#![allow(dead_code)] // used by the rabbit and sns NIFs as they land

use event_pusher_core::json::Field;
use rustler::types::{ListIterator, MapIterator};
use rustler::{Binary, Error, NifResult, Term, TermType};

pub fn decode_fields(term: Term<'_>) -> NifResult<Vec<(String, Field)>> {
    match term.get_type() {
        TermType::Map => {
            let iter = MapIterator::new(term).ok_or(Error::BadArg)?;
            iter.map(|(k, v)| Ok((decode_key(k)?, decode_value(v)?)))
                .collect()
        }
        TermType::List => {
            let iter: ListIterator = term.decode()?;
            iter.map(|kv| {
                let (k, v): (Term, Term) = kv.decode()?;
                Ok((decode_key(k)?, decode_value(v)?))
            })
            .collect()
        }
        _ => Err(Error::BadArg),
    }
}

fn decode_key(term: Term<'_>) -> NifResult<String> {
    match term.get_type() {
        TermType::Atom => term.atom_to_string(),
        TermType::Binary => utf8(term),
        _ => Err(Error::BadArg),
    }
}

pub fn decode_value(term: Term<'_>) -> NifResult<Field> {
    match term.get_type() {
        TermType::Binary => Ok(Field::Str(utf8(term)?)),
        TermType::Integer => Ok(Field::Int(term.decode()?)),
        TermType::Float => Ok(Field::Float(term.decode()?)),
        TermType::Atom => {
            let name = term.atom_to_string()?;
            Ok(match name.as_str() {
                "true" => Field::Bool(true),
                "false" => Field::Bool(false),
                "null" => Field::Null,
                _ => Field::Str(name),
            })
        }
        _ => Err(Error::BadArg),
    }
}

fn utf8(term: Term<'_>) -> NifResult<String> {
    let bin: Binary = term.decode()?;
    String::from_utf8(bin.as_slice().to_vec()).map_err(|_| Error::BadArg)
}
