//! Canonical JSON: object keys sorted, no whitespace. Independent of serde_json's map ordering
//! features.
//!
//! Two dialects, which differ only in how strings are escaped:
//! - [`to_string`] escapes strings as JSON does (`\n` for a newline): how Stellar hashes ledger
//!   entries. Fixed for good: changing it would change every entry hash.
//! - [`to_olpc_string`] is the OLPC canonical JSON of securesystemslib (only `\` and `"` are
//!   escaped; a newline stays a newline): how in-toto computes key ids, over PEM text that
//!   contains newlines.

use serde_json::Value;

/// The canonical JSON text of a value (JSON string escapes).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, false);
    out
}

/// securesystemslib's canonical JSON text of a value (OLPC string escapes).
pub fn to_olpc_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out, true);
    out
}

fn string(s: &str, out: &mut String, olpc: bool) {
    if olpc {
        out.push('"');
        for c in s.chars() {
            if c == '\\' || c == '"' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

fn write(v: &Value, out: &mut String, olpc: bool) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out, olpc);
                out.push(':');
                if let Some(v) = map.get(*k) {
                    write(v, out, olpc);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out, olpc);
            }
            out.push(']');
        }
        Value::String(s) => string(s, out, olpc),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_and_space_is_dropped() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        assert_eq!(super::to_string(&v), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }

    #[test]
    fn the_two_dialects_differ_only_in_string_escapes() {
        let v = serde_json::json!({"k": "a\nb\"c\\d"});
        assert_eq!(super::to_string(&v), "{\"k\":\"a\\nb\\\"c\\\\d\"}");
        assert_eq!(super::to_olpc_string(&v), "{\"k\":\"a\nb\\\"c\\\\d\"}");
    }
}
