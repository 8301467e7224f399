//! Property-based fuzzing of the config loader and the status emitter. Case
//! counts come from `PROPTEST_CASES` (default 256: the CI smoke run).

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use crate::support::repo_root;

fn corpus() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(repo_root().join("fuzz/corpus"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "fuzz/corpus is missing its seeds");
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (position fraction) with this one.
    Set(f64, u8),
    /// Insert a YAML-significant snippet.
    Insert(f64, &'static str),
    /// Delete a range (start fraction, length).
    Delete(f64, usize),
    /// Duplicate the line at (fraction).
    DuplicateLine(f64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    const SNIPPETS: &[&str] = &[
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "!!str ",
        "#",
        "\n",
        "  ",
        "'",
        "\"",
        "|",
        ">",
        "? ",
        "---\n",
        "~",
        "0x",
        "é",
        "\t",
        "<<: ",
        "resets:",
        "id: ",
        "trigger: ",
        "every: 0s",
        "cron: \"",
    ];
    prop_oneof![
        (0.0..1.0f64, any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (0.0..1.0f64, prop::sample::select(SNIPPETS)).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (0.0..1.0f64, 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (0.0..1.0f64).prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |f: f64, len: usize| ((len as f64) * f) as usize;
        match m {
            Mutation::Set(f, b) if !bytes.is_empty() => {
                let i = at(*f, bytes.len()).min(bytes.len() - 1);
                bytes[i] = *b;
            }
            Mutation::Set(..) => {}
            Mutation::Insert(f, s) => {
                let i = at(*f, bytes.len());
                bytes.splice(i..i, s.bytes());
            }
            Mutation::Delete(f, n) => {
                let i = at(*f, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::DuplicateLine(f) => {
                let i = at(*f, bytes.len());
                let start = bytes[..i]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
        }
    }
    bytes
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let loaded = resetd::config::parse("fuzz.yaml", text, now);
    for d in &loaded.diagnostics {
        prop_assert_eq!(&d.file, "fuzz.yaml");
        prop_assert!(d.line >= 1 && d.column >= 1, "unlocated: {d:?}");
        prop_assert!(!d.message.is_empty());
        // YAML breaks lines at \n, \r\n and a lone \r.
        let breaks = text
            .replace("\r\n", "\n")
            .chars()
            .filter(|c| *c == '\n' || *c == '\r')
            .count();
        let lines = u32::try_from(breaks + 1).unwrap();
        prop_assert!(
            d.line <= lines + 1,
            "line {} past the end ({lines}): {d:?}",
            d.line
        );
    }
    prop_assert_eq!(loaded.config.is_some(), loaded.errors().next().is_none());
    Ok(())
}

proptest! {
    #[test]
    fn mutated_configs_never_panic_and_every_error_is_located(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = corpus();
        let bytes = apply(seeds[seed.index(seeds.len())].clone(), &mutations);
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,400}") {
        check(&text)?;
    }

    #[test]
    fn the_status_emitter_round_trips_any_json(value in json_value()) {
        let text = resetd::yaml::to_yaml(&value);
        let (back, _) = resetd::yaml::parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(back, value, "{}", text);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "(?s).{0,12}".prop_map(Value::String),
        "[a-z0-9:. -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9 _:-]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
