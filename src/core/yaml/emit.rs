//! The status file's YAML: block style, keys in a reading order, strings
//! quoted only when a plain scalar would read back as something else.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::scalar::{resolve_special, two_readings};

/// Block-style YAML for a JSON value; `parse` reads it back to the same value.
///
/// Used for the status file, which people read during incidents: block style,
/// keys in the order serde produced them, strings quoted only when a plain
/// scalar would read back as something else.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => emit_seq(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// Keys a reader looks for first come first, in this order; the rest follow
/// alphabetically (serde_json's maps are sorted).
const KEY_ORDER: &[&str] = &[
    "apiVersion",
    "kind",
    "updatedAt",
    "configDigest",
    "phase",
    "outcome",
    "revision",
    "specDigest",
    "hashCount",
    "attempts",
    "startedAt",
    "finishedAt",
    "firstSeenAt",
    "lastRunAt",
    "completedAt",
    "nextRunAt",
    "lastError",
];

fn ordered(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| {
        KEY_ORDER
            .iter()
            .position(|o| o == k)
            .unwrap_or(KEY_ORDER.len())
    });
    entries
}

fn emit_map(map: &Map<String, Value>, indent: usize, out: &mut String) {
    for (key, value) in ordered(map) {
        let _ = write!(out, "{:indent$}{}:", "", scalar_string(key));
        emit_child(value, indent, out);
    }
}

fn emit_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        let _ = write!(out, "{:indent$}-", "");
        match item {
            // A mapping item starts on the dash line: `- key: value`.
            Value::Object(map) if !map.is_empty() => {
                let mut first = true;
                for (key, value) in ordered(map) {
                    if first {
                        let _ = write!(out, " {}:", scalar_string(key));
                        first = false;
                    } else {
                        let _ = write!(
                            out,
                            "{:width$}{}:",
                            "",
                            scalar_string(key),
                            width = indent + 2
                        );
                    }
                    emit_child(value, indent + 2, out);
                }
            }
            other => emit_child(other, indent, out),
        }
    }
}

fn emit_child(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            emit_map(map, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            emit_seq(items, indent + 2, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a plain scalar when that reads back as the same string, else
/// double-quoted (JSON string syntax is valid YAML double-quoted syntax).
fn scalar_string(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.trim() == s
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./:+@()".contains(c))
        && !s.starts_with(['-', ':', '@', '.'])
        && !s.contains(": ")
        && !s.ends_with(':')
        && resolve_special(s).is_none()
        && two_readings(s).is_none();
    if plain_safe {
        s.to_owned()
    } else {
        // Serializing a str cannot fail. JSON leaves DEL, C1 controls,
        // U+2028 and the like raw; as escapes they cannot make the file
        // read two ways, and a reviewed-file reader accepts them.
        let json = serde_json::to_string(s).unwrap_or_default();
        if json.chars().any(needs_escape) {
            json.chars()
                .map(|c| match needs_escape(c) {
                    true => format!("\\u{:04X}", u32::from(c)),
                    false => c.to_string(),
                })
                .collect()
        } else {
            json
        }
    }
}

/// Characters a reviewed file may not hold raw (`text.rs`), all in the
/// Basic Multilingual Plane, so `\uXXXX` writes each.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;
    use serde_json::json;

    #[test]
    fn emitted_yaml_reads_back_identically() {
        let v = json!({
            "apiVersion": "resetd/v1",
            "resets": {
                "a": {"phase": "Succeeded", "n": 3, "ok": true, "none": null,
                      "tricky": ["true", "12", "", " x", "a: b", "#c", "- d", "é", "null", "1e3", "line\nbreak"],
                      "at": "2026-12-01T02:00:00Z",
                      "history": [{"outcome": "Failed", "error": "HTTP 500: \"oops\""}, {"x": {}}],
                      "empty": [], "emptyMap": {}}
            }
        });
        let text = to_yaml(&v);
        let (back, _) = parse(&text).unwrap();
        assert_eq!(back, v, "{text}");
        assert!(text.contains("phase: Succeeded\n"), "{text}");
    }

    #[test]
    fn emitted_yaml_reads_one_way_only() {
        // Ids YAML 1.1 reads as booleans or octal numbers, and characters a
        // reviewed file may not hold raw: quoted or escaped, the status
        // reads back the same even as a reviewed file.
        let v = json!({
            "resets": {"off": {"n": 1}, "010": {"n": 2}, "y": {"n": 3}},
            "lastError": "a\u{2028}b\u{85}c\u{202e}d\u{7f}e\u{feff}f"
        });
        let text = to_yaml(&v);
        let fields = |_: &str| false;
        let (back, _) = crate::yaml::parse_with(
            &text,
            None,
            crate::yaml::Dialect::Reviewed { field: &fields },
        )
        .unwrap();
        assert_eq!(back, v, "{text}");
        assert!(
            text.contains("\"off\":") && text.contains("\\u2028"),
            "{text}"
        );
    }
}
