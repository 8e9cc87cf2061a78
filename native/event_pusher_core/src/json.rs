//! Event bodies as compact JSON, shared by the rabbit and sns backends.
//!
//! Keys come out sorted, as jiffy writes a small Erlang map (MongooseIM
//! encodes its event maps with jiffy), and metadata wins on a key clash
//! (SPEC.md §3).

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
    let mut map = Map::new();
    for (k, v) in fields.into_iter().chain(metadata) {
        map.insert(k, v.into());
    }
    // Serializing a map of strings and plain values cannot fail.
    serde_json::to_vec(&Value::Object(map)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Field {
        Field::Str(v.to_owned())
    }

    #[test]
    fn keys_are_sorted_and_output_compact() {
        let body = encode_object(
            vec![
                ("user_id".into(), s("a@b/c")),
                ("present".into(), Field::Bool(true)),
            ],
            vec![],
        );
        assert_eq!(body, br#"{"present":true,"user_id":"a@b/c"}"#.to_vec());
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
        assert_eq!(body, br#"{"flag":null,"message":7}"#.to_vec());
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
