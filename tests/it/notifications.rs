//! Notifications (SPEC §6): receivers declared in the reviewed config, their
//! secrets named and never read by `validate`.

use chrono::Utc;
use resetd::config;

use crate::support::{HEAD, Workspace, resetd, run};

const RECEIVERS: &str = "notifications:
  - name: ops-slack
    type: slack
    urlFrom: { env: SLACK_WEBHOOK_URL }
  - name: audit
    type: webhook
    urlFrom: { file: /run/secrets/audit-url }
    secretFrom: { env: AUDIT_HMAC_KEY }
    on: [Succeeded, Failed, DryRun, Expired, AuthError, ConfigRejected]
  - name: commit-status
    type: github
    repository: acme/proxy-ops
    tokenFrom: { env: GITHUB_TOKEN }
    apiBase: https://api.github.com
resets:
  - id: r1
    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]
";

fn diagnostics(body: &str) -> Vec<resetd::diagnostic::Diagnostic> {
    config::parse("resets.yaml", &format!("{HEAD}{body}"), Utc::now()).diagnostics
}

#[test]
fn receivers_of_each_type_validate_without_reading_a_secret() {
    // None of the variables or files exists: validate never reads them.
    let ws = Workspace::new(RECEIVERS);
    let (code, out, err) = run(resetd().arg("validate").arg(&ws.config));
    assert_eq!(code, 0, "{out}{err}");
    let loaded = config::parse("resets.yaml", &format!("{HEAD}{RECEIVERS}"), Utc::now());
    let config = loaded.config.unwrap();
    assert_eq!(config.notifications.len(), 3);
    // `on` defaults to the failures an operator must hear about.
    let on = &config.notifications[0].on;
    assert_eq!(
        format!("{on:?}"),
        "[Failed, Expired, AuthError, ConfigRejected]"
    );
}

#[test]
fn bad_receivers_are_located_errors() {
    let cases = [
        (
            RECEIVERS.replace("name: audit", "name: ops-slack"),
            "duplicate receiver name `ops-slack` (first used on line 5)",
            8,
        ),
        (
            RECEIVERS.replace(
                "    urlFrom: { env: SLACK_WEBHOOK_URL }\n",
                "    urlFrom: { env: SLACK_WEBHOOK_URL }\n    tokenFrom: { env: X }\n",
            ),
            "`tokenFrom` is not used by a `slack` receiver",
            8,
        ),
        (
            RECEIVERS.replace("    repository: acme/proxy-ops\n", ""),
            "a `github` receiver needs `repository`",
            13,
        ),
        (
            RECEIVERS.replace("on: [Succeeded,", "on: [Succeded,"),
            "Succeded",
            12,
        ),
        (RECEIVERS.replace("type: slack", "type: teams"), "teams", 6),
    ];
    for (body, message, line) in cases {
        let found = diagnostics(&body);
        assert!(
            found
                .iter()
                .any(|d| d.is_error() && d.message.contains(message) && d.line == line),
            "{message} at line {line}: {found:#?}"
        );
    }
}

// Through the binary: run outcomes become events, delivered beside the
// resets, never repeated, never holding a reset up. Secrets come from the
// environment and a file, and must appear in no output.

use hmac::Mac as _;

use crate::fake_api::{FakeApi, Recorded, Reply};

const HOOK_PATH_SECRET: &str = "hookpath-SECRET-77aa31";
const HMAC_KEY: &str = "hmac-KEY-0c9d8e7f6a";
const GITHUB_TOKEN: &str = "ghp_SECRETgithubTOKEN123";
const SLACK_PATH_SECRET: &str = "slackpath-SECRET-5e4d";
const REVISION: &str = "4f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a098";

pub(crate) struct Receivers {
    pub(crate) hook: FakeApi,
    pub(crate) slack: FakeApi,
    pub(crate) github: FakeApi,
}

