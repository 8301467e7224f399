//! The JSON Schema of the config file, generated from `config::types`, and the
//! validator compiled from it.
//!
//! `resetd schema` prints `json()`; `schema/resetd.schema.json` is a committed
//! copy that a test keeps identical. Validation uses this very schema, so what
//! an editor flags and what `resetd validate` rejects cannot drift apart.

use std::sync::OnceLock;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

use crate::config::types::{Document, NAME_PATTERN};
use crate::yaml::Seg;

/// Where the committed copy lives, relative to the repository root.
pub const COMMITTED_PATH: &str = "schema/resetd.schema.json";

/// The schema as a JSON value.
pub fn value() -> Value {
    let mut schema = schemars::SchemaGenerator::default()
        .into_root_schema_for::<Document>()
        .to_value();
    drop_nonstandard_formats(&mut schema);
    schema
}

/// Whether `name` is one of the format's own field names (a property of
/// some object in the schema): read from the schema, so it follows the
/// types.
pub fn is_field_name(name: &str) -> bool {
    static NAMES: OnceLock<std::collections::BTreeSet<String>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            let schema = value();
            let mut names = std::collections::BTreeSet::new();
            let mut work = vec![&schema];
            while let Some(node) = work.pop() {
                match node {
                    Value::Object(map) => {
                        if let Some(Value::Object(props)) = map.get("properties") {
                            names.extend(props.keys().cloned());
                        }
                        work.extend(map.values());
                    }
                    Value::Array(items) => work.extend(items),
                    _ => {}
                }
            }
            names
        })
        .contains(name)
}

/// schemars annotates integers with formats such as `uint32`, which JSON
/// Schema does not define; strict validators (ajv) reject the schema for
/// them, and the bounds they imply are already `minimum`/`maximum`.
fn drop_nonstandard_formats(v: &mut Value) {
    const STANDARD: &[&str] = &[
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "uri",
        "regex",
    ];
    match v {
        Value::Object(map) => {
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD.contains(&f))
            {
                map.remove("format");
            }
            map.values_mut().for_each(drop_nonstandard_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nonstandard_formats),
        _ => {}
    }
}

/// The schema as pretty JSON with a trailing newline, exactly as committed.
pub fn json() -> String {
    // A `Value` always serializes.
    let mut text = serde_json::to_string_pretty(&value()).unwrap_or_default();
    text.push('\n');
    text
}

/// Every property name the schema knows, for "did you mean" hints.
pub fn property_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = Vec::new();
        collect_properties(&value(), &mut names);
        names.sort();
        names.dedup();
        names
    })
}

fn collect_properties(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values()
                .for_each(|child| collect_properties(child, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|child| collect_properties(child, out)),
        _ => {}
    }
}

