//! The spool's on-disk records, shared by the segment log, the replay and
//! the dead-letter log.
//!
//! A segment file starts with [`MAGIC`] and then holds records:
//!
//! ```text
//! len: u32 LE | crc32(body): u32 LE | body (len bytes)
//! body = kind: u8 | seq: u64 LE | payload
//! ```
//!
//! An event's payload ([`EventRecord`]) is `lane: u32 LE | id: [u8; 16] |
//! tag_len: u32 LE | tag | fields`, where `fields` are the backend's own
//! (see `SpoolJob`). An ack's payload is a list of `seq: u64 LE`. A dead
//! letter's payload ([`LetterRecord`]) is `attempts: u32 LE | failed_at_ms:
//! u64 LE | reason_len: u32 LE | reason | event payload`.

use crate::EventId;

/// First bytes of every segment file (format version 1).
pub const MAGIC: &[u8; 8] = b"EPSPOOL1";
/// `len` and `crc` before each body.
pub const HEADER: usize = 8;
/// A body longer than this is taken as garbage (a torn or corrupted length).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

pub const KIND_EVENT: u8 = 1;
pub const KIND_ACKS: u8 = 2;

/// Appends a whole record (header and body) to `out`.
pub fn write(out: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) {
    let len = 1 + 8 + payload.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The size on disk of a record with `payload`.
pub fn size(payload: usize) -> u64 {
    (HEADER + 1 + 8 + payload) as u64
}

/// One record read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a> {
    pub kind: u8,
    pub seq: u64,
    pub payload: &'a [u8],
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Bad {
    /// Fewer bytes than the header or the length says: a torn write.
    #[error("truncated record")]
    Truncated,
    #[error("record length out of range")]
    Length,
    #[error("checksum mismatch")]
    Checksum,
}

/// The record at the start of `bytes` and its whole size.
pub fn parse(bytes: &[u8]) -> Result<(Raw<'_>, usize), Bad> {
    let Some(header) = bytes.get(..HEADER) else {
        return Err(Bad::Truncated);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(9..=MAX_BODY).contains(&len) {
        return Err(Bad::Length);
    }
    let Some(body) = bytes.get(HEADER..HEADER + len) else {
        return Err(Bad::Truncated);
    };
    if crc32fast::hash(body) != crc {
        return Err(Bad::Checksum);
    }
    let mut seq = [0; 8];
    seq.copy_from_slice(&body[1..9]);
    let raw = Raw {
        kind: body[0],
        seq: u64::from_le_bytes(seq),
        payload: &body[9..],
    };
    Ok((raw, HEADER + len))
}

/// An event's payload, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// The queue lane it was submitted to (taken modulo the lanes at replay).
    pub lane: u32,
    pub id: EventId,
    /// The tag as [`super::PersistTag::persist`] wrote it.
    pub tag: &'a [u8],
    /// The backend's fields.
    pub fields: &'a [u8],
}

impl<'a> EventRecord<'a> {
    /// Appends the payload of an event (what [`EventRecord::decode`] reads).
    pub fn encode(out: &mut Vec<u8>, lane: u32, id: EventId, tag: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&lane.to_le_bytes());
        out.extend_from_slice(&id.to_bytes());
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        tag(out);
        let tag_len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&tag_len.to_le_bytes());
        // The backend's fields follow.
    }

    pub fn decode(payload: &'a [u8]) -> Option<EventRecord<'a>> {
        let lane = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
        let id: [u8; 16] = payload.get(4..20)?.try_into().ok()?;
        let tag_len = u32::from_le_bytes(payload.get(20..24)?.try_into().ok()?) as usize;
        let tag = payload.get(24..24usize.checked_add(tag_len)?)?;
        Some(EventRecord {
            lane,
            id: EventId::from_bytes(id),
            tag,
            fields: &payload[24 + tag_len..],
        })
    }
}

/// A dead letter's payload, decoded: the failure, then its event's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterRecord<'a> {
    pub attempts: u32,
    pub failed_at_ms: u64,
    pub reason: &'a str,
    /// What [`EventRecord::decode`] reads.
    pub event: &'a [u8],
}

impl<'a> LetterRecord<'a> {
    /// Appends the failure; the event's payload ([`EventRecord::encode`]
    /// and the backend's fields) follows.
    pub fn encode(out: &mut Vec<u8>, attempts: u32, failed_at_ms: u64, reason: &str) {
        put_u32(out, attempts);
        out.extend_from_slice(&failed_at_ms.to_le_bytes());
        put_bytes(out, reason.as_bytes());
    }

    pub fn decode(payload: &'a [u8]) -> Option<LetterRecord<'a>> {
        let mut f = Fields(payload);
        let attempts = f.u32()?;
        let failed_at_ms = u64::from_le_bytes(f.0.get(..8)?.try_into().ok()?);
        f.0 = &f.0[8..];
        let reason = f.str()?;
        Some(LetterRecord {
            attempts,
            failed_at_ms,
            reason,
            event: f.0,
        })
    }
}

/// Reads fields a backend wrote with [`put_bytes`]: each a `u32 LE` length
/// and the bytes.
pub struct Fields<'a>(pub &'a [u8]);

impl<'a> Fields<'a> {
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let value = self.0.get(4..4usize.checked_add(len)?)?;
        self.0 = &self.0[4 + len..];
        Some(value)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let value = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?);
        self.0 = &self.0[4..];
        Some(value)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

pub fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_flipped_bit_is_caught() {
        let mut out = Vec::new();
        write(&mut out, KIND_EVENT, 42, b"hello");
        assert_eq!(out.len() as u64, size(5));
        let (raw, used) = parse(&out).expect("parses");
        assert_eq!(
            (raw.kind, raw.seq, raw.payload, used),
            (KIND_EVENT, 42, &b"hello"[..], out.len())
        );
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(parse(&bad).is_err(), "bit {bit}");
        }
        for cut in 0..out.len() {
            assert_eq!(parse(&out[..cut]).err().map(|_| ()), Some(()));
        }
    }

    #[test]
    fn an_event_payload_round_trips() {
        let id = EventId::new();
        let mut out = Vec::new();
        EventRecord::encode(&mut out, 3, id, |o| o.extend_from_slice(b"tag"));
        put_bytes(&mut out, b"ex");
        let event = EventRecord::decode(&out).expect("decodes");
        assert_eq!((event.lane, event.id, event.tag), (3, id, &b"tag"[..]));
        let mut fields = Fields(event.fields);
        assert_eq!(fields.bytes(), Some(&b"ex"[..]));
        assert_eq!(fields.bytes(), None);
    }

    #[test]
    fn a_letter_payload_round_trips_and_a_cut_one_is_refused() {
        let id = EventId::new();
        let mut out = Vec::new();
        LetterRecord::encode(&mut out, 4, 1_700_000_000_123, "status 400");
        EventRecord::encode(&mut out, 0, id, |o| o.extend_from_slice(b"t"));
        let letter = LetterRecord::decode(&out).expect("decodes");
        assert_eq!(
            (letter.attempts, letter.failed_at_ms, letter.reason),
            (4, 1_700_000_000_123, "status 400")
        );
        assert_eq!(EventRecord::decode(letter.event).map(|e| e.id), Some(id));
        for cut in 0..4 + 8 + 4 + 10 {
            assert_eq!(LetterRecord::decode(&out[..cut]), None, "cut at {cut}");
        }
    }
}
