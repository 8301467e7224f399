//! `resetd validate`: every rule of SPEC §2, each asserting the exact line and
//! path reported. In each invalid case the line carrying `# <-` is where the
//! error must be reported.

use chrono::{TimeZone, Utc};
use resetd::config;
use resetd::diagnostic::Severity;

use crate::support::{repo_root, resetd, run};

const HEAD: &str = "apiVersion: resetd/v1\nkind: SessionResets\n";
const H1: &str = "01H7YCG0R9GYY1YCPS2S4QA6WB";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// (name, document, expected path, expected message fragment)
type Case = (&'static str, String, &'static str, &'static str);

fn doc(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn reset(extra: &str) -> String {
    doc(&format!("resets:\n  - id: r1\n{extra}"))
}

fn invalid_cases() -> Vec<Case> {
    vec![
        // YAML itself
        (
            "syntax error",
            doc("resets:\n  - id: r1\n   hashes: [a  # <-\n"),
            "",
            "YAML syntax error",
        ),
        (
            "duplicate key",
            doc("resets: []\nresets: []  # <-\n"),
            "",
            "duplicate key `resets`",
        ),
        (
            "two documents",
            doc("resets: []\n---  # <-\nresets: []\n"),
            "",
            "only one YAML document",
        ),
        (
            "tab in indentation",
            doc("resets:\n  - id: a\n  \thashes: [h1]  # <-\n"),
            "",
            "a tab in indentation",
        ),
        (
            "non-string key",
            doc("groups:\n  ? [a, b]  # <-\n  : {}\n"),
            "",
            "mapping keys must be plain strings",
        ),
        // document
        (
            "missing apiVersion",
            "kind: SessionResets  # <-\nresets: []\n".into(),
            "",
            "\"apiVersion\" is a required property",
        ),
        (
            "missing kind",
            "apiVersion: resetd/v1  # <-\nresets: []\n".into(),
            "",
            "\"kind\" is a required property",
        ),
        (
            "wrong apiVersion",
            "apiVersion: resetd/v2  # <-\nkind: SessionResets\n".into(),
            "apiVersion",
            "resetd/v1",
        ),
        (
            "wrong kind",
            "apiVersion: resetd/v1\nkind: Resets  # <-\n".into(),
            "kind",
            "SessionResets",
        ),
        (
            "unknown top-level field",
            doc("reset: []  # <-\n"),
            "reset",
            "unknown field `reset` (did you mean `resets`?)",
        ),
        (
            "resets is not a list",
            doc("resets: {id: r1}  # <-\n"),
            "resets",
            "is not of type \"array\"",
        ),
        // settings
        (
            "unknown setting",
            doc("settings:\n  dryrun: true  # <-\n"),
            "settings.dryrun",
            "did you mean `dryRun`?",
        ),
        (
            "batchSize zero",
            doc("settings:\n  batchSize: 0  # <-\n"),
            "settings.batchSize",
            "less than the minimum of 1",
        ),
        (
            "batchSize too large",
            doc("settings:\n  batchSize: 10001  # <-\n"),
            "settings.batchSize",
            "greater than the maximum of 10000",
        ),
        (
            "maxAttempts zero",
            doc("settings:\n  maxAttempts: 0  # <-\n"),
            "settings.maxAttempts",
            "minimum of 1",
        ),
        (
            "maxAttempts too large",
            doc("settings:\n  maxAttempts: 101  # <-\n"),
            "settings.maxAttempts",
            "maximum of 100",
        ),
        (
            "requestTimeout bad unit",
            doc("settings:\n  requestTimeout: 30x  # <-\n"),
            "settings.requestTimeout",
            "invalid duration `30x`",
        ),
        (
            "requestTimeout zero",
            doc("settings:\n  requestTimeout: 0s  # <-\n"),
            "settings.requestTimeout",
            "greater than zero",
        ),
        (
            "requestTimeout above its bound",
            doc("settings:\n  requestTimeout: 11m  # <-\n"),
            "settings.requestTimeout",
            "`requestTimeout` must be at most 10m",
        ),
        (
            "requestTimeout below its bound",
            doc("settings:\n  requestTimeout: 99ms  # <-\n"),
            "settings.requestTimeout",
            "`requestTimeout` must be at least 100ms",
        ),
        (
            "requestTimeout too large for a u64",
            doc("settings:\n  requestTimeout: 18446744073709551616s  # <-\n"),
            "settings.requestTimeout",
            "at most 10m",
        ),
        (
            "retryDelay above the backoff cap",
            doc("settings:\n  retryDelay: 31s  # <-\n"),
            "settings.retryDelay",
            "`retryDelay` must be at most 30s",
        ),
        (
            "retryDelay below its bound",
            doc("settings:\n  retryDelay: 999us  # <-\n"),
            "settings.retryDelay",
            "`retryDelay` must be at least 1ms",
        ),
        (
            "retryDelay zero",
            doc("settings:\n  retryDelay: 0s  # <-\n"),
            "settings.retryDelay",
            "greater than zero",
        ),
        (
            "batchSize with a fraction",
            doc("settings:\n  batchSize: 10.0  # <-\n"),
            "settings.batchSize",
            "must be written as an integer",
        ),
        (
            "maxAttempts with an exponent",
            doc("settings:\n  maxAttempts: 1.0e+1  # <-\n"),
            "settings.maxAttempts",
            "must be written as an integer",
        ),
        (
            "dryRun not a boolean",
            doc("settings:\n  dryRun: \"yes\"  # <-\n"),
            "settings.dryRun",
            "is not of type \"boolean\"",
        ),
        (
            "negative rate limit",
            doc("settings:\n  maxRequestsPerSecond: -1  # <-\n"),
            "settings.maxRequestsPerSecond",
            "minimum of 0",
        ),
        (
            "settings not a map",
            doc("settings: fast  # <-\n"),
            "settings",
            "is not of type \"object\"",
        ),
        // groups
        (
            "group name with capitals",
            doc("groups:\n  EU: {hashes: [h1]}  # <-\n"),
            "groups.EU",
            "group name `EU` does not match",
        ),
        (
            "group name too long",
            doc(&format!(
                "groups:\n  {}: {{hashes: [h1]}}  # <-\n",
                "g".repeat(64)
            )),
            "groups.gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
            "does not match",
        ),
        (
            "unknown group field",
            doc("groups:\n  eu:\n    hash: [h1]  # <-\n"),
            "groups.eu.hash",
            "did you mean `hashes`?",
        ),
        (
            "include of unknown group",
            doc("groups:\n  eu:\n    include: [us]  # <-\n"),
            "groups.eu.include[0]",
            "unknown group `us`",
        ),
        (
            "include cycle",
            doc("groups:\n  a:\n    include: [b]\n  b:\n    include: [a]  # <-\n"),
            "groups.b.include[0]",
            "include cycle: a → b → a",
        ),
        (
            "group includes itself",
            doc("groups:\n  a:\n    include: [a]  # <-\n"),
            "groups.a.include[0]",
            "include cycle: a → a",
        ),
        (
            "bad hash in group",
            doc("groups:\n  a:\n    hashes: [\"has space\"]  # <-\n"),
            "groups.a.hashes[0]",
            "required for a residential user hash",
        ),
        (
            "group hashes not a list",
            doc("groups:\n  a:\n    hashes: h1  # <-\n"),
            "groups.a.hashes",
            "is not of type \"array\"",
        ),
        (
            "include names a bad group name",
            doc("groups:\n  a:\n    include: [Bad]  # <-\n"),
            "groups.a.include[0]",
            "required for a group name",
        ),
        // resets: identity
        (
            "missing id",
            doc("resets:\n  - hashes: [h1]  # <-\n"),
            "resets[0]",
            "\"id\" is a required property",
        ),
        (
            "id with capitals",
            doc("resets:\n  - id: R1  # <-\n    hashes: [h1]\n"),
            "resets[0].id",
            "required for a reset id",
        ),
        (
            "id too long",
            doc(&format!(
                "resets:\n  - id: {}  # <-\n    hashes: [h1]\n",
                "r".repeat(64)
            )),
            "resets[0].id",
            "required for a reset id",
        ),
        (
            "id starting with a dash",
            doc("resets:\n  - id: -r1  # <-\n    hashes: [h1]\n"),
            "resets[0].id",
            "required for a reset id",
        ),
        (
            "duplicate id",
            doc("resets:\n  - id: r1\n    hashes: [h1]\n  - id: r1  # <-\n    hashes: [h2]\n"),
            "resets[1].id",
            "duplicate id `r1` (first used on line 4)",
        ),
        (
            "unknown reset field",
            reset("    hashes: [h1]\n    dryrun: true  # <-\n"),
            "resets[0].dryrun",
            "did you mean `dryRun`?",
        ),
        (
            "typo in suspend",
            reset("    hashes: [h1]\n    suspended: true  # <-\n"),
            "resets[0].suspended",
            "did you mean `suspend`?",
        ),
        // resets: hashes and groups
        (
            "unknown group",
            reset("    groups: [eu]  # <-\n"),
            "resets[0].groups[0]",
            "unknown group `eu`",
        ),
        (
            "no hashes at all",
            doc("resets:\n  - id: r1  # <-\n"),
            "resets[0]",
            "resolves to no hashes",
        ),
        (
            "only an empty group",
            doc("groups:\n  empty: {}\nresets:\n  - id: r1  # <-\n    groups: [empty]\n"),
            "resets[0]",
            "resolves to no hashes",
        ),
        (
            "hash with a space",
            reset("    hashes: [\"a b\"]  # <-\n"),
            "resets[0].hashes[0]",
            "required for a residential user hash",
        ),
        (
            "empty hash",
            reset("    hashes: [\"\"]  # <-\n"),
            "resets[0].hashes[0]",
            "required for a residential user hash",
        ),
        (
            "hash too long",
            reset(&format!("    hashes: [{}]  # <-\n", "h".repeat(129))),
            "resets[0].hashes[0]",
            "required for a residential user hash",
        ),
        (
            "hash starting with a dash",
            reset("    hashes: [\"-h1\"]  # <-\n"),
            "resets[0].hashes[0]",
            "required for a residential user hash",
        ),
        (
            "hash that is a number",
            reset("    hashes: [12345]  # <-\n"),
            "resets[0].hashes[0]",
            "is not of type \"string\"",
        ),
        (
            "groups not a list",
            reset("    groups: eu  # <-\n"),
            "resets[0].groups",
            "is not of type \"array\"",
        ),
        // resets: triggers
        (
            "unknown trigger word",
            reset("    hashes: [h1]\n    trigger: weekly  # <-\n"),
            "resets[0].trigger",
            "invalid trigger \"weekly\"",
        ),
        (
            "at not a time",
            reset("    hashes: [h1]\n    trigger: {at: tomorrow}  # <-\n"),
            "resets[0].trigger.at",
            "expected an RFC 3339 time",
        ),
        (
            "at without offset",
            reset("    hashes: [h1]\n    trigger: {at: \"2026-12-01T02:00:00\"}  # <-\n"),
            "resets[0].trigger.at",
            "expected an RFC 3339 time",
        ),
        (
            "cron with four fields",
            reset("    hashes: [h1]\n    trigger: {cron: \"0 3 * *\"}  # <-\n"),
            "resets[0].trigger.cron",
            "has 4 fields; expected 5",
        ),
        (
            "cron with seconds",
            reset("    hashes: [h1]\n    trigger: {cron: \"0 0 3 * * *\"}  # <-\n"),
            "resets[0].trigger.cron",
            "has 6 fields; expected 5",
        ),
        (
            "cron minute out of range",
            reset("    hashes: [h1]\n    trigger: {cron: \"61 3 * * *\"}  # <-\n"),
            "resets[0].trigger.cron",
            "invalid cron expression",
        ),
        (
            "cron not a string",
            reset("    hashes: [h1]\n    trigger: {cron: 5}  # <-\n"),
            "resets[0].trigger.cron",
            "expected a string",
        ),
        (
            "every bad unit",
            reset("    hashes: [h1]\n    trigger: {every: 6x}  # <-\n"),
            "resets[0].trigger.every",
            "invalid duration `6x`",
        ),
        (
            "every zero",
            reset("    hashes: [h1]\n    trigger: {every: 0s}  # <-\n"),
            "resets[0].trigger.every",
            "greater than zero",
        ),
        (
            "every of 300000 years",
            reset("    hashes: [h1]\n    trigger: {every: 300000y}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at most 366d",
        ),
        (
            "every of u64::MAX seconds",
            reset("    hashes: [h1]\n    trigger: {every: 18446744073709551615s}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at most 366d",
        ),
        (
            "every past u64 seconds",
            reset("    hashes: [h1]\n    trigger: {every: 18446744073709551616s}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at most 366d",
        ),
        (
            "every of 367 days",
            reset("    hashes: [h1]\n    trigger: {every: 367d}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at most 366d",
        ),
        (
            "every a second past 366 days",
            reset("    hashes: [h1]\n    trigger: {every: 366d 1s}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at most 366d",
        ),
        (
            "every below a second",
            reset("    hashes: [h1]\n    trigger: {every: 999ms}  # <-\n"),
            "resets[0].trigger.every",
            "`every` must be at least 1s",
        ),
        (
            "at before 2000",
            reset("    hashes: [h1]\n    trigger: {at: \"1999-12-31T23:59:59Z\"}  # <-\n"),
            "resets[0].trigger.at",
            "`at` must be between 2000-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ),
        (
            "at past year 9999 once in UTC",
            reset("    hashes: [h1]\n    trigger: {at: \"9999-12-31T23:59:59-00:01\"}  # <-\n"),
            "resets[0].trigger.at",
            "`at` must be between",
        ),
        (
            "every without unit",
            reset("    hashes: [h1]\n    trigger:\n      every: \"6\"  # <-\n"),
            "resets[0].trigger.every",
            "invalid duration",
        ),
        (
            "two trigger kinds",
            reset(
                "    hashes: [h1]\n    trigger: {at: \"2026-12-01T02:00:00Z\", every: 1h}  # <-\n",
            ),
            "resets[0].trigger",
            "invalid trigger",
        ),
        (
            "unknown trigger key",
            reset("    hashes: [h1]\n    trigger: {daily: \"03:00\"}  # <-\n"),
            "resets[0].trigger",
            "invalid trigger",
        ),
        // resets: other fields
        (
            "negative revision",
            reset("    hashes: [h1]\n    revision: -1  # <-\n"),
            "resets[0].revision",
            "minimum of 0",
        ),
        (
            "revision as text",
            reset("    hashes: [h1]\n    revision: two  # <-\n"),
            "resets[0].revision",
            "is not of type \"integer\"",
        ),
        (
            "notAfter not a time",
            reset("    hashes: [h1]\n    notAfter: soon  # <-\n"),
            "resets[0].notAfter",
            "date-time",
        ),
        (
            "notAfter in year 0",
            reset("    hashes: [h1]\n    notAfter: \"0000-01-01T00:00:00Z\"  # <-\n"),
            "resets[0].notAfter",
            "`notAfter` must be between 2000-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        ),
        (
            "revision with a fraction",
            reset("    hashes: [h1]\n    revision: 10.0  # <-\n"),
            "resets[0].revision",
            "must be written as an integer",
        ),
        (
            "revision with an exponent",
            reset("    hashes: [h1]\n    revision: 1.0e+1  # <-\n"),
            "resets[0].revision",
            "must be written as an integer",
        ),
        (
            "revision past 2^53 - 1",
            reset("    hashes: [h1]\n    revision: 9007199254740992  # <-\n"),
            "resets[0].revision",
            "greater than the maximum of 9007199254740991",
        ),
        (
            "revision past u64",
            reset("    hashes: [h1]\n    revision: 18446744073709551616  # <-\n"),
            "resets[0].revision",
            "greater than the maximum of 9007199254740991",
        ),
        (
            "suspend not a boolean",
            reset("    hashes: [h1]\n    suspend: \"true\"  # <-\n"),
            "resets[0].suspend",
            "is not of type \"boolean\"",
        ),
        // Text that YAML 1.1 tools read another way (issue 18).
        (
            "a YAML 1.1 boolean",
            doc("settings:\n  dryRun: yes  # <-\n"),
            "settings.dryRun",
            "`yes` reads as a string in YAML 1.2 but as the boolean true in YAML 1.1",
        ),
        (
            "a leading-zero revision",
            reset("    hashes: [h1]\n    revision: 010  # <-\n"),
            "resets[0].revision",
            "`010` reads as the integer 10 in YAML 1.2 but as the integer 8 in YAML 1.1",
        ),
        (
            "a leading-zero batch size",
            doc("settings:\n  batchSize: 010000  # <-\n"),
            "settings.batchSize",
            "the integer 4096 in YAML 1.1",
        ),
        (
            "a group named off",
            doc("groups:\n  off:  # <-\n    hashes: [h1]\n"),
            "groups",
            "`off` reads as a string in YAML 1.2 but as the boolean false",
        ),
        (
            "a binary hash",
            reset("    hashes: [h1, 0b1010]  # <-\n"),
            "resets[0].hashes[1]",
            "as the integer 10 in YAML 1.1",
        ),
        (
            "an underscored hash",
            reset("    hashes:\n      - 1_000  # <-\n"),
            "resets[0].hashes[0]",
            "as the integer 1000 in YAML 1.1",
        ),
        (
            "a sexagesimal hash",
            reset("    hashes: [1:20]  # <-\n"),
            "resets[0].hashes[0]",
            "as the integer 80 in YAML 1.1",
        ),
        (
            "a hash named off",
            reset("    hashes: [h1, off]  # <-\n"),
            "resets[0].hashes[1]",
            "quote it (\"off\") for a string or write false",
        ),
        (
            "a merge key",
            doc("groups:\n  a: &a {hashes: [h1]}\n  b:\n    <<: *a  # <-\n"),
            "groups.b",
            "a merge key in YAML 1.1",
        ),
        (
            "YAML 1.1 declared",
            format!(
                "%YAML 1.1  # <-\n---\n{HEAD}resets:\n  - id: r1\n    revision: 010\n    hashes: [h1]\n"
            ),
            "",
            "resetd reads YAML 1.2 only",
        ),
        (
            "YAML 2.0 declared",
            format!("%YAML 2.0  # <-\n---\n{HEAD}"),
            "",
            "`%YAML 2.0`: resetd reads YAML 1.2 only",
        ),
        (
            "a line separator in a comment",
            reset("    hashes: [h1]\n    suspend: false # ok\u{2028}    dryRun: true  # <-\n"),
            "",
            "U+2028 LINE SEPARATOR",
        ),
        (
            "a paragraph separator",
            reset("    hashes: [h1]  # \u{2029}  # <-\n"),
            "",
            "U+2029",
        ),
        (
            "a next-line character",
            reset("    hashes: [h1]  # \u{85}  # <-\n"),
            "",
            "U+0085 NEXT LINE",
        ),
        (
            "a bidirectional override",
            reset("    description: \"abc\u{202e}def\"  # <-\n    hashes: [h1]\n"),
            "",
            "bidirectional control",
        ),
        (
            "a C1 control in a description",
            reset("    description: a\u{9b}b  # <-\n    hashes: [h1]\n"),
            "",
            "U+009B (C1)",
        ),
        (
            "DEL in a description",
            reset("    description: a\u{7f}b  # <-\n    hashes: [h1]\n"),
            "",
            "U+007F (DEL)",
        ),
        (
            "U+FFFE in a description",
            reset("    description: a\u{fffe}b  # <-\n    hashes: [h1]\n"),
            "",
            "U+FFFE",
        ),
        (
            "a byte order mark after the last line",
            format!("{}\u{feff}  # <-\n", reset("    hashes: [h1]\n")),
            "",
            "byte order mark",
        ),
        // Tags mean what YAML 1.2 says, or are refused.
        (
            "the non-specific tag makes a string",
            reset("    hashes: [h1]\n    suspend: ! true  # <-\n"),
            "resets[0].suspend",
            "is not of type \"boolean\"",
        ),
        (
            "the non-specific tag on a revision",
            reset("    hashes: [h1]\n    revision: ! 5  # <-\n"),
            "resets[0].revision",
            "is not of type \"integer\"",
        ),
        (
            "!!null on true",
            reset("    hashes: [h1]\n    dryRun: !!null true  # <-\n"),
            "resets[0].dryRun",
            "!!null on `true`: not a null",
        ),
        (
            "!!str on a list",
            reset("    hashes: !!str [h1]  # <-\n"),
            "resets[0].hashes",
            "!!str on a sequence",
        ),
        (
            "!!map on a list",
            reset("    hashes: !!map [h1]  # <-\n"),
            "resets[0].hashes",
            "!!map on a sequence",
        ),
        (
            "!!seq on a mapping",
            reset("    hashes: [h1]\n    trigger: !!seq {every: 1h}  # <-\n"),
            "resets[0].trigger",
            "!!seq on a mapping",
        ),
        (
            "!!float on a revision",
            reset("    hashes: [h1]\n    revision: !!float 3  # <-\n"),
            "resets[0].revision",
            "must be written as an integer",
        ),
        // The line scanner and saphyr agree: no space after a flow colon
        // is an error whether or not another line sends the file to saphyr.
        (
            "no space after a colon in a flow mapping",
            doc("resets:\n  - {id: r1, hashes:[h1]}  # <-\n"),
            "",
            "YAML syntax error",
        ),
        (
            "no space after a colon, on saphyr's path",
            doc("groups:\n  g: &g {hashes: [h1]}\nresets:\n  - {id: r1, hashes:[h1]}  # <-\n"),
            "",
            "YAML syntax error",
        ),
        (
            "description is a list",
            reset("    hashes: [h1]\n    description: [a]  # <-\n"),
            "resets[0].description",
            "is not of type",
        ),
    ]
}

fn marked_line(text: &str) -> u32 {
    let index = text
        .lines()
        .position(|l| l.contains("# <-"))
        .expect("each invalid case marks its line");
    u32::try_from(index + 1).unwrap()
}

#[test]
fn every_invalid_case_reports_its_line_and_path() {
    let cases = invalid_cases();
    assert!(cases.len() >= 40, "only {} invalid cases", cases.len());
    let mut failures = Vec::new();
    for (name, text, path, message) in &cases {
        let loaded = config::parse("case.yaml", text, now());
        let line = marked_line(text);
        let found = loaded.errors().any(|d| {
            d.line == line
                && d.path == *path
                && d.message.contains(message)
                && d.file == "case.yaml"
        });
        if loaded.config.is_some() || !found {
            failures.push(format!(
                "{name}: expected error at line {line} path `{path}` containing {message:?}; got {:#?}",
                loaded.diagnostics
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// (name, document, number of warnings expected)
fn valid_cases() -> Vec<(&'static str, String, usize)> {
    vec![
        (
            "minimal immediate",
            reset(&format!("    hashes: [{H1}]\n")),
            0,
        ),
        ("no resets at all", doc(""), 0),
        ("empty resets", doc("resets: []\n"), 0),
        (
            "all settings",
            doc(&format!(
                "settings:\n  dryRun: true\n  batchSize: 10000\n  maxAttempts: 100\n  requestTimeout: 1m 30s\n  maxRequestsPerSecond: 0\nresets:\n  - id: r1\n    hashes: [{H1}]\n"
            )),
            0,
        ),
        (
            "every trigger kind",
            doc(&format!(
                "resets:\n  - id: a\n    hashes: [{H1}]\n    trigger: immediate\n  - id: b\n    hashes: [{H1}]\n    trigger: {{at: \"2027-01-01T00:00:00+02:00\"}}\n  - id: c\n    hashes: [{H1}]\n    trigger: {{cron: \"*/15 2-4 * * MON-FRI\"}}\n  - id: d\n    hashes: [{H1}]\n    trigger: {{every: 90m}}\n"
            )),
            0,
        ),
        (
            "every bound reached, not passed",
            doc(&format!(
                "settings:\n  requestTimeout: 10m\n  retryDelay: 30s\nresets:\n  - id: a\n    hashes: [{H1}]\n    trigger: {{every: 366d}}\n  - id: b\n    hashes: [{H1}]\n    trigger: {{every: 1s}}\n    revision: 9007199254740991\n"
            )),
            0,
        ),
        (
            "lower duration bounds",
            doc(&format!(
                "settings:\n  requestTimeout: 100ms\n  retryDelay: 1ms\nresets:\n  - id: a\n    hashes: [{H1}]\n"
            )),
            0,
        ),
        (
            "instants at their bounds",
            doc(&format!(
                "resets:\n  - id: a\n    hashes: [{H1}]\n    trigger: {{at: \"9999-12-31T23:59:59Z\"}}\n    notAfter: \"9999-12-31T23:59:59Z\"\n  - id: b\n    hashes: [{H1}]\n    trigger: {{at: \"2000-01-01T00:00:00Z\"}}\n    notAfter: \"2000-01-01T00:00:00+00:00\"\n"
            )),
            0,
        ),
        (
            "nested includes",
            doc(&format!(
                "groups:\n  a: {{hashes: [{H1}]}}\n  b: {{include: [a]}}\n  c: {{include: [b, a]}}\nresets:\n  - id: r1\n    groups: [c]\n"
            )),
            0,
        ),
        ("other hash shape warns", reset("    hashes: [hash1]\n"), 1),
        (
            "at in the past warns",
            reset(&format!(
                "    hashes: [{H1}]\n    trigger: {{at: \"2020-01-01T00:00:00Z\"}}\n"
            )),
            1,
        ),
        (
            "hash listed twice warns",
            reset(&format!("    hashes: [{H1}, {H1}]\n")),
            1,
        ),
        (
            "unused group warns",
            doc(&format!(
                "groups:\n  spare: {{hashes: [{H1}]}}\nresets:\n  - id: r1\n    hashes: [{H1}]\n"
            )),
            1,
        ),
        (
            "anchors and aliases",
            doc(&format!(
                "groups:\n  a:\n    hashes: &fleet [{H1}]\nresets:\n  - id: r1\n    groups: [a]\n    hashes: *fleet\n"
            )),
            0,
        ),
        (
            "JSON is YAML too",
            format!(
                "{{\"apiVersion\": \"resetd/v1\", \"kind\": \"SessionResets\", \"resets\": [{{\"id\": \"r1\", \"hashes\": [\"{H1}\"]}}]}}"
            ),
            0,
        ),
        (
            "all entry fields",
            reset(&format!(
                "    description: |\n      multi-line\n      reason\n    hashes: [{H1}]\n    revision: 3\n    notAfter: \"2027-01-01T00:00:00Z\"\n    suspend: true\n    dryRun: true\n"
            )),
            0,
        ),
    ]
}

#[test]
fn valid_cases_have_no_errors() {
    let cases = valid_cases();
    assert!(cases.len() >= 10);
    for (name, text, warnings) in cases {
        let loaded = config::parse("case.yaml", &text, now());
        assert!(loaded.config.is_some(), "{name}: {:#?}", loaded.diagnostics);
        let got = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        assert_eq!(got, warnings, "{name}: {:#?}", loaded.diagnostics);
    }
}

#[test]
fn groups_resolve_in_order_of_first_appearance_without_repeats() {
    let text = doc(
        "groups:\n  eu: {hashes: [E1, E2]}\n  us: {hashes: [U1, E1]}\n  all: {include: [eu, us]}\nresets:\n  - id: r1\n    groups: [us, all]\n    hashes: [X1, E2]\n",
    );
    let loaded = config::parse("case.yaml", &text, now());
    let config = loaded.config.expect("valid");
    assert_eq!(config.resets[0].hashes.to_vec(), ["U1", "E1", "E2", "X1"]);
}

#[test]
fn many_odd_hashes_are_summarised() {
    let hashes: Vec<String> = (0..30).map(|i| format!("h{i}")).collect();
    let text = reset(&format!("    hashes: [{}]\n", hashes.join(", ")));
    let loaded = config::parse("case.yaml", &text, now());
    assert_eq!(loaded.diagnostics.len(), 21, "{:#?}", loaded.diagnostics);
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.message.starts_with("10 more hashes"))
    );
}

#[test]
fn three_independent_errors_are_all_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.yaml");
    std::fs::write(
        &path,
        doc(&format!(
            "settings:\n  batchSize: 0\nresets:\n  - id: a\n    groups: [missing]\n  - id: b\n    hashes: [{H1}]\n    trigger: {{cron: \"bad\"}}\n"
        )),
    )
    .unwrap();
    let (code, stdout, _) = run(resetd().args(["validate", "--format", "json"]).arg(&path));
    assert_eq!(code, 1);
    let diags: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let got: Vec<(u64, &str)> = diags
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (4, "settings.batchSize"),
            (7, "resets[0].groups[0]"),
            (10, "resets[1].trigger.cron")
        ]
    );
    for d in &diags {
        assert_eq!(d["file"], path.display().to_string());
        assert_eq!(d["severity"], "error");
        assert!(d["column"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn github_format_annotates_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, reset("    groups: [nope]\n")).unwrap();
    let (code, stdout, _) = run(resetd().args(["validate", "--format", "github"]).arg(&path));
    assert_eq!(code, 1);
    let file = path.display().to_string().replace(':', "%3A");
    assert_eq!(
        stdout,
        format!("::error file={file},line=5,col=14::resets[0].groups[0]: unknown group `nope`\n")
    );
}

#[test]
fn warnings_alone_exit_zero_and_unreadable_files_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warn.yaml");
    std::fs::write(&path, reset("    hashes: [hash1]\n")).unwrap();
    let (code, stdout, _) = run(resetd().arg("validate").arg(&path));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("warning: hash `hash1`"), "{stdout}");

    let (code, _, stderr) = run(resetd().arg("validate").arg(dir.path().join("absent.yaml")));
    assert_eq!(code, 2);
    assert!(stderr.contains("absent.yaml"), "{stderr}");
}

#[test]
fn every_bundled_example_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") && !is_not_a_config(&path) {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema="),
                "{} lacks the $schema comment",
                path.display()
            );
            let (code, stdout, stderr) = run(resetd().arg("validate").arg(&path));
            assert_eq!(code, 0, "{}: {stdout}{stderr}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} examples");
}

/// The configs a newcomer copies: the bundled examples and the README's
/// config blocks that are whole files.
fn example_configs() -> Vec<(String, String)> {
    let mut configs = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") && !is_not_a_config(&path) {
            let text = std::fs::read_to_string(&path).unwrap();
            configs.push((path.display().to_string(), text));
        }
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for (n, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        if block.contains("kind: SessionResets") {
            configs.push((format!("README.md yaml block {n}"), block.to_owned()));
        }
    }
    configs
}

#[test]
fn no_example_ages_its_one_shot_times_are_more_than_a_year_ahead() {
    let now = Utc::now();
    let horizon = now + chrono::Duration::days(366);
    let mut times = 0;
    let mut aging = Vec::new();
    for (name, text) in example_configs() {
        let loaded = config::parse(&name, &text, now);
        let config = loaded
            .config
            .unwrap_or_else(|| panic!("{name}: {:#?}", loaded.diagnostics));
        for entry in &config.resets {
            let at = match entry.trigger {
                config::Schedule::At(at) => Some(("at", at)),
                _ => None,
            };
            for (field, time) in at
                .into_iter()
                .chain(entry.not_after.map(|t| ("notAfter", t)))
            {
                times += 1;
                if time < horizon {
                    aging.push(format!("{name}: {} `{field}: {time}`", entry.id));
                }
            }
        }
    }
    assert!(times >= 4, "only {times} one-shot times found");
    assert!(
        aging.is_empty(),
        "examples that are past, or will be within a year (a newcomer's first run \
         would show EXPIRE): {aging:#?}"
    );
}

/// Examples that are other tools' files (Kubernetes manifests, workflows).
fn is_not_a_config(path: &std::path::Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    !text.contains("kind: SessionResets")
}

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(repo_root().join(resetd::schema::COMMITTED_PATH))
        .unwrap_or_default();
    assert!(
        committed == resetd::schema::json(),
        "schema/resetd.schema.json is stale: regenerate it with \
         `cargo run -- schema > schema/resetd.schema.json` and commit it"
    );
    let (code, stdout, _) = run(resetd().arg("schema"));
    assert_eq!(code, 0);
    assert_eq!(stdout, committed);
}

/// `n` groups where group `i` includes the one (or two) before it.
fn group_graph(n: usize, fan_in: usize) -> String {
    let mut text = String::from("groups:\n  g0: {hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]}\n");
    for i in 1..n {
        let includes: Vec<String> = (1..=fan_in.min(i)).map(|d| format!("g{}", i - d)).collect();
        text.push_str(&format!("  g{i}: {{include: [{}]}}\n", includes.join(", ")));
    }
    text.push_str(&format!("resets:\n  - id: r1\n    groups: [g{}]\n", n - 1));
    text.push_str(&format!("  - id: r2\n    groups: [g{}]\n", n - 1));
    text
}

#[test]
fn a_deep_include_chain_resolves_without_recursion() {
    // 50,000 deep: recursion would overflow the test thread's stack.
    let loaded = config::parse("case.yaml", &doc(&group_graph(50_000, 1)), now());
    let config = loaded.config.expect("valid");
    assert_eq!(
        config.resets[0].hashes.to_vec(),
        ["01H7YCG0R9GYY1YCPS2S4QA6WB"]
    );
    // Entries naming the same single group share its list.
    assert!(std::sync::Arc::ptr_eq(
        &config.resets[0].hashes.to_arc(),
        &config.resets[1].hashes.to_arc()
    ));
}

#[test]
fn a_diamond_of_includes_is_resolved_once_per_group() {
    // Each group includes the two before it: 2^45 paths, 45 groups. Without
    // memoisation this never finishes.
    let loaded = config::parse("case.yaml", &doc(&group_graph(45, 2)), now());
    let config = loaded.config.expect("valid");
    assert_eq!(config.resets[0].hashes.len(), 1);
}

#[test]
fn a_cycle_at_the_end_of_a_deep_chain_is_found_and_located() {
    let mut text = group_graph(50_000, 1);
    text = text.replace(
        "  g0: {hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]}\n",
        "  g0: {hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB], include: [g49999]}\n",
    );
    let loaded = config::parse("case.yaml", &doc(&text), now());
    assert!(loaded.config.is_none());
    let cycle: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("include cycle"))
        .collect();
    assert_eq!(cycle.len(), 1, "{:#?}", loaded.diagnostics.first());
    assert!(cycle[0].path.starts_with("groups."), "{}", cycle[0].path);
}

#[test]
fn max_requests_per_second_is_a_number() {
    let body = |rate: &str| {
        doc(&format!(
            "settings:\n  maxRequestsPerSecond: {rate}\nresets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n"
        ))
    };
    let loaded = config::parse("case.yaml", &body("0.5"), now());
    let config = loaded.config.expect("0.5 is valid");
    assert_eq!(config.settings.max_requests_per_second, Some(0.5));
    let loaded = config::parse("case.yaml", &body("0.0001"), now());
    assert!(loaded.config.is_none());
    let d = loaded.errors().next().unwrap();
    assert_eq!(
        (d.line, d.path.as_str()),
        (4, "settings.maxRequestsPerSecond"),
        "{d:?}"
    );
    for bad in ["-1", "10001", "fast"] {
        assert!(
            config::parse("case.yaml", &body(bad), now())
                .config
                .is_none(),
            "{bad}"
        );
    }
}

#[test]
fn special_files_are_refused_at_once_and_json_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("resets.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // A FIFO with no writer would block a reader forever.
    for args in [
        vec!["validate".to_owned(), fifo.display().to_string()],
        vec![
            "run".into(),
            "--once".into(),
            "--dry-run".into(),
            "--config".into(),
            fifo.display().to_string(),
        ],
        vec!["validate".into(), "/dev/zero".into()],
    ] {
        let (code, _, stderr) = run(resetd().args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
    let (code, stdout, _) = run(resetd().args(["validate", "--format", "json"]).arg(&fifo));
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json[0]["file"], fifo.display().to_string());
    assert_eq!(json[0]["severity"], "error");
}

/// Every string in a list of hashes of the validation table's documents.
fn table_hashes() -> Vec<String> {
    let mut out = Vec::new();
    let docs = invalid_cases()
        .into_iter()
        .map(|c| c.1)
        .chain(valid_cases().into_iter().map(|c| c.1));
    for text in docs {
        let Ok((value, _)) = resetd::yaml::parse(&text) else {
            continue;
        };
        let groups = value["groups"]
            .as_object()
            .into_iter()
            .flat_map(|g| g.values());
        let resets = value["resets"].as_array().into_iter().flatten();
        for holder in groups.chain(resets) {
            for hash in holder["hashes"].as_array().into_iter().flatten() {
                out.extend(hash.as_str().map(str::to_owned));
            }
        }
    }
    out
}

/// The byte matcher that stands in for the schema's `Hash` pattern accepts
/// exactly what the validator compiled from the committed schema accepts.
fn matcher_agrees(hash: &str) -> Result<(), String> {
    let by_schema = resetd::schema::check_hash(&serde_json::json!(hash), &[]).is_empty();
    let by_matcher = resetd::schema::hash_pattern_matches(hash);
    if by_schema == by_matcher {
        Ok(())
    } else {
        Err(format!(
            "{hash:?}: schema says {by_schema}, the byte matcher {by_matcher}"
        ))
    }
}

#[test]
fn the_hash_matcher_agrees_with_the_schema_on_the_table_and_beyond() {
    let hashes = table_hashes();
    let invalid = hashes
        .iter()
        .filter(|h| !resetd::schema::hash_pattern_matches(h))
        .count();
    // The table's held-in invalid hashes: a space, empty, too long, a dash.
    assert!(invalid >= 5, "{hashes:?}");
    assert!(hashes.len() > invalid + 10, "{hashes:?}");
    let edges = [
        "a".repeat(128),
        "a".repeat(129),
        format!("{H1}\n"),
        "a\u{e9}".into(),
        "a/b".into(),
        "a:b.c-d_e".into(),
        "_a".into(),
        ".a".into(),
        "\u{0661}".into(),
    ];
    for hash in hashes.iter().chain(&edges) {
        matcher_agrees(hash).unwrap();
    }
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&"[A-Za-z0-9_.:/ \u{e9}\u{0661}-]{0,130}", |hash| {
            matcher_agrees(&hash).map_err(proptest::test_runner::TestCaseError::fail)
        })
        .unwrap();
}

/// (name, document, every error and warning expected: marker, path,
/// message fragment). Each document has several independent problems, one
/// of them a schema error; one run must report them all. Marker N is the
/// line marked `# <N`.
type Problems = (
    &'static str,
    String,
    Vec<(usize, &'static str, &'static str)>,
);

fn problems_cases() -> Vec<Problems> {
    vec![
        (
            "duplicate id beside a typo in the same entry",
            doc(&format!(
                "resets:\n  - id: r1\n    hashes: [{H1}]\n  - id: r1  # <0\n    hashes: [{H1}]\n    dryrun: true  # <1\n"
            )),
            vec![
                (
                    0,
                    "resets[1].id",
                    "duplicate id `r1` (first used on line 4)",
                ),
                (1, "resets[1].dryrun", "unknown field `dryrun`"),
            ],
        ),
        (
            "duplicate id after a typo in the first entry",
            doc(&format!(
                "resets:\n  - id: r1\n    hashes: [{H1}]\n    suspended: true  # <0\n  - id: r1  # <1\n    hashes: [{H1}]\n"
            )),
            vec![
                (0, "resets[0].suspended", "did you mean `suspend`?"),
                (1, "resets[1].id", "duplicate id `r1`"),
            ],
        ),
        (
            "an id of the wrong shape used twice",
            doc(&format!(
                "resets:\n  - id: R1  # <0\n    hashes: [{H1}]\n  - id: R1  # <1\n    hashes: [{H1}]\n"
            )),
            vec![
                (0, "resets[0].id", "required for a reset id"),
                (1, "resets[1].id", "duplicate id `R1`"),
            ],
        ),
        (
            "unknown group and bad cron beside an unknown field",
            doc(
                "resets:\n  - id: r1\n    groups: [nope]  # <0\n    trigger: {cron: \"0 3 * *\"}  # <1\n    revison: 2  # <2\n",
            ),
            vec![
                (0, "resets[0].groups[0]", "unknown group `nope`"),
                (1, "resets[0].trigger.cron", "has 4 fields"),
                (2, "resets[0].revison", "did you mean `revision`?"),
            ],
        ),
        (
            "an entry without id is still checked",
            doc("resets:\n  - groups: [nope]  # <0\n    trigger: {every: 0s}  # <1\n"),
            vec![
                (0, "resets[0]", "\"id\" is a required property"),
                (0, "resets[0].groups[0]", "unknown group `nope`"),
                (1, "resets[0].trigger.every", "greater than zero"),
            ],
        ),
        (
            "include cycle beside a typo in a group",
            doc(
                "groups:\n  a:\n    include: [b]\n    hash: [x]  # <0\n  b:\n    include: [a]  # <1\nresets:\n  - id: r1\n    groups: [a]\n",
            ),
            vec![
                (0, "groups.a.hash", "did you mean `hashes`?"),
                (1, "groups.b.include[0]", "include cycle: a → b → a"),
            ],
        ),
        (
            "settings: a typo and a bad duration",
            doc(&format!(
                "settings:\n  dryrun: true  # <0\n  requestTimeout: 11m  # <1\nresets:\n  - id: r1\n    hashes: [{H1}]\n"
            )),
            vec![
                (0, "settings.dryrun", "did you mean `dryRun`?"),
                (1, "settings.requestTimeout", "at most 10m"),
            ],
        ),
        (
            "hashes: a number, a bad one, a repeat and an odd one in one list",
            doc(
                "resets:\n  - id: r1\n    hashes:\n      - 12345  # <0\n      - \"a b\"  # <1\n      - h1  # <3\n      - h1  # <2\n",
            ),
            vec![
                (0, "resets[0].hashes[0]", "is not of type \"string\""),
                (
                    1,
                    "resets[0].hashes[1]",
                    "required for a residential user hash",
                ),
                (2, "resets[0].hashes[3]", "hash `h1` is listed twice"),
                (3, "resets[0].hashes[2]", "hash `h1` is not shaped like"),
            ],
        ),
    ]
}

/// The line marked `# <n`.
fn line_marked(text: &str, n: usize) -> u32 {
    let marker = format!("# <{n}");
    let index = text
        .lines()
        .position(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {marker}"));
    u32::try_from(index + 1).unwrap()
}

#[test]
fn every_problem_is_reported_in_one_run_beside_schema_errors() {
    let mut failures = Vec::new();
    for (name, text, expected) in problems_cases() {
        let loaded = config::parse("case.yaml", &text, now());
        for (marker, path, message) in &expected {
            let line = line_marked(&text, *marker);
            let found = loaded
                .diagnostics
                .iter()
                .any(|d| d.line == line && d.path == *path && d.message.contains(message));
            if !found {
                failures.push(format!(
                    "{name}: expected {message:?} at line {line} path `{path}`; got {:#?}",
                    loaded.diagnostics
                ));
            }
        }
        if loaded.config.is_some() {
            failures.push(format!("{name}: accepted"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn what_follows_from_a_refused_field_is_not_reported_again() {
    for (name, body, refused) in [
        (
            "typo in hashes",
            "resets:\n  - id: r1\n    hash: [h1]\n",
            "resets[0].hash",
        ),
        (
            "hashes not a list",
            "resets:\n  - id: r1\n    hashes: h1\n",
            "resets[0].hashes",
        ),
        (
            "groups not a list",
            "groups:\n  g: {hashes: [h1]}\nresets:\n  - id: r1\n    groups: g\n",
            "resets[0].groups",
        ),
        (
            "a group with a typo",
            "groups:\n  g:\n    hash: [h1]\nresets:\n  - id: r1\n    groups: [g]\n",
            "groups.g.hash",
        ),
    ] {
        let loaded = config::parse("case.yaml", &doc(body), now());
        let errors: Vec<_> = loaded.errors().collect();
        assert_eq!(errors.len(), 1, "{name}: {errors:#?}");
        assert_eq!(errors[0].path, refused, "{name}: {errors:#?}");
    }
}

#[test]
fn a_file_is_read_once_even_with_warnings_and_its_digest_covers_it_all() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Warnings (odd hashes, a repeat, an unused group) in the layout every
    // example uses: one read, as many bytes as the file.
    let mut text = doc("groups:\n  spare: {hashes: [h9]}\nresets:\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "  - id: r{i}\n    hashes:\n      - h{i}\n      - h{i}\n"
        ));
    }
    let opens = AtomicUsize::new(0);
    let open = || {
        opens.fetch_add(1, Ordering::SeqCst);
        Ok(text.as_bytes())
    };
    let (parsed, digest) = resetd::yaml::parse_file(open, None, config::reviewed()).unwrap();
    assert!(parsed.is_ok());
    assert_eq!(opens.load(Ordering::SeqCst), 1);
    assert_eq!(digest, config::hex_digest(text.as_bytes()));
    let loaded = config::parse("case.yaml", &text, now());
    assert!(
        loaded.diagnostics.len() > 20,
        "{}",
        loaded.diagnostics.len()
    );

    // Refused near the top of a file far larger than one read, on either
    // scanner (an anchor sends the file to saphyr): the digest is still the
    // whole file's, as the daemon compares it with the file's.
    for head in ["kind: A\nkind: B\n", "kind: &k A\nkind: B\n", "a: b: c\n"] {
        let text = format!("{head}{}", "# padding\n".repeat(50_000));
        let (parsed, digest) =
            resetd::yaml::parse_file(|| Ok(text.as_bytes()), None, config::reviewed()).unwrap();
        assert!(parsed.is_err(), "{head}");
        assert_eq!(digest, config::hex_digest(text.as_bytes()), "{head}");
    }
}

#[test]
fn odd_hashes_are_listed_in_file_order() {
    // Resets before groups in the file: the first 20 listed are the first
    // 20 in the file, whichever section they are in.
    let mut body = String::from("resets:\n  - id: r1\n    groups: [g]\n    hashes:\n");
    for i in 0..15 {
        body.push_str(&format!("      - r{i}\n"));
    }
    body.push_str("groups:\n  g:\n    hashes:\n");
    for i in 0..15 {
        body.push_str(&format!("      - g{i}\n"));
    }
    let loaded = config::parse("case.yaml", &doc(&body), now());
    let listed: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("not shaped") && !d.path.is_empty())
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(listed.len(), 20, "{listed:?}");
    assert_eq!(listed[14], "resets[0].hashes[14]");
    assert_eq!(listed[19], "groups.g.hashes[4]");
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.message.starts_with("10 more hashes"))
    );
}

#[test]
fn validate_from_a_file_reports_what_parsing_the_text_does() {
    // `validate` streams the file and keeps no hashes; `parse` (and `run`)
    // keeps them: the diagnostics are the same, on every table document.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.yaml");
    let docs = invalid_cases()
        .into_iter()
        .map(|c| c.1)
        .chain(valid_cases().into_iter().map(|c| c.1))
        .chain(problems_cases().into_iter().map(|c| c.1));
    let mut checked = 0;
    for text in docs {
        std::fs::write(&path, &text).unwrap();
        let mut from_file = config::check_file(&path, now()).unwrap();
        for d in &mut from_file {
            d.file = "case.yaml".into();
        }
        assert_eq!(
            from_file,
            config::parse("case.yaml", &text, now()).diagnostics,
            "{text}"
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn a_field_of_another_part_is_said_to_belong_there_never_suggested_to_itself() {
    let text = doc(&format!(
        "name: ops  # <0\non: [Failed]  # <1\ntype: slack  # <2\nresets:\n  - id: r1\n    hashes: [{H1}]\n    name: x  # <3\n    on: [Failed]  # <4\n    type: slack  # <5\n    tokenFrom: {{env: T}}  # <6\n    Name: yz  # <7\n"
    ));
    let found = config::parse("resets.yaml", &text, now()).diagnostics;
    let expected = [
        (
            0,
            "name",
            "`name` is a field of notifications[], not of the top level",
        ),
        (
            1,
            "on",
            "`on` is a field of notifications[], not of the top level",
        ),
        (
            2,
            "type",
            "`type` is a field of notifications[], not of the top level",
        ),
        (
            3,
            "resets[0].name",
            "`name` is a field of notifications[], not of resets[]",
        ),
        (
            4,
            "resets[0].on",
            "`on` is a field of notifications[], not of resets[]",
        ),
        (
            5,
            "resets[0].type",
            "`type` is a field of notifications[], not of resets[]",
        ),
        (
            6,
            "resets[0].tokenFrom",
            "`tokenFrom` is a field of notifications[], not of resets[]",
        ),
        (
            7,
            "resets[0].Name",
            "`name` is a field of notifications[], not of resets[]",
        ),
    ];
    for (n, path, message) in expected {
        let d = found
            .iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}: {found:#?}"));
        assert!(d.message.contains(message), "{path}: {}", d.message);
        assert_eq!(d.line, line_marked(&text, n), "{path}");
    }
    for d in &found {
        let field = d.path.rsplit('.').next().unwrap();
        assert!(
            !d.message.contains(&format!("did you mean `{field}`")),
            "suggested to itself: {}",
            d.message
        );
    }
    // A typo of another part's field is not suggested as if it were this
    // part's: where it belongs is said.
    let typo = config::parse(
        "resets.yaml",
        &doc(&format!(
            "resets:\n  - id: r1\n    hashes: [{H1}]\n    nam: x\n"
        )),
        now(),
    )
    .diagnostics;
    assert_eq!(
        typo[0].message,
        "unknown field `nam` (did you mean `name`, a field of notifications[]?)"
    );
}

#[test]
fn a_large_value_of_the_wrong_type_keeps_the_reason_and_quotes_a_short_prefix() {
    let entry = format!("{{hashes: [{}]}}", vec![H1; 40].join(", "));
    let entries: Vec<String> = (0..20).map(|i| format!("  e{i}: {entry}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obj2.yaml");
    std::fs::write(&path, doc(&format!("resets:\n{}", entries.concat()))).unwrap();
    let (code, stdout, _) = run(resetd().arg("validate").arg(&path));
    assert_eq!(code, 1, "{stdout}");
    let error = stdout.lines().next().unwrap();
    assert!(error.starts_with("error: "), "{stdout}");
    assert!(
        error.contains("is not of type \"array\""),
        "the reason is kept: {error}"
    );
    assert!(error.chars().count() < 160, "a short prefix only: {error}");
    assert!(error.contains("a mapping"), "says what was found: {error}");
    assert!(stdout.contains("obj2.yaml:4:3 at resets"), "{stdout}");
}

#[test]
fn a_status_file_is_said_to_be_one_in_a_single_diagnostic() {
    let ws = crate::support::Workspace::new(&format!(
        "resets:\n  - id: r1\n    hashes: [{H1}]\n  - id: r2\n    hashes: [{H1}]\n    trigger: {{every: 1h}}\n"
    ));
    let (code, _, stderr) = run(resetd()
        .args(["run", "--once", "--dry-run", "--config"])
        .arg(&ws.config));
    assert_eq!(code, 0, "{stderr}");
    let status = ws.status.display().to_string();
    let (code, stdout, _) = run(resetd().arg("validate").arg(&ws.status));
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one error and the summary:\n{stdout}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains("a resetd status file")
            && lines[0].contains("not a config")
            && lines[0].contains(&format!("resetd status --status {status}")),
        "{stdout}"
    );
    // `plan` refuses it the same way: what validate refuses, run refuses.
    let (code, stdout, stderr) = run(resetd().args(["plan", "--config"]).arg(&ws.status));
    assert_ne!(code, 0, "{stdout}{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("a resetd status file"), "{stderr}");
}
