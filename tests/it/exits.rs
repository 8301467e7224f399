//! How `resetd` ends when something is wrong: the message (once, located,
//! with a way out), the exit code, and what it leaves on disk.

use crate::fake_api::FakeApi;
use crate::support::{Workspace, run};

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