impl Receivers {
    pub(crate) fn start() -> Receivers {
        Receivers {
            hook: FakeApi::receiver(),
            slack: FakeApi::receiver(),
            github: FakeApi::receiver(),
        }
    }

    /// The `notifications:` section, with the GitHub token in a file.
    pub(crate) fn section(&self, ws: &Workspace) -> String {
        let token_file = ws.dir.path().join("github-token");
        std::fs::write(&token_file, format!("{GITHUB_TOKEN}\n")).unwrap();
        format!(
            "notifications:
  - name: audit
    type: webhook
    urlFrom: {{ env: AUDIT_URL }}
    secretFrom: {{ env: AUDIT_KEY }}
    on: [Succeeded, Failed, DryRun, Expired, AuthError, ConfigRejected]
  - name: ops-slack
    type: slack
    urlFrom: {{ env: SLACK_URL }}
  - name: commit-status
    type: github
    repository: acme/proxy-ops
    tokenFrom: {{ file: {} }}
    apiBase: http://{}
    on: [Succeeded, Failed, DryRun, Expired, AuthError, ConfigRejected]
",
            token_file.display(),
            self.github.addr()
        )
    }

    pub(crate) fn env(&self, cmd: &mut std::process::Command) {
        cmd.env(
            "AUDIT_URL",
            format!("http://{}/audit/{HOOK_PATH_SECRET}", self.hook.addr()),
        )
        .env("AUDIT_KEY", HMAC_KEY)
        .env(
            "SLACK_URL",
            format!("http://{}/services/{SLACK_PATH_SECRET}", self.slack.addr()),
        );
    }
}

pub(crate) fn assert_no_secret(texts: &[&str]) {
    for text in texts {
        for secret in [HOOK_PATH_SECRET, HMAC_KEY, GITHUB_TOKEN, SLACK_PATH_SECRET] {
            assert!(!text.contains(secret), "a secret leaked:\n{text}");
        }
    }
}

/// The webhook's events, each checked against its signature.
/// Wait for the webhook to be told of a rejected config; the event.
pub(crate) fn config_rejected(hook: &FakeApi) -> serde_json::Value {
    hook.wait_until(std::time::Duration::from_secs(20), "ConfigRejected", |r| {
        r.iter().any(|r| r.body.contains("ConfigRejected"))
    });
    signed_events(hook)
        .into_iter()
        .find(|e| e["event"] == "ConfigRejected")
        .unwrap()
}

pub(crate) fn signed_events(hook: &FakeApi) -> Vec<serde_json::Value> {
    hook.requests()
        .iter()
        .map(|r: &Recorded| {
            let signature = r.header("x-resetd-signature").expect("signed");
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HMAC_KEY.as_bytes()).unwrap();
            mac.update(r.body.as_bytes());
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(signature, format!("sha256={expected}"));
            serde_json::from_str(&r.body).unwrap()
        })
        .collect()
}

fn run_once(ws: &Workspace, api: &FakeApi, receivers: &Receivers) -> (i32, String, String) {
    let mut cmd = ws.command(&api.base());
    receivers.env(&mut cmd);
    cmd.args(["run", "--once", "--source-revision", REVISION, "--config"])
        .arg(&ws.config);
    let out = ws.run_checked(&mut cmd);
    let status = std::fs::read_to_string(&ws.status).unwrap_or_default();
    assert_no_secret(&[&out.1, &out.2, &status]);
    out
}

