//! Event bodies and metadata from Erlang terms for `event_pusher_core::json`:
//! `[{Key, Value}]` lists or `#{Key => Value}` maps with atom or binary keys;
//! values binaries, numbers, or atoms (`true`/`false`/`null` become JSON
//! literals, other atoms strings: doc/compatibility.md §3), and, as jiffy encodes them,
//! lists (arrays) and maps or `{[{Key, Value}]}` (objects), nested at most
//! [`MAX_DEPTH`] deep.

use event_pusher_core::json::Field;
use rustler::types::MapIterator;
use rustler::{Binary, Error, NifResult, Term, TermType};

/// Deeper nesting is refused (badarg): a term from a user module must not
/// be able to exhaust a scheduler's stack.
const MAX_DEPTH: usize = 32;

pub fn decode_fields(term: Term<'_>) -> NifResult<Vec<(String, Field)>> {
    match term.get_type() {
        TermType::Map => decode_map(term, 0),
        TermType::List => crate::list::iter(term)?
            .map(|kv| {
                let (k, v): (Term, Term) = kv.decode()?;
                Ok((decode_key(k)?, decode_nested(v, 0)?))
            })
            .collect(),
        _ => Err(Error::BadArg),
    }
}

/// A map's pairs, keys descending: the order jiffy writes a small map in.
fn decode_map(term: Term<'_>, depth: usize) -> NifResult<Vec<(String, Field)>> {
    let iter = MapIterator::new(term).ok_or(Error::BadArg)?;
    let mut pairs = iter
        .map(|(k, v)| Ok((decode_key(k)?, decode_nested(v, depth)?)))
        .collect::<NifResult<Vec<_>>>()?;
    pairs.sort_by(|(a, _), (b, _)| b.cmp(a));
    Ok(pairs)
}

fn decode_key(term: Term<'_>) -> NifResult<String> {
    match term.get_type() {
        TermType::Atom => term.atom_to_string(),
        TermType::Binary => utf8(term),
        _ => Err(Error::BadArg),
    }
}

fn decode_nested(term: Term<'_>, depth: usize) -> NifResult<Field> {
    if depth > MAX_DEPTH {
        return Err(Error::BadArg);
    }
    match term.get_type() {
        TermType::List => Ok(Field::List(
            crate::list::iter(term)?
                .map(|item| decode_nested(item, depth + 1))
                .collect::<NifResult<_>>()?,
        )),
        TermType::Map => Ok(Field::Object(decode_map(term, depth + 1)?)),
        // jiffy's other form of an object: `{[{Key, Value}, ...]}`.
        TermType::Tuple => {
            let (pairs,): (Term,) = term.decode()?;
            Ok(Field::Object(
                crate::list::iter(pairs)?
                    .map(|kv| {
                        let (k, v): (Term, Term) = kv.decode()?;
                        Ok((decode_key(k)?, decode_nested(v, depth + 1)?))
                    })
                    .collect::<NifResult<_>>()?,
            ))
        }
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

/// A binary's text; not a UTF-8 binary is `badarg`.
pub fn utf8(term: Term<'_>) -> NifResult<String> {
    let bin: Binary = term.decode()?;
    String::from_utf8(bin.as_slice().to_vec()).map_err(|_| Error::BadArg)
}
