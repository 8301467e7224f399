//! `resetd run --once` against the fake IPRoyal API over real HTTP.

use std::time::Duration;

use resetd::status::{Outcome, Phase};

use crate::fake_api::{FakeApi, Reply};
use crate::support::{TOKEN, Workspace};

const WAIT: Duration = Duration::from_secs(20);

fn hashes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn entry(id: &str, hashes: &[String]) -> String {
    format!("  - id: {id}\n    hashes: [{}]\n", hashes.join(", "))
}

#[test]
fn sends_the_documented_request() {
    let api = FakeApi::start();
    let ws = Workspace::new(
        "resets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB, 01HQ5K3P97DY8EX9Y90YT1K6XA]\n",
    );
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "DELETE");
    assert_eq!(r.path, "/v1/sessions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        r#"{"residential_user_hashes":["01H7YCG0R9GYY1YCPS2S4QA6WB","01HQ5K3P97DY8EX9Y90YT1K6XA"]}"#
    );
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(st.attempts, 1);
    assert_eq!(st.history[0].confirmed, 2);
}

#[test]
fn splits_into_batches_of_batch_size() {
    let api = FakeApi::start();
    let all = hashes("H", 250);
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 100\n  maxRequestsPerSecond: 0\nresets:\n{}",
        entry("big", &all)
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let sizes: Vec<usize> = api.requests().iter().map(|r| r.sent().len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let sent: Vec<String> = api
        .requests()
        .iter()
        .flat_map(|r| r.sent().to_vec())
        .collect();
    assert_eq!(sent, all);
}

#[test]
fn deduplicates_hashes_across_groups() {
    let api = FakeApi::start();
    let ws = Workspace::new(
        "groups:\n  eu: {hashes: [A1, A2]}\n  us: {hashes: [B1, A1]}\n  all: {include: [eu, us]}\nresets:\n  - id: r1\n    groups: [all, us]\n    hashes: [A2, C1]\n",
    );
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.requests()[0].sent(), ["A1", "A2", "B1", "C1"]);
}

#[test]
fn honours_retry_after_then_succeeds() {
    let api = FakeApi::start();
    api.script([Reply::RetryAfter(429, "1".into())]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 2))));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].sent(), requests[1].sent());
    let gap = requests[1].received - requests[0].received;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, Retry-After said 1s"
    );
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(st.attempts, 2);
}

#[test]
fn retries_server_errors_then_succeeds() {
    let api = FakeApi::start();
    api.script([Reply::Status(500), Reply::Status(502)]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 3))));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.requests().len(), 3);
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(st.attempts, 3);
    assert_eq!(st.history[0].requests, 3);
}

#[test]
fn retries_dropped_connections() {
    let api = FakeApi::start();
    api.script([Reply::Drop, Reply::DropMidResponse]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 1))));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.requests().len(), 3);
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

#[test]
fn unauthorized_fails_loudly_without_retrying() {
    let api = FakeApi::start();
    api.default_reply(Reply::Json(401, r#"{"message":"Unauthenticated."}"#.into()));
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 1\nresets:\n{}",
        entry("r1", &hashes("H", 3))
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(api.requests().len(), 1, "a refused token stops the run");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Failed);
    let error = st.last_error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 401") && error.contains("refused the token"),
        "{error}"
    );
    assert!(stderr.contains("refused the token"), "{stderr}");
}

#[test]
fn dry_run_sends_nothing_and_records_dry_run() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 3))));
    let mut cmd = crate::support::resetd();
    cmd.args(["run", "--once", "--dry-run", "--config"])
        .arg(&ws.config)
        .env("RESETD_API_BASE", api.base());
    let (code, stdout, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("DRY-RUN"), "{stdout}");
    assert!(api.requests().is_empty());
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::DryRun);
    assert_eq!(st.history[0].hashes, 3);
}

#[test]
fn succeeded_entry_is_not_run_again_after_restart_until_revision_bump() {
    let api = FakeApi::start();
    let body = format!("resets:\n{}", entry("r1", &hashes("H", 2)));
    let ws = Workspace::new(&body);
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    assert_eq!(api.requests().len(), 1, "a second start sends nothing");

    ws.write_config(&format!("{body}    revision: 1\n"));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    assert_eq!(api.requests().len(), 2, "a revision bump runs it again");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.revision, 1);
    assert_eq!(st.history.len(), 2);
}

