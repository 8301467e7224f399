//! `resetd plan` as a PR check runs it.

use std::path::Path;

use crate::support::Workspace;

/// `resetd plan --config <config> --format <format>` plus `extra`; the
/// token is in its environment and must leak nowhere.
fn plan(ws: &Workspace, config: &Path, format: &str, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = ws.command("http://127.0.0.1:9/v1");
    cmd.args(["plan", "--format", format, "--config"])
        .arg(config)
        .args(extra);
    ws.run_checked(&mut cmd)
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
