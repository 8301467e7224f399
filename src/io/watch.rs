//! Config file watching: the only notify user. It only signals "maybe
//! changed"; the daemon re-reads the file and compares digests.
//!
//! Directories are watched, not the file: editors save by writing a temp
//! file and renaming it over the original, `git checkout` replaces files, and
//! Kubernetes ConfigMaps swap a `..data` symlink. A watch on the file's inode
//! would miss all of these. When the config path is, or passes through, a
//! symlink (a link into a git checkout, a `current -> release-N` link), the
//! directory of every link on the way and of the final file is watched too:
//! an edit of the target happens in a directory the config's own does not
//! see.
//!
//! Only changes count, so an idle daemon is never woken: inotify also
//! reports opens, reads and closes (resetd's own reloads, the directory fsync
//! after a status write, any other process reading a file there), and those
//! never are. A change is a create, modify, remove or rename (or an event of
//! unknown kind, or an overflow `Rescan`) of a path on the config's
//! [`Chain`], of `..data` beside the config, or of a watched directory
//! itself. Everything else in those directories (the status file and its
//! companions, `notes.txt`) is not interesting. Paths are compared whole,
//! never by file name, so a status file elsewhere that happens to share the
//! config's name hides nothing.
//!
//! After every change the chain is resolved again and the watches re-armed:
//! `ln -sfn release-2 current` moves the config into a directory nobody
//! watched yet. The re-arm happens on the consuming side, in
//! [`ConfigWatch::changed`], because notify cannot add a watch from inside
//! its own event callback.
//!
//! Events are debounced: a change is reported once the watched paths have
//! been quiet for the debounce period, or at the latest after `max_wait` of
//! continuous changes, so a file written continuously still reloads.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Links followed before giving up, as the kernel's `ELOOP` limit.
const MAX_HOPS: usize = 40;

/// How the config path reaches its file. Directories are resolved; the last
/// component of each path is not followed, so each path names one directory
/// entry, spelled the way inotify reports it for a watch on its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The config's own entry: its name in its (resolved) directory.
    pub config: PathBuf,
    /// Every entry whose replacement can change what reading the config
    /// returns: the config's own entry, each link followed (including
    /// directory links on the way), and the final file.
    pub paths: Vec<PathBuf>,
    /// The final file; `None` when resolution gave up (a link loop).
    pub target: Option<PathBuf>,
    /// The directories to watch: the parent of each path.
    pub dirs: BTreeSet<PathBuf>,
}

/// Resolve `config` component by component, following symlinks at most
/// [`MAX_HOPS`] times. Never fails: a missing entry ends the chain (it is
/// watched so its creation is seen), a loop ends it with `target: None`.
pub fn chain(config: &Path) -> Chain {
    let mut walk = Walk::default();
    let mut current = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
    let mut own = None;
    let target = loop {
        let here = match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => walk.resolve(parent).join(name),
            // `/` or a path ending in `..`: there is no entry to follow by
            // name, only a directory to resolve.
            _ => walk.resolve(&current),
        };
        walk.record(&here);
        own.get_or_insert_with(|| here.clone());
        match std::fs::read_link(&here) {
            Ok(to) if walk.hop() => {
                // A relative target is relative to the link's directory;
                // `join` keeps an absolute one as it is.
                current = here
                    .parent()
                    .map_or_else(|| to.clone(), |dir| dir.join(&to));
            }
            Ok(_) => break None,
            Err(_) => break Some(here),
        }
    };
    let dirs = walk
        .paths
        .iter()
        .filter_map(|p| p.parent())
        .map(Path::to_owned)
        .collect();
    Chain {
        config: own.unwrap_or_default(),
        paths: walk.paths,
        target,
        dirs,
    }
}

#[derive(Default)]
struct Walk {
    hops: usize,
    paths: Vec<PathBuf>,
}

enum Step {
    Root,
    Parent,
    Name(OsString),
}

impl Walk {
    fn record(&mut self, path: &Path) {
        if !self.paths.iter().any(|p| p == path) {
            self.paths.push(path.to_owned());
        }
    }

    /// Count one link followed; false once the bound is reached.
    fn hop(&mut self) -> bool {
        self.hops += 1;
        self.hops <= MAX_HOPS
    }

