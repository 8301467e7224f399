//! The alerting kit (`examples/prometheus/`) and the Grafana dashboard
//! (`examples/grafana/`), held to the daemon they watch: every metric and
//! label their queries name is in a real scrape of `/metrics`; the rules
//! file and its `PrometheusRule` hold the same groups; every alert has its
//! `for:`, severity, annotations, a runbook in the README and promtool cases
//! that fire and that do not. (CI runs promtool itself: `.ci/promtool.sh`.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::Daemon;
use crate::fake_api::FakeApi;
use crate::support::{Workspace, repo_root};

/// Metrics only a member of an HA group exports (`resetd run --etcd`, SPEC
/// §7): checked in the scrape of such a member, against a real etcd.
const HA_ONLY: &[&str] = &[
    "resetd_ha_leader",
    "resetd_ha_leader_changes_total",
    "resetd_ha_etcd_up",
];

/// Labels that Prometheus adds to what it scrapes: never in `/metrics`.
const TARGET_LABELS: &[&str] = &["job", "instance"];

const WAIT: Duration = Duration::from_secs(20);

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap()
}

fn yaml(path: &str) -> Value {
    resetd::yaml::parse(&read(path))
        .unwrap_or_else(|e| panic!("{path}: {e:?}"))
        .0
}

/// One metric as a query selects it: its name and label matchers
/// (label, operator, value).
#[derive(Debug, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The text of the string literal that starts at `chars[*i]` (a quote);
/// leaves `i` after its closing quote.
fn string_literal(chars: &[char], i: &mut usize) -> String {
    let quote = chars[*i];
    let mut text = String::new();
    *i += 1;
    while *i < chars.len() && chars[*i] != quote {
        if chars[*i] == '\\' && quote != '`' {
            *i += 1;
        }
        text.extend(chars.get(*i));
        *i += 1;
    }
    *i += 1;
    text
}

/// The matchers of the `{...}` that starts at `chars[*i]`; leaves `i` after
/// the closing brace.
fn matchers(chars: &[char], i: &mut usize) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    *i += 1;
    loop {
        while chars
            .get(*i)
            .is_some_and(|c| c.is_whitespace() || *c == ',')
        {
            *i += 1;
        }
        if chars.get(*i).is_none_or(|c| *c == '}') {
            *i += 1;
            return found;
        }
        let start = *i;
        while chars.get(*i).copied().is_some_and(is_ident) {
            *i += 1;
        }
        let label: String = chars[start..*i].iter().collect();
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
        let start = *i;
        while chars.get(*i).is_some_and(|c| "=!~".contains(*c)) {
            *i += 1;
        }
        let op: String = chars[start..*i].iter().collect();
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
        assert!(
            !label.is_empty()
                && !op.is_empty()
                && chars.get(*i).is_some_and(|c| "\"'`".contains(*c)),
            "cannot read the matchers at {:?}",
            chars[start.saturating_sub(20)..].iter().collect::<String>()
        );
        found.push((label, op, string_literal(chars, i)));
    }
}

/// The resetd metrics a PromQL expression names: identifiers that start
/// with `resetd_` and are followed by `{`, `[`, `)`, `,`, whitespace or the
/// end (so not a function), outside string literals, with their matchers.
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if "\"'`".contains(c) {
            string_literal(&chars, &mut i);
        } else if is_ident(c) {
            let start = i;
            while chars.get(i).copied().is_some_and(is_ident) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let next = chars.get(i).copied();
            if name.starts_with("resetd_")
                && next.is_none_or(|n| "{[),".contains(n) || n.is_whitespace())
            {
                let matchers = if next == Some('{') {
                    matchers(&chars, &mut i)
                } else {
                    Vec::new()
                };
                found.push(Selector {
                    metric: name,
                    matchers,
                });
            }
        } else {
            i += 1;
        }
    }
    found
}

/// A scrape: the families its `# TYPE` lines declare (name, type) and its
/// samples (name, labels).
struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>)>,
}

