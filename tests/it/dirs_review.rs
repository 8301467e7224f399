//! Review of config directories (SPEC §2b): cases the implementation's own
//! tests do not cover. Real directories, the real binary, real inotify, the
//! fake API over real HTTP; daemon tests run with `--resync 1h`, so only the
//! watcher can pass them.

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::dirs::teams;
use crate::fake_api::FakeApi;
use crate::support::{HEAD, TOKEN, Workspace, resetd, run};

const SEEN: Duration = Duration::from_secs(5);
const H1: &str = "01H7YCG0R9GYY1YCPS2S4QA6WB";
const H2: &str = "01HQ5K3P97DY8EX9Y90YT1K6XA";

fn entry(id: &str, hash: &str) -> String {
    format!("{HEAD}resets:\n  - id: {id}\n    hashes: [{hash}]\n")
}

fn put(ws: &Workspace, rel: &str, text: &str) -> PathBuf {
    let path = ws.config.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn deletes_within(api: &FakeApi, n: usize, within: Duration) -> Vec<Vec<String>> {
    api.wait_until(within, &format!("{n} DELETE(s)"), |r| {
        r.iter().filter(|r| r.method == "DELETE").count() >= n
    });
    api.deletes()
}

/// A team's directory prepared elsewhere and moved in whole (`mv`, a
/// deploy tool's rename) is one `IN_MOVED_TO` of the directory: its files
/// make no event of their own. A directory name with a dot (`team.v2`,
/// `2026.q4`) must count as a change like `teamv2` does.
#[test]
fn a_dotted_directory_moved_into_the_tree_is_seen() {
    moved_in("team.v2");
}

/// The control: the same without a dot in the name passes.
#[test]
fn a_plain_directory_moved_into_the_tree_is_seen() {
    moved_in("teamv2");
}

fn moved_in(name: &str) {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 1, SEEN);

    let staged = ws.dir.path().join("staged");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("b.yaml"), entry("b1", H2)).unwrap();
    std::fs::rename(&staged, ws.config.join(name)).unwrap();
    let deletes = deletes_within(&api, 2, SEEN);
    assert_eq!(deletes[1], [H2]);
    drop(daemon);
}

/// The same, the other way: a team's directory moved out of the tree
/// removes its entries (orphaned), seen by the watcher.
#[test]
fn a_dotted_directory_moved_out_of_the_tree_is_seen() {
    moved_out("team.v2");
}

/// The control: the same without a dot in the name passes.
#[test]
fn a_plain_directory_moved_out_of_the_tree_is_seen() {
    moved_out("teamv2");
}

fn moved_out(name: &str) {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    put(&ws, &format!("{name}/b.yaml"), &entry("b1", H2));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 2, SEEN);

    std::fs::rename(ws.config.join(name), ws.dir.path().join("gone")).unwrap();
    // The reload's log line counts the entries left.
    daemon.wait_for_log("\"entries\":1");
    drop(daemon);
}

/// `--status` inside the config directory (a writable mount holding both):
/// the first run writes the status there, and from then on the status file
/// is listed as a config file and the set is refused. The status file is
/// resetd's own, never config: it must not be listed (or `--status` inside
/// the directory must be refused up front, before anything runs).
#[test]
fn a_status_file_inside_the_config_directory_does_not_break_the_next_run() {
    let ws = teams();
    put(
        &ws,
        "a.yaml",
        &format!("{HEAD}resets:\n  - id: a1\n    hashes: [{H1}]\n    dryRun: true\n"),
    );
    let once = || {
        run(resetd()
            .current_dir(ws.dir.path())
            .args(["run", "--once", "--config", "resets.d"])
            .args(["--status", "resets.d/state.yaml"]))
    };
    let (first, _, err) = once();
    assert_eq!(first, 0, "{err}");
    let (second, _, err) = once();
    assert_eq!(second, 0, "{err}");
}

/// Only `*.yaml` / `*.yml` names are config, and dot names are skipped:
/// a file name that is not UTF-8 is no reason to refuse the set unless it
/// could be a config file (a hidden file, a `.txt` a tool left).
#[test]
fn a_non_utf8_name_that_is_not_a_config_file_does_not_refuse_the_set() {
    use std::os::unix::ffi::OsStrExt as _;
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    for name in [&b".\xff-hidden"[..], &b"notes-\xff.txt"[..]] {
        std::fs::write(ws.config.join(std::ffi::OsStr::from_bytes(name)), "x").unwrap();
    }
    let (code, out, err) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "resets.d"]));
    assert_eq!(code, 0, "{out}{err}");
}

