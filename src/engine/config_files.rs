//! The reloader's view of the config's files, and its cache of them.
//!
//! A config directory of 1,000 files where one changed must cost about one
//! file's read and parse, not 1,000 (SPEC §2b). So each file's content
//! digest is kept by the file's metadata fingerprint, and each file's parse
//! (`config::FilePart`) by its relative path and content digest; a check
//! lists the directory and stats each file, a load re-parses only the files
//! whose content changed, then merges every file again (linear, no I/O).
//! A config that is one file is read exactly as it always was.
//!
//! # Guarantees
//! - A digest is reused only while the file's fingerprint (device, inode,
//!   size, mtime, ctime) is unchanged **and** its ctime was at least
//!   [`RACY`] older than the moment the digest was taken: a write in the
//!   same timestamp tick as the one before it cannot hide (git's "racily
//!   clean" rule). The kernel sets ctime on every write; nobody can set it
//!   back.
//! - The cache holds the files of the current listing only.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::{self, FilePart, Loaded, listing};

/// How much older than the moment of its digest a file's ctime must be
/// for the digest to be reused on an unchanged fingerprint.
pub const RACY: Duration = Duration::from_secs(1);

/// How many times a directory read is tried again when something in it
/// vanished during the read.
const VANISHED_RETRIES: usize = 5;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    fn of(meta: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// True when the file last changed at least [`RACY`] before `then`.
    fn settled_before(&self, then: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let Ok(secs) = u64::try_from(secs) else {
            return false;
        };
        let nanos = u32::try_from(nanos).unwrap_or(0);
        let changed = SystemTime::UNIX_EPOCH
            .checked_add(Duration::new(secs, 0))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))));
        changed
            .and_then(|t| t.checked_add(RACY))
            .is_some_and(|t| t < then)
    }
}

/// A file's digest as last taken.
struct Known {
    fingerprint: Fingerprint,
    digest: String,
    /// The fingerprint can vouch for the digest (see the guarantees).
    trusted: bool,
}

/// The config's files as the reloader last saw them.
pub struct ConfigFiles {
    path: PathBuf,
    /// resetd's own status file, never config even inside the directory.
    status: Option<PathBuf>,
    /// Content digests by path.
    digests: HashMap<PathBuf, Known>,
    /// Parses by relative path (each holds its content digest).
    parts: HashMap<Arc<str>, Arc<FilePart>>,
    /// Files parsed by the last `load`: what it cost.
    pub parsed_last: usize,
}

impl ConfigFiles {
    pub fn new(path: &Path, status: Option<&Path>) -> ConfigFiles {
        ConfigFiles {
            path: path.to_owned(),
            status: status.map(Path::to_owned),
            digests: HashMap::new(),
            parts: HashMap::new(),
            parsed_last: 0,
        }
    }

    /// True while some file's digest was taken too soon after its last
    /// change for its fingerprint to vouch for it: the next check reads
    /// that file again. Once [`RACY`] has passed, a check makes it trusted;
    /// the reloader runs one then, so that a `git pull` of many files does
    /// not leave the next edit to read them all again on its way.
    pub fn untrusted(&self) -> bool {
        self.digests.values().any(|k| !k.trusted)
    }

    /// Forget every digest (not the parses, which are keyed by content):
    /// SIGHUP re-reads everything.
    pub fn forget(&mut self) {
        self.digests.clear();
    }

    /// The digest `load` would give the config now, without parsing: the
    /// file's, or the directory set's (`configDigest`).
    pub fn digest(&mut self) -> std::io::Result<String> {
        self.retried(Self::digest_once)
    }

    /// Read the config: a single file as `config::load` does; a directory's
    /// files from the cache where their content is unchanged.
    pub fn load(&mut self, now: DateTime<Utc>) -> std::io::Result<Loaded> {
        self.retried(|files| files.load_once(now))
    }

