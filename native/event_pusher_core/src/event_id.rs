//! Event IDs (ours): every event gets one when it enters a backend, and
//! keeps it through retries, republishes, spool replays and dead-letter
//! replays, so a consumer can recognise a duplicate.
//!
//! A UUID version 7 (RFC 9562) from the `uuid` crate: time-ordered to the
//! millisecond, with a counter that keeps IDs made in the same millisecond
//! by this process in order, and random bits besides. Written in the
//! canonical hyphenated lower-case form (36 bytes) wherever it goes out.

use std::fmt;
use uuid::Uuid;

/// One event's ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Uuid);

impl EventId {
    /// A new ID, later than every ID this process made before.
    pub fn new() -> EventId {
        EventId(Uuid::now_v7())
    }

    /// An ID in its canonical form (as [`EventId::text`] writes it); any
    /// UUID version is taken, so IDs made elsewhere can travel too.
    pub fn parse(text: &[u8]) -> Option<EventId> {
        if text.len() != 36 {
            return None;
        }
        Uuid::try_parse_ascii(text).ok().map(EventId)
    }

    /// The 16 bytes, e.g. for a record on disk.
    pub fn to_bytes(self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> EventId {
        EventId(Uuid::from_bytes(bytes))
    }

    /// The canonical form: 36 ASCII bytes, lower-case hex with hyphens.
    pub fn text(self) -> [u8; 36] {
        let mut out = [0u8; 36];
        self.0.hyphenated().encode_lower(&mut out);
        out
    }

    /// Milliseconds since the Unix epoch when the ID was made (version 7
    /// IDs; 0 for others).
    pub fn unix_ms(self) -> u64 {
        self.0
            .get_timestamp()
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                secs.saturating_mul(1000) + u64::from(nanos / 1_000_000)
            })
            .unwrap_or(0)
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_ordered_and_round_trip() {
        let ids: Vec<EventId> = (0..1000).map(|_| EventId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not increasing");
        for id in &ids {
            let text = id.text();
            assert_eq!(text[14], b'7', "version nibble: {id}");
            assert!(matches!(text[19], b'8' | b'9' | b'a' | b'b'), "variant: {id}");
            assert_eq!(EventId::parse(&text), Some(*id));
            assert_eq!(EventId::from_bytes(id.to_bytes()), *id);
            assert_eq!(id.to_string().as_bytes(), &text[..]);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        assert!(now.abs_diff(ids[0].unix_ms()) < 60_000);
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in [&b""[..], b"not-a-uuid", b"0190a5e2-7c1d-7b3e-9f2a-4c6d8e0f1a2", b"0190a5e2x7c1d-7b3e-9f2a-4c6d8e0f1a2b"] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }
}
