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

mod messages;
use messages::{shown, trigger_violation, unknown_field_message, what_is_at};

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
    static LATER: [bool; 256] = crate::core::byte_set(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-",
    );
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .fold(true, |ok, c| ok & LATER[usize::from(*c)])
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

#[cfg(test)]
mod tests {
    use super::*;

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