#[test]
fn not_after_in_the_past_expires_without_requests() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}    notAfter: \"2020-01-01T00:00:00Z\"\n",
        entry("old", &hashes("H", 2))
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(api.requests().is_empty());
    let st = &ws.status().resets["old"];
    assert_eq!(st.phase, Phase::Expired);
    assert_eq!(st.history[0].outcome, Outcome::Expired);
}

#[test]
fn failed_entry_waits_for_a_fix_then_sends_only_unconfirmed_hashes() {
    let api = FakeApi::start();
    // Batch 2 of 3 is rejected as a bad request; the others are confirmed.
    api.script([
        Reply::Status(204),
        Reply::Json(422, r#"{"error":{"message":"invalid hash H0003"}}"#.into()),
    ]);
    let all = hashes("H", 6);
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n{}",
        entry("r1", &all)
    ));
    let (code, _, _) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1);
    assert_eq!(api.requests().len(), 3);
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Failed);
    let expected = format!("HTTP 422 from {}/sessions: invalid hash H0003", api.base());
    assert_eq!(st.last_error.as_deref(), Some(expected.as_str()));
    assert_eq!(st.next_retry_at, None, "a refused request is not retried");

    // Not retried on its own.
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    assert_eq!(api.requests().len(), 3);

    // The fix drops the bad hash: only H0002 is still owed.
    let fixed: Vec<String> = all.iter().filter(|h| *h != "H0003").cloned().collect();
    ws.write_config(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n{}",
        entry("r1", &fixed)
    ));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    let requests = api.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[3].sent(), ["H0002"]);
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

#[test]
fn missing_token_exits_2_before_any_request_or_write() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 1))));
    let mut cmd = crate::support::resetd();
    cmd.args(["run", "--once", "--config"])
        .arg(&ws.config)
        .env("RESETD_API_BASE", api.base());
    let (code, _, stderr) = crate::support::run(&mut cmd);
    assert_eq!(code, 2);
    assert!(stderr.contains("IPROYAL_API_TOKEN"), "{stderr}");
    assert!(api.requests().is_empty());
    assert!(!ws.status.exists());
}

#[test]
fn token_file_is_read_with_its_newline_trimmed() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 1))));
    let token_file = ws.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut cmd = crate::support::resetd();
    cmd.args(["run", "--once", "--config"])
        .arg(&ws.config)
        .arg("--token-file")
        .arg(&token_file)
        .args(["--api-base", &api.base()]);
    let (code, _, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[test]
fn corrupt_status_exits_2_and_is_left_untouched() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 1))));
    std::fs::write(
        &ws.status,
        "apiVersion: resetd/v1\nresets: {r1: {phase: Bogus\n",
    )
    .unwrap();
    let before = std::fs::read(&ws.status).unwrap();
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(api.requests().is_empty());
    assert_eq!(std::fs::read(&ws.status).unwrap(), before);
}

#[test]
fn removed_entries_are_kept_as_orphans() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}{}",
        entry("keep", &hashes("K", 1)),
        entry("gone", &hashes("G", 1))
    ));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    ws.write_config(&format!("resets:\n{}", entry("keep", &hashes("K", 1))));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    let status = ws.status();
    assert!(status.resets["gone"].orphaned);
    assert!(!status.resets["keep"].orphaned);
    assert_eq!(status.resets["gone"].history.len(), 1);
    assert_eq!(api.requests().len(), 2);
}

#[test]
fn plan_never_calls_the_api_and_names_every_entry() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}{}    trigger: {{cron: \"0 3 * * *\"}}\n",
        entry("now", &hashes("N", 2)),
        entry("nightly", &hashes("Y", 1))
    ));
    for format in ["human", "json", "markdown"] {
        let mut cmd = ws.command(&api.base());
        cmd.args(["plan", "--config"])
            .arg(&ws.config)
            .args(["--format", format]);
        let (code, stdout, stderr) = ws.run_checked(&mut cmd);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("now") && stdout.contains("nightly"),
            "{stdout}"
        );
    }
    assert!(api.requests().is_empty());
    assert!(!ws.status.exists(), "plan writes nothing");
}