    /// Resolve every component of a directory path, recording the links.
    /// Iterative: a link's target is pushed in front of what is left.
    fn resolve(&mut self, path: &Path) -> PathBuf {
        let mut resolved = PathBuf::from("/");
        let mut pending = Vec::new();
        push_steps(&mut pending, path);
        while let Some(step) = pending.pop() {
            match step {
                Step::Root => resolved = PathBuf::from("/"),
                // `resolved` has no links left in it, so `..` is its parent.
                Step::Parent => {
                    resolved.pop();
                }
                Step::Name(name) => {
                    let here = resolved.join(&name);
                    match std::fs::read_link(&here) {
                        Ok(to) => {
                            self.record(&here);
                            if self.hop() {
                                push_steps(&mut pending, &to);
                            } else {
                                // Looped: stop following, keep it bounded.
                                resolved = here;
                            }
                        }
                        Err(_) => resolved = here,
                    }
                }
            }
        }
        resolved
    }
}

/// Push `path`'s components so that popping yields them in order.
fn push_steps(pending: &mut Vec<Step>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::RootDir => pending.push(Step::Root),
            Component::ParentDir => pending.push(Step::Parent),
            Component::Normal(name) => pending.push(Step::Name(name.to_owned())),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// The paths whose events matter, and resetd's own files, which never do.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    paths: HashSet<PathBuf>,
    /// A config directory, resolved: every change under it counts.
    tree: Option<PathBuf>,
    /// The files a config directory's links lead to (they may lie under a
    /// dot directory, which is otherwise not config).
    targets: HashSet<PathBuf>,
    /// The status file's resolved directory and name.
    own: Option<(PathBuf, OsString)>,
}

impl Interest {
    /// Interest in a config reached through `chain`, with resetd's status
    /// file at `status`.
    pub fn new(chain: &Chain, status: &Path) -> Interest {
        let mut paths: HashSet<PathBuf> = chain.paths.iter().cloned().collect();
        if let Some(dir) = chain.config.parent() {
            // Kubernetes swaps `..data` while the config's own link stays.
            paths.insert(dir.join("..data"));
        }
        // A watched directory moved, deleted or recreated must be re-armed.
        paths.extend(chain.dirs.iter().cloned());
        let own = status.file_name().map(|name| {
            let dir = match status.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            // Spelled like the watched directories, which are resolved.
            let dir = std::fs::canonicalize(dir)
                .or_else(|_| std::path::absolute(dir))
                .unwrap_or_else(|_| dir.to_owned());
            (dir, name.to_owned())
        });
        // A config directory (SPEC §2b): the whole tree is watched.
        let tree = chain.target.clone().filter(|t| t.is_dir());
        Interest {
            paths,
            tree,
            targets: HashSet::new(),
            own,
        }
    }

    /// True for a path under the config directory whose names do not start
    /// with `.` (`.git`, an editor's swap file, a ConfigMap's timestamped
    /// directories are not config), and a ConfigMap's `..data` swap. Any
    /// such name counts, not only `*.yaml`: a directory moved in or out
    /// (`team.v2/`) is one event of its own name, its files make none.
    fn in_tree(&self, path: &Path) -> bool {
        let Some(rel) = self.tree.as_ref().and_then(|t| path.strip_prefix(t).ok()) else {
            return false;
        };
        let names: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
        match names.as_slice() {
            // A ConfigMap's swap, at the root or in a subdirectory mounted
            // from one ConfigMap per team.
            [dirs @ .., b"..data"] => !dirs.iter().any(|n| n.starts_with(b".")),
            names => !names.iter().any(|n| n.starts_with(b".")),
        }
    }

    /// The status file, its `.lock`, `.journal` and `.tmp.*` files.
    fn is_own(&self, path: &Path) -> bool {
        let Some((dir, status)) = &self.own else {
            return false;
        };
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let Some(suffix) = name.as_bytes().strip_prefix(status.as_bytes()) else {
            return false;
        };
        parent == dir
            && (suffix.is_empty()
                || suffix == b".lock"
                || suffix == b".journal"
                || suffix.starts_with(b".tmp."))
    }

