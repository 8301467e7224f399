//! What operators' tools check: `/metrics` as Prometheus and promtool read
//! it (each body in the format its `Content-Type` names), and the deployment
//! examples (they parse, are hardened, and their commands run).

use std::collections::{BTreeSet, HashMap};

use crate::daemon::Daemon;
use crate::fake_api::FakeApi;
use crate::support::Workspace;

/// What Prometheus 2.x sends with its default scrape protocols.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The `Content-Type` header of a response head.
fn content_type(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Content-Type in\n{head}"))
}

/// Checks a `/metrics` body by the rules of its format: every `# TYPE` has a
/// `# HELP` with text before it, every sample belongs to a family declared
/// before it under the name that format uses, and `# EOF` ends an
/// OpenMetrics body and appears nowhere in a 0.0.4 one. Returns the sample
/// names.
fn check_exposition(body: &str, openmetrics: bool) -> BTreeSet<String> {
    let mut helped = BTreeSet::new();
    let mut families: HashMap<&str, &str> = HashMap::new();
    let mut samples = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!text.trim().is_empty(), "empty help: {line}");
            helped.insert(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "# TYPE {name} without # HELP");
            families.insert(name, kind);
        } else if line.starts_with('#') {
            assert!(
                openmetrics && line == "# EOF",
                "{line:?} in a {} body",
                if openmetrics { "OpenMetrics" } else { "0.0.4" }
            );
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let declared = |family: &str, kinds: &[&str]| {
                families.get(family).is_some_and(|k| kinds.contains(k))
            };
            let histogram = ["_bucket", "_sum", "_count"].iter().any(|s| {
                name.strip_suffix(s)
                    .is_some_and(|f| declared(f, &["histogram"]))
            });
            let plain = if openmetrics {
                declared(name, &["gauge", "unknown"])
                    || name
                        .strip_suffix("_total")
                        .is_some_and(|f| declared(f, &["counter"]))
            } else {
                declared(name, &["gauge", "counter", "untyped"])
            };
            assert!(histogram || plain, "sample {name} of no declared family");
            samples.insert(name.to_owned());
        }
    }
    if openmetrics {
        assert_eq!(
            body.lines().last(),
            Some("# EOF"),
            "OpenMetrics ends with # EOF"
        );
    }
    samples
}

#[test]
fn metrics_are_openmetrics_when_asked_for_and_prometheus_text_otherwise() {
    let api = FakeApi::start();
    let ws = Workspace::new("resets:\n  - id: first\n    hashes: [AAAA1]\n");
    let daemon = Daemon::start(&ws, &api, &[]);
    // After a real request every family, the request counter too, has samples.
    daemon.wait_for_log("run succeeded");

    let mut bodies = Vec::new();
    for (accept, expected, openmetrics) in [
        (None, "text/plain; version=0.0.4; charset=utf-8", false),
        (
            Some("text/plain"),
            "text/plain; version=0.0.4; charset=utf-8",
            false,
        ),
        (
            Some("*/*"),
            "text/plain; version=0.0.4; charset=utf-8",
            false,
        ),
        (
            Some(PROMETHEUS_ACCEPT),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            true,
        ),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let (code, head, body) = daemon.get_with_headers("/metrics", &headers);
        assert_eq!(code, 200);
        assert_eq!(content_type(&head), expected, "Accept: {accept:?}");
        let samples = check_exposition(&body, openmetrics);
        assert!(
            samples.contains("resetd_api_requests_total"),
            "no request counter in\n{body}"
        );
        bodies.push(samples);
    }
    // The same samples whichever the format.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:#?}");
}
