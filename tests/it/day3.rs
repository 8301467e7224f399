//! What a newcomer and an attacker still tripped over (issue 20), each
//! reproduced here: secrets in URLs, an unbounded token file, commands that
//! ignored what they were told or said the wrong thing.

use crate::fake_api::FakeApi;
use crate::support::{Workspace, resetd, run};

/// A port that was free a moment ago: nothing listens there.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const ENTRY: &str =
    "settings:\n  maxAttempts: 1\nresets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n";

#[test]
fn an_api_base_with_credentials_is_never_shown_with_them() {
    let ws = Workspace::new(ENTRY);
    let base = format!(
        "http://apiuser:PASSWORD-9f3e@127.0.0.1:{}/v1",
        closed_port()
    );
    let (code, stdout, stderr) = ws.run_once(&base, &[]);
    assert_eq!(code, 1, "{stderr}");
    let status = std::fs::read_to_string(&ws.status).unwrap();
    for secret in ["apiuser", "PASSWORD-9f3e"] {
        for (name, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("status", &status),
        ] {
            assert!(!text.contains(secret), "{secret} in {name}:\n{text}");
        }
    }
    let error = ws.status().resets["r1"].last_error.clone().unwrap();
    assert!(error.contains("http://redacted@127.0.0.1:"), "{error}");
    // A query would land inside every endpoint: refused, and not shown.
    let base = format!("http://127.0.0.1:{}/v1?key=QUERY-77a1", closed_port());
    let (code, stdout, stderr) = Workspace::new(ENTRY).run_once(&base, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("?redacted"), "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("QUERY-77a1"),
        "{stderr}"
    );
}

#[test]
fn plan_status_url_with_credentials_names_it_without_them() {
    let api = FakeApi::start();
    let ws = Workspace::new(ENTRY);
    let url = api.base().replace("http://", "http://u:STATUS-PW@") + "/missing?token=Q1";
    let (code, stdout, stderr) = run(resetd()
        .args(["plan", "--config"])
        .arg(&ws.config)
        .args(["--status-url", &url]));
    assert_ne!(code, 0, "{stdout}");
    for secret in ["STATUS-PW", "Q1", "u:"] {
        assert!(!stderr.contains(secret), "{secret}: {stderr}");
    }
}

#[test]
fn a_huge_token_file_is_refused_at_once_with_exit_2() {
    let ws = Workspace::new(ENTRY);
    let token = ws.dir.path().join("token");
    let file = std::fs::File::create(&token).unwrap();
    file.set_len(100 << 20).unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) = run(ws
        .command("http://127.0.0.1:9/v1")
        .env_remove("IPROYAL_API_TOKEN")
        .args(["run", "--once", "--config"])
        .arg(&ws.config)
        .arg("--token-file")
        .arg(&token));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("larger than 4096 bytes: not a token"),
        "{stderr}"
    );
    assert!(!ws.status.exists(), "nothing written");
}

#[test]
fn commands_without_a_token_say_what_they_need_it_for() {
    let ws = Workspace::new(ENTRY);
    for (args, says) in [
        (
            vec!["subusers"],
            "`resetd subusers` reads the account's sub-users with it",
        ),
        (
            vec!["plan", "--resolve", "--config", ws.config.to_str().unwrap()],
            "`plan --resolve` reads who owns each hash with it",
        ),
        (
            vec!["run", "--once", "--config", ws.config.to_str().unwrap()],
            "resets are due and not in dry run (nothing was sent)",
        ),
    ] {
        let (code, _, stderr) = run(ws
            .command("http://127.0.0.1:9/v1")
            .env_remove("IPROYAL_API_TOKEN")
            .args(&args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("no API token"), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if args[0] != "run" {
            assert!(!stderr.contains("resets are due"), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn status_names_a_missing_config_and_says_when_there_is_no_status_yet() {
    let ws = Workspace::new(ENTRY);
    let (code, stdout, stderr) = run(resetd().args(["status", "--config", "nope.yaml"]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("config nope.yaml does not exist"),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(resetd().arg("status").arg("--config").arg(&ws.config));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no status yet"), "{stderr}");
    let (code, _, stderr) = run(resetd().args(["status", "--status", "nope.status.yaml"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn run_once_refuses_listen_rather_than_ignore_it() {
    let ws = Workspace::new(ENTRY);
    let (code, _, stderr) = run(resetd()
        .args([
            "run",
            "--once",
            "--dry-run",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&ws.config));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--listen") && stderr.contains("--once"),
        "{stderr}"
    );
    assert!(!ws.status.exists());
}

#[test]
fn the_plan_summary_counts_expiries_apart_from_waiting_entries() {
    let ws = Workspace::new(
        "resets:\n  - id: old\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    trigger: {at: \"2020-01-01T00:00:00Z\"}\n    notAfter: \"2020-01-02T00:00:00Z\"\n",
    );
    let (code, stdout, stderr) = run(resetd().args(["plan", "--config"]).arg(&ws.config));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("0 to run, 0 dry run(s), 1 expiring, 0 waiting"),
        "{stdout}"
    );
}
