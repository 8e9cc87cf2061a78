//! The config maps of `http_pool_start/2`, `rabbit_pool_start/2` and
//! `sns_pool_start/2`, decoded into the core's config types.
//!
//! A term of the wrong shape (not a map, a required key missing, a value of
//! the wrong type) is `badarg`: the required keys are the fields of a
//! `NifMap` struct, decoded first. A value of the right type that makes no
//! sense (`workers => 0`) is then `{error, Reason}` naming the option, the
//! options checked in the order given below. Optional keys (`tls`, its
//! options, sns `request_timeout`) are read one by one; unknown keys are
//! ignored. Reasons never hold a password or a secret key.

use crate::atoms;
use crate::error::NifError;
use event_pusher_core::http::HttpPoolConfig;
use event_pusher_core::rabbit::RabbitPoolConfig;
use event_pusher_core::secret::Secret;
use event_pusher_core::sns::{SnsPoolConfig, DEFAULT_REQUEST_TIMEOUT};
use event_pusher_core::tls::{TlsOptions, VerifyMode};
use rustler::{Atom, Binary, Decoder, NifMap, NifUnitEnum, Term};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(NifMap)]
#[rustler(decode)]
struct HttpConfig<'a> {
    base_url: Binary<'a>,
    workers: i64,
    request_timeout: i64,
    queue_capacity: i64,
}

pub fn http(map: Term<'_>) -> Result<HttpPoolConfig, NifError> {
    let c: HttpConfig = map.decode()?;
    // Fields are checked in the order they are written.
    Ok(HttpPoolConfig {
        base_url: text(c.base_url, "base_url")?,
        workers: positive(c.workers, "workers")?,
        queue_capacity: positive(c.queue_capacity, "queue_capacity")?,
        request_timeout: Duration::from_millis(non_negative(c.request_timeout, "request_timeout")?),
        tls: tls(map)?,
    })
}

#[derive(NifMap)]
#[rustler(decode)]
struct RabbitConfig<'a> {
    host: Binary<'a>,
    port: i64,
    username: Binary<'a>,
    password: Binary<'a>,
    virtual_host: Binary<'a>,
    confirms_enabled: bool,
    reconnect_attempts: i64,
    reconnect_delay: i64,
    workers: i64,
    queue_capacity: i64,
    confirm_timeout: i64,
    /// Comes back with every pool-level event.
    event_tag: Term<'a>,
}

/// The config and the pool's EventTag.
pub fn rabbit(map: Term<'_>) -> Result<(RabbitPoolConfig, Term<'_>), NifError> {
    let c: RabbitConfig = map.decode()?;
    let tls = tls(map)?;
    let port = u16::try_from(c.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(NifError::invalid("port must be in 1..65535"))?;
    let reconnect_attempts = non_negative(c.reconnect_attempts, "reconnect_attempts")?;
    let reconnect_delay = non_negative(c.reconnect_delay, "reconnect_delay")?;
    let confirm_timeout = positive(c.confirm_timeout, "confirm_timeout")?;
    // The rest in the order written.
    let config = RabbitPoolConfig {
        host: text(c.host, "host")?,
        port,
        username: text(c.username, "username")?,
        // The password is never echoed, even when it is not UTF-8.
        password: Secret(text(c.password, "password")?),
        virtual_host: text(c.virtual_host, "virtual_host")?,
        confirms_enabled: c.confirms_enabled,
        reconnect_attempts,
        reconnect_delay: Duration::from_millis(reconnect_delay),
        workers: positive(c.workers, "workers")?,
        queue_capacity: positive(c.queue_capacity, "queue_capacity")?,
        confirm_timeout: Duration::from_millis(confirm_timeout),
        tls,
    };
    Ok((config, c.event_tag))
}

#[derive(NifMap)]
#[rustler(decode)]
struct SnsConfig<'a> {
    endpoint: Binary<'a>,
    region: Binary<'a>,
    access_key_id: Binary<'a>,
    secret_access_key: Binary<'a>,
    pool_size: i64,
    retry_count: i64,
    retry_time_ms: i64,
    batching: bool,
    queue_capacity: i64,
}

