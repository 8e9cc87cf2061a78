//! Event bodies as compact JSON, shared by the rabbit and sns backends.
//!
//! Keys come out in descending order, as jiffy writes a small Erlang map with
//! atom keys (MongooseIM encodes its event maps with jiffy:
//! `{"user_id":…,"present":…}`), and metadata wins on a key clash (SPEC.md §3).

use serde_json::{Map, Value};

/// One value of an event body or of its metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
}

impl From<Field> for Value {
    fn from(f: Field) -> Value {
        match f {
            Field::Str(s) => Value::String(s),
            Field::Bool(b) => Value::Bool(b),
            Field::Int(i) => Value::from(i),
            // A non-finite float has no JSON form: written as null.
            Field::Float(x) => serde_json::Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Field::Null => Value::Null,
        }
    }
}

/// `{"k": v, ...}` from the event's fields with the metadata merged over them.
pub fn encode_object(fields: Vec<(String, Field)>, metadata: Vec<(String, Field)>) -> Vec<u8> {
    // serde_json's Map is ordered by key; later inserts (metadata) win.
    let mut map = Map::new();
    for (k, v) in fields.into_iter().chain(metadata) {
        map.insert(k, v.into());
    }
    let mut out = Vec::with_capacity(64 + 32 * map.len());
    out.push(b'{');
    for (i, (k, v)) in map.iter().rev().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing strings and plain values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Field {
        Field::Str(v.to_owned())
    }

    #[test]
    fn keys_come_in_jiffys_order_and_output_is_compact() {
        let body = encode_object(
            vec![
                ("user_id".into(), s("a@b/c")),
                ("present".into(), Field::Bool(true)),
            ],
            vec![],
        );
        assert_eq!(body, br#"{"user_id":"a@b/c","present":true}"#.to_vec());
        let body = encode_object(
            vec![
                ("from_user_id".into(), s("a")),
                ("to_user_id".into(), s("b")),
                ("message".into(), s("m")),
            ],
            vec![],
        );
        assert_eq!(
            body,
            br#"{"to_user_id":"b","message":"m","from_user_id":"a"}"#.to_vec()
        );
    }

    #[test]
    fn metadata_wins_on_a_clash() {
        let body = encode_object(
            vec![("message".into(), s("hi"))],
            vec![
                ("message".into(), Field::Int(7)),
                ("flag".into(), Field::Null),
            ],
        );
        assert_eq!(body, br#"{"message":7,"flag":null}"#.to_vec());
    }

    #[test]
    fn unicode_is_written_as_utf8() {
        let body = encode_object(vec![("message".into(), s("zażółć ❤ \"q\""))], vec![]);
        assert_eq!(
            body,
            "{\"message\":\"zażółć ❤ \\\"q\\\"\"}".as_bytes().to_vec()
        );
    }
}
