//! How `resetd` ends when something is wrong: the message (once, located,
//! with a way out), the exit code, and what it leaves on disk.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use resetd::status::Phase;

use crate::fake_api::{FakeApi, Reply};
use crate::support::{Lines, TOKEN, Workspace, run};

const WAIT: Duration = Duration::from_secs(20);

fn hashes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn entry(id: &str, hashes: &[&str]) -> String {
    format!(
        "resets:\n  - id: {id}\n    hashes: [{}]\n",
        hashes.join(", ")
    )
}

#[test]
fn a_corrupt_status_field_is_reported_with_file_line_and_path() {
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &["01H7YCG0R9GYY1YCPS2S4QA6WB"]));
    let text =
        "apiVersion: resetd/v1\nkind: SessionResetStatus\nresets:\n  r1:\n    phase: Bogus\n";
    std::fs::write(&ws.status, text).unwrap();
    let mut status = ws.command(&api.base());
    status.args(["status", "--config"]).arg(&ws.config);
    let mut once = ws.command(&api.base());
    once.args(["run", "--once", "--config"]).arg(&ws.config);
    for cmd in [&mut status, &mut once] {
        let (code, _, stderr) = ws.run_checked(cmd);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("resets.status.yaml is corrupt: line 5, column 12, at resets.r1.phase: unknown variant `Bogus`"),
            "{stderr}"
        );
    }
    assert!(api.requests().is_empty());
    assert_eq!(std::fs::read_to_string(&ws.status).unwrap(), text);
}

