//! Config directories (SPEC §2b): one config of many files, one per team.
//! Real directories, the real binary, the fake API over real HTTP; daemon
//! tests run with `--resync 1h`, so only the watcher can pass them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use resetd::status::Phase;

use crate::daemon::Daemon;
use crate::fake_api::FakeApi;
use crate::support::{HEAD, Workspace, resetd, run};

const WAIT: Duration = Duration::from_secs(20);
const H1: &str = "01H7YCG0R9GYY1YCPS2S4QA6WB";
const H2: &str = "01HQ5K3P97DY8EX9Y90YT1K6XA";
const H3: &str = "02JVRQ5BF83PTW19G1SRD955J0";

/// A workspace whose config is the directory `resets.d`, its status the
/// default `resets.d.status.yaml` beside it.
pub(crate) fn teams() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.d");
    std::fs::create_dir(&config).unwrap();
    let status = dir.path().join("resets.d.status.yaml");
    Workspace {
        dir,
        config,
        status,
    }
}

/// Write `HEAD` + `body` to `rel` under the config directory.
fn put(ws: &Workspace, rel: &str, body: &str) -> PathBuf {
    let path = ws.config.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{HEAD}{body}")).unwrap();
    path
}

/// Replace a file the way editors and git do: a new file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn entry(id: &str, what: &str) -> String {
    format!("resets:\n  - id: {id}\n    {what}\n")
}

fn validate(ws: &Workspace, format: &str) -> (i32, String, String) {
    run(resetd()
        .current_dir(ws.dir.path())
        .args(["validate", "--format", format, "resets.d"]))
}

fn shared_groups(ws: &Workspace) {
    put(
        ws,
        "groups.yaml",
        &format!("groups:\n  eu:\n    hashes: [{H1}, {H2}]\n  us:\n    hashes: [{H3}]\n"),
    );
}

#[test]
fn a_group_of_one_file_is_used_by_another_and_each_entry_records_its_file() {
    let ws = teams();
    shared_groups(&ws);
    put(&ws, "team-a.yaml", &entry("a-eu", "groups: [eu]"));
    put(&ws, "nested/team-b.yml", &entry("b-us", "groups: [us]"));
    let (code, out, err) = validate(&ws, "human");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 file(s) checked: 0 error(s)"), "{out}");

    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(api.deletes().len(), 2);
    // The default status sits beside the directory, never in it.
    assert!(ws.status.exists(), "no {}", ws.status.display());
    let st = ws.status();
    assert_eq!(st.resets["a-eu"].source.as_deref(), Some("team-a.yaml"));
    assert_eq!(
        st.resets["b-us"].source.as_deref(),
        Some("nested/team-b.yml")
    );
    assert_eq!(
        st.resets["b-us"].history[0].source.as_deref(),
        Some("nested/team-b.yml")
    );
    assert_eq!(st.resets["a-eu"].phase, Phase::Succeeded);
}

#[test]
fn a_duplicate_id_across_files_names_both_places_in_every_format() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("same", &format!("hashes: [{H1}]")));
    put(
        &ws,
        "b.yaml",
        &format!("# b\n{}", entry("same", &format!("hashes: [{H2}]"))),
    );
    let (code, out, _) = validate(&ws, "human");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("duplicate id `same` (first used in resets.d/a.yaml, line 5)"),
        "{out}"
    );
    assert!(
        out.contains("--> resets.d/b.yaml:6:9 at resets[0].id"),
        "{out}"
    );
    // Both places carry an error: a pull request may have changed either.
    assert!(
        out.contains("duplicate id `same` (also in resets.d/b.yaml, line 6)"),
        "{out}"
    );
    assert!(
        out.contains("--> resets.d/a.yaml:5:9 at resets[0].id"),
        "{out}"
    );
    let (_, json, _) = validate(&ws, "json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let places: Vec<(&str, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        places,
        [("resets.d/a.yaml", 5), ("resets.d/b.yaml", 6)],
        "{json}"
    );
    let (_, github, _) = validate(&ws, "github");
    assert!(
        github.contains("::error file=resets.d/b.yaml,line=6,col=9::"),
        "{github}"
    );
    assert!(
        github.contains("::error file=resets.d/a.yaml,line=5,col=9::"),
        "{github}"
    );
}

