//! Reading what the server answers: a reply value as text or a number, an error reply as a refusal
//! (the server will not run the command) rather than a failed connection, and a client error in its
//! true class.
//!
//! The connection's core scrape and the key checks both read replies this way; keeping it here lets
//! each use it without depending on the other. So does telling what a client error means.

use std::time::Duration;

use crate::diagnose::{self, Protocol, Sniff, Stage};
use crate::{CollectError, ErrorClass};

/// A reply as text: bulk and simple strings, and RESP3 verbatim strings (INFO under RESP3).
pub(super) fn text(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => Some(crate::lossy_text(bytes)),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".to_owned()),
        _ => None,
    }
}

/// A reply as an integer, also from a numeric string.
pub(super) fn integer(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(i) => Some(*i),
        other => text(other).and_then(|t| t.trim().parse().ok()),
    }
}

/// A reply as a number (integers, doubles, numeric strings).
pub(super) fn number(value: &redis::Value) -> Option<f64> {
    match value {
        redis::Value::Int(i) => Some(*i as f64),
        redis::Value::Double(d) => Some(*d),
        other => text(other).and_then(|t| t.trim().parse().ok()),
    }
}

/// Whether an error is the server refusing a command (as opposed to the connection failing).
pub(super) fn is_refusal(e: &redis::RedisError) -> bool {
    e.code().is_some() && !e.is_io_error() && !e.is_timeout() && !e.is_connection_dropped()
}

/// Whether the server will refuse the command every time: a missing ACL permission, a command or
/// subcommand it does not know (renamed, disabled, too old), or arguments it does not take. `BUSY`,
/// `LOADING`, `MASTERDOWN` and the like pass.
pub(super) fn is_permanent_refusal(e: &redis::RedisError) -> bool {
    if !is_refusal(e) {
        return false;
    }
    match e.code() {
        Some("NOPERM") => true,
        Some("ERR") => {
            let detail = e.detail().unwrap_or_default().to_ascii_lowercase();
            [
                "unknown command",
                "unknown subcommand",
                "wrong number of arguments",
                "syntax error",
            ]
            .iter()
            .any(|m| detail.contains(m))
        }
        _ => false,
    }
}

/// What `e`, from the redis crate on a connection that received what `sniff` holds, means for the
/// target at `endpoint`, in its true class.
pub(super) fn redis_error(
    endpoint: &str,
    e: redis::RedisError,
    sniff: Option<&Sniff>,
    budget: Duration,
) -> CollectError {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    // Whatever the crate made of it, a MySQL greeting or an HTTP status line means the wrong port.
    if let Some(seen) = sniff
        .and_then(Sniff::protocol)
        .filter(|p| *p != Protocol::Redis)
    {
        return diagnose::mismatch(endpoint, "Redis", Some(seen)).with_source(e);
    }
    if e.is_timeout() {
        let stage = match sniff {
            Some(s) if !s.received() => Stage::Answer,
            _ => Stage::Rest,
        };
        return diagnose::timeout(stage, endpoint, budget).with_source(e);
    }
    let (class, message) = match (e.code(), e.kind()) {
        (Some("WRONGPASS"), _) | (_, K::AuthenticationFailed) => (
            ErrorClass::Auth,
            format!("{endpoint} rejected the credentials: {e}"),
        ),
        (Some("NOAUTH"), _) => (
            ErrorClass::Auth,
            format!("{endpoint} requires a password, and none is configured: {e}"),
        ),
        (_, K::Server(S::NoPerm)) => (
            ErrorClass::Denied,
            format!("{endpoint}: the user lacks a permission: {e}"),
        ),
        // The parser's message can quote the bytes it choked on; the class says enough.
        (_, K::Parse) => {
            return diagnose::mismatch(endpoint, "Redis", None).with_source(e);
        }
        (_, K::Io) if e.is_connection_dropped() => (
            ErrorClass::Closed,
            format!("{endpoint} closed the connection: {e}"),
        ),
        (_, K::Server(_) | K::Extension) => (
            ErrorClass::Server,
            format!("{endpoint} answered with an error: {e}"),
        ),
        _ => (ErrorClass::Other, format!("talking to {endpoint}: {e}")),
    };
    CollectError::new(class, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Any reply value, nested a few levels.
    fn value() -> impl Strategy<Value = redis::Value> {
        let leaf = prop_oneof![
            Just(redis::Value::Nil),
            Just(redis::Value::Okay),
            any::<i64>().prop_map(redis::Value::Int),
            any::<f64>().prop_map(redis::Value::Double),
            any::<bool>().prop_map(redis::Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(redis::Value::BulkString),
            any::<String>().prop_map(redis::Value::SimpleString),
            any::<String>().prop_map(|text| redis::Value::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text,
            }),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(redis::Value::Array),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(redis::Value::Set),
                proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(redis::Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn readers_never_panic(v in value()) {
            let as_text = text(&v);
            let as_integer = integer(&v);
            let as_number = number(&v);
            // A number read from text is the text's number.
            if let (Some(t), false) = (&as_text, matches!(v, redis::Value::Int(_))) {
                prop_assert_eq!(as_integer, t.trim().parse::<i64>().ok());
            }
            if let Some(i) = as_integer {
                prop_assert_eq!(as_number, Some(i as f64));
            }
        }

        #[test]
        fn integers_read_back_from_every_form(i in any::<i64>(), pad in "[ ]{0,2}") {
            let written = format!("{pad}{i}{pad}");
            for v in [
                redis::Value::Int(i),
                redis::Value::BulkString(written.clone().into_bytes()),
                redis::Value::SimpleString(written.clone()),
            ] {
                prop_assert_eq!(integer(&v), Some(i));
                prop_assert_eq!(number(&v), Some(i as f64));
            }
        }

        #[test]
        fn doubles_and_texts_read_back(d in any::<f64>(), s in any::<String>()) {
            let read = number(&redis::Value::Double(d));
            prop_assert!(read.is_some_and(|r| r == d || (r.is_nan() && d.is_nan())));
            prop_assert_eq!(text(&redis::Value::BulkString(s.clone().into_bytes())), Some(s.clone()));
            prop_assert_eq!(text(&redis::Value::SimpleString(s.clone())), Some(s));
        }
    }
}
