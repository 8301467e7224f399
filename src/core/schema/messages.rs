//! What schema violations say: a field written in the wrong part, a value
//! too large to print, a trigger that matched none of its forms. Words only:
//! which violations there are is the validator's business (`super`).

use std::sync::OnceLock;

use serde_json::Value;

use super::{Violation, property_names, resolve_ref, value};
use crate::yaml::Seg;

/// A trigger matched none of its forms; say which form it looks like and
/// what that form needs, rather than "not valid under any of the schemas".
pub(super) fn trigger_violation(path: Vec<Seg>, instance: &Value) -> Violation {
    const FORMS: &str = "expected `immediate`, `{at: <RFC 3339 time>}`, \
                         `{cron: \"<5-field expression>\"}` or `{every: <duration>}`";
    let single_key = instance
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next());
    let (path, message) = match single_key {
        Some((k, v)) if k == "at" => (
            [path, vec![Seg::Key(k.clone())]].concat(),
            format!(
                "invalid `at` {}: expected an RFC 3339 time such as 2026-12-01T02:00:00Z",
                shown(v)
            ),
        ),
        Some((k, v)) if k == "cron" || k == "every" => (
            [path, vec![Seg::Key(k.clone())]].concat(),
            format!("invalid `{k}` {}: expected a string", shown(v)),
        ),
        _ => (
            path,
            format!("invalid trigger {}: {FORMS}", shown(instance)),
        ),
    };
    Violation {
        path,
        key: None,
        message,
    }
}

/// A value as a message shows it: its JSON when that is short; otherwise
/// what kind of value it is and a quoted prefix of its JSON. Only the prefix
/// is ever serialized: a 50 MB mapping where a list belongs costs nothing.
pub(super) fn shown(v: &Value) -> String {
    let limit = 4 * crate::diagnostic::QUOTE_CHARS + 4;
    let (json, cut) = json_prefix(v, limit);
    if !cut && json.chars().count() <= crate::diagnostic::QUOTE_CHARS {
        return json;
    }
    let kind = match v {
        Value::Object(_) => "a mapping",
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    format!("{kind} {}", crate::diagnostic::quote(&json))
}

/// At most `limit` bytes of `v`'s compact JSON (whole characters), and
/// whether it was cut.
fn json_prefix(v: &Value, limit: usize) -> (String, bool) {
    /// Keeps `left` more bytes, then refuses, which stops the serializer.
    struct Bounded {
        buf: Vec<u8>,
        left: usize,
    }
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let n = bytes.len().min(self.left);
            self.buf.extend_from_slice(&bytes[..n]);
            self.left -= n;
            if n < bytes.len() {
                return Err(std::io::Error::other("long enough"));
            }
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Bounded {
        buf: Vec::new(),
        left: limit,
    };
    let cut = serde_json::to_writer(&mut out, v).is_err();
    let text = match String::from_utf8(out.buf) {
        Ok(text) => text,
        // Cut inside a character: keep the whole ones before it.
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            String::from_utf8_lossy(&e.into_bytes()[..valid]).into_owned()
        }
    };
    (text, cut)
}

/// The parts of the format and their fields, read from the schema: each
/// named as a user reads it (`the top level`, `settings`, `groups.<name>`,
/// `resets[]`, `notifications[].urlFrom`), a variant's fields under its
/// part's name.
fn parts() -> &'static [(String, Vec<String>)] {
    static PARTS: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    PARTS.get_or_init(|| {
        let schema = value();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        collect_parts(&schema, &schema, String::new(), &mut out, 0);
        out
    })
}

fn collect_parts(
    root: &Value,
    node: &Value,
    name: String,
    out: &mut Vec<(String, Vec<String>)>,
    depth: usize,
) {
    // Deep enough for any config; a `$ref` cycle must not loop forever.
    if depth > 8 {
        return;
    }
    let Some(map) = resolve_ref(root, node).as_object() else {
        return;
    };
    if let Some(Value::Object(props)) = map.get("properties") {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, fields)) => fields.extend(props.keys().cloned()),
            None => out.push((name.clone(), props.keys().cloned().collect())),
        }
        for (key, child) in props {
            let child_name = if name.is_empty() {
                key.clone()
            } else {
                format!("{name}.{key}")
            };
            collect_parts(root, child, child_name, out, depth + 1);
        }
    }
    if let Some(child @ Value::Object(_)) = map.get("additionalProperties") {
        collect_parts(root, child, format!("{name}.<name>"), out, depth + 1);
    }
    if let Some(child @ Value::Object(_)) = map.get("items") {
        collect_parts(root, child, format!("{name}[]"), out, depth + 1);
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(variants)) = map.get(combinator) {
            for variant in variants {
                collect_parts(root, variant, name.clone(), out, depth + 1);
            }
        }
    }
}

/// The name [`parts`] gives the part at `path`, if the schema leads there.
fn part_at(path: &[Seg]) -> Option<String> {
    let schema = value();
    let mut node = &schema;
    let mut name = String::new();
    for seg in path {
        let map = resolve_ref(&schema, node).as_object()?;
        match seg {
            Seg::Key(key) => {
                if let Some(child) = map.get("properties").and_then(|p| p.get(key)) {
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.push_str(key);
                    node = child;
                } else {
                    node = map.get("additionalProperties").filter(|c| c.is_object())?;
                    name.push_str(".<name>");
                }
            }
            Seg::Index(_) => {
                node = map.get("items").filter(|c| c.is_object())?;
                name.push_str("[]");
            }
        }
    }
    Some(name)
}

