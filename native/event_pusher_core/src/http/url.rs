//! Where a job goes: the pool's `scheme://authority`, and as request target
//! the rest of `base_url` followed by the job's path, byte for byte.
//!
//! MongooseIM's HTTP client connects to the scheme, host and port of
//! `connection.host` and writes `path_prefix ++ path` on the request line as
//! it is. So the target is never resolved as a URL here: no `..` collapsing,
//! no re-encoding, no `\` to `/`. Only what an HTTP/1.1 request line cannot
//! carry is changed: a missing leading `/` is added, bytes that are never
//! valid in a request target (controls, space, `<`, `>`, `` ` ``, DEL, and `"`
//! in the query) are written as `%XX`, and a `#` ends the target (what follows
//! is a fragment, which is not sent).

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use std::borrow::Cow;
use std::str::FromStr;

/// A pool's origin and target prefix, parsed once at start.
#[derive(Debug, Clone)]
pub(crate) struct UrlBase {
    scheme: Scheme,
    authority: Authority,
    /// `base_url` after `scheme://authority`, as configured.
    prefix: String,
}

/// Why a `base_url` is refused. Never echoes the URL (it may hold credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BaseError {
    #[error("base_url is not a valid URL: no scheme://")]
    NoScheme,
    #[error("base_url must start with http:// or https://")]
    Scheme,
    #[error("base_url has no host")]
    NoHost,
    #[error("base_url is not a valid URL: invalid authority")]
    Authority,
}

impl UrlBase {
    pub fn parse(raw: &str) -> Result<UrlBase, BaseError> {
        let (scheme, rest) = raw.split_once("://").ok_or(BaseError::NoScheme)?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::HTTP
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::HTTPS
        } else {
            return Err(BaseError::Scheme);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, prefix) = rest.split_at(end);
        if authority.is_empty() {
            return Err(BaseError::NoHost);
        }
        let authority = Authority::from_str(authority).map_err(|_| BaseError::Authority)?;
        if authority.host().is_empty() {
            return Err(BaseError::NoHost);
        }
        if !valid_port(authority.as_str()) {
            return Err(BaseError::Authority);
        }
        Ok(UrlBase {
            scheme,
            authority,
            prefix: prefix.to_owned(),
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The request target for `path` in origin form (what goes on the
    /// request line), or `None` if no request line can carry it (e.g. a
    /// target longer than 64 KiB).
    pub fn target(&self, path: &str) -> Option<Uri> {
        self.path_and_query(path).map(Uri::from)
    }

    /// The absolute URI for `path` (the origin followed by the target).
    #[cfg(test)]
    pub fn with(&self, path: &str) -> Option<Uri> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query(path)?)
            .build()
            .ok()
    }

    /// `scheme://authority/`: what the connector dials.
    pub fn origin(&self) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default()
    }

    /// The `host` header a request gets when its headers have none: the
    /// host, and the port unless it is the scheme's default (what hyper's
    /// pooled client writes).
    pub fn host_header(&self) -> Option<HeaderValue> {
        let host = self.authority.host();
        let default_port = if self.is_https() { 443 } else { 80 };
        match self.authority.port_u16() {
            Some(port) if port != default_port => {
                HeaderValue::from_str(&format!("{host}:{port}")).ok()
            }
            _ => HeaderValue::from_str(host).ok(),
        }
    }

    fn path_and_query(&self, path: &str) -> Option<PathAndQuery> {
        let mut target = String::with_capacity(1 + self.prefix.len() + path.len());
        let first = self.prefix.chars().next().or_else(|| path.chars().next());
        if first != Some('/') {
            target.push('/');
        }
        target.push_str(&self.prefix);
        target.push_str(path);
        match escape(&target) {
            // The common case moves the string instead of copying it.
            Cow::Borrowed(_) => PathAndQuery::from_maybe_shared(bytes::Bytes::from(target)).ok(),
            Cow::Owned(escaped) => {
                PathAndQuery::from_maybe_shared(bytes::Bytes::from(escaped)).ok()
            }
        }
    }
}

/// The port of `[userinfo@]host[:port]` is empty or a number below 65536
/// (`http::uri::Authority` leaves that to the connector).
fn valid_port(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, port)| port),
        None => host_port.split_once(':').map(|(_, port)| port),
    };
    port.is_none_or(|p| p.is_empty() || p.parse::<u16>().is_ok())
}