pub fn sns(map: Term<'_>) -> Result<SnsPoolConfig, NifError> {
    let c: SnsConfig = map.decode()?;
    let request_timeout: Option<i64> = optional(map, atoms::request_timeout())?;
    let pool_size = positive(c.pool_size, "pool_size")?;
    let queue_capacity = positive(c.queue_capacity, "queue_capacity")?;
    let retry_count = non_negative(c.retry_count, "retry_count")?;
    let retry_time_ms = non_negative(c.retry_time_ms, "retry_time_ms")?;
    let request_timeout = match request_timeout {
        Some(ms) => Duration::from_millis(non_negative(ms, "request_timeout")?),
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    // The rest in the order written.
    Ok(SnsPoolConfig {
        endpoint: text(c.endpoint, "endpoint")?,
        region: text(c.region, "region")?,
        access_key_id: text(c.access_key_id, "access_key_id")?,
        secret_access_key: Secret(text(c.secret_access_key, "secret_access_key")?),
        pool_size,
        retry_count,
        retry_time: Duration::from_millis(retry_time_ms),
        batching: c.batching,
        queue_capacity,
        request_timeout,
    })
}

/// `tls`'s `verify_mode`.
#[derive(NifUnitEnum)]
enum Verify {
    Peer,
    SelfsignedPeer,
    None,
}

/// The optional `tls` map of an http or rabbit config; every option in it
/// is optional too, checked in the order below.
fn tls(map: Term<'_>) -> Result<Option<TlsOptions>, NifError> {
    let Some(tls) = optional::<Term>(map, atoms::tls())? else {
        return Ok(None);
    };
    if !tls.is_map() {
        return Err(NifError::BadArg);
    }
    let mut options = TlsOptions::default();
    if let Some(mode) = optional::<Term>(tls, atoms::verify_mode())? {
        options.verify_mode = match mode.decode() {
            Ok(Verify::Peer) => VerifyMode::Peer,
            Ok(Verify::SelfsignedPeer) => VerifyMode::SelfsignedPeer,
            Ok(Verify::None) => VerifyMode::None,
            Err(_) if mode.is_atom() => {
                return Err(NifError::invalid(
                    "tls verify_mode must be peer, selfsigned_peer or none",
                ))
            }
            Err(_) => return Err(NifError::BadArg),
        };
    }
    options.cacertfile = optional(tls, atoms::cacertfile())?.map(path);
    options.certfile = optional(tls, atoms::certfile())?.map(path);
    options.keyfile = optional(tls, atoms::keyfile())?.map(path);
    options.password = optional(tls, atoms::password())?.map(|p: Binary| Secret(lossy(p)));
    if let Some(versions) = optional::<Vec<Binary>>(tls, atoms::versions())? {
        options.versions = versions.into_iter().map(lossy).collect();
    }
    if let Some(sni) = optional(tls, atoms::server_name_indication())? {
        options.server_name_indication = sni;
    }
    if let Some(host) = optional(tls, atoms::sni_host())? {
        options.sni_host = Some(text(host, "tls sni_host")?);
    }
    if let Some(disconnect) = optional(tls, atoms::disconnect_on_failure())? {
        options.disconnect_on_failure = disconnect;
    }
    Ok(Some(options))
}

/// The value of an optional key: `None` when absent, `badarg` when of the
/// wrong type.
fn optional<'a, T: Decoder<'a>>(map: Term<'a>, key: Atom) -> Result<Option<T>, NifError> {
    match map.map_get(key) {
        Ok(value) => Ok(Some(value.decode()?)),
        Err(_) => Ok(None),
    }
}

fn text(bin: Binary<'_>, name: &str) -> Result<String, NifError> {
    match std::str::from_utf8(bin.as_slice()) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(NifError::invalid(format!("{name} is not valid UTF-8"))),
    }
}

fn lossy(bin: Binary<'_>) -> String {
    String::from_utf8_lossy(bin.as_slice()).into_owned()
}

fn path(bin: Binary<'_>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bin.as_slice()))
}

fn positive<T: TryFrom<i64>>(n: i64, name: &str) -> Result<T, NifError> {
    match T::try_from(n) {
        Ok(value) if n > 0 => Ok(value),
        _ => Err(NifError::invalid(format!(
            "{name} must be a positive integer"
        ))),
    }
}

fn non_negative<T: TryFrom<i64>>(n: i64, name: &str) -> Result<T, NifError> {
    T::try_from(n).map_err(|_| NifError::invalid(format!("{name} must be a non-negative integer")))
}