#[test]
fn a_run_notifies_each_outcome_once_to_every_receiver_type() {
    let api = FakeApi::start();
    // `ok` is confirmed, `bad` refused as a bad request; `old` expires.
    api.script([
        Reply::Status(204),
        Reply::Json(422, r#"{"message":"invalid hash"}"#.into()),
    ]);
    let receivers = Receivers::start();
    let ws = Workspace::new("");
    ws.write_config(&format!(
        "{}resets:
  - id: ok
    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB, 01HQ5K3P97DY8EX9Y90YT1K6XA]
  - id: bad
    hashes: [02JVRQ5BF83PTW19G1SRD955J0]
  - id: old
    hashes: [01JY9XKHHPZ984254W236K94PC]
    notAfter: \"2020-01-01T00:00:00Z\"
",
        receivers.section(&ws)
    ));
    let (code, stdout, stderr) = run_once(&ws, &api, &receivers);
    assert_eq!(code, 1, "{stdout}{stderr}");

    let events = signed_events(&receivers.hook);
    let by_entry = |id: &str| {
        events
            .iter()
            .find(|e| e["entry"] == id)
            .unwrap_or_else(|| panic!("no event for {id}: {events:#?}"))
    };
    assert_eq!(events.len(), 3, "{events:#?}");
    let ok = by_entry("ok");
    assert_eq!(ok["event"], "Succeeded");
    assert_eq!(
        (
            ok["hashes"].as_u64(),
            ok["confirmed"].as_u64(),
            ok["requests"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(ok["sourceRevision"], REVISION);
    assert_eq!(ok["revision"], 0);
    assert!(ok["configDigest"].as_str().unwrap().starts_with("sha256:"));
    assert!(ok["startedAt"].is_string() && ok["completedAt"].is_string());
    let bad = by_entry("bad");
    assert_eq!(bad["event"], "Failed");
    assert!(
        bad["message"].as_str().unwrap().contains("HTTP 422 from"),
        "{bad}"
    );
    assert_eq!(by_entry("old")["event"], "Expired");
    let fields: Vec<&String> = ok.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 12, "{fields:?}");

    // Slack gets what its default `on:` lists: the failure and the expiry.
    let texts: Vec<String> = receivers
        .slack
        .requests()
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Failed") && t.contains("bad")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Expired") && t.contains("old")),
        "{texts:?}"
    );

    // GitHub: a status per entry on the revision, with the right state.
    let statuses = receivers.github.requests();
    assert_eq!(statuses.len(), 3);
    for r in &statuses {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/repos/acme/proxy-ops/statuses/{REVISION}"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {GITHUB_TOKEN}").as_str())
        );
    }
    let state = |context: &str| {
        statuses
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
            .find(|b| b["context"] == context)
            .unwrap_or_else(|| panic!("no status {context}"))["state"]
            .clone()
    };
    assert_eq!(state("resetd/ok"), "success");
    assert_eq!(state("resetd/bad"), "failure");
    assert_eq!(state("resetd/old"), "failure");

    // Again: nothing new ran, so nothing is notified again.
    let (code, _, _) = run_once(&ws, &api, &receivers);
    assert_eq!(code, 0);
    assert_eq!(receivers.hook.requests().len(), 3, "no repeat");
    assert_eq!(receivers.github.requests().len(), 3, "no repeat");
}

#[test]
fn a_refused_token_is_an_auth_error_event() {
    let api = FakeApi::start();
    api.script([Reply::Status(401)]);
    let receivers = Receivers::start();
    let ws = Workspace::new("");
    ws.write_config(&format!(
        "{}resets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n",
        receivers.section(&ws)
    ));
    let (code, _, _) = run_once(&ws, &api, &receivers);
    assert_eq!(code, 1);
    let events = signed_events(&receivers.hook);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "AuthError");
    assert!(events[0]["message"].as_str().unwrap().contains("HTTP 401"));
    assert_eq!(
        receivers.slack.requests().len(),
        1,
        "AuthError is in the default `on:`"
    );
}

