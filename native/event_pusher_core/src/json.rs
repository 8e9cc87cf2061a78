//! Event bodies as compact JSON, shared by the rabbit and sns backends.
//!
//! Keys come out in descending order, as jiffy writes a small Erlang map with
//! atom keys (MongooseIM encodes its event maps with jiffy:
//! `{"user_id":…,"present":…}`), and metadata wins on a key clash (doc/compatibility.md §3).

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use std::collections::BTreeMap;
use std::io;

/// One value of an event body or of its metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
    /// A list: a JSON array.
    List(Vec<Field>),
    /// A nested object, written with its pairs in this order (the caller
    /// puts them in jiffy's: a map's keys descending, `{[{K, V}]}` as given).
    Object(Vec<(String, Field)>),
}

/// `{"k": v, ...}` from the event's fields with the metadata merged over
/// them, written byte for byte as jiffy writes it ([`JiffyFormatter`]).
pub fn encode_object(fields: Vec<(String, Field)>, metadata: Vec<(String, Field)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 32 * (fields.len() + metadata.len()));
    let pairs = fields.iter().chain(metadata.iter());
    write_object(&mut out, pairs.map(|(k, v)| (k.as_str(), v)));
    out
}

/// An object, keys in descending order (jiffy's order for a small map);
/// a later pair wins over an earlier one with the same key.
fn write_object<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a Field)>) {
    let map: BTreeMap<&str, &Field> = pairs.collect();
    out.push(b'{');
    for (i, (k, v)) in map.iter().rev().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_scalar(out, *k);
        out.push(b':');
        write_field(out, v);
    }
    out.push(b'}');
}

fn write_field(out: &mut Vec<u8>, field: &Field) {
    match field {
        Field::Str(s) => write_scalar(out, s.as_str()),
        Field::Bool(b) => write_scalar(out, b),
        Field::Int(i) => write_scalar(out, i),
        Field::Float(x) if x.is_finite() => write_scalar(out, x),
        // A non-finite float has no JSON form: written as null.
        Field::Float(_) | Field::Null => out.extend_from_slice(b"null"),
        Field::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_field(out, item);
            }
            out.push(b']');
        }
        Field::Object(pairs) => {
            out.push(b'{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(out, k.as_str());
                out.push(b':');
                write_field(out, v);
            }
            out.push(b'}');
        }
    }
}

fn write_scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, JiffyFormatter);
    // Writing a string or a plain value into a Vec cannot fail.
    let _ = value.serialize(&mut ser);
}

/// serde_json's compact output with jiffy's two differences: floats
/// ([`write_float`]) and control characters escaped as `\u00XX` in upper
/// case. Everything else (`"`, `\\`, `\b \f \n \r \t`, `/` and Unicode
/// unescaped) is already the same.
struct JiffyFormatter;

impl Formatter for JiffyFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut buf = Vec::with_capacity(24);
        write_float(&mut buf, value);
        writer.write_all(&buf)
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        match char_escape {
            CharEscape::AsciiControl(b) => writer.write_all(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            other => CompactFormatter.write_char_escape(writer, other),
        }
    }
}

/// A float as jiffy writes it: the shortest digits that read back the same
/// number, in plain notation for 1e-7 < |x| < 1e21 (ECMAScript's rule) with
/// `.0` after a whole number, else `d.ddde±N`; `0.0` for either zero, and
/// `null` for a value JSON cannot hold (jiffy refuses those).
fn write_float(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if x == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    if x < 0.0 {
        out.push(b'-');
    }
    // Rust writes the shortest round-tripping digits: "1.2345e-5", "1e21".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let k = digits.len() as i64;
    // The decimal point goes after `n` digits.
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let zeros = |out: &mut Vec<u8>, count: i64| {
        out.extend(std::iter::repeat_n(
            b'0',
            usize::try_from(count).unwrap_or(0),
        ));
    };
    if k <= n && n <= 21 {
        out.extend_from_slice(&digits);
        zeros(out, n - k);
        out.extend_from_slice(b".0");
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        zeros(out, -n);
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let e = n - 1;
        out.extend_from_slice(format!("e{}{}", if e >= 0 { "+" } else { "-" }, e.abs()).as_bytes());
    }
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
        let body = encode_object(vec![], vec![("x".into(), Field::Float(1.0e20))]);
        assert_eq!(body, br#"{"x":100000000000000000000.0}"#.to_vec());
    }

    #[test]
    fn nested_lists_and_objects_are_arrays_and_objects_in_the_given_order() {
        let body = encode_object(
            vec![],
            vec![(
                "n".into(),
                Field::Object(vec![
                    ("b".into(), Field::Object(vec![])),
                    (
                        "a".into(),
                        Field::List(vec![Field::Int(1), s("x"), Field::List(vec![])]),
                    ),
                ]),
            )],
        );
        assert_eq!(body, br#"{"n":{"b":{},"a":[1,"x",[]]}}"#.to_vec());
    }

    #[test]
    fn unicode_is_written_as_utf8() {
        let body = encode_object(vec![("message".into(), s("zażółć ❤ \"q\""))], vec![]);
        assert_eq!(
            body,
            "{\"message\":\"zażółć ❤ \\\"q\\\"\"}".as_bytes().to_vec()
        );
    }

    #[test]
    fn floats_are_written_as_jiffy_writes_them() {
        // Each pair as jiffy 1.1.1 (Debian's erlang-jiffy) encodes the float.
        let cases: &[(f64, &str)] = &[
            (1.0e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1.0e-6, "0.000001"),
            (1.0e-7, "1e-7"),
            (1.2345e-5, "0.000012345"),
            (1.2345678901234568e20, "123456789012345680000.0"),
            (1.0e16, "10000000000000000.0"),
            (1.0e20, "100000000000000000000.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (-0.0, "0.0"),
            (100.0, "100.0"),
            (-3.75, "-3.75"),
            (1.0e300, "1e+300"),
            (5.0e-324, "5e-324"),
        ];
        for (x, want) in cases {
            let mut out = Vec::new();
            write_float(&mut out, *x);
            assert_eq!(String::from_utf8_lossy(&out), *want, "{x:e}");
        }
    }

    #[test]
    fn strings_are_escaped_as_jiffy_escapes_them() {
        let body = encode_object(
            vec![(
                "m".into(),
                s("a\"b\\c/d\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é\u{2028}"),
            )],
            vec![],
        );
        // As jiffy 1.1.1 writes it.
        assert_eq!(
            String::from_utf8_lossy(&body),
            "{\"m\":\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001F\u{7f}é\u{2028}\"}"
        );
    }
}
