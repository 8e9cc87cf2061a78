//! Lists from Erlang. rustler's list iterator panics on an improper list
//! (`[a | b]`), which the VM reports as `nif_panicked`; every list a NIF
//! takes goes through [`iter`] instead, so an improper list is `badarg`
//! like any other bad term.

use rustler::types::ListIterator;
use rustler::{Decoder, NifResult, Term};

/// The items of a proper list; badarg for anything else.
pub fn iter(term: Term<'_>) -> NifResult<ListIterator<'_>> {
    // Fails for an improper list, before the iterator could panic on it.
    term.list_length()?;
    term.decode()
}

/// A proper list's items, each decoded as `T`.
pub fn decode<'a, T: Decoder<'a>>(term: Term<'a>) -> NifResult<Vec<T>> {
    iter(term)?.map(|item| item.decode()).collect()
}