/// The compiled validator, built once per process.
fn validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            // The `regex` engine: linear-time matching (no backtracking that
            // a hostile pattern input could exploit) and less memory than
            // fancy-regex; resetd's patterns need no look-around.
            jsonschema::options()
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .should_validate_formats(true)
                .build(&value())
                .map_err(|e| format!("internal error: the generated schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One schema violation: where, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Vec<Seg>,
    /// Set when the problem is a key itself (an unknown field), which is
    /// reported at the key rather than at the mapping that holds it.
    pub key: Option<String>,
    pub message: String,
}

/// Check a document against the schema, returning every violation.
pub fn check(instance: &Value) -> Vec<Violation> {
    match validator() {
        Ok(v) => violations(v, instance, &[]),
        Err(message) => vec![Violation {
            path: Vec::new(),
            key: None,
            message,
        }],
    }
}

/// The violations `validator` finds in `instance`, which sits at `base`.
fn violations(validator: &Validator, instance: &Value, base: &[Seg]) -> Vec<Violation> {
    let mut out = Vec::new();
    for error in validator.iter_errors(instance) {
        let path: Vec<Seg> = base
            .iter()
            .cloned()
            .chain(error.instance_path().segments().map(|s| match s {
                LocationSegment::Property(p) => Seg::Key(p.into_owned()),
                LocationSegment::Index(i) => Seg::Index(i),
            }))
            .collect();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    out.push(Violation {
                        message: unknown_field_message(key, &path),
                        path: path.clone(),
                        key: Some(key.clone()),
                    });
                }
            }
            ValidationErrorKind::OneOfNotValid { .. } if matches!(path.last(), Some(Seg::Key(k)) if k == "trigger") =>
            {
                out.push(trigger_violation(path, error.instance()));
            }
            ValidationErrorKind::PropertyNames { error: inner } => {
                let name = inner.instance().as_str().unwrap_or_default().to_owned();
                out.push(Violation {
                    message: format!(
                        "group name `{name}` does not match the pattern {NAME_PATTERN}"
                    ),
                    path,
                    key: Some(name),
                });
            }
            ValidationErrorKind::Pattern { pattern } => out.push(Violation {
                message: format!(
                    "{} does not match the pattern {pattern} required for {}",
                    shown(error.instance()),
                    what_is_at(&path)
                ),
                path,
                key: None,
            }),
            // The validator's own words, with the value as `shown` shows it:
            // the reason survives a value too large to print.
            _ => out.push(Violation {
                path,
                key: None,
                message: error.masked_with(shown(error.instance())).to_string(),
            }),
        }
    }
    out
}

/// One step of a [`hash_lists`] path: a property, any property, any item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    AnyKey,
    AnyIndex,
}

/// Whether `path` is one of the `patterns`.
pub fn path_matches(patterns: &[Vec<Step>], path: &[Seg]) -> bool {
    patterns.iter().any(|pattern| {
        pattern.len() == path.len()
            && pattern
                .iter()
                .zip(path)
                .all(|(step, seg)| match (step, seg) {
                    (Step::Key(k), Seg::Key(s)) => k == s,
                    (Step::AnyKey, Seg::Key(_)) | (Step::AnyIndex, Seg::Index(_)) => true,
                    _ => false,
                })
    })
}

/// The paths of the lists of hashes (arrays of `$defs/Hash`), read from the
/// schema. Their items are checked one by one as the file is read
/// ([`check_hash`]), and the document keeps an empty list in their place;
/// that is sound only where an empty list passes everything the full one
/// would but its items, so only plain `properties` / `additionalProperties`
/// / `items` lead there (no combinator, which may print the instance) and
/// the list's own schema constrains nothing but its type and items.
pub fn hash_lists() -> &'static [Vec<Step>] {
    static PATHS: OnceLock<Vec<Vec<Step>>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let schema = value();
        let mut out = Vec::new();
        walk_to_hash_lists(&schema, &schema, &mut Vec::new(), &mut out);
        out
    })
}

fn walk_to_hash_lists(root: &Value, node: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    const COMBINATORS: &[&str] = &[
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "patternProperties",
        "prefixItems",
        "contains",
        "unevaluatedProperties",
        "unevaluatedItems",
    ];
    const LIST_KEYWORDS: &[&str] = &["type", "items", "default", "description", "title"];
    // Deep enough for any config; a `$ref` cycle must not loop forever.
    if path.len() > 8 {
        return;
    }
    let Some(map) = resolve_ref(root, node).as_object() else {
        return;
    };
    if COMBINATORS.iter().any(|k| map.contains_key(*k)) {
        return;
    }
    if map.get("type").and_then(Value::as_str) == Some("array") {
        let items = map.get("items").and_then(|i| i.get("$ref"));
        if items.and_then(Value::as_str) == Some("#/$defs/Hash")
            && map.keys().all(|k| LIST_KEYWORDS.contains(&k.as_str()))
        {
            out.push(path.clone());
            return;
        }
    }
    let mut descend = |step: Step, child: &Value, out: &mut Vec<Vec<Step>>| {
        path.push(step);
        walk_to_hash_lists(root, child, path, out);
        path.pop();
    };
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, child) in props {
            descend(Step::Key(name.clone()), child, out);
        }
    }
    if let Some(child @ Value::Object(_)) = map.get("additionalProperties") {
        descend(Step::AnyKey, child, out);
    }
    if let Some(child @ Value::Object(_)) = map.get("items") {
        descend(Step::AnyIndex, child, out);
    }
}