#[test]
fn a_receiver_that_never_answers_holds_up_no_reset_and_run_once_waits_at_most_10_s() {
    let api = FakeApi::start();
    let receivers = Receivers::start();
    receivers.hook.default_reply(Reply::Hold);
    let ws = Workspace::new("");
    ws.write_config(&format!(
        "{}resets:\n  - id: first\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n  - id: second\n    hashes: [01HQ5K3P97DY8EX9Y90YT1K6XA]\n",
        receivers.section(&ws)
    ));
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_once(&ws, &api, &receivers);
    let took = started.elapsed();
    receivers.hook.release_held();
    assert_eq!(code, 0, "{stderr}");
    let deletes: Vec<_> = api.requests();
    assert_eq!(deletes.len(), 2);
    // The second DELETE did not wait for the first one's notification.
    let gap = deletes[1].received - deletes[0].received;
    assert!(gap < std::time::Duration::from_secs(2), "{gap:?}");
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
    assert!(
        took >= std::time::Duration::from_secs(9),
        "it waited for delivery: {took:?}"
    );
    assert!(stderr.contains("not delivered within 10s"), "{stderr}");
}

#[test]
fn the_apply_workflow_puts_a_status_on_the_merge_commit_as_written() {
    let path = crate::support::repo_root().join("examples/github/resetd-apply.yaml");
    let workflow = resetd::yaml::parse(&std::fs::read_to_string(&path).unwrap())
        .expect("the workflow is YAML")
        .0;
    assert_eq!(workflow["permissions"]["statuses"], "write");
    assert_eq!(
        workflow["concurrency"]["cancel-in-progress"], false,
        "one writer"
    );
    let steps = workflow["jobs"]["apply"]["steps"].as_array().unwrap();
    let apply = steps.iter().find(|s| s["name"] == "Apply").unwrap();
    assert_eq!(apply["env"]["GITHUB_TOKEN"], "${{ secrets.GITHUB_TOKEN }}");
    // Where the workflow reads the config, relative to the checkout.
    let config = workflow["env"]["RESETD_CONFIG"]
        .as_str()
        .unwrap()
        .to_owned();
    let commands: Vec<Vec<String>> = apply["run"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("resetd "))
        .map(|l| {
            l.split_whitespace()
                .map(|w| w.replace("\"$RESETD_CONFIG\"", &config))
                .collect()
        })
        .collect();
    assert_eq!(commands.len(), 1);
    assert!(commands[0].contains(&config), "{commands:?}");

    // The checkout: a git work tree whose HEAD is the merge commit, holding
    // the config with the receiver the workflow's comment shows.
    let api = FakeApi::start();
    let github = FakeApi::receiver();
    let checkout = tempfile::tempdir().unwrap();
    let dir = checkout.path();
    std::fs::create_dir_all(dir.join(&config).parent().unwrap()).unwrap();
    std::fs::write(
        dir.join(&config),
        format!(
            "{HEAD}notifications:\n  - name: commit-status\n    type: github\n    repository: acme/proxy-ops\n    tokenFrom: {{ env: GITHUB_TOKEN }}\n    apiBase: http://{}\n    on: [Succeeded, Failed, DryRun, Expired, AuthError]\nresets:\n  - id: ops-1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n",
            github.addr()
        ),
    )
    .unwrap();
    let git = |args: &[&str]| crate::support::git(dir, args);
    git(&["init", "-q"]);
    git(&["add", &config]);
    git(&["commit", "-q", "-m", "merge"]);
    let merge = git(&["rev-parse", "HEAD"]);
    std::fs::create_dir(dir.join(".resetd")).unwrap();
    let (code, out, err) = run(resetd()
        .args(&commands[0])
        .current_dir(dir)
        .env("IPROYAL_API_TOKEN", crate::support::TOKEN)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("RESETD_API_BASE", api.base()));
    assert_eq!(code, 0, "{out}{err}");
    assert_no_secret(&[&out, &err]);
    let statuses = github.requests();
    assert_eq!(statuses.len(), 1);
    assert_eq!(
        statuses[0].path,
        format!("/repos/acme/proxy-ops/statuses/{merge}")
    );
    let body: serde_json::Value = serde_json::from_str(&statuses[0].body).unwrap();
    assert_eq!(body["context"], "resetd/ops-1");
    assert_eq!(body["state"], "success");
    assert!(dir.join(".resetd/resets.status.yaml").exists());
}
