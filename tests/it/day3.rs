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
        "http://apiuser:PASSWORD-9f3e@127.0.0.1:{}/v1?key=QUERY-77a1",
        closed_port()
    );
    let (code, stdout, stderr) = ws.run_once(&base, &[]);
    assert_eq!(code, 1, "{stderr}");
    let status = std::fs::read_to_string(&ws.status).unwrap();
    for secret in ["apiuser", "PASSWORD-9f3e", "QUERY-77a1"] {
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
    assert!(error.contains("?redacted"), "{error}");
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
