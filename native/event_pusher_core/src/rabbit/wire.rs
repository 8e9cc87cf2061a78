//! What a message carries on the wire besides its body (ours, opt-in per
//! publish): the event's ID as AMQP properties, persistence, and the
//! `mandatory` flag. Without options a message goes out exactly as
//! MongooseIM's do: no properties, transient, not mandatory.

use crate::EventId;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::BasicProperties;
use std::time::Duration;

/// Per-publish options (they come from the publishing module's config, and
/// several modules may share one pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// AMQP properties `message_id` (the event ID), `timestamp` (when the
    /// ID was made, in seconds) and `content_type = "application/json"`.
    pub event_properties: bool,
    /// `delivery_mode = 2`: the broker writes the message to disk in a
    /// durable queue.
    pub persistent: bool,
    /// Publish with `mandatory`: a message no queue takes comes back
    /// (basic.return) and is retried with backoff for this long, then given
    /// up as `unroutable`.
    pub mandatory: Option<Duration>,
}

/// The properties of a message with `id` under `options`. The same for
/// every attempt, so republishes keep the ID and the timestamp.
pub(super) fn properties(id: EventId, options: &PublishOptions) -> BasicProperties {
    let mut properties = BasicProperties::default();
    if options.event_properties {
        let text = id.text();
        // 36 ASCII bytes: always valid UTF-8 and shorter than 256.
        let text = String::from_utf8_lossy(&text).into_owned();
        properties = properties
            .with_message_id(ShortString::from(text))
            .with_timestamp(id.unix_ms() / 1000)
            .with_content_type(ShortString::from("application/json"));
    }
    if options.persistent {
        properties = properties.with_delivery_mode(2);
    }
    properties
}

pub(super) fn publish_options(options: &PublishOptions) -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: options.mandatory.is_some(),
        ..BasicPublishOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_options_no_properties() {
        let id = EventId::new();
        assert_eq!(
            properties(id, &PublishOptions::default()),
            BasicProperties::default()
        );
        assert!(!publish_options(&PublishOptions::default()).mandatory);
    }

    #[test]
    fn event_properties_carry_the_id() {
        let id = EventId::new();
        let options = PublishOptions {
            event_properties: true,
            persistent: true,
            mandatory: Some(Duration::from_secs(1)),
        };
        let p = properties(id, &options);
        let text = id.text();
        assert_eq!(
            p.message_id().as_ref().map(|s| s.as_str().as_bytes()),
            Some(&text[..])
        );
        assert_eq!(*p.timestamp(), Some(id.unix_ms() / 1000));
        assert_eq!(
            p.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
        assert!(publish_options(&options).mandatory);
    }
}