/// A symlink committed into a team's directory may point anywhere: at the
/// token the daemon reads (`--token-file`), a mounted secret. Its content
/// must not reach the log or the `ConfigRejected` notification quoted in a
/// diagnostic (SPEC §1: the token never appears in logs, not even in part).
#[test]
fn a_symlink_to_a_secret_outside_the_tree_does_not_leak_it() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 1, SEEN);

    let secret = ws.dir.path().join("token");
    std::fs::write(&secret, format!("{TOKEN}\n")).unwrap();
    std::os::unix::fs::symlink(&secret, ws.config.join("leak.yaml")).unwrap();
    daemon.wait_for_log("config rejected");
    let logs = daemon.wait_for_log("leak.yaml");
    assert!(!logs.contains(&TOKEN[..8]), "{logs}");
    drop(daemon);
}

/// A file of `groups` whose aliases expand to about 60% of the per-file
/// bound (`MAX_ALIAS_BYTES`): one such file is fine, and the set of two
/// must be refused (one budget for the whole set).
fn alias_heavy(prefix: &str) -> String {
    let hashes: Vec<String> = (0..100u32).map(|i| format!("01HZ{i:022}")).collect();
    let mut text = format!(
        "{HEAD}groups:\n  {prefix}-base:\n    hashes: &a [{}]\n",
        hashes.join(", ")
    );
    let groups: Vec<String> = (0..3800).map(|g| format!("{prefix}-g{g}")).collect();
    for g in &groups {
        text.push_str(&format!("  {g}: {{hashes: *a}}\n"));
    }
    text.push_str(&format!(
        "resets:\n  - id: {prefix}\n    dryRun: true\n    groups: [{}]\n",
        groups.join(", ")
    ));
    text
}

#[test]
fn alias_expansion_is_bounded_across_the_set() {
    let ws = teams();
    put(&ws, "a.yaml", &alias_heavy("a"));
    let validate = |what: &str| run(resetd().current_dir(ws.dir.path()).args(["validate", what]));
    // One file alone is within the bound.
    let (code, out, err) = validate("resets.d/a.yaml");
    assert_eq!(code, 0, "{out}{err}");
    put(&ws, "b.yaml", &alias_heavy("b"));
    let (code, out, err) = validate("resets.d");
    assert_eq!(
        code, 1,
        "two files at 60% of the alias bound each:\n{out}{err}"
    );
    assert!(out.contains("b.yaml"), "{out}");
}

/// A key link into a dot directory (`x.yaml -> .real/x.yaml`, the
/// ConfigMap layout without the `..data` swap), its target edited in place.
#[test]
fn a_link_target_under_a_dot_directory_edited_in_place_is_seen() {
    let ws = teams();
    let target = put(&ws, ".real/h.yaml", &entry("h1", H1));
    std::os::unix::fs::symlink(".real/h.yaml", ws.config.join("h.yaml")).unwrap();
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 1, SEEN);

    std::fs::write(
        &target,
        format!("{HEAD}resets:\n  - id: h1\n    hashes: [{H2}]\n    revision: 1\n"),
    )
    .unwrap();
    let deletes = deletes_within(&api, 2, SEEN);
    assert_eq!(deletes[1], [H2]);
    drop(daemon);
}

/// The root of a mounted volume holds `lost+found` (root's, mode 0700).
/// A subdirectory that cannot be read fails the whole set with an I/O error
/// that names the config directory, not the subdirectory: "cannot read d:
/// Permission denied". Whatever the decision (refuse or skip), the refusal
/// must say which directory, located (SPEC §2: every refusal says why).
#[test]
fn an_unreadable_subdirectory_is_named() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    let lost = ws.config.join("lost+found");
    std::fs::create_dir(&lost).unwrap();
    for (path, mode) in [
        (ws.dir.path(), 0o755),
        (ws.config.as_path(), 0o755),
        (lost.as_path(), 0o700),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(
        ws.config.join("a.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, out, err) = run(crate::support::unprivileged_resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "resets.d"]));
    assert!(
        out.contains("lost+found") || err.contains("lost+found"),
        "exit {code}:\n{out}{err}"
    );
}

/// README: "a duplicate id across two teams' files fails the check,
/// annotated on the file that added it". resetd cannot know which file
/// added it; it annotates the second in byte order only. When `a.yaml`
/// adds an id that `b.yaml` already had, the PR's annotation lands on
/// `b.yaml`, a file the PR did not touch. Both places need an annotation.
#[test]
fn a_duplicate_id_is_annotated_in_both_files() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("same", H1));
    put(&ws, "b.yaml", &entry("same", H2));
    let (code, out, err) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "--format", "github", "resets.d"]));
    assert_eq!(code, 1, "{out}{err}");
    for file in ["resets.d/a.yaml", "resets.d/b.yaml"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("::error file={file},")) && l.contains("same")),
            "no annotation on {file}:\n{out}"
        );
    }
}