#[test]
fn an_os_error_is_printed_once() {
    let ws = Workspace::new(&entry("r1", &["01H7YCG0R9GYY1YCPS2S4QA6WB"]));
    // Paths under a regular file and a directory as a file: ENOTDIR and
    // EISDIR, which root gets too (mode bits would not stop root).
    let file = ws.dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("resets.status.yaml");
    let (code, _, stderr) = ws.run_once(
        "http://127.0.0.1:9/v1",
        &["--status", under_file.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");

    let mut cmd = crate::support::resetd();
    cmd.args(["run", "--once", "--config"])
        .arg(&ws.config)
        .arg("--token-file")
        .arg(ws.dir.path())
        .args(["--api-base", "http://127.0.0.1:9/v1"]);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read token file"), "{stderr}");
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}

/// Every file in `dir`, with its size and modification time.
fn listing(dir: &std::path::Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn a_missing_token_leaves_the_status_directory_untouched() {
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &["01H7YCG0R9GYY1YCPS2S4QA6WB"]));
    // Fresh, and then with a status, a journal to fold and a temp file a
    // kill left: `Store::open` would create, fold or remove each of them.
    for round in ["fresh", "with a status"] {
        if round == "with a status" {
            assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
            std::fs::remove_file(ws.dir.path().join("resets.status.yaml.lock")).unwrap();
            std::fs::write(ws.dir.path().join("resets.status.yaml.journal"), "").unwrap();
            std::fs::write(ws.dir.path().join("resets.status.yaml.tmp.4242"), "half").unwrap();
            ws.write_config(&format!(
                "{}    revision: 1\n",
                entry("r1", &["01H7YCG0R9GYY1YCPS2S4QA6WB"])
            ));
        }
        for args in [&["run", "--once"][..], &["run"]] {
            let before = listing(ws.dir.path());
            let mut cmd = crate::support::resetd();
            cmd.args(args)
                .arg("--config")
                .arg(&ws.config)
                .args(["--api-base", &api.base()]);
            let (code, _, stderr) = run(&mut cmd);
            assert_eq!(code, 2, "{round}, {args:?}: {stderr}");
            assert!(stderr.contains("no API token"), "{stderr}");
            assert_eq!(listing(ws.dir.path()), before, "{round}, {args:?}");
        }
    }
    assert_eq!(api.requests().len(), 1, "only the run with a token sent");
}

#[test]
fn a_read_only_config_directory_suggests_status_and_status_elsewhere_works() {
    use std::os::unix::fs::PermissionsExt;
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &["01H7YCG0R9GYY1YCPS2S4QA6WB"]));
    let state = ws.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    for (path, mode) in [
        (state.as_path(), 0o777),
        (ws.config.as_path(), 0o644),
        (ws.dir.path(), 0o555),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let once = |extra: &[&str]| {
        let mut cmd = crate::support::unprivileged_resetd();
        cmd.args(["run", "--once", "--config"])
            .arg(&ws.config)
            .args(extra)
            .env("IPROYAL_API_TOKEN", TOKEN)
            .env("RESETD_API_BASE", api.base());
        ws.run_checked(&mut cmd)
    };
    let (code, _, stderr) = once(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("resets.status.yaml.lock: Permission denied (os error 13); the status file goes beside the config"),
        "{stderr}"
    );
    assert!(
        stderr.contains("give --status PATH in a writable directory"),
        "{stderr}"
    );
    assert!(api.requests().is_empty());

    let status = state.join("resets.status.yaml");
    let (code, _, stderr) = once(&["--status", status.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.requests().len(), 1);
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `run --once` on entry `r1` of 10 hashes at batch size 2, started in the
/// background with its stderr collected: batches 0 and 1 are confirmed,
/// batch 2 is held by the API (and so is any request after it).
fn once_held_at_third_batch(
    extra: &[&str],
    json: bool,
) -> (FakeApi, Workspace, Vec<String>, Child, Lines) {
    let api = FakeApi::start();
    api.script([Reply::Status(204), Reply::Status(204)]);
    api.default_reply(Reply::Hold);
    let all = hashes("S", 10);
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: 2\n  maxRequestsPerSecond: 0\nresets:\n  - id: r1\n    hashes: [{}]\n",
        all.join(", ")
    ));
    let mut cmd = ws.command(&api.base());
    cmd.args(["run", "--once", "--config"])
        .arg(&ws.config)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if json {
        cmd.env("RESETD_LOG_FORMAT", "json");
    }
    let mut child = cmd.spawn().unwrap();
    let lines = Lines::collect(child.stderr.take().unwrap());
    api.wait_until(WAIT, "the third request to be held", |r| r.len() == 3);
    (api, ws, all, child, lines)
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> i32 {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "resetd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sent_after(api: &FakeApi, first: usize) -> Vec<String> {
    api.requests()[first..]
        .iter()
        .flat_map(|r| r.sent().to_vec())
        .collect()
}

#[test]
fn sigterm_stops_run_once_after_the_request_in_flight_and_a_rerun_resumes() {
    let (api, ws, all, mut child, lines) = once_held_at_third_batch(&[], true);
    signal(&child, "TERM");
    lines.wait_for("SIGTERM: shutting down", WAIT);
    // The held request may now finish; nothing after it may start.
    api.release_held();
    assert_eq!(wait_exit(&mut child), 143);
    lines.wait_for("not sent", WAIT);
    let stderr = lines.all();
    let message = stderr
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("not sent"))
        })
        .unwrap();
    assert_eq!(message["level"], "WARN");
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .starts_with("interrupted by SIGTERM: 2 batch(es) not sent; run again to resume"),
        "{message}"
    );
    assert_eq!(api.requests().len(), 3, "no batch after the signal");
    assert_eq!(api.requests()[2].answered, Some(204));
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Pending, "{st:?}");
    let run = st.run.as_ref().unwrap();
    assert_eq!((run.next_batch, run.in_flight), (3, None), "{run:?}");

    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sent_after(&api, 3), all[6..], "only the unsent batches");
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

#[test]
fn a_second_sigterm_exits_at_once_and_the_request_in_flight_is_sent_again() {
    let (api, ws, all, mut child, lines) =
        once_held_at_third_batch(&["--shutdown-timeout", "10m"], false);
    signal(&child, "TERM");
    lines.wait_for("shutting down", WAIT);
    let sent = Instant::now();
    signal(&child, "TERM");
    // Not the ten minutes the held request could have taken.
    assert_eq!(wait_exit(&mut child), 143);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    lines.wait_for("SIGTERM again: exiting now", WAIT);
    assert_eq!(api.requests().len(), 3);
    api.default_reply(Reply::Status(204));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    // The batch in flight when it exited is sent again, then the rest.
    assert_eq!(
        sent_after(&api, 3),
        all[4..],
        "in flight and unsent batches"
    );
}