    fn concerns(&self, path: &Path) -> bool {
        (self.paths.contains(path) || self.in_tree(path) || self.targets.contains(path))
            && !self.is_own(path)
    }
}

/// Whether `event` may have changed what reading the config returns.
pub fn is_change(event: &notify::Event, interest: &Interest) -> bool {
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        // Opens, reads and closes (even after a write, which a modify event
        // has already announced) change nothing.
        EventKind::Access(_) => false,
        // An event that names no path cannot be ruled out.
        EventKind::Any
        | EventKind::Other
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_) => {
            event.paths.is_empty() || event.paths.iter().any(|p| interest.concerns(p))
        }
    }
}

/// What the notify thread hands the consumer: the paths of a change, or
/// `None` when events may have been lost (overflow, watcher error).
type Touched = Option<Vec<PathBuf>>;

/// A live watch; dropping it stops the events.
pub struct ConfigWatch {
    watcher: notify::RecommendedWatcher,
    config: PathBuf,
    status: PathBuf,
    /// Shared with the notify callback, which filters with it.
    interest: Arc<Mutex<Interest>>,
    /// Directories with a live watch.
    armed: BTreeSet<PathBuf>,
    /// The config directory, if the config is one, and the directories of
    /// its tree with a live watch (`tree_dirs`).
    tree: Option<PathBuf>,
    tree_armed: BTreeSet<PathBuf>,
    /// The link targets the last walk found, for the interest.
    tree_targets: HashSet<PathBuf>,
    changes: mpsc::UnboundedReceiver<Touched>,
    /// Changes seen so far, counted as they happen (not as they are taken
    /// from `changes`): see [`ConfigWatch::events`].
    seen: Arc<AtomicU64>,
}

/// Watch the directories on `config`'s symlink chain; `status` is resetd's
/// status file, whose writes are never a change.
pub fn watch(config: &Path, status: &Path) -> notify::Result<ConfigWatch> {
    let chain = chain(config);
    let interest = Arc::new(Mutex::new(Interest::new(&chain, status)));
    let (tx, changes) = mpsc::unbounded_channel();
    let filter = Arc::clone(&interest);
    let seen = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&seen);
    let handler = move |event: notify::Result<notify::Event>| {
        let touched = match event {
            Ok(e) => {
                let interest = filter.lock().unwrap_or_else(PoisonError::into_inner);
                if !is_change(&e, &interest) {
                    return;
                }
                (!e.need_rescan()).then_some(e.paths)
            }
            // An error may mean lost events: treat it as a change.
            Err(_) => None,
        };
        // Counted before it is queued: whoever reads the count after a
        // change finds it moved.
        count.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(touched);
    };
    let watcher = notify::recommended_watcher(handler)?;
    let mut watch = ConfigWatch {
        watcher,
        config: config.to_owned(),
        status: status.to_owned(),
        interest,
        armed: BTreeSet::new(),
        tree: None,
        tree_armed: BTreeSet::new(),
        tree_targets: HashSet::new(),
        changes,
        seen,
    };
    for dir in &chain.dirs {
        watch.watcher.watch(dir, RecursiveMode::NonRecursive)?;
        watch.armed.insert(dir.clone());
    }
    if let Some(tree) = chain.target.as_ref().filter(|t| t.is_dir()) {
        watch.tree = Some(tree.clone());
        watch.arm_tree();
    }
    Ok(watch)
}

