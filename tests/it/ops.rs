//! What operators' tools check: `/metrics` as Prometheus and promtool read
//! it (each body in the format its `Content-Type` names), and the deployment
//! examples (they parse, are hardened, and their commands run).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::Daemon;
use crate::fake_api::FakeApi;
use crate::support::{TOKEN, Workspace, repo_root};

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

/// The documents of a YAML stream, each parsed by resetd's own strict YAML
/// 1.2 loader (duplicate keys and unknown tags are errors).
pub(crate) fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .enumerate()
        .map(|(i, doc)| {
            resetd::yaml::parse(doc)
                .unwrap_or_else(|e| panic!("{}, document {}: {e:?}", path.display(), i + 1))
                .0
        })
        .collect()
}

#[test]
fn every_yaml_example_parses() {
    let mut dirs = vec![repo_root().join("examples")];
    let mut parsed = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                parsed += yaml_documents(&path).len();
            }
        }
    }
    // The configs, the workflow, and the Kubernetes manifest's documents.
    assert!(parsed >= 10, "only {parsed} documents under examples/");
}

/// The README's figure for a daemon on its largest benchmark config.
fn readme_daemon_peak_mb() -> f64 {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.contains("daemon `--dry-run` on the 10,000-entry file"))
        .expect("README's Performance table has the daemon's peak RSS");
    let before = row.split(" MB peak RSS").next().unwrap();
    let number = before.rsplit(' ').next().unwrap();
    number.parse().unwrap()
}

fn mebibytes(quantity: &Value) -> f64 {
    let text = quantity.as_str().unwrap();
    let number = text.strip_suffix("Mi").expect("memory in Mi");
    number.parse::<f64>().unwrap() * 1.048_576
}

/// Runs an example's command line against the fake API: its absolute paths
/// mapped into a temporary directory, its listener onto an ephemeral
/// loopback port, the token only in the file the example names.
fn spawn_example(
    ws: &Workspace,
    api: &FakeApi,
    argv: &[String],
    env: &[(String, String)],
    paths: &[(&str, PathBuf)],
) -> Daemon {
    let localize = |arg: &str| {
        paths.iter().fold(arg.to_owned(), |arg, (from, to)| {
            arg.replace(from, &format!("{}/", to.display()))
        })
    };
    let mut cmd = ws.command(&api.base());
    cmd.env_remove("IPROYAL_API_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(argv.iter().map(|a| {
            localize(a)
                .replace("127.0.0.1:9090", "127.0.0.1:0")
                .replace("0.0.0.0:9090", "127.0.0.1:0")
        }));
    Daemon::spawn(cmd)
}

