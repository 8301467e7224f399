//! What the reviewer reads is what resetd sends (issue 18): anchors and
//! aliases of any node, hash lists included, read as YAML 1.2 reads them,
//! by `validate`, `run --once` and the library alike, on both scanners.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use resetd::config;

use crate::fake_api::FakeApi;
use crate::support::{HEAD, Workspace, resetd, run};

const G1: &str = "01H7YCG0R9GYY1YCPS2S4QA6WB";
const G2: &str = "01HQ5K3P97DY8EX9Y90YT1K6XA";
const OWN: &str = "02JVRQ5BF83PTW19G1SRD955J0";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

/// The hashes each entry of `text` resolves to, in send order; panics with
/// the diagnostics when the file is refused.
fn resolved(text: &str) -> Vec<(String, Vec<String>)> {
    let loaded = config::parse("exact.yaml", text, now());
    let config = loaded
        .config
        .unwrap_or_else(|| panic!("refused:\n{text}\n{:#?}", loaded.diagnostics));
    config
        .resets
        .iter()
        .map(|e| (e.id.clone(), e.hashes.to_vec()))
        .collect()
}

/// A real run against the fake API: the hashes of each DELETE.
fn sent(body: &str) -> Vec<Vec<String>> {
    let api = FakeApi::start();
    let ws = Workspace::new(body);
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    api.deletes()
}

#[test]
fn an_aliased_group_keeps_its_hashes_in_flow_style() {
    let body = format!(
        "groups:\n  eu: &g {{hashes: [{G1}, {G2}]}}\n  eu-copy: *g\nresets:\n  - {{id: r1, groups: [eu-copy], hashes: [{OWN}]}}\n"
    );
    assert_eq!(sent(&body), [vec![G1, G2, OWN]]);
    let alone = format!(
        "groups:\n  eu: &g {{hashes: [{G1}, {G2}]}}\n  eu-copy: *g\nresets:\n  - {{id: r1, groups: [eu-copy]}}\n"
    );
    assert_eq!(sent(&alone), [vec![G1, G2]]);
}

