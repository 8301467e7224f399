//! Fault injection: a flaky API, broken connections, a silent server, no
//! server at all, a full disk, a damaged status file.

use std::collections::HashMap;

use resetd::status::Phase;

use crate::fake_api::{FakeApi, Reply};
use crate::support::{TOKEN, Workspace};

fn hashes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("F{i:05}")).collect()
}

/// Settings that make retries fast, so hundreds of them fit in a test.
fn fast(batch: usize, attempts: u32, timeout: &str) -> String {
    format!(
        "settings:\n  batchSize: {batch}\n  maxAttempts: {attempts}\n  retryDelay: 1ms\n  requestTimeout: {timeout}\n  maxRequestsPerSecond: 0\n"
    )
}

fn entry(id: &str, hashes: &[String]) -> String {
    format!(
        "resets:\n  - id: {id}\n    hashes: [{}]\n",
        hashes.join(", ")
    )
}

#[test]
fn thirty_percent_random_429_and_500_every_hash_confirmed_exactly_once() {
    let api = FakeApi::start();
    api.fail_rate(0.3);
    let all = hashes(700);
    let ws = Workspace::new(&format!("{}{}", fast(1, 100, "10s"), entry("flaky", &all)));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let requests = api.requests();
    let failed = requests
        .iter()
        .filter(|r| matches!(r.answered, Some(429 | 500)))
        .count();
    println!("{} requests, {failed} answered 429/500", requests.len());
    assert!(
        requests.len() >= 950,
        "only {} requests: the fault rate did not bite",
        requests.len()
    );
    let mut confirmations: HashMap<&str, usize> = HashMap::new();
    for r in requests
        .iter()
        .filter(|r| matches!(r.answered, Some(200..=299)))
    {
        for h in r.sent() {
            *confirmations.entry(h).or_default() += 1;
        }
    }
    for h in &all {
        assert_eq!(
            confirmations.get(h.as_str()),
            Some(&1),
            "{h} confirmed {:?} times",
            confirmations.get(h.as_str())
        );
    }
    let st = &ws.status().resets["flaky"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(
        st.attempts as usize,
        requests.len(),
        "every attempt is recorded"
    );
    assert_eq!(st.history[0].confirmed, 700);
}

#[test]
fn a_connection_reset_mid_body_is_retried() {
    let api = FakeApi::start();
    api.script([Reply::DropMidBody, Reply::DropMidBody]);
    let ws = Workspace::new(&format!("{}{}", fast(10, 5, "5s"), entry("r1", &hashes(3))));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(api.requests().len(), 3);
    assert_eq!(ws.status().resets["r1"].phase, Phase::Succeeded);
}

#[test]
fn a_server_that_never_answers_times_out_and_fails_after_max_attempts() {
    let api = FakeApi::start();
    api.default_reply(Reply::Hold);
    let ws = Workspace::new(&format!(
        "{}{}",
        fast(10, 2, "300ms"),
        entry("r1", &hashes(2))
    ));
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    api.release_held();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(api.requests().len(), 2);
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Failed);
    let expected = format!("no answer from {}/sessions within 300ms", api.base());
    assert_eq!(st.last_error.as_deref(), Some(expected.as_str()));
}

#[test]
fn connection_refused_fails_after_max_attempts_with_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = Workspace::new(&format!("{}{}", fast(10, 3, "2s"), entry("r1", &hashes(2))));
    let (code, _, stderr) = ws.run_once(&format!("http://127.0.0.1:{port}/v1"), &[]);
    assert_eq!(code, 1, "{stderr}");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(st.attempts, 3);
    let error = st.last_error.as_deref().unwrap();
    // The error names the URL it hit: a wrong --api-base shows.
    let url = format!("cannot reach http://127.0.0.1:{port}/v1/sessions: ");
    assert!(error.starts_with(&url), "{error}");
}

#[test]
fn an_unresolvable_host_fails_with_a_clear_error() {
    let ws = Workspace::new(&format!("{}{}", fast(10, 2, "2s"), entry("r1", &hashes(1))));
    let (code, _, stderr) = ws.run_once("http://resetd-test.invalid/v1", &[]);
    assert_eq!(code, 1, "{stderr}");
    let error = ws.status().resets["r1"].last_error.clone().unwrap();
    assert!(
        error.starts_with("cannot reach http://resetd-test.invalid/v1/sessions: ")
            && error.contains("dns"),
        "{error}"
    );
}

