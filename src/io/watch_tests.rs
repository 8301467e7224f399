//! Watcher tests: the pure event filter on hand-made events, chain
//! resolution on real symlinks, the debounce on a paused clock, and one
//! real inotify watch following a swapped release link.

use std::os::unix::fs::symlink;

use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, Flag, ModifyKind, RemoveKind, RenameMode,
};
use notify::{Event, EventKind};

use super::*;

impl Changes for mpsc::UnboundedReceiver<()> {
    async fn next(&mut self) -> Option<()> {
        self.recv().await
    }
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn ev(kind: EventKind, paths: &[&str]) -> Event {
    paths
        .iter()
        .fold(Event::new(kind), |e, path| e.add_path(p(path)))
}

const MODIFY: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
const RENAME: EventKind = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
const CREATE: EventKind = EventKind::Create(CreateKind::File);
const REMOVE: EventKind = EventKind::Remove(RemoveKind::File);

/// A plain config in a directory that does not exist on this machine, so
/// the status directory canonicalizes to itself.
fn plain(config: &str) -> Chain {
    let config = p(config);
    Chain {
        paths: vec![config.clone()],
        target: Some(config.clone()),
        dirs: config.parent().map(Path::to_owned).into_iter().collect(),
        config,
    }
}

fn interest() -> Interest {
    Interest::new(
        &plain("/nonexistent/etc/resets.yaml"),
        Path::new("/nonexistent/etc/resets.status.yaml"),
    )
}

#[test]
fn access_events_are_never_changes() {
    let interest = interest();
    for kind in [
        EventKind::Access(AccessKind::Open(AccessMode::Any)),
        EventKind::Access(AccessKind::Read),
        EventKind::Access(AccessKind::Close(AccessMode::Read)),
        EventKind::Access(AccessKind::Close(AccessMode::Write)),
        EventKind::Access(AccessKind::Any),
    ] {
        let e = ev(kind, &["/nonexistent/etc/resets.yaml"]);
        assert!(!is_change(&e, &interest), "{kind:?}");
        // Nor of the directory itself (the fsync after a status write).
        assert!(!is_change(&ev(kind, &["/nonexistent/etc"]), &interest));
    }
}

#[test]
fn writes_renames_creates_and_removes_of_the_config_are_changes() {
    let interest = interest();
    for kind in [
        MODIFY,
        EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        CREATE,
        REMOVE,
        EventKind::Any,
        EventKind::Other,
    ] {
        let e = ev(kind, &["/nonexistent/etc/resets.yaml"]);
        assert!(is_change(&e, &interest), "{kind:?}");
    }
    // An editor's rename-save names the temp file and the config.
    let save = ev(
        RENAME,
        &[
            "/nonexistent/etc/.resets.yaml.swp",
            "/nonexistent/etc/resets.yaml",
        ],
    );
    assert!(is_change(&save, &interest));
}

#[test]
fn a_configmap_data_swap_is_a_change() {
    let interest = interest();
    let swap = ev(
        RENAME,
        &["/nonexistent/etc/..data_tmp", "/nonexistent/etc/..data"],
    );
    assert!(is_change(&swap, &interest));
    let to = ev(
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        &["/nonexistent/etc/..data"],
    );
    assert!(is_change(&to, &interest));
}

#[test]
fn status_lock_journal_and_temp_files_are_not_changes() {
    let interest = interest();
    for name in [
        "resets.status.yaml",
        "resets.status.yaml.lock",
        "resets.status.yaml.journal",
        "resets.status.yaml.tmp.4242",
    ] {
        let path = format!("/nonexistent/etc/{name}");
        for kind in [MODIFY, CREATE, REMOVE, RENAME] {
            assert!(!is_change(&ev(kind, &[&path]), &interest), "{name}");
        }
    }
    let save = ev(
        RENAME,
        &[
            "/nonexistent/etc/resets.status.yaml.tmp.4242",
            "/nonexistent/etc/resets.status.yaml",
        ],
    );
    assert!(!is_change(&save, &interest));
}

#[test]
fn the_status_on_the_chain_is_still_ignored_by_full_path() {
    // Even if the status were (absurdly) the config's own path, resetd's
    // writes to it are its own.
    let interest = Interest::new(
        &plain("/nonexistent/etc/resets.yaml"),
        Path::new("/nonexistent/etc/resets.yaml"),
    );
    assert!(!is_change(
        &ev(MODIFY, &["/nonexistent/etc/resets.yaml"]),
        &interest
    ));
    assert!(is_change(
        &ev(
            RENAME,
            &["/nonexistent/etc/..data_tmp", "/nonexistent/etc/..data"]
        ),
        &interest
    ));
}

#[test]
fn a_status_elsewhere_named_like_the_config_hides_nothing() {
    let interest = Interest::new(
        &plain("/nonexistent/etc/resets.yaml"),
        Path::new("/nonexistent/state/resets.yaml"),
    );
    for kind in [MODIFY, CREATE, RENAME] {
        let e = ev(kind, &["/nonexistent/etc/resets.yaml"]);
        assert!(is_change(&e, &interest), "{kind:?}");
    }
    // And its own files there are not watched anyway.
    let own = ev(MODIFY, &["/nonexistent/state/resets.yaml"]);
    assert!(!is_change(&own, &interest));
}

#[test]
fn a_relative_status_path_is_compared_in_full() {
    let cwd = std::fs::canonicalize(".").unwrap();
    let config = cwd.join("resets.yaml");
    let interest = Interest::new(
        &plain(config.to_str().unwrap()),
        Path::new("resets.status.yaml"),
    );
    let status = cwd.join("resets.status.yaml.tmp.1");
    assert!(interest.is_own(&status));
    assert!(!interest.is_own(&config));
}

#[test]
fn other_files_in_the_directory_are_not_changes() {
    let interest = interest();
    for path in [
        "/nonexistent/etc/notes.txt",
        "/nonexistent/etc/resets.yaml.bak",
        "/nonexistent/etc/.resets.yaml.swp",
        "/nonexistent/other/resets.yaml",
    ] {
        for kind in [MODIFY, CREATE, REMOVE, RENAME] {
            assert!(!is_change(&ev(kind, &[path]), &interest), "{path}");
        }
    }
}

#[test]
fn an_overflow_or_a_pathless_event_is_a_change() {
    let interest = interest();
    let rescan = Event::new(EventKind::Other).set_flag(Flag::Rescan);
    assert!(is_change(&rescan, &interest));
    let rescan_access = Event::new(EventKind::Access(AccessKind::Any)).set_flag(Flag::Rescan);
    assert!(is_change(&rescan_access, &interest));
    assert!(is_change(&Event::new(MODIFY), &interest));
}

#[test]
fn a_link_on_the_chain_and_the_target_are_changes() {
    let chain = Chain {
        config: p("/nonexistent/etc/resets.yaml"),
        paths: vec![
            p("/nonexistent/etc/resets.yaml"),
            p("/nonexistent/app/current"),
            p("/nonexistent/app/release-1/resets.yaml"),
        ],
        target: Some(p("/nonexistent/app/release-1/resets.yaml")),
        dirs: [
            p("/nonexistent/etc"),
            p("/nonexistent/app"),
            p("/nonexistent/app/release-1"),
        ]
        .into(),
    };
    let interest = Interest::new(&chain, Path::new("/nonexistent/etc/resets.status.yaml"));
    let swap = ev(
        RENAME,
        &["/nonexistent/app/current.tmp", "/nonexistent/app/current"],
    );
    assert!(is_change(&swap, &interest));
    let edit = ev(MODIFY, &["/nonexistent/app/release-1/resets.yaml"]);
    assert!(is_change(&edit, &interest));
    let gone = ev(
        EventKind::Remove(RemoveKind::Folder),
        &["/nonexistent/app/release-1"],
    );
    assert!(is_change(&gone, &interest), "a watched directory removed");
    let sibling = ev(MODIFY, &["/nonexistent/app/release-1/notes.txt"]);
    assert!(!is_change(&sibling, &interest));
    let other = ev(CREATE, &["/nonexistent/app/release-2"]);
    assert!(!is_change(&other, &interest));
}

/// A temporary directory, resolved (it may itself sit behind a link).
fn root() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    (tmp, root)
}