#[test]
fn an_aliased_group_keeps_its_hashes_in_block_style() {
    let body = format!(
        "groups:\n  eu: &g\n    hashes:\n      - {G1}\n      - {G2}\n  eu-copy: *g\nresets:\n  - id: r1\n    groups: [eu-copy]\n"
    );
    assert_eq!(sent(&body), [vec![G1, G2]]);
    // `validate` reads it the same way: the group has hashes.
    let ws = Workspace::new(&body);
    let (code, stdout, stderr) = run(resetd().arg("validate").arg(&ws.config));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn aliases_of_lists_entries_and_users_are_read_whole() {
    let text = format!(
        "{HEAD}groups:\n  eu: &g {{users: [scraper-eu-07], hashes: &h [{G1}, {G2}]}}\n  eu-copy: *g\n  \
         again: {{hashes: *h}}\nresets:\n  - &entry\n    id: r1\n    groups: [eu-copy]\n  \
         - {{id: r2, groups: [again], hashes: *h}}\n  - {{id: r3, hashes: [*own, {G1}]}}\n  \
         - {{id: r4, hashes: [&own {OWN}]}}\n"
    );
    // r3 names an anchor defined later: YAML refuses that, and so does resetd.
    let loaded = config::parse("exact.yaml", &text, now());
    assert!(loaded.config.is_none());
    assert!(
        loaded
            .errors()
            .any(|d| d.message.contains("unknown anchor") && d.line == 13),
        "{:#?}",
        loaded.diagnostics
    );
    let text = text
        .replace(&format!("[*own, {G1}]"), &format!("[&own {OWN}, {G1}]"))
        .replace(&format!("[&own {OWN}]"), "[*own]");
    assert_eq!(
        resolved(&text),
        [
            (
                "r1".into(),
                vec![G1.into(), G2.into(), "@scraper-eu-07".into()]
            ),
            ("r2".into(), vec![G1.into(), G2.into()]),
            ("r3".into(), vec![OWN.into(), G1.into()]),
            ("r4".into(), vec![OWN.into()]),
        ]
    );
}

#[test]
fn a_bad_hash_in_an_aliased_list_is_located_at_the_anchor() {
    let text = format!(
        "{HEAD}groups:\n  eu: &g\n    hashes: [{G1}, bad/hash]\n  eu-copy: *g\nresets:\n  - {{id: r1, groups: [eu-copy]}}\n"
    );
    let loaded = config::parse("exact.yaml", &text, now());
    assert!(loaded.config.is_none());
    let lines: Vec<(u32, &str)> = loaded.errors().map(|d| (d.line, d.path.as_str())).collect();
    // Once where it is written, once where the alias copies it.
    assert!(lines.contains(&(6, "groups.eu.hashes[1]")), "{lines:?}");
    assert!(
        lines.contains(&(6, "groups.eu-copy.hashes[1]")),
        "{lines:?}"
    );
}

/// A group of the generated configs: its name and hashes.
const GROUPS: &[(&str, &[&str])] = &[("a", &[G1, G2]), ("b", &[G2, OWN]), ("c", &[OWN])];

/// How a generated config writes one group.
#[derive(Debug, Clone)]
enum Written {
    Flow,
    Block,
    /// Anchored, and copied by the next group's alias.
    Anchored,
}

fn group_text(name: &str, hashes: &[&str], how: &Written, alias_of: Option<&str>) -> String {
    if let Some(anchor) = alias_of {
        return format!("  {name}: *{anchor}\n");
    }
    let list = hashes.join(", ");
    match how {
        Written::Flow => format!("  {name}: {{hashes: [{list}]}}\n"),
        Written::Block => format!(
            "  {name}:\n    hashes:\n{}",
            hashes
                .iter()
                .map(|h| format!("      - {h}\n"))
                .collect::<String>()
        ),
        Written::Anchored => format!("  {name}: &{name} {{hashes: !!seq [{list}]}}\n"),
    }
}

fn written() -> impl Strategy<Value = Written> {
    prop_oneof![
        Just(Written::Flow),
        Just(Written::Block),
        Just(Written::Anchored)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// `validate` and `run` agree on files with anchors, aliases and tags,
    /// and both read each entry's hashes as YAML 1.2 does: the union of its
    /// groups (aliases copying the anchored group) and its own, in order.
    #[test]
    fn validate_and_run_read_aliases_and_tags_alike(
        styles in prop::collection::vec(written(), GROUPS.len()),
        copies in prop::collection::vec(any::<bool>(), GROUPS.len()),
        entries in prop::collection::vec(
            (prop::sample::subsequence(vec![0usize, 1, 2, 3], 0..=2), prop::sample::subsequence(vec![G1, G2, OWN], 0..=2), any::<bool>()),
            1..4,
        ),
    ) {
        let mut text = format!("{HEAD}groups:\n");
        let mut members: Vec<(String, Vec<&str>)> = Vec::new();
        for (i, (name, hashes)) in GROUPS.iter().enumerate() {
            text.push_str(&group_text(name, hashes, &styles[i], None));
            members.push(((*name).to_owned(), hashes.to_vec()));
            if copies[i] && matches!(styles[i], Written::Anchored) {
                let copy = format!("{name}-copy");
                text.push_str(&group_text(&copy, hashes, &styles[i], Some(name)));
                members.push((copy, hashes.to_vec()));
            }
        }
        text.push_str("resets:\n");
        let mut expected = Vec::new();
        for (i, (groups, own, tagged)) in entries.iter().enumerate() {
            let names: Vec<&str> = groups.iter().filter_map(|g| members.get(*g).map(|m| m.0.as_str())).collect();
            let mut want: Vec<String> = Vec::new();
            for name in &names {
                let hashes = &members.iter().find(|m| m.0 == *name).unwrap().1;
                for h in hashes {
                    if !want.iter().any(|w| w == h) {
                        want.push((*h).to_owned());
                    }
                }
            }
            for h in own {
                if !want.iter().any(|w| w == h) {
                    want.push((*h).to_owned());
                }
            }
            let tag = if *tagged { "!!seq " } else { "" };
            text.push_str(&format!(
                "  - id: e{i}\n    groups: {tag}[{}]\n    hashes: {tag}[{}]\n    revision: !!int {i}\n    suspend: !!bool false\n",
                names.join(", "),
                own.join(", ")
            ));
            expected.push((format!("e{i}"), want));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, &text).unwrap();
        let checked = config::check_file(&path, now()).unwrap();
        let loaded = config::load(&path, now()).unwrap();
        let validate_ok = !checked.iter().any(|d| d.is_error());
        prop_assert_eq!(validate_ok, loaded.config.is_some(), "{}\n{:#?}", text, loaded.diagnostics);
        let nonempty = expected.iter().all(|(_, want)| !want.is_empty());
        prop_assert_eq!(validate_ok, nonempty, "{}\n{:#?}", text, checked);
        if let Some(config) = loaded.config {
            let got: Vec<(String, Vec<String>)> = config
                .resets
                .iter()
                .map(|e| (e.id.clone(), e.hashes.to_vec()))
                .collect();
            prop_assert_eq!(got, expected, "{}", text);
        }
    }
}
