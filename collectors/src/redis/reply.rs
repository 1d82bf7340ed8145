//! Reading what the server answers: a reply value as text or a number, and an error reply as a
//! refusal (the server will not run the command) rather than a failed connection.
//!
//! The connection's core scrape and the key checks both read replies this way; keeping it here lets
//! each use it without depending on the other.

/// A reply as text: bulk and simple strings, and RESP3 verbatim strings (INFO under RESP3).
pub(super) fn text(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
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