impl Exposition {
    fn parse(body: &str) -> Exposition {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let chars: Vec<char> = line.chars().collect();
                let end = chars.iter().position(|c| !is_ident(*c)).unwrap();
                let mut i = end;
                let labels = if chars[i] == '{' {
                    matchers(&chars, &mut i)
                        .into_iter()
                        .map(|(label, _, value)| (label, value))
                        .collect()
                } else {
                    BTreeMap::new()
                };
                samples.push((chars[..end].iter().collect(), labels));
            }
        }
        Exposition { types, samples }
    }

    /// The family of a sample name: itself, or the counter it is the
    /// `_total` of, or the histogram it is the `_bucket`, `_sum` or `_count`
    /// of.
    fn family<'a>(&self, name: &'a str) -> Option<&'a str> {
        let declared = |base: &str, kind: &str| self.types.get(base).is_some_and(|k| k == kind);
        if declared(name, "gauge") || declared(name, "counter") || declared(name, "histogram") {
            return Some(name);
        }
        let suffixes = [
            ("_total", "counter"),
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
        ];
        suffixes.iter().find_map(|(suffix, kind)| {
            name.strip_suffix(suffix)
                .filter(|base| declared(base, kind))
        })
    }

    fn samples_of(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, labels)| labels)
            .collect()
    }
}

/// The alerting rules of the rules file, in order.
fn rules() -> Vec<Value> {
    let file = yaml("examples/prometheus/resetd-alerts.yaml");
    let groups = file["groups"].as_array().unwrap();
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(&read("examples/grafana/resetd-dashboard.json")).unwrap()
}

/// Every query of the dashboard: panel targets' `expr` and the template
/// variables' `definition`, each with the title or name it belongs to.
fn dashboard_queries(value: &Value, place: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let here = map
                .get("title")
                .or_else(|| map.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(place);
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("expr" | "definition", Value::String(q)) => {
                        out.push((format!("dashboard panel {here:?}"), q.clone()));
                    }
                    _ => dashboard_queries(child, here, out),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| dashboard_queries(item, place, out)),
        _ => {}
    }
}

