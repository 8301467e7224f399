//! Hostile configs (SPEC §2): nesting, alias expansion, foreign tags and
//! diagnostics that quote file content. Every input is generated here; each
//! must give a located error, no panic, and `resetd validate` exiting 1 with
//! output of bounded size.

use chrono::{TimeZone, Utc};
use resetd::config;

use crate::support::{resetd, run};

const HEAD: &str = "apiVersion: resetd/v1\nkind: SessionResets\n";

/// Output of `validate` on one hostile file stays this small.
const OUTPUT_BOUND: usize = 8 * 1024;

/// (line, message) of each error of an in-process parse, run on a thread with
/// the default test stack (2 MiB) so that any recursion the input can deepen
/// fails the test.
fn errors(text: String) -> Vec<(u32, String)> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
            let loaded = config::parse("hostile.yaml", &text, now);
            assert!(loaded.config.is_none());
            loaded
                .errors()
                .map(|d| (d.line, d.message.clone()))
                .collect()
        })
        .unwrap()
        .join()
        .expect("parsing hostile input does not panic")
}

/// Run `resetd validate --format <format>` on `text`: exit code and stdout,
/// after checking both streams are bounded and free of escape sequences.
fn validate(text: &str, format: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.yaml");
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = run(resetd().args(["validate", "--format", format]).arg(&path));
    assert!(
        stdout.len() < OUTPUT_BOUND,
        "{} bytes of stdout",
        stdout.len()
    );
    assert!(
        stderr.len() < OUTPUT_BOUND,
        "{} bytes of stderr",
        stderr.len()
    );
    for out in [&stdout, &stderr] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
    (code, stdout)
}

fn assert_located(text: &str, line: u32, fragment: &str) {
    let errs = errors(text.to_owned());
    assert!(
        errs.iter().any(|(l, m)| *l == line && m.contains(fragment)),
        "expected {fragment:?} at line {line}, got {errs:?}"
    );
    let (code, stdout) = validate(text, "human");
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(fragment), "{stdout}");
    assert!(
        stdout.contains(&format!("hostile.yaml:{line}:")),
        "{stdout}"
    );
}

#[test]
fn deep_block_nesting_is_a_located_error() {
    // 200 KB, 100,000 levels on one line.
    let text = format!("{}x\n", "- ".repeat(100_000));
    assert_located(&text, 1, "nesting deeper than 64 levels");
}

#[test]
fn deep_block_mappings_and_flow_are_located_errors() {
    let mut text = String::from(HEAD);
    for i in 0..1_000 {
        text.push_str(&"  ".repeat(i));
        text.push_str("a:\n");
    }
    // The root mapping holds the first `a`; the 65th mapping starts at the
    // 65th `a` (line 2 + 65).
    assert_located(&text, 67, "nesting deeper than 64 levels");
    let text = format!("{HEAD}resets: {}\n", "[".repeat(100));
    assert_located(&text, 3, "nesting deeper than 64 levels");
    // Deeper flow collections may already stop the scanner (it allows 255).
    let text = format!("{HEAD}resets: {}\n", "[".repeat(100_000));
    assert_located(&text, 3, "");
}

#[test]
fn aliases_of_a_large_scalar_are_bounded_in_bytes() {
    // A 1 MiB scalar aliased 100 times: few nodes, 100 MiB of text.
    let mut text = format!("{HEAD}x-big: &big {}\nresets:\n", "y".repeat(1 << 20));
    for _ in 0..100 {
        text.push_str("  - *big\n");
    }
    // 16 aliases reach 16 MiB; the 17th crosses it (line 4 + 17).
    assert_located(&text, 21, "aliases expand to more than 16 MiB");
}

#[test]
fn aliases_cannot_nest_past_the_depth_bound() {
    let mut text = format!("{HEAD}x-a0: &a0 {}x{}\n", "[".repeat(60), "]".repeat(60));
    for i in 1..200 {
        text.push_str(&format!(
            "x-a{i}: &a{i} {}*a{}{}\n",
            "[".repeat(60),
            i - 1,
            "]".repeat(60)
        ));
    }
    assert_located(&text, 4, "nesting deeper than 64 levels");
}

#[test]
fn tags_outside_the_core_schema_are_located_errors() {
    for tag in ["!ruby/object", "!!python/object/apply", "!!set", "!foo"] {
        let text = format!("{HEAD}resets:\n  - id: {tag} r1\n");
        assert_located(&text, 4, &format!("YAML tag `{tag}` is not supported"));
    }
    // A long tag is named by a short prefix.
    let text = format!(
        "{HEAD}resets:\n  - id: x\n    hashes: !!python/name:{} [a]\n",
        "p".repeat(100_000)
    );
    assert_located(&text, 5, "YAML tag `!!python/name:ppp");
}