impl ConfigWatch {
    /// A count of the changes seen so far, moving as each happens, even
    /// while nobody waits for them: a read of the config that began at one
    /// count and ends at the same one saw no change under way.
    pub fn events(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.seen)
    }

    /// Wait for the next debounced change. `None` if the watcher died.
    pub async fn changed(&mut self, quiet: Duration, max_wait: Duration) -> Option<Settled> {
        debounce(self, quiet, max_wait, &mut || {}).await
    }

    /// `changed`, calling `calm` each time [`calm_after`] of the quiet
    /// period passes without an event: what the files hold then is what
    /// they hold at the end of the quiet period unless another event comes
    /// (which restarts the period, and `calm` is called again before its
    /// end), so the reloader reads them then, inside the debounce, not
    /// after it.
    pub async fn changed_calling(
        &mut self,
        quiet: Duration,
        max_wait: Duration,
        calm: &mut impl FnMut(),
    ) -> Option<Settled> {
        debounce(self, quiet, max_wait, calm).await
    }

    /// Follow the chain as it is now: watch new directories, drop stale
    /// ones, and re-watch those the change named (a directory replaced by
    /// another of the same name keeps its old inode's watch otherwise).
    fn rearm(&mut self, touched: Option<&[PathBuf]>) {
        let chain = chain(&self.config);
        // Before arming, so events from a new directory are judged by it;
        // the tree's link targets as last walked.
        let mut interest = Interest::new(&chain, &self.status);
        interest.targets.clone_from(&self.tree_targets);
        *self.interest.lock().unwrap_or_else(PoisonError::into_inner) = interest;
        for dir in &chain.dirs {
            let replaced = touched.is_none_or(|paths| paths.contains(dir));
            if self.armed.contains(dir) && !replaced {
                continue;
            }
            if replaced {
                let _ = self.watcher.unwatch(dir);
                self.armed.remove(dir);
            }
            // A directory may be missing mid-swap; its creation in a watched
            // parent re-arms it, and the resync covers the rest.
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.armed.insert(dir.clone());
                }
                Err(e) => tracing::debug!(dir = %dir.display(), "cannot watch: {e}"),
            }
        }
        // The config directory: walked again when it is another one now
        // (a `current -> release-2` swap), when events may have been lost,
        // or when a directory of its tree appeared, went or was swapped
        // (`..data`); a file's event changes no watch.
        let tree = chain.target.clone().filter(|t| t.is_dir());
        // A directory gone needs no walk (an `rm -rf` of N directories
        // must not walk the tree N times): it and what was under it leave
        // the armed set, their watches gone with them.
        if let Some(paths) = touched {
            let gone: Vec<&PathBuf> = paths
                .iter()
                .filter(|p| self.tree_armed.contains(*p) && std::fs::symlink_metadata(p).is_err())
                .collect();
            for gone in gone {
                // Paths order by component: a directory's descendants
                // follow it, together.
                let under: Vec<PathBuf> = self
                    .tree_armed
                    .range(gone.clone()..)
                    .take_while(|d| d.starts_with(gone))
                    .cloned()
                    .collect();
                for d in under {
                    self.tree_armed.remove(&d);
                }
            }
        }
        let walk = tree != self.tree
            || touched.is_none_or(|paths| {
                paths.iter().any(|p| {
                    p.file_name().is_some_and(|n| n == "..data")
                        || (!self.tree_armed.contains(p)
                            && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
                })
            });
        if tree != self.tree {
            for dir in std::mem::take(&mut self.tree_armed) {
                let _ = self.watcher.unwatch(&dir);
            }
            self.tree = tree;
        }
        if walk {
            self.arm_tree();
        }
        let stale: Vec<PathBuf> = self.armed.difference(&chain.dirs).cloned().collect();
        for dir in stale {
            // Fails when the directory is gone, and its watch with it.
            let _ = self.watcher.unwatch(&dir);
            self.armed.remove(&dir);
        }
    }
}

impl ConfigWatch {
    /// Watch each directory of the config directory's tree (`tree_dirs`),
    /// one by one, not recursively: dot directories (`.git`, caches) are not
    /// config and take no watch, symlinked directories are not followed, and
    /// the walk is bounded like the listing's.
    fn arm_tree(&mut self) {
        let Some(root) = self.tree.clone() else {
            return;
        };
        // Walk, then watch what is new, then walk again while that added a
        // watch: a directory created inside a new one after the walk read
        // it but before its watch existed made no event anyone saw.
        let mut rounds = 0;
        let (dirs, targets) = loop {
            let (dirs, targets) = tree_dirs(&root);
            let mut added = false;
            for dir in &dirs {
                if self.tree_armed.contains(dir) {
                    continue;
                }
                match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.tree_armed.insert(dir.clone());
                        added = true;
                    }
                    Err(e) => tracing::debug!(dir = %dir.display(), "cannot watch: {e}"),
                }
            }
            rounds += 1;
            if !added || rounds == MAX_TREE_ROUNDS {
                break (dirs, targets);
            }
        };
        let stale: Vec<PathBuf> = self.tree_armed.difference(&dirs).cloned().collect();
        for dir in stale {
            // A directory that is gone took its watch with it (notify drops
            // it on the kernel's word); removing it again only logs a warning.
            if std::fs::symlink_metadata(&dir).is_ok() {
                let _ = self.watcher.unwatch(&dir);
            }
            self.tree_armed.remove(&dir);
        }
        self.interest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .targets
            .clone_from(&targets);
        self.tree_targets = targets;
    }
}