/// One ConfigMap per team, each mounted as a subdirectory of the config
/// directory (`resets.d/team-a/` is team A's ConfigMap volume): the kubelet
/// swaps `team-a/..data`, a dot name below the root, which the watcher's
/// filter drops (only a `..data` directly under the root counts).
#[test]
fn a_configmap_data_swap_in_a_subdirectory_is_applied() {
    let ws = teams();
    let mount = ws.config.join("team-a");
    let v1 = mount.join("..v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("a.yaml"), entry("a1", H1)).unwrap();
    std::os::unix::fs::symlink("..v1", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/a.yaml", mount.join("a.yaml")).unwrap();
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 1, SEEN);

    let v2 = mount.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("a.yaml"),
        format!("{HEAD}resets:\n  - id: a1\n    hashes: [{H2}]\n    revision: 1\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    // (Not removing `..v1` as the kubelet does next: since c52ccb2 the
    // removal of the old link target is itself seen, which hides this.)
    let deletes = deletes_within(&api, 2, SEEN);
    assert_eq!(deletes[1], [H2]);
    drop(daemon);
}

/// A syntax error in the shared groups file: the set is refused, located
/// there. Every team's file then also gets "unknown group" errors for
/// groups that exist, only in the file that could not be read: annotations
/// on files the PR did not touch, that send each team looking for a typo
/// they did not make.
#[test]
fn a_broken_groups_file_does_not_blame_the_teams_files() {
    let ws = teams();
    put(
        &ws,
        "groups.yaml",
        &format!("{HEAD}groups:\n  eu:\n    hashes: [{H1}\n"),
    );
    put(
        &ws,
        "team.yaml",
        &format!("{HEAD}resets:\n  - id: t1\n    groups: [eu]\n"),
    );
    let (code, out, err) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "--format", "github", "resets.d"]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("file=resets.d/groups.yaml"), "{out}");
    assert!(!out.contains("file=resets.d/team.yaml"), "{out}");
}

/// After the fix of `--status` inside the directory (run and plan skip it),
/// `validate` of the same directory still refuses it: the files `validate`
/// accepts must be exactly those `run` accepts (SPEC §2).
#[test]
fn validate_and_run_agree_on_a_directory_holding_the_status() {
    let ws = teams();
    put(
        &ws,
        "a.yaml",
        &format!("{HEAD}resets:\n  - id: a1\n    hashes: [{H1}]\n    dryRun: true\n"),
    );
    let (code, _, err) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["run", "--once", "--config", "resets.d"])
        .args(["--status", "resets.d/state.yaml"]));
    assert_eq!(code, 0, "{err}");
    let (validated, out, _) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "resets.d"]));
    let (ran, _, err) = run(resetd()
        .current_dir(ws.dir.path())
        .args(["run", "--once", "--config", "resets.d"])
        .args(["--status", "resets.d/state.yaml"]));
    assert_eq!(
        validated == 0,
        ran == 0,
        "validate exit {validated}, run exit {ran}:\n{out}{err}"
    );
}

/// Removing a team's subdirectory is an ordinary change: it must not put
/// warnings in the daemon's log. Since the tree is watched directory by
/// directory, notify logs `WARN Unable to remove the path from the
/// watches` for each removed directory (its `DELETE` and `DELETE_SELF`).
#[test]
fn removing_a_subdirectory_logs_no_warning() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a1", H1));
    put(&ws, "team/deep/b.yaml", &entry("b1", H2));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    deletes_within(&api, 2, SEEN);

    std::fs::remove_dir_all(ws.config.join("team")).unwrap();
    // The reload after the removal (its events came first).
    let line = daemon.wait_for_log("\"entries\":1");
    let logs = daemon.wait_for_logs("\"level\":\"", 1);
    let warnings: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .collect();
    assert!(warnings.is_empty(), "after {line}:\n{warnings:#?}");
}