/// Every PromQL query of the kit, with where it is.
fn kit_queries() -> Vec<(String, String)> {
    let mut queries: Vec<(String, String)> = rules()
        .iter()
        .map(|r| {
            (
                format!("alert {}", r["alert"].as_str().unwrap()),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    dashboard_queries(&dashboard(), "dashboard", &mut queries);
    queries
}

#[test]
fn the_tokenizer_finds_metric_names_and_their_matchers() {
    let found = selectors(
        r#"sum by (code) (rate(resetd_a_total{code!~"2..", result = 'ok'}[5m]))
           / resetd_b_count > 0 or absent(resetd_c) or label_values(resetd_d, job)
           unless up{job="resetd_in_a_string"} and resetd_not_a_metric(x) or resetd_e"#,
    );
    let names: Vec<&str> = found.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(
        names,
        [
            "resetd_a_total",
            "resetd_b_count",
            "resetd_c",
            "resetd_d",
            "resetd_e"
        ]
    );
    let ops = |(l, o, v): &(String, String, String)| (l.clone(), o.clone(), v.clone());
    assert_eq!(
        found[0].matchers.iter().map(ops).collect::<Vec<_>>(),
        [
            ("code".into(), "!~".into(), "2..".into()),
            ("result".into(), "=".into(), "ok".into())
        ]
    );

    let scrape = Exposition::parse(
        "# TYPE resetd_x counter\nresetd_x_total{a=\"b\"} 1\n# TYPE resetd_h histogram\n\
         resetd_h_bucket{le=\"0.1\"} 1\n# TYPE resetd_g gauge\nresetd_g 2\n",
    );
    for (name, family) in [
        ("resetd_x_total", Some("resetd_x")),
        ("resetd_h_bucket", Some("resetd_h")),
        ("resetd_h_sum", Some("resetd_h")),
        ("resetd_h_count", Some("resetd_h")),
        ("resetd_g", Some("resetd_g")),
        ("resetd_g_total", None),
        ("resetd_x_bucket", None),
        ("resetd_y", None),
    ] {
        assert_eq!(scrape.family(name), family, "{name}");
    }
}

/// A scrape of a member of an HA group on a real etcd (`None`, said on
/// stderr, when there is no etcd and `RESETD_REQUIRE_ETCD` is unset).
fn ha_member_scrape() -> Option<String> {
    let etcd = crate::support::etcd::Etcd::single("alerts::ha_member_scrape")?;
    let api = FakeApi::start();
    let ws = Workspace::new("resets: []\n");
    let mut cmd = ws.command(&api.base());
    cmd.env("RESETD_LOG_FORMAT", "json")
        .args(["run", "--config"])
        .arg(&ws.config)
        .args(["--listen", "127.0.0.1:0", "--resync", "1h"])
        .args(["--etcd", &etcd.endpoints(), "--ha-lease", "2s"]);
    let daemon = Daemon::spawn(cmd);
    // Elected, and counted: every HA family has its sample.
    Some(scrape_until(&daemon, "the member never led", |body| {
        body.contains("resetd_ha_leader 1") && body.contains("resetd_ha_leader_changes_total 1")
    }))
}

/// Scrape `daemon` in OpenMetrics until `done` says the body is complete;
/// the body.
fn scrape_until(daemon: &Daemon, what: &str, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + WAIT;
    loop {
        let (code, _, body) = daemon.get_with_headers(
            "/metrics",
            &[("Accept", "application/openmetrics-text;version=1.0.0")],
        );
        assert_eq!(code, 200);
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < end, "{what}:\n{body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scrape of a daemon that has sent a request, ended a run and delivered
/// a notification, so every family has samples with its labels.
fn busy_daemon_scrape() -> String {
    let api = FakeApi::start();
    let receiver = FakeApi::receiver();
    let ws = Workspace::new(
        "notifications:
  - name: audit
    type: webhook
    urlFrom: { env: AUDIT_URL }
    on: [Succeeded]
resets:
  - id: first
    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]
",
    );
    let mut cmd = ws.command(&api.base());
    cmd.env("AUDIT_URL", format!("http://{}/audit", receiver.addr()))
        .env("RESETD_LOG_FORMAT", "json")
        .args(["run", "--config"])
        .arg(&ws.config)
        .args(["--listen", "127.0.0.1:0", "--resync", "1h"]);
    let daemon = Daemon::spawn(cmd);
    receiver.wait_until(WAIT, "a notification", |r| !r.is_empty());
    // The delivery is counted once its answer is read, and the phase gauges
    // are set when the pass ends: poll for both.
    scrape_until(&daemon, "no notification counted", |body| {
        let scrape = Exposition::parse(body);
        ["resetd_notifications_total", "resetd_entries"]
            .iter()
            .all(|name| !scrape.samples_of(name).is_empty())
    })
}

#[test]
fn every_metric_and_label_the_alerts_and_the_dashboard_name_is_in_a_real_scrape() {
    let body = busy_daemon_scrape();
    let single = Exposition::parse(&body);
    let ha_body = ha_member_scrape();
    let ha = ha_body.as_deref().map(Exposition::parse);
    let mut problems = Vec::new();
    // A single instance exports none: `sum(resetd_ha_leader) == 0` must not
    // fire for it.
    for metric in HA_ONLY {
        if single.family(metric).is_some() {
            problems.push(format!("a single instance exports {metric}"));
        }
    }
    let mut named = BTreeSet::new();
    for (place, expr) in kit_queries() {
        for Selector { metric, matchers } in selectors(&expr) {
            let scrape = match (HA_ONLY.contains(&metric.as_str()), &ha) {
                (false, _) => &single,
                (true, Some(ha)) => ha,
                // No etcd here (and not required): said by `ha_member_scrape`.
                (true, None) => continue,
            };
            let Some(family) = scrape.family(&metric) else {
                problems.push(format!("{place}: {metric} is no metric of /metrics"));
                continue;
            };
            named.insert(family.to_owned());
            let samples = scrape.samples_of(&metric);
            if samples.is_empty() {
                problems.push(format!(
                    "{place}: no sample is called {metric} (family {family})"
                ));
            }
            for (label, op, value) in matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                if !samples.iter().any(|s| s.contains_key(&label)) {
                    problems.push(format!("{place}: {metric} has no label {label}"));
                } else if op == "="
                    && !value.contains('$')
                    && !samples.iter().any(|s| s.get(&label) == Some(&value))
                {
                    problems.push(format!("{place}: no {metric} has {label}=\"{value}\""));
                }
            }
        }
    }
    // The dashboard shows every family resetd exports (a new metric gets a
    // panel), and the kit names more than a handful.
    let mut exported: BTreeSet<String> = single.types.keys().cloned().collect();
    if let Some(ha) = &ha {
        exported.extend(ha.types.keys().cloned());
    }
    let unshown: Vec<&String> = exported.difference(&named).collect();
    if !unshown.is_empty() {
        problems.push(format!("no dashboard or alert query shows {unshown:?}"));
    }
    assert!(named.len() >= 10, "the kit names only {named:?}");
    assert!(
        problems.is_empty(),
        "{}\n\n/metrics:\n{body}",
        problems.join("\n")
    );
}

#[test]
fn every_alert_has_for_a_severity_a_summary_and_a_runbook_in_the_readme() {
    let anchors = crate::readme::anchors();
    let mut names = BTreeSet::new();
    for rule in rules() {
        let name = rule["alert"].as_str().expect("only alerting rules");
        assert!(names.insert(name.to_owned()), "{name} twice");
        let duration = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no for:"));
        assert!(
            duration.ends_with('m') || duration.ends_with('s'),
            "{name}: for: {duration}"
        );
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity {severity:?}"
        );
        let annotations = &rule["annotations"];
        assert!(
            annotations["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{name} has no summary"
        );
        let anchor = format!("alert-{}", name.to_lowercase());
        assert_eq!(
            annotations["runbook_url"].as_str(),
            Some(format!("RUNBOOK_BASE/README.md#{anchor}").as_str()),
            "{name}'s runbook"
        );
        assert!(
            anchors.contains(&anchor),
            "README has no heading \"Alert: {name}\" (#{anchor})"
        );
    }
    for required in [
        "ResetdResetFailed",
        "ResetdConfigRejected",
        "ResetdResetsBlockedNoToken",
        "ResetdNotificationsFailing",
        "ResetdAPIErrorRatio",
        "ResetdDown",
        "ResetdMetricsAbsent",
        "ResetdHANoLeader",
        "ResetdHAMultipleLeaders",
        "ResetdHAEtcdUnreachable",
        "ResetdHALeaderFlapping",
    ] {
        assert!(names.contains(required), "no alert {required}");
    }
}

#[test]
fn every_alert_has_promtool_cases_that_fire_and_that_do_not() {
    let tests = yaml("examples/prometheus/resetd-alerts.test.yaml");
    assert_eq!(
        tests["rule_files"],
        serde_json::json!(["resetd-alerts.yaml"])
    );
    let mut fires = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for case in tests["tests"].as_array().unwrap() {
        for check in case["alert_rule_test"].as_array().unwrap() {
            let name = check["alertname"].as_str().unwrap().to_owned();
            let expected = check["exp_alerts"].as_array().map_or(0, Vec::len);
            if expected == 0 {
                silent.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    for rule in rules() {
        let name = rule["alert"].as_str().unwrap();
        assert!(fires.contains(name), "no promtool case where {name} fires");
        assert!(
            silent.contains(name),
            "no promtool case where {name} must not fire"
        );
    }
}

#[test]
fn the_prometheusrule_is_the_rules_file_under_spec() {
    let rules = read("examples/prometheus/resetd-alerts.yaml");
    let wrapped = read("examples/prometheus/prometheusrule.yaml");
    let groups = &rules[rules.find("\ngroups:\n").unwrap() + 1..];
    let indented: String = groups
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("  {l}\n")
            }
        })
        .collect();
    assert!(
        wrapped.ends_with(&format!("\nspec:\n{indented}")),
        "prometheusrule.yaml is not resetd-alerts.yaml's groups under `spec:`; regenerate \
         its end with: sed -n '/^groups:/,$p' resetd-alerts.yaml | sed 's/^\\(.\\)/  \\1/'"
    );
    let parsed = yaml("examples/prometheus/prometheusrule.yaml");
    assert_eq!(parsed["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(parsed["kind"], "PrometheusRule");
    assert_eq!(
        parsed["spec"]["groups"],
        yaml("examples/prometheus/resetd-alerts.yaml")["groups"]
    );
}

#[test]
fn the_dashboard_is_well_formed() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id twice"
        );
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().unwrap());
        assert!(x + w <= 24, "{title} is wider than the dashboard");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(cells.insert(cell), "{title} overlaps another panel");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let exprs: Vec<&str> = panel["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["expr"].as_str().unwrap())
            .collect();
        assert!(!exprs.is_empty(), "{title} has no query");
        let description = panel["description"].as_str().unwrap_or_default();
        assert!(
            !description.contains("Not exported yet"),
            "{title}: every metric is exported now"
        );
    }
}