fn dirs(paths: &[&Path]) -> BTreeSet<PathBuf> {
    paths.iter().map(|p| p.to_path_buf()).collect()
}

#[test]
fn the_chain_of_a_plain_file_is_the_file() {
    let (_tmp, root) = root();
    let config = root.join("resets.yaml");
    std::fs::write(&config, "").unwrap();
    let chain = chain(&config);
    assert_eq!(chain.config, config);
    assert_eq!(chain.paths, std::slice::from_ref(&config));
    assert_eq!(chain.target, Some(config));
    assert_eq!(chain.dirs, dirs(&[&root]));
}

#[test]
fn a_symlinked_file_adds_the_target_and_its_directory() {
    let (_tmp, root) = root();
    let checkout = root.join("checkout");
    std::fs::create_dir(&checkout).unwrap();
    let target = checkout.join("resets.yaml");
    std::fs::write(&target, "").unwrap();
    let config = root.join("resets.yaml");
    symlink(&target, &config).unwrap();
    let chain = chain(&config);
    assert_eq!(chain.config, config);
    assert_eq!(chain.paths, [config, target.clone()]);
    assert_eq!(chain.target, Some(target));
    assert_eq!(chain.dirs, dirs(&[&root, &checkout]));
}

#[test]
fn a_directory_link_on_the_way_is_on_the_chain() {
    let (_tmp, root) = root();
    let release = root.join("release-1");
    std::fs::create_dir(&release).unwrap();
    std::fs::write(release.join("resets.yaml"), "").unwrap();
    symlink("release-1", root.join("current")).unwrap();
    let chain = chain(&root.join("current/resets.yaml"));
    let file = release.join("resets.yaml");
    assert_eq!(chain.config, file);
    assert_eq!(chain.paths, [root.join("current"), file.clone()]);
    assert_eq!(chain.target, Some(file));
    assert_eq!(chain.dirs, dirs(&[&root, &release]));
}