    /// `read`, again when something under the directory vanished while it
    /// was walked (a `git checkout`, an `rm -rf team/` under way): a tree
    /// that is changing is not a config that cannot be read, and must not
    /// log an error or count a failed reload. The directory itself gone, or
    /// any other error, is an error at once.
    fn retried<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut tries = 0;
        loop {
            match read(self) {
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && tries < VANISHED_RETRIES
                        && std::fs::metadata(&self.path).is_ok_and(|m| m.is_dir()) =>
                {
                    tries += 1;
                    // Spread the tries over the change under way.
                    std::thread::sleep(
                        Duration::from_millis(20) * u32::try_from(tries).unwrap_or(1),
                    );
                    tracing::debug!(config = %self.path.display(), "the config directory changed while it was read ({e}); reading it again");
                }
                other => return other,
            }
        }
    }

    fn digest_once(&mut self) -> std::io::Result<String> {
        let listing = listing::list_skipping(&self.path, self.status.as_deref())?;
        if listing.dir.is_none() {
            return config::digest_file(&self.path);
        }
        let digests = self.digests_of(&listing)?;
        Ok(listing.digest(digests.iter().map(String::as_str)))
    }

    fn load_once(&mut self, now: DateTime<Utc>) -> std::io::Result<Loaded> {
        let listing = listing::list_skipping(&self.path, self.status.as_deref())?;
        if listing.dir.is_none() {
            self.parsed_last = 1;
            return config::load_listed(&listing, now, true);
        }
        let mut digests = self.digests_of(&listing)?;
        let mut parsed = 0;
        let mut parts = HashMap::with_capacity(listing.files.len());
        let mut set = Vec::with_capacity(listing.files.len());
        let mut budget = config::AliasBudget::default();
        for (file, digest) in listing.files.iter().zip(&mut digests) {
            if budget.spent() {
                continue;
            }
            let rel = file.rel.clone().unwrap_or_else(|| Arc::from(""));
            let part = match self.parts.remove(&rel) {
                Some(part) if part.digest == *digest => part,
                _ => {
                    parsed += 1;
                    let part =
                        config::read_part(&file.path, &file.name, now, true).map_err(|e| {
                            std::io::Error::new(e.kind(), format!("{}: {e}", file.name))
                        })?;
                    Arc::new(part)
                }
            };
            // The set's digest is of what was parsed (a file may have
            // changed since its check: the reloader, which counts the
            // watcher's events across the read, then settles again).
            digest.clone_from(&part.digest);
            if budget.take(&part, &file.name) {
                set.push((file.rel.clone(), Arc::clone(&part)));
            }
            parts.insert(rel, part);
        }
        // Only the files listed now stay cached.
        self.parts = parts;
        self.parsed_last = parsed;
        let refs: Vec<(Option<Arc<str>>, &FilePart)> = set
            .iter()
            .map(|(rel, part)| (rel.clone(), &**part))
            .collect();
        let digest = listing.digest(digests.iter().map(String::as_str));
        Ok(config::assemble_set(
            &listing,
            &refs,
            digest,
            budget.refused,
            true,
        ))
    }

    /// Each listed file's content digest, from the fingerprint where it
    /// can vouch for it.
    fn digests_of(&mut self, listing: &listing::Listing) -> std::io::Result<Vec<String>> {
        let mut out = Vec::with_capacity(listing.files.len());
        let mut known = HashMap::with_capacity(listing.files.len());
        for file in &listing.files {
            let taken = SystemTime::now();
            let meta = std::fs::metadata(&file.path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.name)))?;
            let fingerprint = Fingerprint::of(&meta);
            let digest = match self.digests.remove(&file.path) {
                Some(k) if k.trusted && k.fingerprint == fingerprint => k.digest,
                _ => config::digest_file(&file.path)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.name)))?,
            };
            out.push(digest.clone());
            known.insert(
                file.path.clone(),
                Known {
                    fingerprint,
                    digest,
                    trusted: fingerprint.settled_before(taken),
                },
            );
        }
        self.digests = known;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: resetd/v1\nkind: SessionResets\n";

    fn team(id: &str) -> String {
        format!("{HEAD}resets:\n  - id: {id}\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n")
    }

    #[test]
    fn only_the_changed_file_is_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(
                dir.path().join(format!("t{i}.yaml")),
                team(&format!("e{i}")),
            )
            .unwrap();
        }
        let mut files = ConfigFiles::new(dir.path(), None);
        let first = files.load(Utc::now()).unwrap();
        assert_eq!(files.parsed_last, 5);
        assert_eq!(first.config.unwrap().resets.len(), 5);
        std::fs::write(dir.path().join("t3.yaml"), team("changed")).unwrap();
        let digest = files.digest().unwrap();
        let second = files.load(Utc::now()).unwrap();
        assert_eq!(files.parsed_last, 1);
        assert_eq!(second.digest, digest);
        assert_ne!(second.digest, first.digest);
        let ids: Vec<String> = second
            .config
            .unwrap()
            .resets
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["e0", "e1", "e2", "changed", "e4"]);
        // Nothing changed: nothing parsed.
        files.load(Utc::now()).unwrap();
        assert_eq!(files.parsed_last, 0);
    }

    #[test]
    fn an_unchanged_file_sees_a_changed_group_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let groups = |hash: &str| format!("{HEAD}groups:\n  eu:\n    hashes: [{hash}]\n");
        std::fs::write(
            dir.path().join("a-groups.yaml"),
            groups("01H7YCG0R9GYY1YCPS2S4QA6WB"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b-team.yaml"),
            format!("{HEAD}resets:\n  - id: t\n    groups: [eu]\n"),
        )
        .unwrap();
        let mut files = ConfigFiles::new(dir.path(), None);
        let entry = |loaded: Loaded| loaded.config.unwrap().resets.remove(0);
        let before = entry(files.load(Utc::now()).unwrap());
        std::fs::write(
            dir.path().join("a-groups.yaml"),
            groups("02JVRQ5BF83PTW19G1SRD955J0"),
        )
        .unwrap();
        let after = entry(files.load(Utc::now()).unwrap());
        // Only the group's file was parsed again; the team's entry, whose
        // file is unchanged, is built again from the group's new list.
        assert_eq!(files.parsed_last, 1);
        assert_eq!(after.hashes.to_vec(), ["02JVRQ5BF83PTW19G1SRD955J0"]);
        assert_ne!(after.spec_digest, before.spec_digest);
        // Nothing changed: the same build, shared.
        let again = entry(files.load(Utc::now()).unwrap());
        assert_eq!(again.spec_digest, after.spec_digest);
        assert!(Arc::ptr_eq(&again.hashes.to_arc(), &after.hashes.to_arc()));
    }

    #[test]
    fn a_same_size_rewrite_in_the_same_tick_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, team("aaaa")).unwrap();
        let mut files = ConfigFiles::new(dir.path(), None);
        let before = files.digest().unwrap();
        // Same size, at once: the fingerprint may be equal, the digest is
        // not trusted yet, so it is taken again.
        std::fs::write(&path, team("bbbb")).unwrap();
        assert_ne!(files.digest().unwrap(), before);
    }
}