#[test]
fn group_and_receiver_names_share_one_namespace_and_settings_appear_once() {
    let ws = teams();
    put(
        &ws,
        "a.yaml",
        &format!(
            "settings:\n  batchSize: 10\ngroups:\n  eu:\n    hashes: [{H1}]\nnotifications:\n  - name: ops\n    type: webhook\n    urlFrom: {{ env: A_URL }}\n"
        ),
    );
    put(
        &ws,
        "b.yaml",
        &format!(
            "settings:\n  dryRun: true\ngroups:\n  eu:\n    hashes: [{H2}]\nnotifications:\n  - name: ops\n    type: slack\n    urlFrom: {{ env: B_URL }}\nresets:\n  - id: x\n    groups: [eu]\n"
        ),
    );
    let (code, out, _) = validate(&ws, "human");
    assert_eq!(code, 1, "{out}");
    for expected in [
        "`settings` may appear in one file of a config directory only (first in resets.d/a.yaml, line 4)",
        "--> resets.d/b.yaml:4:1 at settings",
        "duplicate group `eu` (first defined in resets.d/a.yaml, line 7)",
        "duplicate receiver name `ops` (first used in resets.d/a.yaml, line 10)",
        // And at the first places, naming the second.
        "duplicate group `eu` (also in resets.d/b.yaml, line 7)",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    assert!(out.contains("6 error(s)"), "{out}");
}

#[test]
fn a_bad_file_rejects_the_whole_set_and_nothing_runs() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("good", &format!("hashes: [{H1}]")));
    put(&ws, "b.yaml", "resets:\n  - id: bad\n    hashez: []\n");
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("b.yaml"), "{err}");
    assert!(api.requests().is_empty());
}