#[test]
fn a_relative_link_resolves_against_its_own_directory() {
    let (_tmp, root) = root();
    let etc = root.join("etc");
    let conf = root.join("repo/conf");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("resets.yaml"), "").unwrap();
    symlink("../repo/./conf/resets.yaml", etc.join("resets.yaml")).unwrap();
    let chain = chain(&root.join("etc/../etc/resets.yaml"));
    assert_eq!(chain.config, etc.join("resets.yaml"));
    assert_eq!(chain.target, Some(conf.join("resets.yaml")));
    assert_eq!(chain.dirs, dirs(&[&etc, &conf]));
}

#[test]
fn a_configmap_layout_watches_the_data_directory() {
    let (_tmp, root) = root();
    std::fs::create_dir(root.join("..v1")).unwrap();
    std::fs::write(root.join("..v1/resets.yaml"), "").unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/resets.yaml", root.join("resets.yaml")).unwrap();
    let chain = chain(&root.join("resets.yaml"));
    assert_eq!(
        chain.paths,
        [
            root.join("resets.yaml"),
            root.join("..data"),
            root.join("..v1/resets.yaml")
        ]
    );
    assert_eq!(chain.dirs, dirs(&[&root, &root.join("..v1")]));
}

#[test]
fn a_link_loop_ends_the_chain_without_a_target() {
    let (_tmp, root) = root();
    symlink("b", root.join("a")).unwrap();
    symlink("a", root.join("b")).unwrap();
    let chain = chain(&root.join("a"));
    assert_eq!(chain.target, None);
    assert_eq!(chain.paths, [root.join("a"), root.join("b")]);
    assert_eq!(chain.dirs, dirs(&[&root]));
    // A loop in a directory on the way is bounded too.
    let chain = super::chain(&root.join("a/resets.yaml"));
    assert!(chain.paths.contains(&root.join("a")));
    assert!(chain.paths.contains(&root.join("b")));
}

#[test]
fn a_missing_config_is_still_watched_for() {
    let (_tmp, root) = root();
    let chain = chain(&root.join("resets.yaml"));
    assert_eq!(chain.target, Some(root.join("resets.yaml")));
    assert_eq!(chain.dirs, dirs(&[&root]));
}

/// `debounce` with a 200 ms quiet period and a 1 s maximum wait.
async fn debounce_200ms(rx: &mut mpsc::UnboundedReceiver<()>, calm: &mut impl FnMut()) -> Settled {
    debounce(rx, Duration::from_millis(200), Duration::from_secs(1), calm)
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_burst_becomes_one_change_after_the_quiet_period() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for _ in 0..5 {
        tx.send(()).unwrap();
    }
    let start = Instant::now();
    let settled = debounce_200ms(&mut rx, &mut || {}).await;
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(settled, Settled::Quiet);
    assert!(rx.try_recv().is_err(), "the burst was consumed");
}

#[tokio::test(start_paused = true)]
async fn calm_is_called_after_the_last_event_before_the_quiet_period_ends() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tx.send(()).unwrap();
    let start = Instant::now();
    tokio::spawn(async move {
        // A second event after the first calm: the period starts again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut calls = Vec::new();
    let settled = debounce_200ms(&mut rx, &mut || calls.push(start.elapsed())).await;
    assert_eq!(settled, Settled::Quiet);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    // 50 ms after each event (a quarter of the quiet period), once each:
    // the last call follows the last event.
    assert_eq!(
        calls,
        [Duration::from_millis(50), Duration::from_millis(150)]
    );
}

#[tokio::test(start_paused = true)]
async fn continuous_events_still_report_after_max_wait() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // An event every 50 ms, forever: never quiet for 200 ms.
        while tx.send(()).is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let start = Instant::now();
    let settled = debounce_200ms(&mut rx, &mut || {}).await;
    assert_eq!(settled, Settled::StillChanging);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100),
        "{waited:?}"
    );
}

const QUIET: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(10);