/// `%XX` for the bytes a request target can never hold; everything else as is.
fn escape(target: &str) -> Cow<'_, str> {
    let query_at = target.find('?').unwrap_or(target.len());
    let needs = |i: usize, b: u8| {
        b <= 0x20 || b == 0x7f || matches!(b, b'<' | b'>' | b'`') || (b == b'"' && i > query_at)
    };
    if !target.bytes().enumerate().any(|(i, b)| needs(i, b)) {
        return Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len() + 16);
    for (i, ch) in target.char_indices() {
        let b = ch as u32;
        if b < 0x80 && needs(i, b as u8) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base: &str, path: &str) -> Option<String> {
        let base = UrlBase::parse(base).expect("base");
        let target = base.target(path).map(|uri| uri.to_string());
        let absolute = base.with(path);
        assert_eq!(
            absolute
                .as_ref()
                .and_then(|uri| uri.path_and_query())
                .map(PathAndQuery::as_str),
            target.as_deref()
        );
        target
    }

    #[test]
    fn the_target_is_prefix_then_path_byte_for_byte() {
        let base = "http://127.0.0.1:8080";
        for (prefix_and_path, expected) in [
            ("/apinotify", "/apinotify"),
            ("/api/notify", "/api/notify"),
            ("/x/../y", "/x/../y"),
            ("/a/./b//c", "/a/./b//c"),
            ("/%41%2e%2E", "/%41%2e%2E"),
            ("/a\\b", "/a\\b"),
            (
                "/za\u{17c}\u{f3}\u{142}\u{107}",
                "/za\u{17c}\u{f3}\u{142}\u{107}",
            ),
            ("/p?q=1&r=a/../b", "/p?q=1&r=a/../b"),
            ("//evil/x", "//evil/x"),
            ("/{\"json\":1}|^", "/{\"json\":1}|^"),
        ] {
            assert_eq!(
                target(&format!("{base}{prefix_and_path}"), "").as_deref(),
                Some(expected),
                "{prefix_and_path}"
            );
            assert_eq!(
                target(base, prefix_and_path).as_deref(),
                Some(expected),
                "{prefix_and_path}"
            );
        }
    }

    #[test]
    fn what_a_request_line_cannot_carry_is_fixed_up() {
        let base = "http://h";
        assert_eq!(target(base, "").as_deref(), Some("/"));
        assert_eq!(target(base, "notify").as_deref(), Some("/notify"));
        assert_eq!(target(base, "?q=1").as_deref(), Some("/?q=1"));
        assert_eq!(
            target(base, "/a b\t<c>`").as_deref(),
            Some("/a%20b%09%3Cc%3E%60")
        );
        assert_eq!(
            target(base, "/\"p\"?q=\"v\"").as_deref(),
            Some("/\"p\"?q=%22v%22")
        );
        assert_eq!(target(base, "/a#frag").as_deref(), Some("/a"));
        assert_eq!(target(base, &format!("/{}", "a".repeat(70_000))), None);
    }

    #[test]
    fn the_authority_comes_from_the_base_only() {
        let base = UrlBase::parse("https://user@[::1]:8443/api/").expect("base");
        assert!(base.is_https());
        let uri = base.with(":99/@other/x").expect("uri");
        assert_eq!(
            uri.authority().map(Authority::as_str),
            Some("user@[::1]:8443")
        );
        assert_eq!(
            uri.path_and_query().map(PathAndQuery::as_str),
            Some("/api/:99/@other/x")
        );
    }

    #[test]
    fn the_host_header_has_the_port_unless_it_is_the_default() {
        let host = |base: &str| UrlBase::parse(base).expect("base").host_header();
        assert_eq!(
            host("http://127.0.0.1:8080/x")
                .as_ref()
                .map(|h| h.as_bytes()),
            Some(&b"127.0.0.1:8080"[..])
        );
        assert_eq!(
            host("http://h:80").as_ref().map(|h| h.as_bytes()),
            Some(&b"h"[..])
        );
        assert_eq!(
            host("https://h:443").as_ref().map(|h| h.as_bytes()),
            Some(&b"h"[..])
        );
        assert_eq!(
            host("https://h:80").as_ref().map(|h| h.as_bytes()),
            Some(&b"h:80"[..])
        );
        assert_eq!(
            host("http://u@[::1]:81/").as_ref().map(|h| h.as_bytes()),
            Some(&b"[::1]:81"[..])
        );
        let origin = UrlBase::parse("https://u@h:8443/api/")
            .expect("base")
            .origin();
        assert_eq!(origin.to_string(), "https://u@h:8443/");
    }

    #[test]
    fn bad_bases_are_refused() {
        assert_eq!(UrlBase::parse("not a url").err(), Some(BaseError::NoScheme));
        assert_eq!(UrlBase::parse("ftp://h/").err(), Some(BaseError::Scheme));
        assert_eq!(UrlBase::parse("http:///x").err(), Some(BaseError::NoHost));
        assert_eq!(
            UrlBase::parse("http://h:port/").err(),
            Some(BaseError::Authority)
        );
        assert_eq!(
            UrlBase::parse("http://h:70000").err(),
            Some(BaseError::Authority)
        );
        assert!(UrlBase::parse("HTTP://H:80").is_ok());
        assert!(UrlBase::parse("http://[::1]:80").is_ok());
        assert!(UrlBase::parse("http://u:p@h:8080/x").is_ok());
    }
}