#[test]
fn status_command_prints_the_table_and_json() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("H", 1))));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    let mut cmd = crate::support::resetd();
    cmd.args(["status", "--config"]).arg(&ws.config);
    let (code, stdout, _) = crate::support::run(&mut cmd);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("r1") && stdout.contains("Succeeded"),
        "{stdout}"
    );
    let mut cmd = crate::support::resetd();
    cmd.args(["status", "--format", "json", "--status"])
        .arg(&ws.status);
    let (_, stdout, _) = crate::support::run(&mut cmd);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["resets"]["r1"]["phase"], "Succeeded");
}

/// `run --once` in the background on entry `r1` of 10 hashes (`prefix`…) at
/// batch size 2: batches 0 and 1 confirmed, batch 2 held by the API. Returns
/// once that third request is held.
fn held_at_third_batch(prefix: &str) -> (FakeApi, Workspace, Vec<String>, std::process::Child) {
    let api = FakeApi::start();
    api.script([Reply::Status(204), Reply::Status(204), Reply::Hold]);
    let all = hashes(prefix, 10);
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n{}",
        entry("r1", &all)
    ));
    let mut cmd = ws.command(&api.base());
    cmd.args(["run", "--once", "--config"]).arg(&ws.config);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    api.wait_until(WAIT, "the third request to be held", |r| r.len() == 3);
    (api, ws, all, child)
}

#[test]
fn a_crash_mid_request_resumes_without_resending_confirmed_batches() {
    let (api, ws, all, mut child) = held_at_third_batch("H");

    // While it runs, a second process on the same status file is refused.
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("pid {}", child.id())), "{stderr}");

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    api.release_held();
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Running);
    assert_eq!(st.run.as_ref().unwrap().in_flight, Some(2));

    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let requests = api.requests();
    let confirmed_before_kill: Vec<&[String]> = requests[..2].iter().map(|r| r.sent()).collect();
    for r in &requests[3..] {
        assert!(
            !confirmed_before_kill.contains(&r.sent()),
            "batch {:?} was confirmed and sent again",
            r.sent()
        );
    }
    let mut sent: Vec<String> = requests.iter().flat_map(|r| r.sent().to_vec()).collect();
    sent.sort();
    sent.dedup();
    assert_eq!(sent, all, "every hash sent at least once");
    assert_eq!(
        requests.len(),
        6,
        "batches 2..5 after the restart (2 re-sent: its answer was lost)"
    );
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

