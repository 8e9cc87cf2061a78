//! The aws-sdk-sns client of a pool: static credentials, `region` for
//! signing, the endpoint from the config, and nothing of the SDK's own retry
//! or stall detection (the pool retries with MongooseIM's policy and bounds
//! each request itself). Building it does no I/O.

use super::SnsPoolConfig;
use aws_credential_types::Credentials;
use aws_sdk_sns::config::{
    retry::RetryConfig, BehaviorVersion, IdentityCache, Region, StalledStreamProtectionConfig,
};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use reqwest::Url;
use std::time::Duration;

/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Shown by the SDK as where the credentials came from.
const CREDENTIALS_SOURCE: &str = "mongoose_event_pusher";

/// `https://host` for a bare host (MongooseIM's `sns_host`), the URL itself
/// when it names its scheme. Errors never echo the URL.
pub fn endpoint_url(endpoint: &str) -> Result<Url, String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        return Err("endpoint must not be empty".into());
    }
    let text = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    };
    let url = Url::parse(&text).map_err(|e| format!("endpoint is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("endpoint must be a host or an http:// or https:// URL".into());
    }
    if url.host().is_none() {
        return Err("endpoint has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint must not hold credentials".into());
    }
    Ok(url)
}

pub fn build(cfg: &SnsPoolConfig) -> Result<aws_sdk_sns::Client, String> {
    let url = endpoint_url(&cfg.endpoint)?;
    let builder = aws_smithy_http_client::Builder::new()
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(cfg.pool_size);
    // Plain http needs no TLS context (and no read of the system roots).
    let http_client = if url.scheme() == "https" {
        builder
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https()
    } else {
        builder.build_http()
    };
    let credentials = Credentials::new(
        cfg.access_key_id.clone(),
        cfg.secret_access_key.0.clone(),
        None,
        None,
        CREDENTIALS_SOURCE,
    );
    // `Url` adds a trailing slash to a bare origin; the SDK joins paths itself.
    let endpoint = url.as_str().trim_end_matches('/').to_owned();
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .identity_cache(IdentityCache::no_cache())
        .http_client(http_client)
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    Ok(aws_sdk_sns::Client::from_conf(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_means_https_and_an_explicit_url_is_kept() {
        assert_eq!(
            endpoint_url("sns.eu-west-1.amazonaws.com")
                .unwrap()
                .as_str(),
            "https://sns.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:4566").unwrap().as_str(),
            "http://127.0.0.1:4566/"
        );
        assert_eq!(
            endpoint_url("https://localhost:8443/").unwrap().as_str(),
            "https://localhost:8443/"
        );
    }

    #[test]
    fn bad_endpoints_are_refused_without_echoing_them() {
        for bad in ["", "ftp://host", "http://", "http://user:pw@host"] {
            let e = endpoint_url(bad).unwrap_err();
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
