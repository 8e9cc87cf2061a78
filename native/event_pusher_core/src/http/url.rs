//! `base_url ++ path` as a parsed URL, without re-parsing the host for every job.
//!
//! The contract is plain string concatenation. Parsing the whole string per
//! job spends most of its time on the host (IDNA); instead the part of the
//! base after the authority, followed by the path, is resolved against the
//! parsed base as an absolute-path (or query/fragment) reference, which gives
//! the same URL. Cases where concatenation could change the authority (a base
//! with nothing after it, or a result starting with `//`) take the slow path.

use reqwest::Url;

pub(crate) struct UrlBase {
    /// The base exactly as configured.
    raw: String,
    parsed: Url,
    /// `raw` after `scheme://authority`: empty or starting with `/`, `?` or `#`.
    rest: String,
}

impl UrlBase {
    pub fn new(raw: &str, parsed: Url) -> UrlBase {
        UrlBase {
            raw: raw.to_owned(),
            rest: after_authority(raw).to_owned(),
            parsed,
        }
    }

    /// The URL for `path`, or `None` if the concatenation is not a valid URL.
    pub fn with(&self, path: &str) -> Option<Url> {
        let mut relative = String::with_capacity(self.rest.len() + path.len());
        relative.push_str(&self.rest);
        relative.push_str(path);
        let fast = relative.is_empty()
            || (relative.starts_with(['/', '?', '#']) && !relative.starts_with("//"));
        if fast {
            return self.parsed.join(&relative).ok();
        }
        let mut whole = String::with_capacity(self.raw.len() + path.len());
        whole.push_str(&self.raw);
        whole.push_str(path);
        Url::parse(&whole).ok()
    }
}

/// The part of an absolute http(s) URL after its authority.
fn after_authority(raw: &str) -> &str {
    let Some(scheme_end) = raw.find("://") else {
        return "";
    };
    let authority = &raw[scheme_end + 3..];
    match authority.find(['/', '?', '#']) {
        Some(end) => &authority[end..],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case must equal parsing the concatenated string.
    #[test]
    fn same_result_as_parsing_the_concatenation() {
        let bases = [
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080",
            "http://h/api",
            "https://user:pw@h:443/a/b/",
            "http://h/a?x=1",
            "http://[::1]:80/p",
            "http://h/a%20b/",
        ];
        let paths = [
            "", "notify", "/notify", "//evil/x", "?q=1", "#f", "a b/c", ":99/x", "x/../y", "%41",
            "@other/x", "../up",
        ];
        for base in bases {
            let parsed = Url::parse(base).expect("base");
            let ub = UrlBase::new(base, parsed);
            for path in paths {
                let expected = Url::parse(&format!("{base}{path}")).ok();
                assert_eq!(ub.with(path), expected, "{base} ++ {path}");
            }
        }
    }
}