fn part_name(name: &str) -> &str {
    if name.is_empty() {
        "the top level"
    } else {
        name
    }
}

/// The closest of `names` to `key`, ignoring case, if close enough to be
/// a typo of it (at most 2 edits, and not most of the word: `on` is no
/// typo of `id`); never `key` itself.
fn closest<'a>(key: &str, names: impl IntoIterator<Item = &'a String>) -> Option<(usize, &'a str)> {
    let lower = key.to_lowercase();
    names
        .into_iter()
        .filter(|name| name.as_str() != key)
        .map(|name| (edit_distance(&lower, &name.to_lowercase()), name.as_str()))
        .filter(|(d, _)| *d <= 2 && 2 * d <= key.chars().count())
        .min()
}

/// "unknown field": a typo of a field of this part is suggested; a field
/// of another part is said to belong there (`name` written in an entry is
/// a field of notifications[]); a word is never suggested to itself.
pub(super) fn unknown_field_message(key: &str, path: &[Seg]) -> String {
    let here = part_at(path);
    let local = here
        .as_deref()
        .and_then(|h| parts().iter().find(|(name, _)| name == h))
        .map(|(_, fields)| fields);
    // The parts, other than this one, that have `field`.
    let homes = |field: &str| -> Vec<&str> {
        parts()
            .iter()
            .filter(|(name, fields)| {
                Some(name) != here.as_ref() && fields.iter().any(|f| f == field)
            })
            .map(|(name, _)| part_name(name))
            .collect()
    };
    let listed = |homes: &[&str]| match homes {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let local_typo = local.and_then(|fields| closest(key, fields));
    if let Some((d, name)) = local_typo
        && d <= 1
    {
        return format!("unknown field `{key}` (did you mean `{name}`?)");
    }
    // Written as a field of another part (in any case).
    let elsewhere = property_names()
        .iter()
        .find(|name| name.to_lowercase() == key.to_lowercase());
    if let Some(name) = elsewhere {
        let homes = homes(name);
        if !homes.is_empty() {
            let here = here.as_deref().map_or("this place", part_name);
            return format!(
                "unknown field `{key}`: `{name}` is a field of {}, not of {here}",
                listed(&homes)
            );
        }
    }
    if let Some((_, name)) = local_typo {
        return format!("unknown field `{key}` (did you mean `{name}`?)");
    }
    // A typo of a field of another part (or somewhere the schema does not
    // lead): name the field and where it belongs.
    match closest(key, property_names()) {
        Some((_, name)) => match homes(name).as_slice() {
            [] => format!("unknown field `{key}` (did you mean `{name}`?)"),
            homes => format!(
                "unknown field `{key}` (did you mean `{name}`, a field of {}?)",
                listed(homes)
            ),
        },
        None => format!("unknown field `{key}`"),
    }
}

/// Names the kind of value at a path, so pattern errors say what was expected.
pub(super) fn what_is_at(path: &[Seg]) -> &'static str {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    match keys.as_slice() {
        [.., "hashes"] => "a residential user hash",
        ["resets", "id"] => "a reset id",
        ["resets", "groups"] | [.., "include"] => "a group name",
        ["groups"] | ["groups", _] => "a group name",
        [.., "every"] | [.., "requestTimeout"] => "a duration",
        _ => "this field",
    }
}

/// Levenshtein distance; inputs are short field names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_field_names() {
        let settings = [Seg::Key("settings".into())];
        assert_eq!(
            unknown_field_message("dryrun", &settings),
            "unknown field `dryrun` (did you mean `dryRun`?)"
        );
        assert_eq!(
            unknown_field_message("zzzzzzzz", &settings),
            "unknown field `zzzzzzzz`"
        );
        let entry = [Seg::Key("resets".into()), Seg::Index(0)];
        assert_eq!(
            unknown_field_message("tokenFom", &entry),
            "unknown field `tokenFom` (did you mean `tokenFrom`, a field of notifications[]?)"
        );
        assert_eq!(
            unknown_field_message("hashes", &[Seg::Key("notifications".into()), Seg::Index(0)]),
            "unknown field `hashes`: `hashes` is a field of groups.<name> and resets[], not of notifications[]"
        );
        assert_eq!(
            unknown_field_message("env", &entry),
            "unknown field `env`: `env` is a field of notifications[].secretFrom, \
             notifications[].tokenFrom and notifications[].urlFrom, not of resets[]"
        );
    }

    #[test]
    fn a_large_value_is_shown_as_its_kind_and_a_prefix() {
        assert_eq!(shown(&serde_json::json!({"id": "r1"})), r#"{"id":"r1"}"#);
        let big = serde_json::json!({"a": vec!["é"; 10_000]});
        let s = shown(&big);
        assert!(s.starts_with(r#"a mapping `{"a":["é","#), "{s}");
        assert!(s.ends_with("…`"), "{s}");
        assert!(
            s.chars().count() < crate::diagnostic::QUOTE_CHARS + 20,
            "{s}"
        );
    }
}
