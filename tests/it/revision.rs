//! The source revision (SPEC §6 `sourceRevision`) as deployments meet it:
//! a checkout owned by another user than the service's, and a `github`
//! receiver that has no commit to mark.

use std::path::Path;
use std::process::Command;

use crate::fake_api::FakeApi;
use crate::support::{HEAD, git, resetd, run};

const GITHUB_TOKEN: &str = "ghp_SECRETrevisionTOKEN42";

/// A `github` receiver on `api`, its token in a file in `dir`.
fn github_receiver(dir: &Path, api: &FakeApi) -> String {
    let token = dir.join("github-token");
    std::fs::write(&token, GITHUB_TOKEN).unwrap();
    format!(
        "notifications:\n  - name: commit-status\n    type: github\n    repository: acme/proxy-ops\n    tokenFrom: {{ file: {} }}\n    apiBase: http://{}\n    on: [DryRun]\n",
        token.display(),
        api.addr()
    )
}

/// `run --once --dry-run` of `config`, its status in `status`.
fn dry_run(config: &Path, status: &Path) -> (i32, String, String) {
    run(resetd()
        .args(["run", "--once", "--dry-run", "--config"])
        .arg(config)
        .arg("--status")
        .arg(status))
}

/// Whether this process may give files away (root, or CAP_CHOWN).
fn chown(path: &Path, uid: u32) -> bool {
    Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_checkout_owned_by_another_user_still_gives_its_head() {
    let api = FakeApi::receiver();
    let state = tempfile::tempdir().unwrap();
    let checkout = tempfile::tempdir().unwrap();
    let repo = checkout.path().join("proxy-ops");
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(
        repo.join("resets.yaml"),
        format!(
            "{HEAD}{}resets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n  - id: r2\n    hashes: [01HQ5K3P97DY8EX9Y90YT1K6XA]\n",
            github_receiver(state.path(), &api)
        ),
    )
    .unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "resets.yaml"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    // Packed refs, as a `git gc` or a fresh clone leaves them.
    git(&repo, &["pack-refs", "--all"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    // The timer's user owns the checkout; the service runs as another.
    if !chown(&repo, 65534) {
        eprintln!(
            "\n!!! SKIPPED a_checkout_owned_by_another_user_still_gives_its_head: \
             cannot chown a directory to uid 65534 (run the tests as root) !!!\n"
        );
        return;
    }
    let refused = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains("dubious ownership"),
        "git itself must refuse this checkout, or the test proves nothing"
    );

    let status = state.path().join("resets.status.yaml");
    let (code, stdout, stderr) = dry_run(&repo.join("resets.yaml"), &status);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let status = resetd::store::read(&status).unwrap();
    for id in ["r1", "r2"] {
        let record = &status.resets[id].history[0];
        assert_eq!(
            record.source_revision.as_deref(),
            Some(head.as_str()),
            "{id}"
        );
    }
    // And the commit got its statuses.
    let posted = api.wait_until(std::time::Duration::from_secs(10), "two statuses", |r| {
        r.len() == 2
    });
    for request in posted {
        assert_eq!(
            request.path,
            format!("/repos/acme/proxy-ops/statuses/{head}")
        );
    }
    assert!(!stderr.contains("no commit status"), "{stderr}");
}

#[test]
fn a_github_receiver_without_a_revision_is_told_once_and_why() {
    let api = FakeApi::receiver();
    // No work tree anywhere above the config, no --source-revision.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.yaml");
    std::fs::write(
        &config,
        format!(
            "{HEAD}{}resets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n  - id: r2\n    hashes: [01HQ5K3P97DY8EX9Y90YT1K6XA]\n",
            github_receiver(dir.path(), &api)
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = dry_run(&config, &dir.path().join("resets.status.yaml"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let told: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no commit status"))
        .collect();
    assert_eq!(told.len(), 1, "said once, for two events:\n{stderr}");
    let line = told[0];
    assert!(line.contains("WARN") || line.contains("ERROR"), "{line}");
    assert!(line.contains("commit-status"), "names the receiver: {line}");
    assert!(
        line.contains("no git work tree") && line.contains("--source-revision"),
        "says why, and what to do: {line}"
    );
    assert!(api.requests().is_empty(), "no commit to mark");
    assert!(!stderr.contains(GITHUB_TOKEN));
}