/// A schema with a local `$ref` replaced by its target.
fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name))
        .unwrap_or(node)
}

/// The pattern [`hash_pattern_matches`] implements, byte for byte.
const MATCHED_HASH_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";

/// `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$` without a regex engine: a million
/// hashes are checked per file. A test holds it to the schema's pattern.
pub fn hash_pattern_matches(s: &str) -> bool {
    // A table and a fold without early exit, which the compiler vectorises.
    static LATER: [bool; 256] = byte_set(b"_.:-");
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .fold(true, |ok, c| ok & LATER[usize::from(*c)])
}

/// ASCII letters, digits and `extra`, as a table indexed by byte.
const fn byte_set(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// How hashes are checked: the validator compiled from `$defs/Hash`, and
/// whether that definition is exactly a string of [`MATCHED_HASH_PATTERN`]
/// (then the byte matcher stands in for the validator on strings).
struct HashCheck {
    validator: Result<Validator, String>,
    matcher: bool,
}

fn hash_check() -> &'static HashCheck {
    static CHECK: OnceLock<HashCheck> = OnceLock::new();
    CHECK.get_or_init(|| {
        let schema = value();
        let def = schema
            .get("$defs")
            .and_then(|d| d.get("Hash"))
            .cloned()
            .unwrap_or(Value::Null);
        let matcher = def.as_object().is_some_and(|m| {
            m.get("type").and_then(Value::as_str) == Some("string")
                && m.get("pattern").and_then(Value::as_str) == Some(MATCHED_HASH_PATTERN)
                && m.keys()
                    .all(|k| ["type", "pattern", "description"].contains(&k.as_str()))
        });
        let validator = jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&def)
            .map_err(|e| format!("internal error: the schema's `Hash` does not compile: {e}"));
        HashCheck { validator, matcher }
    })
}

/// A string the schema accepts as a hash, told without the validator;
/// false means "ask [`check_hash`]".
pub fn hash_known_valid(s: &str) -> bool {
    hash_check().matcher && hash_pattern_matches(s)
}

/// The violations of one item of a hash list, at `path`.
pub fn check_hash(item: &Value, path: &[Seg]) -> Vec<Violation> {
    match &hash_check().validator {
        Ok(v) => violations(v, item, path),
        Err(message) => vec![Violation {
            path: path.to_vec(),
            key: None,
            message: message.clone(),
        }],
    }
}

/// A trigger matched none of its forms; say which form it looks like and
/// what that form needs, rather than "not valid under any of the schemas".
fn trigger_violation(path: Vec<Seg>, instance: &Value) -> Violation {
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
fn shown(v: &Value) -> String {
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
fn unknown_field_message(key: &str, path: &[Seg]) -> String {
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
fn what_is_at(path: &[Seg]) -> &'static str {
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

    #[test]
    fn schema_compiles() {
        assert!(validator().is_ok());
        assert!(hash_check().validator.is_ok());
    }

    #[test]
    fn the_hash_lists_are_found_in_the_schema() {
        let key = |k: &str| Step::Key(k.to_owned());
        assert_eq!(
            hash_lists(),
            [
                vec![key("groups"), Step::AnyKey, key("hashes")],
                vec![key("resets"), Step::AnyIndex, key("hashes")],
            ]
        );
        // The byte matcher is in use: the schema's `Hash` is what it implements.
        assert!(hash_check().matcher);
    }
}