#[test]
fn diagnostics_quote_a_short_escaped_prefix_of_file_values() {
    // An unknown key: in the message and in the path.
    let key = format!("\\e]0;pwned\\a\\e[31m{}", "k".repeat(64 << 10));
    let text = format!("{HEAD}resets: []\n? \"{key}\"\n: 1\n");
    for format in ["human", "json", "github"] {
        let (code, stdout) = validate(&text, format);
        assert_eq!(code, 1, "{format}: {stdout}");
        assert!(stdout.contains("unknown field"), "{format}: {stdout}");
        assert!(stdout.contains("u{1b}"), "{format}: {stdout}");
    }
    // A huge value quoted by a semantic check (an invalid duration).
    let text = format!(
        "{HEAD}resets:\n  - id: r1\n    groups: [g]\n    trigger: {{every: \"\\e[2J{}\"}}\ngroups:\n  g: {{hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]}}\n",
        "9".repeat(1 << 20)
    );
    let (code, stdout) = validate(&text, "human");
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(":6:"), "{stdout}");
}

#[test]
fn files_that_are_not_utf8_get_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, line) in [
        (
            "latin1.yaml",
            &b"apiVersion: resetd/v1\nkind: SessionResets\nresets:\n  - id: caf\xe9\n"[..],
            4,
        ),
        ("utf16.yaml", &b"\xff\xfea\x00p\x00i\x00"[..], 1),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, stdout, _) = crate::support::run(
            crate::support::resetd()
                .args(["validate", "--format", "json"])
                .arg(&path),
        );
        assert_eq!(code, 1, "{name}: {stdout}");
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(json[0]["line"], line, "{name}: {stdout}");
    }
}

#[test]
fn a_tab_in_indentation_is_reported_on_its_own_line() {
    let text = "apiVersion: resetd/v1\nkind: SessionResets\nresets:\n  - id: a\n  \thashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n";
    let loaded = resetd::config::parse("tab.yaml", text, chrono::Utc::now());
    let d = loaded.errors().next().expect("an error");
    assert_eq!((d.line, d.column), (5, 3), "{d:?}");
}

/// Pieces a hostile pull request is made of, as values of a reset field.
fn hostile_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        // Nesting, block or flow, around the bound.
        (1usize..100).prop_map(|d| format!("{}x{}", "[".repeat(d), "]".repeat(d))),
        (1usize..100).prop_map(|d| format!(
            "\n{}",
            (0..d)
                .map(|i| format!("{}- x\n", "  ".repeat(i + 3)))
                .collect::<String>()
        )),
        // Numbers that are not integers, or too big.
        prop::sample::select(vec![
            "10.0",
            "1e1",
            "1e400",
            "-0",
            "0x10",
            ".inf",
            "18446744073709551616",
            "9007199254740993"
        ])
        .prop_map(str::to_owned),
        // Tags.
        prop::sample::select(vec![
            "!ruby/object x",
            "!!python/object/apply:os.system [ls]",
            "!!set {a}",
            "!foo x",
            "!!str x",
            "!!int 3",
            "!<tag:yaml.org,2002:str> x"
        ])
        .prop_map(str::to_owned),
        // Control characters and escapes in strings.
        "[\\x00-\\x1f\\x7f\\u{202e}a-z]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        // Aliases of anchors defined earlier in the document.
        (1usize..50).prop_map(|n| format!("[{}]", vec!["*big"; n].join(", "))),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 64, ..Default::default() })]
    /// `validate` (which keeps no resolved config) and `run` (which builds
    /// it) read the same file the same way: same verdict, no panic, and
    /// every error located.
    #[test]
    fn validate_and_run_agree_on_hostile_shapes(
        field in proptest::sample::select(vec!["revision", "hashes", "groups", "trigger", "id", "notAfter", "suspend"]),
        value in hostile_value(),
        in_settings in proptest::bool::ANY,
    ) {
        // A valid anchor for the aliases to copy: the entry's description.
        let entry = format!("  - id: a\n    description: &big {}\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n", "y".repeat(1000));
        let text = if in_settings {
            format!("{HEAD}resets:\n{entry}settings:\n  batchSize: {value}\n")
        } else {
            format!("{HEAD}resets:\n{entry}    {field}: {value}\n")
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.yaml");
        std::fs::write(&path, &text).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let checked = config::check_file(&path, now).unwrap();
        let loaded = config::load(&path, now).unwrap();
        let validate_ok = !checked.iter().any(|d| d.is_error());
        proptest::prop_assert_eq!(validate_ok, loaded.config.is_some(), "{}\n{:#?}", text, loaded.diagnostics);
        let lines = u32::try_from(text.lines().count()).unwrap();
        for d in &checked {
            proptest::prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d:?}");
        }
    }
}
