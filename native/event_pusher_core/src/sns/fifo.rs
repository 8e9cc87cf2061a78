//! SNS FIFO topics (ours): a topic whose ARN ends in `.fifo` needs a
//! `MessageGroupId` on every publish (SNS keeps order within a group) and
//! takes a `MessageDeduplicationId` (SNS drops a second publish with the
//! same one within 5 minutes). The group is the user's bare JID, the
//! deduplication ID the event's ID, so a retried or republished event is
//! delivered once.

use crate::EventId;

/// SNS's limit on both IDs.
const MAX_ID: usize = 128;

/// The two IDs of a job for a FIFO topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FifoIds {
    pub group: String,
    pub deduplication: String,
}

pub(crate) fn is_fifo(topic_arn: &str) -> bool {
    topic_arn.ends_with(".fifo")
}

/// The IDs for a job on a FIFO topic. Without a group (a caller that names
/// none) each event is its own group: accepted, but unordered.
pub(crate) fn ids(group: Option<&str>, id: EventId) -> FifoIds {
    let deduplication = String::from_utf8_lossy(&id.text()).into_owned();
    let group = match group {
        Some(group) if !group.is_empty() => group_id(group),
        _ => deduplication.clone(),
    };
    FifoIds {
        group,
        deduplication,
    }
}

/// SNS takes 1..128 characters of ASCII letters, digits and punctuation:
/// any other byte (e.g. of a non-ASCII JID) is written `%XX`, which keeps
/// distinct JIDs distinct; a longer result is cut (two users then share a
/// group: their order is kept together, nothing is lost).
fn group_id(group: &str) -> String {
    let mut out = String::with_capacity(group.len().min(MAX_ID));
    for byte in group.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
        if out.len() >= MAX_ID {
            out.truncate(MAX_ID);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_topics_are_the_ones_ending_in_dot_fifo() {
        assert!(is_fifo("arn:aws:sns:eu-west-1:123:events.fifo"));
        assert!(!is_fifo("arn:aws:sns:eu-west-1:123:events"));
        assert!(!is_fifo("arn:aws:sns:eu-west-1:123:fifo"));
    }

    #[test]
    fn group_is_the_jid_and_deduplication_the_event_id() {
        let id = EventId::new();
        let ids = ids(Some("alice@localhost"), id);
        assert_eq!(ids.group, "alice@localhost");
        assert_eq!(ids.deduplication.as_bytes(), &id.text()[..]);
        assert_eq!(super::ids(None, id).group, ids.deduplication);
    }

    #[test]
    fn group_ids_stay_within_snss_alphabet_and_length() {
        assert_eq!(group_id("zoë@localhost"), "zo%C3%AB@localhost");
        assert_eq!(group_id("a b"), "a%20b");
        let long = group_id(&"é".repeat(100));
        assert_eq!(long.len(), MAX_ID);
        assert!(long.bytes().all(|b| b.is_ascii_graphic()));
    }
}
