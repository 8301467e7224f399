//! `resetd plan` as a PR check runs it: against a running daemon's
//! `/status`, against a status file, and against nothing at all, which every
//! format must admit.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, wait_for_phase};
use crate::fake_api::FakeApi;
use crate::support::{TOKEN, Workspace};

const NOTICE: &str = "against an empty status: entries that already ran would show as new";

const FORMATS: [&str; 3] = ["human", "json", "markdown"];

/// One entry that runs at once, one that waits for a far-off instant.
const CONFIG: &str = "resets:
  - id: done
    hashes: [PLAN1]
  - id: later
    hashes: [PLAN2, PLAN3, PLAN4]
    trigger: { at: \"2099-01-01T00:00:00Z\" }
";

/// `done` edited after it ran, without a revision bump: only a plan that
/// knows it ran can warn about that.
const EDITED: &str = "resets:
  - id: done
    hashes: [PLAN1, PLAN5]
  - id: later
    hashes: [PLAN2, PLAN3, PLAN4]
    trigger: { at: \"2099-01-01T00:00:00Z\" }
";

/// `resetd plan --config <config> --format <format>` plus `extra`; the
/// token is in its environment and must leak nowhere.
fn plan(ws: &Workspace, config: &Path, format: &str, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = ws.command("http://127.0.0.1:9/v1");
    cmd.args(["plan", "--format", format, "--config"])
        .arg(config)
        .args(extra);
    ws.run_checked(&mut cmd)
}

fn plan_json(ws: &Workspace, config: &Path, extra: &[&str]) -> Value {
    let (code, stdout, stderr) = plan(ws, config, "json", extra);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn a_plan_against_a_running_daemon_equals_one_against_its_status_file() {
    let api = FakeApi::start();
    let ws = Workspace::new(CONFIG);
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_for_phase(&daemon, "done", "Succeeded");
    // The PR's version of the config, somewhere the daemon does not watch.
    let pr = tempfile::tempdir().unwrap();
    // The workflow's config is a directory: the PR's file is one of it.
    let edited = pr.path().join(workflow_config()).join("team.yaml");
    std::fs::create_dir_all(edited.parent().unwrap()).unwrap();
    std::fs::write(&edited, format!("{}{EDITED}", crate::support::HEAD)).unwrap();

    let url = format!("http://{}/status", daemon.addr);
    let from_daemon = plan_json(&ws, &edited, &["--status-url", &url]);
    let status = ws.status.display().to_string();
    let from_file = plan_json(&ws, &edited, &["--status", &status]);
    assert_eq!(from_daemon["entries"], from_file["entries"]);
    assert_eq!(from_daemon["orphans"], from_file["orphans"]);
    assert_eq!(from_daemon["statusSource"], "daemon");
    assert_eq!(from_file["statusSource"], "file");
    assert_eq!(from_daemon["notice"], Value::Null);
    // The daemon's status is really used: the edit of an entry that ran is
    // flagged, and it is not planned as new.
    let done = &from_daemon["entries"][0];
    assert_eq!(done["action"], "wait", "{done}");
    let warnings = done["warnings"].to_string();
    assert!(warnings.contains("revision was not bumped"), "{warnings}");

    // The same PR planned against nothing says the opposite, and says why.
    let blind = plan_json(&ws, &edited, &[]);
    assert_eq!(blind["entries"][0]["why"], "run: new entry");
    assert_eq!(blind["statusSource"], Value::Null);
    assert_eq!(blind["notice"], NOTICE);

    // The example workflow's trusted job, as written, in the PR's checkout.
    let commands = workflow_commands("plan-against-production", &[("RESETD_STATUS_URL", &url)]);
    assert_eq!(commands.len(), 1, "{commands:?}");
    // `--resolve` asks the API (here the fake, with the mock's account) who
    // each hash belongs to.
    let account = crate::fake_api::FakeApi::start();
    let (users, own) = crate::fake_api::demo_account();
    account.subusers(users).own_hash(own);
    let mut cmd = ws.command(&account.base());
    cmd.args(&commands[0]).current_dir(pr.path());
    let (code, markdown, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        markdown.contains("against a running daemon's status"),
        "{markdown}"
    );
    assert!(markdown.contains("revision was not bumped"), "{markdown}");
    assert!(markdown.contains("Who the hashes belong to"), "{markdown}");
    assert!(account.requests().iter().all(|r| r.method == "GET"));
    assert!(!markdown.contains(NOTICE), "{markdown}");
    assert!(
        !markdown.contains(&url),
        "the daemon's address is no business of a PR comment"
    );
}

#[test]
fn a_plan_without_any_status_says_so_in_every_format() {
    let ws = Workspace::new(CONFIG);
    for format in FORMATS {
        let (code, stdout, stderr) = plan(&ws, &ws.config, format, &[]);
        assert_eq!(code, 0, "{format}: {stderr}");
        assert!(stdout.contains(NOTICE), "{format}:\n{stdout}");
    }

    // Once a status exists (here from a dry run), no format claims otherwise.
    let (code, _, stderr) = ws.run_once("http://127.0.0.1:9/v1", &["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(ws.status.exists());
    let status = ws.status.display().to_string();
    for extra in [&[][..], &["--status", &status][..]] {
        for format in FORMATS {
            let (code, stdout, stderr) = plan(&ws, &ws.config, format, extra);
            assert_eq!(code, 0, "{format}: {stderr}");
            assert!(
                !stdout.contains("empty status"),
                "{format} {extra:?}:\n{stdout}"
            );
        }
        let json = plan_json(&ws, &ws.config, extra);
        assert_eq!(json["statusSource"], "file");
        assert_eq!(json["notice"], Value::Null);
    }
}

#[test]
fn markdown_shows_each_entrys_hash_count_whatever_its_action() {
    let ws = Workspace::new(
        "resets:
  - id: now
    hashes: [MD1]
  - id: later
    hashes: [MD2, MD3, MD4]
    trigger: { at: \"2099-01-01T00:00:00Z\" }
  - id: paused
    hashes: [MD5, MD6]
    suspend: true
",
    );
    let (code, markdown, stderr) = plan(&ws, &ws.config, "markdown", &[]);
    assert_eq!(code, 0, "{stderr}");
    for row in [
        "| `now` | **run** | 1 | 1 |",
        "| `later` | **wait** | 3 | 0 |",
        "| `paused` | **wait** | 2 | 0 |",
    ] {
        assert!(markdown.contains(row), "no {row:?} in:\n{markdown}");
    }
}

/// A server on 127.0.0.1 that answers one request with `reply` and hands
/// the request's head back.
fn answer_once(reply: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        let _ = stream.write_all(reply.as_bytes());
    });
    (format!("http://{addr}/status"), rx)
}

#[test]
fn a_status_url_that_gives_no_status_is_exit_2_naming_the_url() {
    let ws = Workspace::new(CONFIG);
    let expect_error = |url: &str, reason: &str| {
        let (code, stdout, stderr) = plan(&ws, &ws.config, "markdown", &["--status-url", url]);
        assert_eq!(code, 2, "{url}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "no plan without its status: {stdout}");
        assert!(stderr.contains(url), "the URL is not named: {stderr}");
        assert!(stderr.contains(reason), "no {reason:?} in: {stderr}");
    };

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/status", closed.local_addr().unwrap());
    drop(closed);
    expect_error(&url, "cannot read the status from");

    let (url, head) = answer_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    expect_error(&url, "HTTP 404");
    let head = head.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("GET /status "), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    assert!(!head.contains(TOKEN), "{head}");

    let (url, _) = answer_once(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/login\r\nContent-Length: 0\r\n\r\n",
    );
    expect_error(&url, "redirects are not followed");

    // What the daemon serves in the moment before its status is loaded.
    let (url, _) = answer_once(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nnull",
    );
    expect_error(&url, "has not published its status yet");

    let (url, _) = answer_once("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n<html/>");
    expect_error(&url, "not a resetd status");
}

#[test]
fn status_and_status_url_cannot_both_be_given() {
    let ws = Workspace::new(CONFIG);
    let status = ws.status.display().to_string();
    let (code, _, stderr) = plan(
        &ws,
        &ws.config,
        "human",
        &[
            "--status",
            &status,
            "--status-url",
            "http://127.0.0.1:9/status",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

fn workflow() -> Value {
    let path = crate::support::repo_root().join("examples/github/resetd-pr.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    resetd::yaml::parse(&text).expect("the workflow is YAML").0
}

/// Where the example PR workflow reads the config (its `RESETD_CONFIG`),
/// relative to the checkout.
fn workflow_config() -> String {
    workflow()["env"]["RESETD_CONFIG"]
        .as_str()
        .expect("the workflow names its config in env")
        .to_owned()
}

/// The `resetd …` command lines of one job of the example PR workflow, as
/// arguments: quotes dropped, `$VAR`s taken from `env` or the workflow's
/// own `env:`, cut at a redirection or a pipe.
fn workflow_commands(job: &str, env: &[(&str, &str)]) -> Vec<Vec<String>> {
    let workflow = workflow();
    let own = &workflow["env"];
    let steps = workflow["jobs"][job]["steps"].as_array().unwrap().clone();
    let lines: Vec<String> = steps
        .iter()
        .filter_map(|step| step["run"].as_str())
        .flat_map(str::lines)
        .filter_map(|line| line.trim().strip_prefix("resetd "))
        .map(str::to_owned)
        .collect();
    lines
        .iter()
        .map(|line| {
            line.split_whitespace()
                .take_while(|word| !matches!(*word, ">" | ">>" | "|"))
                .map(|word| {
                    let word = word.trim_matches('"');
                    match word.strip_prefix('$') {
                        Some(var) => {
                            let found = env.iter().find(|(name, _)| *name == var);
                            found
                                .map(|(_, value)| *value)
                                .or_else(|| own[var].as_str())
                                .unwrap_or_else(|| panic!("no ${var} given"))
                                .to_owned()
                        }
                        None => word.to_owned(),
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_pr_workflow_for_any_pull_request_runs_as_written_and_admits_its_blind_spot() {
    let workflow = workflow();
    assert_eq!(
        workflow["on"]
            .as_object()
            .map(|on| on.keys().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["pull_request"]),
        "only `pull_request`: `pull_request_target` would hand secrets to a fork's code"
    );
    let check = workflow["jobs"]["check"].to_string();
    assert!(
        !check.contains("secrets."),
        "the job for any PR reads no secret"
    );
    let trusted = &workflow["jobs"]["plan-against-production"];
    assert!(
        trusted["if"]
            .as_str()
            .unwrap()
            .contains("github.event.pull_request.head.repo.full_name == github.repository"),
        "the job with the status URL never runs for a fork"
    );
    // Installed from the PR's own commit: the repository has no tag to pin.
    for job in ["check", "plan-against-production"] {
        let steps = workflow["jobs"][job]["steps"].to_string();
        assert!(steps.contains("cargo install --locked --path ."), "{job}");
        assert!(!steps.contains("--tag"), "{job}");
    }

    // A checkout holding a config and no status file, as CI has.
    let checkout = tempfile::tempdir().unwrap();
    // The workflow's config is a directory of files (SPEC §2b).
    let config = checkout.path().join(workflow_config());
    std::fs::create_dir_all(&config).unwrap();
    let bundled = crate::support::repo_root().join(workflow_config());
    for file in std::fs::read_dir(&bundled).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), config.join(file.file_name())).unwrap();
    }
    let commands = workflow_commands("check", &[]);
    assert_eq!(commands.len(), 2, "validate and plan: {commands:?}");
    for args in &commands {
        let (code, stdout, stderr) = crate::support::run(
            crate::support::resetd()
                .args(args)
                .current_dir(checkout.path()),
        );
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        if args[0] == "plan" {
            assert!(stdout.contains(NOTICE), "{stdout}");
        }
    }
}

/// A hash of the send-order tests: `01SEND` and `c` at both ends, so each
/// is told apart at a glance.
fn h(c: char) -> String {
    format!("01SEND{c}{}{c}", "0".repeat(18))
}

/// Groups with includes and users, an entry naming two of them, own hashes
/// that repeat the groups', and users, one of them also a group's; and an
/// entry that waits. `r1` sends, in order: `eu`'s own A, B, its user
/// `u-eu` (U), its include `de`'s C (de's A was sent already); `us`'s F,
/// D; of its own hashes only E (D and B were sent already); of its users
/// only `u-own` (V).
fn sources_config() -> String {
    let [a, b, c, d, e, f, g] = ['A', 'B', 'C', 'D', 'E', 'F', 'G'].map(h);
    format!(
        "settings:
  batchSize: 3
groups:
  eu:
    hashes: [{a}, {b}]
    users: [u-eu]
    include: [de]
  de:
    hashes: [{c}, {a}]
  us:
    hashes: [{f}, {d}]
resets:
  - id: r1
    groups: [eu, us]
    hashes: [{d}, {b}, {e}]
    users: [u-own, u-eu]
  - id: later
    hashes: [{g}]
    trigger: {{ at: \"2099-01-01T00:00:00Z\" }}
"
    )
}

/// The fake API as the account of `sources_config`'s users.
fn sources_account() -> FakeApi {
    let api = FakeApi::start();
    api.subusers([("u-eu".to_owned(), h('U')), ("u-own".to_owned(), h('V'))])
        .own_hash(&h('W'));
    api
}

/// `plan --resolve` against `api`, in `format`.
fn plan_resolved(ws: &Workspace, api: &FakeApi, format: &str) -> String {
    let mut cmd = ws.command(&api.base());
    cmd.args(["plan", "--resolve", "--format", format, "--config"])
        .arg(&ws.config);
    let (code, stdout, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    stdout
}

/// Every hash of a JSON `send`, in order.
fn flat(send: &Value) -> Vec<String> {
    send.as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["hashes"].as_array().unwrap())
        .map(|h| h.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn json_lists_each_hash_in_send_order_with_its_source_and_run_sends_exactly_that() {
    let api = sources_account();
    let ws = Workspace::new(&sources_config());
    let plan: Value = serde_json::from_str(&plan_resolved(&ws, &api, "json")).unwrap();
    let r1 = &plan["entries"][0];
    let [a, b, c, d, e, f, u, v] = ['A', 'B', 'C', 'D', 'E', 'F', 'U', 'V'].map(h);
    assert_eq!(
        r1["send"],
        serde_json::json!([
            {"from": "groups", "group": "eu", "hashes": [a, b]},
            {"from": "groups", "group": "eu", "user": "u-eu", "hashes": [u]},
            {"from": "groups", "group": "eu", "hashes": [c]},
            {"from": "groups", "group": "us", "hashes": [f, d]},
            {"from": "hashes", "hashes": [e]},
            {"from": "users", "user": "u-own", "hashes": [v]},
        ]),
        "{r1:#}"
    );
    assert_eq!(
        r1["sendCounts"],
        serde_json::json!({"groups": 6, "hashes": 1, "users": 1, "unresolvedUsers": 0})
    );
    assert_eq!(r1["unresolvedUsers"], serde_json::json!([]));
    assert_eq!(r1["hashesToSend"], 8);
    // An entry this plan does not run sends nothing.
    let later = &plan["entries"][1];
    assert_eq!(later["action"], "wait");
    assert_eq!(later["send"], Value::Null, "{later:#}");
    assert_eq!(later["sendCounts"], Value::Null);

    // The run sends exactly that list, in that order, `batchSize` at a time.
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let planned = flat(&r1["send"]);
    let deletes = api.deletes();
    assert_eq!(deletes.concat(), planned);
    assert_eq!(
        deletes,
        planned
            .chunks(3)
            .map(<[String]>::to_vec)
            .collect::<Vec<_>>()
    );
}

#[test]
fn json_without_the_directory_names_the_users_it_did_not_look_up_and_invents_no_hash() {
    let ws = Workspace::new(&sources_config());
    let json = plan_json(&ws, &ws.config, &[]);
    let r1 = &json["entries"][0];
    let [a, b, c, d, e, f] = ['A', 'B', 'C', 'D', 'E', 'F'].map(h);
    assert_eq!(
        r1["send"],
        serde_json::json!([
            {"from": "groups", "group": "eu", "hashes": [a, b, c]},
            {"from": "groups", "group": "us", "hashes": [f, d]},
            {"from": "hashes", "hashes": [e]},
        ]),
        "{r1:#}"
    );
    assert_eq!(
        r1["unresolvedUsers"],
        serde_json::json!([
            {"from": "groups", "group": "eu", "user": "u-eu"},
            {"from": "users", "user": "u-own"},
        ])
    );
    assert_eq!(
        r1["sendCounts"],
        serde_json::json!({"groups": 5, "hashes": 1, "users": 0, "unresolvedUsers": 2})
    );
    let (code, human, stderr) = plan(&ws, &ws.config, "human", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        human.contains("(6 hash(es): 5 from groups, 1 own, 2 user(s) not looked up; 2 request(s))"),
        "{human}"
    );
}

#[test]
fn json_send_leaves_out_the_hashes_an_earlier_run_confirmed() {
    let api = FakeApi::start();
    // The first batch is confirmed, the second refused: the entry fails.
    api.script([
        crate::fake_api::Reply::Status(200),
        crate::fake_api::Reply::Status(400),
    ]);
    let [a, b, c, d, e] = ['A', 'B', 'C', 'D', 'E'].map(h);
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 2\nresets:\n  - id: r1\n    hashes: [{a}, {b}, {c}, {d}]\n"
    ));
    let (code, _, _) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1);
    // Changed since it failed: it runs again, without A and B.
    ws.write_config(&format!(
        "settings:\n  batchSize: 2\nresets:\n  - id: r1\n    hashes: [{a}, {b}, {c}, {d}, {e}]\n"
    ));
    let json = plan_json(&ws, &ws.config, &[]);
    let r1 = &json["entries"][0];
    assert_eq!(
        r1["send"],
        serde_json::json!([{"from": "hashes", "hashes": [c, d, e]}]),
        "{r1:#}"
    );
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.deletes()[2..].concat(), flat(&r1["send"]));
}

#[test]
fn human_shows_each_runs_hashes_by_source() {
    let api = sources_account();
    let ws = Workspace::new(&sources_config());
    let human = plan_resolved(&ws, &api, "human");
    assert!(
        human.contains("(8 hash(es): 6 from groups, 1 own, 1 from users; 3 request(s))"),
        "{human}"
    );
}

#[test]
fn markdown_lists_a_short_runs_hashes_collapsed_with_their_sources() {
    let api = sources_account();
    let ws = Workspace::new(&sources_config());
    let markdown = plan_resolved(&ws, &api, "markdown");
    assert!(
        markdown.contains("| `r1` | **run** | 8 | 3 | 6 / 1 / 1 | - |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `later` | **wait** | 1 | 0 | - |"),
        "{markdown}"
    );
    let [a, b, c, d, e, f, u, v] = ['A', 'B', 'C', 'D', 'E', 'F', 'U', 'V'].map(h);
    let block = format!(
        "<details><summary><code>r1</code> (run): 8 hash(es): 6 from groups (<code>eu</code> 4, \
         <code>us</code> 2), 1 own, 1 from users</summary>

| # | hash | from |
| ---: | --- | --- |
| 1 | `{a}` | group `eu` |
| 2 | `{b}` | group `eu` |
| 3 | `{u}` | group `eu`, user `u-eu` |
| 4 | `{c}` | group `eu` |
| 5 | `{f}` | group `us` |
| 6 | `{d}` | group `us` |
| 7 | `{e}` | own `hashes` |
| 8 | `{v}` | user `u-own` |

</details>
"
    );
    assert!(markdown.contains(&block), "no\n{block}\nin:\n{markdown}");
    // Without the directory the users are named, not given a hash.
    let (code, blind, stderr) = plan(&ws, &ws.config, "markdown", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        blind.contains("| `r1` | **run** | 8 | 2 | 5 / 1 / 0 + 2 user(s) not looked up | - |"),
        "{blind}"
    );
    for row in [
        "| | not looked up (`plan --resolve` does) | group `eu`, user `u-eu` |",
        "| | not looked up (`plan --resolve` does) | user `u-own` |",
    ] {
        assert!(blind.contains(row), "no {row:?} in:\n{blind}");
    }
    assert!(!blind.contains(&u) && !blind.contains(&v), "{blind}");
}

#[test]
fn markdown_lists_at_most_twenty_hashes_and_says_how_to_see_a_longer_run() {
    let many = |from: usize, n: usize| -> Vec<String> {
        (from..from + n).map(|i| format!("01LONG{i:020}")).collect()
    };
    let (edge, long) = (many(0, 20), many(100, 21));
    let ws = Workspace::new(&format!(
        "resets:\n  - id: edge\n    hashes: [{}]\n  - id: long\n    hashes: [{}]\n",
        edge.join(", "),
        long.join(", ")
    ));
    let (code, markdown, stderr) = plan(&ws, &ws.config, "markdown", &[]);
    assert_eq!(code, 0, "{stderr}");
    // Twenty: listed, collapsed, in order.
    assert!(
        markdown
            .contains("<details><summary><code>edge</code> (run): 20 hash(es): 20 own</summary>"),
        "{markdown}"
    );
    let rows: Vec<String> = edge
        .iter()
        .enumerate()
        .map(|(i, hash)| format!("| {} | `{hash}` | own `hashes` |", i + 1))
        .collect();
    assert!(markdown.contains(&rows.join("\n")), "{markdown}");
    // Twenty-one: counts only, and where to see them.
    assert!(
        markdown.contains(
            "<code>long</code> (run): 21 hash(es): 21 own. More than 20, so not listed here: \
             `resetd plan --format json` lists every hash, in order, with its source."
        ),
        "{markdown}"
    );
    assert!(
        !markdown.contains("<summary><code>long</code>"),
        "{markdown}"
    );
    for hash in &long {
        assert!(
            !markdown.contains(hash.as_str()),
            "{hash} listed:\n{markdown}"
        );
    }
    // JSON lists them all.
    let json = plan_json(&ws, &ws.config, &[]);
    assert_eq!(flat(&json["entries"][1]["send"]), long);
}