/// How many times one re-arm walks the tree while new directories keep
/// appearing (each walk is bounded; a tree still growing is caught by the
/// events of the directories already watched).
const MAX_TREE_ROUNDS: usize = 8;

/// The directories of a config directory's tree to watch, and the files its
/// links lead to: every directory the listing descends into, and the
/// directory of each link target inside the tree (a ConfigMap key's
/// `..data/key` resolves into a timestamped dot directory).
fn tree_dirs(root: &Path) -> (BTreeSet<PathBuf>, HashSet<PathBuf>) {
    let mut dirs = BTreeSet::from([root.to_owned()]);
    let mut targets = HashSet::new();
    let mut pending = vec![root.to_owned()];
    let mut seen = 0usize;
    while let Some(dir) = pending.pop() {
        let Ok(items) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in items.map_while(Result::ok) {
            seen += 1;
            if seen > crate::config::listing::MAX_ENTRIES {
                return (dirs, targets);
            }
            let name = item.file_name();
            if name.as_bytes().starts_with(b".") {
                continue;
            }
            let Ok(kind) = item.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.insert(item.path());
                pending.push(item.path());
            } else if kind.is_symlink()
                && let Ok(to) = std::fs::canonicalize(item.path())
                && to.starts_with(root)
                && to.is_file()
            {
                if let Some(parent) = to.parent() {
                    dirs.insert(parent.to_owned());
                }
                targets.insert(to);
            }
        }
    }
    (dirs, targets)
}

/// A stream of undebounced changes.
trait Changes {
    /// The next change; `None` when no more can come.
    async fn next(&mut self) -> Option<()>;
}

impl Changes for ConfigWatch {
    async fn next(&mut self) -> Option<()> {
        let touched = self.changes.recv().await?;
        self.rearm(touched.as_deref());
        Some(())
    }
}

/// The longest a stream of events can delay a reload.
pub fn max_wait(quiet: Duration) -> Duration {
    (quiet * 5).max(Duration::from_secs(1))
}

/// How far into a quiet period `calm` is called: late enough that a burst
/// of writes (an editor's temp file and rename, a checkout) is over, early
/// enough that a read of the files ends before the period does.
pub fn calm_after(quiet: Duration) -> Duration {
    quiet / 4
}

/// Wait for a first change, then until `quiet` passes without one, but no
/// longer than `max_wait` after the first; call `calm` once per event-free
/// stretch of [`calm_after`]`(quiet)` within a quiet period.
async fn debounce(
    changes: &mut impl Changes,
    quiet: Duration,
    max_wait: Duration,
    calm: &mut impl FnMut(),
) -> Option<Settled> {
    changes.next().await?;
    let give_up = Instant::now() + max_wait;
    'period: loop {
        let last = Instant::now();
        let quiet_until = last + quiet;
        let deadline = quiet_until.min(give_up);
        let mut called = false;
        loop {
            let until = match called {
                true => deadline,
                false => (last + calm_after(quiet)).min(deadline),
            };
            match tokio::time::timeout_at(until, changes.next()).await {
                Ok(Some(())) => continue 'period,
                Ok(None) => return Some(Settled::StillChanging),
                Err(_) if until == deadline && deadline == quiet_until => {
                    return Some(Settled::Quiet);
                }
                Err(_) if until == deadline => return Some(Settled::StillChanging),
                Err(_) => {
                    calm();
                    called = true;
                }
            }
        }
    }
}

/// How a debounced change was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// No change event for the whole quiet period: the file has already
    /// stayed as it is for that long.
    Quiet,
    /// Reported at the maximum wait (events kept coming) or as the watcher
    /// ended: the content may still be changing.
    StillChanging,
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