#[test]
fn dot_names_are_skipped_file_links_followed_and_directory_links_not() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a", &format!("hashes: [{H1}]")));
    // Never read: not YAML at all.
    for hidden in [".git/config.yaml", "..data/x.yaml", ".hidden.yaml"] {
        let path = ws.config.join(hidden);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{{{ not yaml").unwrap();
    }
    std::fs::write(ws.config.join("notes.txt"), "{{{ not yaml").unwrap();
    // A symlinked directory holding a broken file is not descended into.
    let elsewhere = ws.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("bad.yaml"), "{{{ not yaml").unwrap();
    std::os::unix::fs::symlink(&elsewhere, ws.config.join("linked")).unwrap();
    // A link to a file inside the directory is followed, as ConfigMap keys
    // are (even into a dot directory, which is not read on its own).
    put(
        &ws,
        ".store/b.yaml",
        &entry("b", &format!("hashes: [{H2}]")),
    );
    std::os::unix::fs::symlink(".store/b.yaml", ws.config.join("b.yaml")).unwrap();
    let (code, out, err) = validate(&ws, "human");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 file(s) checked: 0 error(s), 1 warning(s)"),
        "{out}"
    );
    assert!(out.contains("a symlinked directory: not read"), "{out}");
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    let st = ws.status();
    assert_eq!(st.resets.keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn an_empty_directory_is_an_error_not_every_entry_removed() {
    let ws = teams();
    std::fs::write(ws.config.join("README.md"), "no config here").unwrap();
    let (code, out, _) = validate(&ws, "json");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no config file"), "{out}");
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!ws.status.exists());
}

#[test]
fn more_than_a_thousand_files_are_refused_at_the_first_past_the_bound() {
    let ws = teams();
    for i in 0..1001 {
        put(
            &ws,
            &format!("t{i:04}.yaml"),
            &entry(&format!("e{i}"), &format!("hashes: [{H1}]")),
        );
    }
    let (code, out, _) = validate(&ws, "human");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1001 config files in the directory"), "{out}");
    assert!(out.contains("--> resets.d/t1000.yaml:1:1"), "{out}");
    // At the bound itself, the set is read.
    std::fs::remove_file(ws.config.join("t1000.yaml")).unwrap();
    let (code, out, _) = validate(&ws, "human");
    assert!(out.contains("1000 file(s) checked"), "{out}");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn files_past_256_mib_in_all_are_refused_unread() {
    let ws = teams();
    // Sparse: the bound is on what the files hold, not on the disk used.
    for name in ["a.yaml", "b.yaml"] {
        let f = std::fs::File::create(ws.config.join(name)).unwrap();
        f.set_len(130 * 1024 * 1024).unwrap();
    }
    let started = Instant::now();
    let (code, out, _) = validate(&ws, "human");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pass 256 MiB in all"), "{out}");
    assert!(out.contains("--> resets.d/b.yaml:1:1"), "{out}");
    // Refused unread: reading 260 MiB of zeros would take a while.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_entry_moved_to_another_file_runs_nothing_and_the_digest_covers_names() {
    let ws = teams();
    let a = put(&ws, "a.yaml", &entry("moving", &format!("hashes: [{H1}]")));
    put(&ws, "b.yaml", &entry("staying", &format!("hashes: [{H2}]")));
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(api.deletes().len(), 2);
    let digest = ws.status().config_digest;

    std::fs::remove_file(&a).unwrap();
    put(
        &ws,
        "b.yaml",
        &format!(
            "{}  - id: moving\n    hashes: [{H1}]\n",
            entry("staying", &format!("hashes: [{H2}]"))
        ),
    );
    let (code, _, err) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(api.deletes().len(), 2, "moving an entry sent something");
    let st = ws.status();
    assert_eq!(st.resets["moving"].source.as_deref(), Some("b.yaml"));
    assert_eq!(st.resets["moving"].phase, Phase::Succeeded);
    assert!(!st.resets["moving"].orphaned);

    // A rename alone changes the set's digest.
    let before = st.config_digest;
    assert_ne!(before, digest);
    std::fs::rename(ws.config.join("b.yaml"), ws.config.join("c.yaml")).unwrap();
    ws.run_once(&api.base(), &[]);
    assert_ne!(ws.status().config_digest, before);
    assert_eq!(api.deletes().len(), 2);
}

#[test]
fn plan_shows_each_entry_file_and_the_markdown_plan_groups_by_file() {
    let ws = teams();
    shared_groups(&ws);
    put(&ws, "team-b.yaml", &entry("b1", "groups: [us]"));
    put(
        &ws,
        "team-a.yaml",
        &format!(
            "{}  - id: a2\n    groups: [eu]\n",
            entry("a1", "groups: [eu]")
        ),
    );
    let plan = |format: &str| {
        let (code, out, err) = run(resetd()
            .current_dir(ws.dir.path())
            .args(["plan", "--config", "resets.d", "--format", format]));
        assert_eq!(code, 0, "{err}");
        out
    };
    let human = plan("human");
    assert!(human.contains("a1  (team-a.yaml) "), "{human}");
    assert!(human.contains("b1  (team-b.yaml) "), "{human}");
    let json: serde_json::Value = serde_json::from_str(&plan("json")).unwrap();
    let sources: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["team-a.yaml", "team-a.yaml", "team-b.yaml"]);
    let md = plan("markdown");
    let a = md.find("#### `team-a.yaml`").expect(&md);
    let b = md.find("#### `team-b.yaml`").expect(&md);
    let (a1, a2, b1) = (
        md.find("| `a1` |").unwrap(),
        md.find("| `a2` |").unwrap(),
        md.find("| `b1` |").unwrap(),
    );
    assert!(a < a1 && a1 < a2 && a2 < b && b < b1, "{md}");
    assert_eq!(md.matches("| entry | action |").count(), 2, "{md}");
}

#[test]
fn a_directory_symlinked_as_the_config_gets_its_status_beside_the_link() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a", &format!("hashes: [{H1}]")));
    let link = ws.dir.path().join("current");
    std::os::unix::fs::symlink(&ws.config, &link).unwrap();
    let (code, _, err) = run(resetd().current_dir(ws.dir.path()).args([
        "run",
        "--once",
        "--dry-run",
        "--config",
        "current/",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(ws.dir.path().join("current.status.yaml").exists(), "{err}");
}

// --- the daemon -----------------------------------------------------------

/// Wait until the fake API has seen `n` DELETEs.
fn wait_deletes(api: &FakeApi, n: usize) -> Vec<Vec<String>> {
    api.wait_until(WAIT, &format!("{n} DELETE(s)"), |r| {
        r.iter().filter(|r| r.method == "DELETE").count() >= n
    });
    api.deletes()
}

#[test]
fn the_daemon_sees_files_added_and_removed_anywhere_in_the_tree() {
    let ws = teams();
    shared_groups(&ws);
    put(&ws, "team-a.yaml", &entry("a1", "groups: [eu]"));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 1);

    // A new file in a new subdirectory, using a group of another file.
    let added = Instant::now();
    put(&ws, "sub/dir/team-b.yaml", &entry("b1", "groups: [us]"));
    let deletes = wait_deletes(&api, 2);
    assert_eq!(deletes[1], [H3]);
    assert!(
        added.elapsed() < Duration::from_secs(1),
        "{:?}",
        added.elapsed()
    );

    // A file removed: its entry is orphaned, nothing sent.
    std::fs::remove_file(ws.config.join("sub/dir/team-b.yaml")).unwrap();
    wait_status(&ws, "b1 orphaned", |st| st.resets["b1"].orphaned);
    assert_eq!(api.deletes().len(), 2);
    drop(daemon);
}

#[test]
fn files_read_just_after_they_were_written_are_checked_again_once_a_second_later() {
    use crate::daemon::config_reads;
    use resetd::config_files::RACY;
    let ws = teams();
    let a = put(&ws, "team-a.yaml", &entry("a1", &format!("hashes: [{H1}]")));
    // A tree older than a second: its digests are trusted when first taken.
    std::thread::sleep(RACY + Duration::from_millis(100));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 1);
    assert_eq!(config_reads(&daemon), 0.0);
    // An edit, read at once: the file's digest cannot be trusted yet...
    let text = std::fs::read_to_string(&a).unwrap();
    replace(&a, &format!("{text}  - id: a2\n    hashes: [{H2}]\n"));
    wait_deletes(&api, 2);
    let read = config_reads(&daemon);
    // ...so it is checked once more a second later, off the next edit's
    // path (which would otherwise read the file again)...
    let deadline = Instant::now() + WAIT;
    while config_reads(&daemon) <= read {
        assert!(Instant::now() < deadline, "no second look at the file");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...and once only, with nothing changed: across three such periods.
    let looked = config_reads(&daemon);
    assert_eq!(looked, read + 1.0);
    let end = Instant::now() + RACY * 3;
    while Instant::now() < end {
        assert_eq!(
            config_reads(&daemon),
            looked,
            "the files were checked again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_change_made_while_the_config_is_read_after_its_quiet_period_is_not_applied_in_part() {
    use crate::daemon::config_reads;
    use std::io::Write as _;
    // Files read after `a.yaml`, slow to parse (in a debug build, a second
    // or more): entries not due, `round` in every hash, so that rewriting
    // them with another round makes the read parse them all.
    let big = |round: u32| {
        let mut text = String::from("resets:\n");
        for e in 0..3_000 {
            text.push_str(&format!(
                "  - id: big-{round}-{e}\n    trigger: {{ cron: \"0 3 1 1 *\" }}\n    hashes:\n"
            ));
            for h in 0..20 {
                text.push_str(&format!("      - R{round}E{e}H{h}\n"));
            }
        }
        text
    };
    let ws = teams();
    let a = put(&ws, "a.yaml", &entry("first", &format!("hashes: [{H1}]")));
    for f in 0..3 {
        put(&ws, &format!("z{f}.yaml"), &big(f));
    }
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 1);
    // An edit: the big files rewritten, so that reading the set takes long
    // (a debug build parses them for seconds), and half of a new entry
    // (itself a valid config) in `a.yaml`, first in byte order. All within
    // a few milliseconds: one calm, one read.
    let rewritten: Vec<String> = (0..3).map(|f| format!("{HEAD}{}", big(f + 10))).collect();
    let before = config_reads(&daemon);
    for (f, text) in rewritten.iter().enumerate() {
        replace(&ws.config.join(format!("z{f}.yaml")), text);
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
    write!(file, "  - id: two\n    hashes:\n      - HALF1\n").unwrap();
    file.flush().unwrap();
    let deadline = Instant::now() + WAIT;
    while config_reads(&daemon) <= before {
        assert!(Instant::now() < deadline, "no read");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The rest of the entry, past the end of the quiet period (50 ms), once
    // that read has taken `a.yaml` and while it still parses the big files.
    std::thread::sleep(Duration::from_millis(800));
    writeln!(file, "      - HALF2").unwrap();
    drop(file);
    let deletes = wait_deletes(&api, 2);
    assert_eq!(deletes[1], ["HALF1", "HALF2"], "the finished edit only");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.deletes().len(), 2, "{:?}", api.deletes());
}

/// Poll the status file until `done`, with a deadline.
fn wait_status(ws: &Workspace, what: &str, done: impl Fn(&resetd::status::Status) -> bool) {
    let end = Instant::now() + WAIT;
    loop {
        if resetd::store::read(&ws.status).is_ok_and(|st| done(&st)) {
            return;
        }
        assert!(Instant::now() < end, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_file_is_rejected_naming_it_and_the_last_good_set_keeps_running() {
    let ws = teams();
    shared_groups(&ws);
    let a = put(&ws, "team-a.yaml", &entry("a1", "groups: [eu]"));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 1);

    // Team B breaks its file: the whole set is refused, file named.
    let b = put(&ws, "team-b.yaml", &entry("b1", "groups: [nowhere]"));
    let line = daemon.wait_for_log("config rejected");
    assert!(line.contains("error"), "{line}");
    let diag = daemon.wait_for_log("unknown group `nowhere`");
    assert!(diag.contains("team-b.yaml"), "{diag}");
    // Team A's edit of its own file is still refused with the set...
    replace(
        &a,
        &format!("{HEAD}{}", entry("a1", "groups: [eu]\n    revision: 1")),
    );
    daemon.wait_for_logs("config rejected", 2);
    assert_eq!(api.deletes().len(), 1);
    // ...until B is fixed: then the set, A's edit included, applies.
    replace(&b, &format!("{HEAD}{}", entry("b1", "groups: [us]")));
    let deletes = wait_deletes(&api, 3);
    let mut sent: Vec<&str> = deletes[1..].iter().flatten().map(String::as_str).collect();
    sent.sort_unstable();
    assert_eq!(sent, [H1, H2, H3]);
}

#[test]
fn a_configmap_data_swap_of_a_mounted_directory_is_applied() {
    let ws = teams();
    let dir = &ws.config;
    // The kubelet's layout: key links -> ..data/<key>, ..data -> ..v1.
    let v1 = dir.join("..v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(
        v1.join("groups.yaml"),
        format!("{HEAD}groups:\n  eu:\n    hashes: [{H1}]\n"),
    )
    .unwrap();
    std::fs::write(
        v1.join("team.yaml"),
        format!("{HEAD}{}", entry("t1", "groups: [eu]")),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    for key in ["groups.yaml", "team.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).unwrap();
    }
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 1);

    let v2 = dir.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("groups.yaml"),
        format!("{HEAD}groups:\n  eu:\n    hashes: [{H2}]\n"),
    )
    .unwrap();
    std::fs::write(
        v2.join("team.yaml"),
        format!("{HEAD}{}", entry("t1", "groups: [eu]\n    revision: 1")),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    let deletes = wait_deletes(&api, 2);
    assert_eq!(deletes[1], [H2]);
    drop(daemon);
}

#[test]
fn a_move_between_files_in_the_daemon_sends_nothing() {
    let ws = teams();
    let a = put(&ws, "a.yaml", &entry("mover", &format!("hashes: [{H1}]")));
    put(&ws, "b.yaml", &entry("stay", &format!("hashes: [{H2}]")));
    let api = FakeApi::start();
    let daemon = Daemon::start(&ws, &api, &[]);
    wait_deletes(&api, 2);
    // One commit: the entry leaves a.yaml and lands in b.yaml.
    std::fs::remove_file(&a).unwrap();
    replace(
        &ws.config.join("b.yaml"),
        &format!(
            "{HEAD}{}  - id: mover\n    hashes: [{H1}]\n",
            entry("stay", &format!("hashes: [{H2}]"))
        ),
    );
    wait_status(&ws, "the move recorded", |st| {
        st.resets["mover"].source.as_deref() == Some("b.yaml") && !st.resets["mover"].orphaned
    });
    assert_eq!(api.deletes().len(), 2);
    drop(daemon);
}

#[test]
fn the_bundled_teams_directory_is_one_valid_config_whose_files_point_at_the_schema() {
    let dir = crate::support::repo_root().join("examples/teams");
    let mut files = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let schema = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
            .unwrap_or_else(|| panic!("{} lacks the $schema comment", path.display()));
        assert!(dir.join(schema).is_file(), "{}: {schema}", path.display());
        files += 1;
    }
    assert!(files >= 3);
    let (code, out, err) = run(resetd().arg("validate").arg(&dir));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "{files} file(s) checked: 0 error(s), 0 warning(s)"
        )),
        "{out}"
    );
}

#[test]
fn a_file_name_with_control_characters_is_shown_escaped_in_plans() {
    let ws = teams();
    put(
        &ws,
        "evil\u{1b}]0;owned\u{7}\n.yaml",
        &entry("e", &format!("hashes: [{H1}]")),
    );
    for format in ["human", "markdown"] {
        let (code, out, err) = run(resetd()
            .current_dir(ws.dir.path())
            .args(["plan", "--config", "resets.d", "--format", format]));
        assert_eq!(code, 0, "{err}");
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
        assert!(
            out.contains("evil\\u{1b}]0;owned\\u{7}\\u{a}.yaml"),
            "{out}"
        );
    }
}

#[test]
fn a_rejected_set_is_notified_naming_the_file_that_broke_it() {
    use crate::notifications::Receivers;
    let receivers = Receivers::start();
    let ws = teams();
    // The receivers are declared in a file of their own.
    let section = receivers.section(&ws);
    // With the settings: receivers are declared in that file only.
    std::fs::write(
        ws.config.join("notify.yaml"),
        format!("{HEAD}settings: {{}}\n{section}"),
    )
    .unwrap();
    put(&ws, "team-a.yaml", &entry("a1", &format!("hashes: [{H1}]")));
    let api = FakeApi::start();
    let mut cmd = ws.daemon_command(&api.base());
    receivers.env(&mut cmd);
    let daemon = Daemon::spawn(cmd);
    wait_deletes(&api, 1);

    put(&ws, "team-b.yaml", &entry("b1", "groups: [nowhere]"));
    let rejected = crate::notifications::config_rejected(&receivers.hook);
    let message = rejected["message"].as_str().unwrap();
    assert!(
        message.contains("first: ") && message.contains("resets.d/team-b.yaml line 6"),
        "{message}"
    );
    assert!(message.contains("unknown group `nowhere`"), "{message}");
    assert_eq!(api.deletes().len(), 1);
    drop(daemon);
}

#[test]
fn an_unreadable_subdirectory_is_an_io_error_that_names_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = teams();
    put(&ws, "a.yaml", &entry("a", &format!("hashes: [{H1}]")));
    let locked = ws.config.join("locked");
    std::fs::create_dir(&locked).unwrap();
    for (path, mode) in [
        (ws.dir.path(), 0o755),
        (&ws.config, 0o755),
        (&locked, 0o000),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (code, _, err) = run(crate::support::unprivileged_resetd()
        .arg("validate")
        .arg(&ws.config));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("resets.d/locked"), "{err}");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn no_receiver_of_any_file_may_be_given_the_api_token() {
    let ws = teams();
    put(&ws, "a.yaml", &entry("a", &format!("hashes: [{H1}]")));
    // A team's file may declare receivers; never one fed the API token.
    let receiver = |source: &str| {
        format!(
            "notifications:\n  - name: team-b\n    type: github\n    repository: acme/x\n    tokenFrom: {source}\n"
        )
    };
    put(&ws, "b.yaml", &receiver("{ env: IPROYAL_API_TOKEN }"));
    let (code, out, _) = validate(&ws, "github");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("::error file=resets.d/b.yaml,line=8,col=16::notifications[0].tokenFrom: `tokenFrom` names the IPRoyal API token"),
        "{out}"
    );
    // The token file is known to `run` only: it refuses the config there.
    let token = ws.dir.path().join("token");
    std::fs::write(&token, "tok-0123456789\n").unwrap();
    put(
        &ws,
        "b.yaml",
        &receiver(&format!("{{ file: {} }}", token.display())),
    );
    let (code, out, _) = validate(&ws, "human");
    assert_eq!(code, 0, "{out}");
    let api = FakeApi::start();
    let (code, _, err) = ws.run_once(&api.base(), &["--token-file", &token.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("names the API token file"), "{err}");
    assert!(api.requests().is_empty());
}
