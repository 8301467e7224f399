//! The commit a config came from (SPEC §6 `sourceRevision`): given with
//! `--source-revision` / `RESETD_SOURCE_REVISION`, or else the `HEAD` commit
//! of the git work tree the config lies in.
//!
//! It asks the `git` command (`git rev-parse --verify HEAD`) rather than
//! reading `.git` itself: git's own answer covers worktrees, packed refs and
//! detached heads exactly, and costs no dependency. Without git (a
//! distroless image) or outside a work tree the revision is unknown (null);
//! give `--source-revision` there.

use std::path::Path;
use std::process::{Command, Stdio};

/// The revision to record for `config`: `given`, or its work tree's HEAD.
pub fn of(config: &Path, given: Option<&str>) -> Option<String> {
    match given {
        Some(rev) if !rev.trim().is_empty() => Some(rev.trim().to_owned()),
        _ => head_of(config),
    }
}

/// The HEAD commit of the work tree holding `config` (followed through
/// symlinks: a `current -> release` link points into the checkout).
fn head_of(config: &Path) -> Option<String> {
    let real = std::fs::canonicalize(config).ok()?;
    let dir = real.parent()?;
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        // A read: no lock files in the operator's checkout.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let rev = text.trim();
    let is_commit_id = matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit());
    (output.status.success() && is_commit_id).then(|| rev.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_revision_wins_and_outside_a_work_tree_it_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("resets.yaml");
        std::fs::write(&config, "").unwrap();
        assert_eq!(of(&config, Some(" abc123 ")), Some("abc123".into()));
        assert_eq!(of(&config, None), None);
        assert_eq!(of(&dir.path().join("missing.yaml"), None), None);
    }
}
