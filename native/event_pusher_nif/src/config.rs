//! Decoding `http_pool_start/2`'s config map into an `HttpPoolConfig`.
//!
//! A term of the wrong shape (missing key, wrong type) is `badarg`; a value
//! of the right type that makes no sense (`workers => 0`) is an error message
//! for the caller. Unknown keys are ignored.

use crate::atoms;
use event_pusher_core::http::{HttpPoolConfig, Secret, TlsOptions, VerifyMode};
use rustler::{Atom, Binary, Error, NifResult, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// `Ok(Err(reason))` is a config the caller should hear about; `Err` is badarg.
pub fn decode(map: Term<'_>) -> NifResult<Result<HttpPoolConfig, String>> {
    let base_url: Binary = map.map_get(atoms::base_url())?.decode()?;
    let base_url = match std::str::from_utf8(base_url.as_slice()) {
        Ok(url) => url.to_owned(),
        Err(_) => return Ok(Err("base_url is not valid UTF-8".into())),
    };
    let workers: i64 = map.map_get(atoms::workers())?.decode()?;
    let request_timeout: i64 = map.map_get(atoms::request_timeout())?.decode()?;
    let queue_capacity: i64 = map.map_get(atoms::queue_capacity())?.decode()?;
    let Some(workers) = positive(workers) else {
        return Ok(Err("workers must be a positive integer".into()));
    };
    let Some(queue_capacity) = positive(queue_capacity) else {
        return Ok(Err("queue_capacity must be a positive integer".into()));
    };
    let Ok(request_timeout) = u64::try_from(request_timeout) else {
        return Ok(Err("request_timeout must be a non-negative integer".into()));
    };
    let tls = match map.map_get(atoms::tls()) {
        Ok(tls) => match decode_tls(tls)? {
            Ok(tls) => Some(tls),
            Err(reason) => return Ok(Err(reason)),
        },
        Err(_) => None,
    };
    Ok(Ok(HttpPoolConfig {
        base_url,
        workers,
        request_timeout: Duration::from_millis(request_timeout),
        queue_capacity,
        tls,
    }))
}

fn positive(n: i64) -> Option<usize> {
    usize::try_from(n).ok().filter(|n| *n > 0)
}

fn optional<'a>(map: Term<'a>, key: Atom) -> Option<Term<'a>> {
    map.map_get(key).ok()
}

fn path(term: Term<'_>) -> NifResult<PathBuf> {
    let bytes: Binary = term.decode()?;
    Ok(PathBuf::from(OsStr::from_bytes(bytes.as_slice())))
}

pub(crate) fn decode_tls(map: Term<'_>) -> NifResult<Result<TlsOptions, String>> {
    if !map.is_map() {
        return Err(Error::BadArg);
    }
    let mut tls = TlsOptions::default();
    if let Some(mode) = optional(map, atoms::verify_mode()) {
        let mode: Atom = mode.decode()?;
        tls.verify_mode = if mode == atoms::peer() {
            VerifyMode::Peer
        } else if mode == atoms::selfsigned_peer() {
            VerifyMode::SelfsignedPeer
        } else if mode == atoms::none() {
            VerifyMode::None
        } else {
            return Ok(Err(
                "tls verify_mode must be peer, selfsigned_peer or none".into()
            ));
        };
    }
    tls.cacertfile = optional(map, atoms::cacertfile()).map(path).transpose()?;
    tls.certfile = optional(map, atoms::certfile()).map(path).transpose()?;
    tls.keyfile = optional(map, atoms::keyfile()).map(path).transpose()?;
    if let Some(password) = optional(map, atoms::password()) {
        let password: Binary = password.decode()?;
        tls.password = Some(Secret(
            String::from_utf8_lossy(password.as_slice()).into_owned(),
        ));
    }
    if let Some(versions) = optional(map, atoms::versions()) {
        let versions: Vec<Binary> = versions.decode()?;
        tls.versions = versions
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_slice()).into_owned())
            .collect();
    }
    if let Some(sni) = optional(map, atoms::server_name_indication()) {
        tls.server_name_indication = sni.decode()?;
    }
    // Keys named in place: atoms.rs is shared by every pool's decoder.
    let env = map.get_env();
    if let Some(host) = optional(map, Atom::from_str(env, "sni_host")?) {
        let host: Binary = host.decode()?;
        match std::str::from_utf8(host.as_slice()) {
            Ok(host) => tls.sni_host = Some(host.to_owned()),
            Err(_) => return Ok(Err("tls sni_host is not valid UTF-8".into())),
        }
    }
    if let Some(disconnect) = optional(map, Atom::from_str(env, "disconnect_on_failure")?) {
        tls.disconnect_on_failure = disconnect.decode()?;
    }
    Ok(Ok(tls))
}