#[test]
fn a_full_disk_stops_with_a_clear_error_and_keeps_the_last_status() {
    let api = FakeApi::start();
    let ws = Workspace::new(&format!(
        "settings:\n  maxRequestsPerSecond: 0\n{}",
        entry("small", &hashes(1))
    ));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    let before = std::fs::read(&ws.status).unwrap();

    // Twenty more entries make the status file outgrow a 4 KiB file-size
    // limit, which fails writes the way a full disk does (EFBIG, with
    // SIGXFSZ ignored so the process sees the error instead of dying).
    let mut body = format!(
        "settings:\n  maxRequestsPerSecond: 0\n{}",
        entry("small", &hashes(1))
    );
    for i in 0..20 {
        body.push_str(&format!("  - id: more-{i}\n    hashes: [M{i:04}]\n"));
    }
    ws.write_config(&body);
    let script = format!(
        "trap '' XFSZ; ulimit -f 4; exec {} run --once --config {}",
        env!("CARGO_BIN_EXE_resetd"),
        ws.config.display()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", &script])
        .env("IPROYAL_API_TOKEN", TOKEN)
        .env("RESETD_API_BASE", api.base());
    let (code, _, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("File too large") && stderr.contains("resets.status.yaml"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&ws.status).unwrap(),
        before,
        "the last good status is intact"
    );
    assert_eq!(
        api.requests().len(),
        1,
        "nothing is sent while progress cannot be recorded"
    );
}

#[test]
fn a_read_only_status_directory_is_a_clear_error_and_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &hashes(1)));
    let state = ws.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let status = state.join("resets.status.yaml");
    let before = "apiVersion: resetd/v1\nkind: SessionResetStatus\nresets: {}\n";
    std::fs::write(&status, before).unwrap();
    for (path, mode) in [
        (ws.dir.path(), 0o755),
        (ws.config.as_path(), 0o644),
        (status.as_path(), 0o644),
        (state.as_path(), 0o555),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut cmd = crate::support::unprivileged_resetd();
    cmd.args(["run", "--once", "--config"])
        .arg(&ws.config)
        .arg("--status")
        .arg(&status)
        .env("IPROYAL_API_TOKEN", TOKEN)
        .env("RESETD_API_BASE", api.base());
    let (code, _, stderr) = ws.run_checked(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("state/resets.status.yaml.lock") && stderr.contains("Permission denied"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Permission denied").count(), 1, "{stderr}");
    assert!(
        stderr.contains("give --status a path in a directory resetd can write"),
        "{stderr}"
    );
    assert!(
        api.requests().is_empty(),
        "nothing is sent when progress cannot be recorded"
    );
    assert_eq!(std::fs::read_to_string(&status).unwrap(), before);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_status_directory_is_a_clear_error() {
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &hashes(1)));
    let missing = ws.dir.path().join("no-such-dir/resets.status.yaml");
    let (code, _, stderr) = ws.run_once(&api.base(), &["--status", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no-such-dir") && stderr.contains("No such file"),
        "{stderr}"
    );
    assert!(api.requests().is_empty());
}

#[test]
fn a_truncated_status_file_exits_2_and_is_left_untouched() {
    let api = FakeApi::start();
    let ws = Workspace::new(&entry("r1", &hashes(1)));
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    let full = std::fs::read_to_string(&ws.status).unwrap();
    let truncated = &full[..full.len() / 2];
    std::fs::write(&ws.status, truncated).unwrap();
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&ws.status).unwrap(), truncated);
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn a_redirect_is_never_followed_and_fails_the_batch_naming_its_target() {
    for code in [301, 302, 307, 308] {
        let elsewhere = FakeApi::start();
        let api = FakeApi::start();
        api.default_reply(Reply::Redirect(
            code,
            format!("{}/sessions", elsewhere.base()),
        ));
        let ws = Workspace::new(&format!(
            "{}{}",
            fast(1, 3, "10s"),
            entry("moved", &hashes(2))
        ));
        let (exit, _, stderr) = ws.run_once(&api.base(), &[]);
        assert_eq!(exit, 1, "{code}: {stderr}");
        assert!(
            elsewhere.requests().is_empty(),
            "{code}: the redirect was followed"
        );
        // Permanent: one request per batch, no retries.
        assert_eq!(api.requests().len(), 2, "{code}");
        let st = &ws.status().resets["moved"];
        assert_eq!(st.phase, Phase::Failed);
        let error = st.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("redirected to") && error.contains(&elsewhere.base()),
            "{code}: {error}"
        );
    }
}

#[test]
fn a_huge_error_body_is_read_only_up_to_its_bound() {
    let api = FakeApi::start();
    // 8 MiB, echoing the token at the very end (past the bound).
    let body = format!("{}{TOKEN}", "x".repeat(8 * 1024 * 1024));
    api.default_reply(Reply::Json(422, body));
    let ws = Workspace::new(&format!(
        "{}{}",
        fast(1, 1, "10s"),
        entry("big", &hashes(1))
    ));
    let (exit, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(exit, 1, "{stderr}");
    let error = ws.status().resets["big"]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(error.len() < 1000, "a {}-byte error", error.len());
}