#[test]
fn deleting_the_lock_file_mid_run_stops_the_holder_before_its_next_request() {
    let api = FakeApi::start();
    api.default_reply(Reply::Hold);
    let ws = Workspace::new(
        "settings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n  - id: three\n    hashes: [LOCK1, LOCK2, LOCK3]\n",
    );
    let first = ws
        .command(&api.base())
        .args(["run", "--once", "--config"])
        .arg(&ws.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    api.wait_until(WAIT, "the first request", |r| r.len() == 1);
    // Someone deletes the lock while the first run waits for its answer; a
    // second run can now lock a new file at the same path.
    std::fs::remove_file(ws.dir.path().join("resets.status.yaml.lock")).unwrap();
    let second = ws
        .command(&api.base())
        .args(["run", "--once", "--config"])
        .arg(&ws.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    api.wait_until(WAIT, "the second run's first request", |r| r.len() == 2);
    api.release_held();
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    let first_err = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(2), "{first_err}");
    assert!(first_err.contains("deleted or replaced"), "{first_err}");
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Only the batch that was in flight when the lock went was sent twice.
    let sent: Vec<String> = api
        .requests()
        .iter()
        .flat_map(|r| r.sent().to_vec())
        .collect();
    for (hash, times) in [("LOCK1", 2), ("LOCK2", 1), ("LOCK3", 1)] {
        assert_eq!(
            sent.iter().filter(|h| *h == hash).count(),
            times,
            "{hash}: {sent:?}"
        );
    }
}

#[test]
fn a_run_killed_then_edited_sends_only_what_it_had_not_confirmed() {
    let (api, ws, all, mut child) = held_at_third_batch("E");
    child.kill().unwrap(); // SIGKILL: no fold, only the journal
    child.wait().unwrap();
    api.release_held();

    // Edited while resetd was down: reversed, and one hash added in front.
    let mut edited = all.clone();
    edited.reverse();
    edited.insert(0, "EXTRA".to_owned());
    ws.write_config(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n{}",
        entry("r1", &edited)
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let requests = api.requests();
    let confirmed: Vec<String> = requests[..2]
        .iter()
        .flat_map(|r| r.sent().to_vec())
        .collect();
    let after: Vec<String> = requests[3..]
        .iter()
        .flat_map(|r| r.sent().to_vec())
        .collect();
    for hash in &confirmed {
        assert!(
            !after.contains(hash),
            "{hash} was confirmed and sent again: {after:?}"
        );
    }
    let mut expected: Vec<String> = edited
        .iter()
        .filter(|h| !confirmed.contains(h))
        .cloned()
        .collect();
    let mut got = after.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every unconfirmed hash, once");
}

#[test]
fn an_explicit_status_path_that_does_not_exist_is_an_error_and_logs_have_no_colour() {
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("C", 1))));
    let missing = ws.dir.path().join("typo.status.yaml");
    for sub in ["status", "plan"] {
        let mut cmd = ws.command("http://127.0.0.1:9/v1");
        cmd.arg(sub).arg("--status").arg(&missing);
        if sub == "plan" {
            cmd.arg("--config").arg(&ws.config);
        }
        let (code, _, stderr) = ws.run_checked(&mut cmd);
        assert_eq!(code, 2, "{sub}: {stderr}");
        assert!(stderr.contains("does not exist"), "{sub}: {stderr}");
    }
    // stderr is a pipe here: no colour codes in it.
    let (code, _, stderr) = ws.run_once("http://127.0.0.1:9/v1", &["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
}

#[test]
fn a_refused_token_waits_for_its_back_off_and_a_new_token_retries_at_once() {
    let api = FakeApi::start();
    api.script([Reply::Json(401, r#"{"message":"bad token"}"#.into())]);
    let ws = Workspace::new(&format!("resets:\n{}", entry("r1", &hashes("T", 2))));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{stderr}");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Failed);
    let error = st.last_error.as_deref().unwrap();
    assert!(
        error.starts_with(&format!("HTTP 401 from {}/sessions: ", api.base())),
        "{error}"
    );
    let retry_at = st.next_retry_at.expect("a refused token is retried");
    assert_eq!(
        retry_at - st.completed_at.unwrap(),
        chrono::Duration::minutes(1)
    );
    assert!(st.retrying.as_ref().unwrap().refused_token.is_some());

    // The same token again: the entry waits for its back-off.
    let (code, stdout, _) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("retried on its own at"), "{stdout}");
    assert_eq!(api.requests().len(), 1);

    // A new token: retried at once.
    let mut cmd = ws.command(&api.base());
    cmd.env("IPROYAL_API_TOKEN", "tok-ROTATED-77a1b2c3")
        .args(["run", "--once", "--config"])
        .arg(&ws.config);
    let (code, stdout, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("the token has changed"), "{stdout}");
    assert_eq!(api.requests().len(), 2);
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!((st.next_retry_at, &st.retrying), (None, &None));
}

#[test]
fn every_run_records_the_commit_its_config_came_from() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "resets:\n{}{}    notAfter: \"2020-01-01T00:00:00Z\"\n",
        entry("r1", &hashes("G", 1)),
        entry("old", &hashes("O", 1))
    ));
    crate::support::git(ws.dir.path(), &["init", "-q"]);
    crate::support::git(ws.dir.path(), &["add", "resets.yaml"]);
    crate::support::git(ws.dir.path(), &["commit", "-q", "-m", "resets"]);
    let head = crate::support::git(ws.dir.path(), &["rev-parse", "HEAD"]);
    assert_eq!(head.len(), 40);
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let status = ws.status();
    for id in ["r1", "old"] {
        let record = &status.resets[id].history[0];
        assert_eq!(
            record.source_revision.as_deref(),
            Some(head.as_str()),
            "{id}"
        );
    }

    // Given on the command line (or RESETD_SOURCE_REVISION), it wins.
    ws.write_config(&format!(
        "resets:\n{}    revision: 1\n",
        entry("r1", &hashes("G", 1))
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &["--source-revision", "0123abcd"]);
    assert_eq!(code, 0, "{stderr}");
    let record = ws.status().resets["r1"].history[1].clone();
    assert_eq!(record.source_revision.as_deref(), Some("0123abcd"));
}