#[test]
fn the_kubernetes_example_is_hardened_and_its_container_runs() {
    let docs = yaml_documents(&repo_root().join("examples/kubernetes/resetd.yaml"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(
        !kinds.iter().any(|k| *k == "Ingress" || *k == "Service"),
        "/status lists confirmed hashes: not exposed beyond the cluster ({kinds:?})"
    );
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();
    let policy = &of("NetworkPolicy")["spec"];
    assert_eq!(policy["podSelector"]["matchLabels"]["app"], "resetd");
    assert_eq!(policy["ingress"][0]["ports"][0]["port"], 9090);

    let pod = &of("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    // The limit must hold the largest config README advertises, with room
    // for a reload (the new file parsed beside the old config).
    let limit = mebibytes(&container["resources"]["limits"]["memory"]);
    let request = mebibytes(&container["resources"]["requests"]["memory"]);
    let peak = readme_daemon_peak_mb();
    assert!(
        limit >= 1.5 * peak && request <= limit,
        "memory limit {limit:.0} MB for a documented peak of {peak} MB"
    );

    // The container's command line, with the ConfigMap's config and the
    // Secret's token at their mount paths: it starts, is ready, sends a due
    // reset with that token, and stops cleanly.
    let api = FakeApi::start();
    let ws = Workspace::new("");
    let config = of("ConfigMap")["data"]["resets.yaml"].as_str().unwrap();
    let root = ws.dir.path();
    let mounts: Vec<(&str, PathBuf)> = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let at = m["mountPath"].as_str().unwrap();
            (at, root.join(m["name"].as_str().unwrap()))
        })
        .collect();
    for (_, dir) in &mounts {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(root.join("config/resets.yaml"), config).unwrap();
    std::fs::write(root.join("token/token"), format!("{TOKEN}\n")).unwrap();
    let paths: Vec<(String, PathBuf)> = mounts
        .iter()
        .map(|(at, dir)| (format!("{at}/"), dir.clone()))
        .collect();
    let paths: Vec<(&str, PathBuf)> = paths.iter().map(|(a, d)| (a.as_str(), d.clone())).collect();
    let argv: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut daemon = spawn_example(&ws, &api, &argv, &env, &paths);
    // Ready is set just after the start-up log line: poll, with a deadline.
    let end = Instant::now() + Duration::from_secs(20);
    while daemon.get("/readyz").0 != 200 {
        assert!(Instant::now() < end, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A ConfigMap update with a reset due now: sent with the Secret's token.
    let due = format!("{config}  - id: now\n    hashes: [AAAA1]\n");
    std::fs::write(root.join("config/resets.yaml"), due).unwrap();
    let sent = api.wait_until(Duration::from_secs(20), "a DELETE", |r| !r.is_empty());
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
    assert!(root.join("state/resets.status.yaml").exists());
}

/// `key=value` settings of a unit file, continuation lines joined.
pub(crate) fn unit_settings(text: &str) -> Vec<(String, String)> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_units_command_line_runs_with_the_token_from_its_credential() {
    let unit =
        std::fs::read_to_string(repo_root().join("examples/systemd/resetd.service")).unwrap();
    let settings = unit_settings(&unit);
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let argv: Vec<String> = get("ExecStart")[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(argv[0], "/usr/local/bin/resetd", "README's install path");
    // The token comes from a credential systemd copies for the service, not
    // from a file the service user would need to read.
    assert_eq!(get("LoadCredential"), ["token:/etc/resetd/token"]);
    assert!(argv.contains(&"${CREDENTIALS_DIRECTORY}/token".to_owned()));
    // The status lives in the state directory, the one writable place.
    let state = format!("/var/lib/{}/", get("StateDirectory")[0]);
    let status = argv.iter().position(|a| a == "--status").unwrap() + 1;
    assert!(argv[status].starts_with(&state), "{argv:?}");
    assert_eq!(get("ProtectSystem"), ["strict"]);
    assert!(
        get("ReadWritePaths").is_empty(),
        "StateDirectory= is enough"
    );

    let api = FakeApi::start();
    let ws = Workspace::new("resets:\n  - id: first\n    hashes: [AAAA1]\n");
    let root = ws.dir.path();
    for dir in ["etc", "state", "credentials"] {
        std::fs::create_dir(root.join(dir)).unwrap();
    }
    std::fs::copy(&ws.config, root.join("etc/resets.yaml")).unwrap();
    std::fs::write(root.join("credentials/token"), format!("{TOKEN}\n")).unwrap();
    let env: Vec<(String, String)> = get("Environment")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let paths = [
        ("/etc/resetd/", root.join("etc")),
        (state.as_str(), root.join("state")),
        ("${CREDENTIALS_DIRECTORY}/", root.join("credentials")),
    ];
    let mut daemon = spawn_example(&ws, &api, &argv[1..], &env, &paths);
    let sent = api.wait_until(Duration::from_secs(20), "a DELETE", |r| !r.is_empty());
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), 0);
    assert!(root.join("state/resets.status.yaml").exists());
}

/// The example GitHub workflows, parsed.
fn workflows() -> Vec<(String, Value)> {
    let dir = repo_root().join("examples/github");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let doc = yaml_documents(&p).remove(0);
            (name, doc)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        2,
        "{:?}",
        out.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    out
}

/// `$NAME` and `"$NAME"` replaced from the workflow's own `env:` (a
/// secret's variable is left as it is).
fn expand(word: &str, env: &Value) -> String {
    let word = word.trim_matches('"');
    word.strip_prefix('$')
        .and_then(|var| env[var].as_str())
        .unwrap_or(word)
        .to_owned()
}

/// The config files a workflow's `resetd` commands read: each `--config`
/// and every file `validate` is given.
fn configs_read(workflow: &Value) -> BTreeSet<String> {
    let env = &workflow["env"];
    let mut configs = BTreeSet::new();
    for job in workflow["jobs"].as_object().unwrap().values() {
        for step in job["steps"].as_array().unwrap() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            for line in script.lines() {
                let Some(command) = line.trim().strip_prefix("resetd ") else {
                    continue;
                };
                let words: Vec<String> = command
                    .split_whitespace()
                    .take_while(|w| !matches!(*w, ">" | ">>" | "|"))
                    .map(|w| expand(w, env))
                    .collect();
                if words[0] == "validate" {
                    let mut rest = words[1..].iter();
                    while let Some(w) = rest.next() {
                        if w == "--format" {
                            rest.next();
                        } else if !w.starts_with('-') {
                            configs.insert(w.clone());
                        }
                    }
                }
                for pair in words.windows(2) {
                    if pair[0] == "--config" {
                        configs.insert(pair[1].clone());
                    }
                }
            }
        }
    }
    configs
}

/// GitHub's `paths:` globs: `*` within a directory, `**` across them.
fn glob_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => (0..=s.len())
                .take_while(|i| *i == 0 || s[i - 1] != b'/')
                .any(|i| go(rest, &s[i..])),
            [c, rest @ ..] => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[test]
fn the_workflows_paths_filters_match_the_config_they_read_where_this_repository_keeps_it() {
    assert!(glob_matches("src/**", "src/io/api.rs"));
    assert!(glob_matches("examples/*.yaml", "examples/resets.yaml"));
    assert!(!glob_matches(
        "examples/*.yaml",
        "examples/github/resetd-pr.yaml"
    ));
    for (name, workflow) in workflows() {
        let configs = configs_read(&workflow);
        assert!(!configs.is_empty(), "{name}: reads no config");
        let mut filters = 0;
        for (event, trigger) in workflow["on"].as_object().unwrap() {
            let Some(paths) = trigger.get("paths").and_then(Value::as_array) else {
                continue;
            };
            filters += 1;
            for config in &configs {
                assert!(
                    paths
                        .iter()
                        .any(|p| glob_matches(p.as_str().unwrap(), config)),
                    "{name}: a change of {config} does not trigger `{event}` (paths: {paths:?})"
                );
            }
        }
        assert!(filters >= 1, "{name}: no paths filter");
        for config in &configs {
            // A config is a file or a directory of files (SPEC §2b).
            assert!(
                repo_root().join(config).exists(),
                "{name} reads {config}, which this repository does not have"
            );
        }
    }
}

#[test]
fn the_workflows_build_resetd_once_per_source_not_on_every_run() {
    for (name, workflow) in workflows() {
        for (job_name, job) in workflow["jobs"].as_object().unwrap() {
            let steps = job["steps"].as_array().unwrap();
            let Some(install) = steps.iter().position(|s| {
                s["run"]
                    .as_str()
                    .is_some_and(|r| r.contains("cargo install"))
            }) else {
                continue;
            };
            let at = |what: &str| format!("{name}, job {job_name}: {what}");
            // Restored before the install, keyed on what the binary is built from.
            let restore = steps[..install]
                .iter()
                .find(|s| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("actions/cache"))
                        && s["with"]["path"]
                            .as_str()
                            .is_some_and(|p| p.contains(".cargo/bin/resetd"))
                })
                .unwrap_or_else(|| {
                    panic!("{}", at("no cache of the resetd build before the install"))
                });
            let key = restore["with"]["key"].as_str().unwrap();
            for part in ["hashFiles(", "Cargo.lock", "src/**"] {
                assert!(
                    key.contains(part),
                    "{}",
                    at(&format!("key {key} lacks {part}"))
                );
            }
            let id = restore["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", at("the cache step has no id")));
            let skip = format!("steps.{id}.outputs.cache-hit != 'true'");
            assert_eq!(
                steps[install]["if"].as_str(),
                Some(skip.as_str()),
                "{}",
                at("the install runs only on a miss")
            );
            // Saved as soon as it is built: a job that fails later (a reset
            // that failed) must not throw the build away.
            let saved = steps[install + 1..].iter().any(|s| {
                s["uses"].as_str() == Some("actions/cache/save@v4")
                    && s["with"]["path"] == restore["with"]["path"]
                    && s["if"].as_str() == Some(skip.as_str())
            }) || restore["uses"].as_str() == Some("actions/cache@v4");
            assert!(saved, "{}", at("the build is never saved"));
            assert!(
                !key.starts_with("resetd-status-"),
                "{}",
                at("the build's key must not share the status cache's prefix")
            );
        }
    }
}