async fn next_change(watch: &mut ConfigWatch) {
    tokio::time::timeout(DEADLINE, watch.changed(QUIET, max_wait(QUIET)))
        .await
        .expect("a change within the deadline")
        .expect("the watcher is alive");
}

#[tokio::test]
async fn a_swapped_release_link_is_followed_and_re_armed() {
    let (_tmp, root) = root();
    for release in ["release-1", "release-2"] {
        std::fs::create_dir(root.join(release)).unwrap();
        std::fs::write(root.join(release).join("resets.yaml"), release).unwrap();
    }
    symlink("release-1", root.join("current")).unwrap();
    let mut watch = watch(
        &root.join("current/resets.yaml"),
        &root.join("resets.status.yaml"),
    )
    .unwrap();

    std::fs::write(root.join("release-1/resets.yaml"), "edited").unwrap();
    next_change(&mut watch).await;

    symlink("release-2", root.join("current.tmp")).unwrap();
    std::fs::rename(root.join("current.tmp"), root.join("current")).unwrap();
    next_change(&mut watch).await;
    assert!(watch.armed.contains(&root.join("release-2")));
    assert!(!watch.armed.contains(&root.join("release-1")));

    // Only the re-armed watch can see this.
    std::fs::write(root.join("release-2/resets.yaml"), "edited").unwrap();
    next_change(&mut watch).await;
}

#[tokio::test]
async fn reads_and_status_writes_are_not_changes() {
    let (_tmp, root) = root();
    let config = root.join("resets.yaml");
    std::fs::write(&config, "config").unwrap();
    let status = root.join("resets.status.yaml");
    let mut watch = watch(&config, &status).unwrap();
    for _ in 0..20 {
        std::fs::read_to_string(&config).unwrap();
        std::fs::write(root.join("resets.status.yaml.tmp.1"), "status").unwrap();
        std::fs::rename(root.join("resets.status.yaml.tmp.1"), &status).unwrap();
        std::fs::File::open(&root).unwrap().sync_all().unwrap();
        std::fs::write(root.join("notes.txt"), "notes").unwrap();
    }
    // A negative can only be observed over a window; a watcher that counts
    // any of the above reports within QUIET of the first event.
    let noise = tokio::time::timeout(
        Duration::from_millis(300),
        watch.changed(QUIET, max_wait(QUIET)),
    )
    .await;
    assert!(
        noise.is_err(),
        "reads or resetd's own writes woke the watch"
    );
    std::fs::write(&config, "edited").unwrap();
    next_change(&mut watch).await;
}

#[test]
fn in_a_config_directory_every_name_outside_dot_names_is_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("resets.d");
    std::fs::create_dir(&root).unwrap();
    let interest = Interest::new(&chain(&root), &root.with_extension("d.status.yaml"));
    let r = |rel: &str| root.join(rel).display().to_string();
    for (rel, counts) in [
        ("team-a.yaml", true),
        ("deep/er/team-b.yml", true),
        ("new-subdirectory", true),
        ("..data", true),
        ("notes.txt", true),
        ("team.v2", true),
        (".git/index", false),
        (".git/config.yaml", false),
        ("..2026_12_07/team-a.yaml", false),
        (".team-a.yaml.swp", false),
        ("sub/.hidden/x.yaml", false),
    ] {
        for kind in [MODIFY, CREATE, REMOVE, RENAME] {
            assert_eq!(
                is_change(&ev(kind, &[&r(rel)]), &interest),
                counts,
                "{rel} {kind:?}"
            );
        }
    }
    // The status beside the directory is resetd's own.
    let status = root.with_extension("d.status.yaml").display().to_string();
    assert!(!is_change(&ev(MODIFY, &[&status]), &interest));
    // Outside the tree, nothing counts.
    let beside = root.with_file_name("other.yaml").display().to_string();
    assert!(!is_change(&ev(MODIFY, &[&beside]), &interest));
}

#[test]
fn a_config_directory_watches_its_real_directories_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("resets.d");
    for dir in ["team/sub", ".git/objects/aa", "..2026_12_07", ".cache/x"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("..2026_12_07/k.yaml"), "x").unwrap();
    symlink("..2026_12_07", root.join("..data")).unwrap();
    symlink("..data/k.yaml", root.join("k.yaml")).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    symlink(&outside, root.join("linked")).unwrap();
    let (dirs, targets) = tree_dirs(&root);
    let want: BTreeSet<PathBuf> = [
        root.clone(),
        root.join("team"),
        root.join("team/sub"),
        // A key link's target directory: its in-place edits are seen.
        root.join("..2026_12_07"),
    ]
    .into_iter()
    .collect();
    assert_eq!(dirs, want);
    assert_eq!(targets, HashSet::from([root.join("..2026_12_07/k.yaml")]));
}
