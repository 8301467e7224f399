//! `revision` against real repositories, made by the installed git.

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A repository in `dir` with one commit of `resets.yaml`.
fn repo(dir: &Path) -> String {
    std::fs::write(dir.join("resets.yaml"), "").unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "resets.yaml"]);
    git(dir, &["commit", "-q", "-m", "one"]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn a_given_revision_wins_and_outside_a_work_tree_it_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.yaml");
    std::fs::write(&config, "").unwrap();
    assert_eq!(of(&config, Some(" abc123 ")), Some("abc123".into()));
    assert_eq!(of(&config, None), None);
    // (`unknown_reason` is the process's: the integration tests read it.)
    assert!(matches!(head_of(&config), Err(Unknown::NoWorkTree(_))));
    assert_eq!(of(&dir.path().join("missing.yaml"), None), None);
    assert!(matches!(
        head_of(&dir.path().join("missing.yaml")),
        Err(Unknown::Path { .. })
    ));
}

#[test]
fn loose_packed_detached_and_nested_heads_are_read_as_git_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let head = repo(dir.path());
    let config = dir.path().join("resets.yaml");
    assert_eq!(head_of(&config), Ok(head.clone()));
    // From a directory below the work tree's top.
    std::fs::create_dir(dir.path().join("prod")).unwrap();
    std::fs::write(dir.path().join("prod/resets.yaml"), "").unwrap();
    assert_eq!(
        head_of(&dir.path().join("prod/resets.yaml")),
        Ok(head.clone())
    );
    // Packed, with no loose ref left.
    git(dir.path(), &["pack-refs", "--all"]);
    assert!(!dir.path().join(".git/refs/heads/main").exists());
    assert_eq!(head_of(&config), Ok(head.clone()));
    // A newer loose ref wins over the packed one.
    git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "two"]);
    let second = git(dir.path(), &["rev-parse", "HEAD"]);
    assert_eq!(head_of(&config), Ok(second.clone()));
    // Detached.
    git(dir.path(), &["checkout", "-q", "--detach", &head]);
    assert_eq!(head_of(&config), Ok(head));
    // A branch with no commit yet.
    git(dir.path(), &["checkout", "-q", "--orphan", "empty"]);
    assert_eq!(
        head_of(&config),
        Err(Unknown::Unborn("refs/heads/empty".into()))
    );
    assert_eq!(git(dir.path(), &["rev-parse", "main"]), second);
}

#[test]
fn a_linked_worktree_reads_its_own_head_and_the_shared_refs() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main");
    std::fs::create_dir(&main).unwrap();
    let first = repo(&main);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "two"]);
    let linked = dir.path().join("linked");
    git(
        &main,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "release",
            linked.to_str().unwrap(),
            &first,
        ],
    );
    git(&main, &["pack-refs", "--all"]);
    assert!(linked.join(".git").is_file());
    assert_eq!(head_of(&linked.join("resets.yaml")), Ok(first));
    assert_eq!(
        head_of(&main.join("resets.yaml")),
        Ok(git(&main, &["rev-parse", "HEAD"]))
    );
}

#[test]
fn a_hostile_head_reads_nothing_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let outside = dir.path().join("elsewhere");
    std::fs::write(&outside, "0123456789012345678901234567890123456789\n").unwrap();
    for head in [
        "ref: ../elsewhere\n",
        "ref: refs/../../elsewhere\n",
        "not a ref\n",
    ] {
        std::fs::write(dir.path().join(".git/HEAD"), head).unwrap();
        assert!(
            matches!(
                head_of(&dir.path().join("resets.yaml")),
                Err(Unknown::Malformed { .. })
            ),
            "{head:?}"
        );
    }
}

#[test]
fn a_reftable_repository_is_left_to_git() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("resets.yaml"), "").unwrap();
    let init = Command::new("git")
        .arg("-C")
        .arg(dir.path())
        .args(["init", "-q", "--ref-format=reftable"])
        .status()
        .unwrap();
    if !init.success() {
        eprintln!("git before 2.45 has no reftable: not tested");
        return;
    }
    git(dir.path(), &["add", "resets.yaml"]);
    git(dir.path(), &["commit", "-q", "-m", "one"]);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    assert_eq!(head_of(&dir.path().join("resets.yaml")), Ok(head));
}