#[test]
fn sigint_past_the_shutdown_timeout_records_the_request_as_in_flight_and_exits_130() {
    let (api, ws, all, mut child, lines) =
        once_held_at_third_batch(&["--shutdown-timeout", "300ms"], false);
    signal(&child, "INT");
    // Never answered: the run gives up on it at the timeout.
    assert_eq!(wait_exit(&mut child), 130);
    lines.wait_for("not sent", WAIT);
    let stderr = lines.all().join("\n");
    assert!(
        stderr.contains("shutdown timeout (300ms) reached"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resetd: interrupted by SIGINT: 3 batch(es) not sent; run again to resume"),
        "{stderr}"
    );
    assert_eq!(api.requests().len(), 3);
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Pending, "{st:?}");
    let run = st.run.as_ref().unwrap();
    assert_eq!((run.next_batch, run.in_flight), (2, Some(2)), "{run:?}");

    api.release_held();
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    // Batch 2's answer was never seen: it is sent again, then the rest.
    assert_eq!(sent_after(&api, 3), all[4..]);
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

/// Every line parses as a JSON object with a level and a message.
fn assert_all_json(stderr: &str, what: &str) -> Vec<serde_json::Value> {
    assert!(!stderr.trim().is_empty(), "{what}: nothing on stderr");
    stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line}"));
            assert!(
                v["level"].is_string() && v["message"].is_string(),
                "{what}: {line}"
            );
            v
        })
        .collect()
}

#[test]
fn under_json_log_format_every_stderr_line_is_json() {
    let api = FakeApi::start();
    // Odd-shaped hashes: the config's warnings are on stderr too.
    let ws = Workspace::new(&entry("r1", &["ODD1"]));
    let json = |cmd: &mut std::process::Command| {
        cmd.env("RESETD_LOG_FORMAT", "json");
        ws.run_checked(cmd)
    };
    let once = |ws: &Workspace| {
        let mut cmd = ws.command(&api.base());
        cmd.args(["run", "--once", "--config"]).arg(&ws.config);
        cmd
    };

    let (code, stdout, stderr) = json(&mut once(&ws));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("RUN"), "the plan stays text: {stdout}");
    let events = assert_all_json(&stderr, "a successful run");
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("1 succeeded, 0 failed")),
        "{stderr}"
    );

    api.default_reply(Reply::Json(422, r#"{"message":"no such hash"}"#.into()));
    ws.write_config(&format!("{}    revision: 1\n", entry("r1", &["ODD1"])));
    let (code, _, stderr) = json(&mut once(&ws));
    assert_eq!(code, 1, "{stderr}");
    let events = assert_all_json(&stderr, "a failed run");
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("0 succeeded, 1 failed")),
        "{stderr}"
    );

    // `plan` sets up no logging; its config warnings follow the format too.
    let mut plan = ws.command(&api.base());
    plan.args(["plan", "--config"]).arg(&ws.config);
    let (code, stdout, stderr) = json(&mut plan);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(" r1 ") && !stdout.starts_with('{'),
        "the plan stays text: {stdout}"
    );
    let events = assert_all_json(&stderr, "plan");
    assert!(
        events.iter().all(|e| e["path"] == "resets[0].hashes[0]"),
        "{stderr}"
    );

    // Fatal errors: of `run` (no token), and of commands that set up no
    // logging (`status`, `validate`).
    ws.write_config(&format!("{}    revision: 2\n", entry("r1", &["ODD1"])));
    let mut no_token = once(&ws);
    no_token.env_remove("IPROYAL_API_TOKEN");
    let mut status = ws.command(&api.base());
    status.args(["status", "--status", "missing.yaml"]);
    let mut validate = ws.command(&api.base());
    validate.args(["validate", "missing.yaml"]);
    for (what, cmd, needle) in [
        ("no token", &mut no_token, "no API token"),
        ("status", &mut status, "missing.yaml does not exist"),
        ("validate", &mut validate, "cannot read missing.yaml"),
    ] {
        let (code, _, stderr) = json(cmd);
        assert_eq!(code, 2, "{what}: {stderr}");
        let events = assert_all_json(&stderr, what);
        let last = events.last().unwrap();
        assert_eq!(last["level"], "ERROR", "{what}: {stderr}");
        assert!(
            last["message"].as_str().unwrap().contains(needle),
            "{what}: {stderr}"
        );
    }
}
