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
    let edited = pr.path().join("resets.yaml");
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

    let (code, markdown, stderr) = plan(&ws, &edited, "markdown", &["--status-url", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        markdown.contains("against a running daemon's status"),
        "{markdown}"
    );
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
