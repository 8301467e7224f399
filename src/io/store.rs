//! Status persistence: the status file, its lock, atomic writes.
//!
//! # Guarantees
//! - A write is atomic: temp file in the same directory, fsync, rename over
//!   the old file, fsync the directory. A crash leaves the old or the new
//!   file, never a torn one.
//! - One writer per status file: `Store::open` takes an exclusive lock on
//!   `<status>.lock` (released by the OS when the process dies, so a SIGKILL
//!   never leaves a stale lock) and records its pid there for the message
//!   the next process prints.
//! - A status file that cannot be read or parsed is an error and is never
//!   replaced: starting from empty would replay every entry.
//! - Status and lock files are created with mode 0600.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::status::{EntryStatus, Status};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "status file {path} is locked by another resetd (pid {holder}); \
         only one `resetd run` may use a status file"
    )]
    Locked { path: PathBuf, holder: String },
    #[error(
        "status file {path} is corrupt: {reason}. It was left untouched; restore it from a \
         backup, or move it away to start afresh (every entry would then be treated as new)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "lock file {path} was deleted or replaced while resetd held it; stopping so that two \
         resetd cannot send the same resets (nothing more was sent)"
    )]
    LockLost { path: PathBuf },
    /// The shared status (`--etcd`) could not be written, or this member may
    /// no longer write it (`etcd::store::Failure`, as text).
    #[error("{0}")]
    Shared(String),
    // The cause is in the message and deliberately not a `source()`: logs
    // print `{e}`, `main` prints the whole chain, and either way it must
    // appear exactly once.
    #[error("{action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
    move |error| StoreError::Io {
        action,
        path: path.to_owned(),
        error,
    }
}

/// The default status path: `resets.yaml` → `resets.status.yaml`, beside it;
/// for a config directory `resets.d/` → `resets.d.status.yaml`, beside it.
pub fn default_status_path(config: &Path) -> PathBuf {
    if let Some(path) = crate::config::listing::dir_status_path(config) {
        return path;
    }
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.with_file_name(format!("{stem}.status.yaml"))
}

/// Read a status file without locking it (for `plan` and `status`), with
/// its journal replayed. A missing file is an empty status.
pub fn read(path: &Path) -> Result<Status> {
    let mut status = read_snapshot(path)?;
    replay(&journal_path(path), &mut status)?;
    Ok(status)
}

/// A status read without the lock, with what its files looked like then.
/// `Store::open_after` takes it instead of reading the status a second time
/// when neither file changed in between, which matters because a status
/// of 10,000 entries takes as long to read as the rest of a run.
#[derive(Debug)]
pub struct Unlocked {
    pub status: Status,
    /// `None` when the files changed while they were being read.
    seen: Option<Fingerprint>,
    replayed: bool,
}

/// Identity, size and modification time of the status file and its
/// journal. A save renames a new file over the status (a new inode) and a
/// record grows the journal, so any write by another resetd shows here.
type Fingerprint = [Option<(u64, u64, u64, std::time::SystemTime)>; 2];

fn fingerprint(path: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt as _;
    [path.to_owned(), journal_path(path)].map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.dev(), m.ino(), m.len(), m.modified().ok()?)))
    })
}

/// Read a status file without locking it and without writing anything,
/// for a caller that may still back out before `Store::open_after`.
pub fn read_unlocked(path: &Path) -> Result<Unlocked> {
    let before = fingerprint(path);
    let mut status = read_snapshot(path)?;
    let replayed = replay(&journal_path(path), &mut status)?;
    let seen = (fingerprint(path) == before).then_some(before);
    Ok(Unlocked {
        status,
        seen,
        replayed,
    })
}

fn read_snapshot(path: &Path) -> Result<Status> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status::default()),
        Err(e) => Err(io("cannot read status file", path)(e)),
    }
}

/// The first line of every status file this version writes: it promises
/// the `END` line, so a file cut short (a bad copy, a full disk) is told
/// from a complete one. Files without it (older versions) carry no promise.
const HEADER: &str =
    "# Written by resetd; do not edit while it runs. The last line marks the end.\n";
const END: &str = "# end of resetd status\n";

/// Parse status text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Status> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let promised = text.starts_with(HEADER) || (!text.is_empty() && HEADER.starts_with(text));
    if promised && !text.trim_end().ends_with(END.trim_end()) {
        return Err(corrupt(
            "it is cut short: its end line is missing (a partial copy or a full disk?)".into(),
        ));
    }
    let (value, _) = crate::yaml::parse(text)
        .map_err(|e| corrupt(format!("line {}: {}", e.pos.line, e.message)))?;
    // The positions are dropped at once and the value read by plain serde:
    // held through the read of a large status they cost megabytes. Only a
    // status that fails is parsed again, to say where.
    let status: Status = serde_json::from_value(value)
        .map_err(|e| corrupt(locate(text).unwrap_or_else(|| e.to_string())))?;
    if status.kind != "SessionResetStatus" || status.api_version != "resetd/v1" {
        let field = if status.api_version == "resetd/v1" {
            "kind"
        } else {
            "apiVersion"
        };
        let pos = crate::yaml::parse(text)
            .map(|(_, loc)| loc.find(&[crate::yaml::Seg::Key(field.into())]))
            .unwrap_or_default();
        return Err(corrupt(format!(
            "line {}, column {}, at {field}: expected apiVersion resetd/v1, kind \
             SessionResetStatus; found {} {}",
            pos.line, pos.column, status.api_version, status.kind
        )));
    }
    Ok(status)
}

/// Why `text`, valid YAML, is not a status: `line L, column C, at path:
/// message`, from the positions the YAML loader keeps.
fn locate(text: &str) -> Option<String> {
    let (value, loc) = crate::yaml::parse(text).ok()?;
    let e = serde_path_to_error::deserialize::<_, Status>(value).err()?;
    let path = yaml_path(e.path());
    let pos = loc.find(&path);
    Some(match crate::config::format_path(&path) {
        at if at.is_empty() => format!("line {}, column {}: {}", pos.line, pos.column, e.inner()),
        at => format!(
            "line {}, column {}, at {at}: {}",
            pos.line,
            pos.column,
            e.inner()
        ),
    })
}

/// A serde path as the YAML loader's, so it resolves to a position.
fn yaml_path(path: &serde_path_to_error::Path) -> Vec<crate::yaml::Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(crate::yaml::Seg::Index(*index)),
            Segment::Map { key } => Some(crate::yaml::Seg::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// The status store: where a pass records what happens. `Store` (a file,
/// its lock and journal) is the real one; `MemStore` is for tests; a
/// second backend plugs in here without touching the pass.
///
/// Reading is the backend's own (`Store::open` reads under the lock); the
/// pass then records each transition, checkpoints at the end, and asks
/// before every request whether it may still send.
///
/// # Guarantees (of every implementation)
/// - After `record(.., durable: true)` returns, that entry's state (and
///   every record before it) survives a crash.
/// - After `save` returns, the store alone is the complete record.
/// - `may_send` is `Err` once this process may no longer act for the
///   status (another holds it): no request may start then.
pub trait StatusStore {
    /// Persist one entry's state. O(size of that entry), whatever the number
    /// of entries: this is what runs between requests.
    fn record(&mut self, status: &Status, id: &str, durable: bool) -> Result<()>;
    /// Checkpoint: write the whole status (and fold the journal into it).
    fn save(&mut self, status: &mut Status) -> Result<()>;
    /// Whether a request may start now.
    fn may_send(&mut self) -> Result<()>;
}

/// Persistence in memory: what tests drive the executor with. Counts what
/// it was asked to do, keeps the last whole status saved.
#[derive(Debug, Default)]
pub struct MemStore {
    pub records: usize,
    pub durable_records: usize,
    pub saves: usize,
    pub saved: Option<Status>,
}

impl StatusStore for MemStore {
    fn record(&mut self, _status: &Status, _id: &str, durable: bool) -> Result<()> {
        self.records += 1;
        self.durable_records += usize::from(durable);
        Ok(())
    }

    fn may_send(&mut self) -> Result<()> {
        Ok(())
    }

    fn save(&mut self, status: &mut Status) -> Result<()> {
        self.saves += 1;
        self.saved = Some(status.clone());
        Ok(())
    }
}

/// The journal grows by one record per request between folds; past this
/// size it is folded early, so a very long run cannot fill the disk with it.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// The status file, held open for writing by this process.
///
/// Between folds, changes go to `<status>.journal`: one line per record,
/// `<checksum> <json>`, each the full state of one entry. Replaying the
/// journal over the status file gives the current status; a record cut short
/// by a crash (the last line) is ignored.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    journal_path: PathBuf,
    journal: File,
    /// Sequence number of the last record written (or folded).
    seq: u64,
    /// Bytes appended since the last fold.
    journal_len: u64,
    /// Reused for each record's text.
    buf: Vec<u8>,
    /// Runs (entry id → `startedAt`) whose hash list is in the journal since
    /// the last fold.
    listed: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
    /// Held for the life of the store: the OS lock is the mutual exclusion.
    lock: File,
    lock_path: PathBuf,
}

impl Store {
    /// Lock the status file and load it (empty if it does not exist yet),
    /// replaying and folding any journal a crash left behind.
    pub fn open(path: &Path) -> Result<(Store, Status)> {
        Self::open_after(path, None)
    }

    /// `open`, reusing `unlocked` (read before the lock was taken) if the
    /// files are still as they were then.
    pub fn open_after(path: &Path, unlocked: Option<Unlocked>) -> Result<(Store, Status)> {
        let lock_path = lock_path(path);
        let lock = take_lock(path, &lock_path)?;
        remove_stale_temp_files(path);
        let journal_path = journal_path(path);
        let (mut status, replayed) = match unlocked {
            Some(u) if u.seen.is_some() && u.seen == Some(fingerprint(path)) => {
                (u.status, u.replayed)
            }
            _ => {
                let mut status = read_snapshot(path)?;
                let replayed = replay(&journal_path, &mut status)?;
                (status, replayed)
            }
        };
        let journal = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&journal_path)
            .map_err(io("cannot open journal", &journal_path))?;
        let mut store = Store {
            lock_path,
            path: path.to_owned(),
            journal_path,
            journal,
            seq: status.journal_seq,
            journal_len: 0,
            buf: Vec::new(),
            listed: std::collections::HashMap::new(),
            lock,
        };
        if replayed {
            // Fold at once: the journal then never holds a torn tail that
            // new records would be appended after.
            store.save(&mut status)?;
        }
        Ok((store, status))
    }
}

impl StatusStore for Store {
    /// No other resetd can have taken the lock because ours was deleted or
    /// replaced under us.
    fn may_send(&mut self) -> Result<()> {
        self.check_lock()
    }

    fn record(&mut self, status: &Status, id: &str, durable: bool) -> Result<()> {
        let Some(entry) = status.resets.get(id) else {
            return Ok(());
        };
        if self.journal_len > MAX_JOURNAL_BYTES {
            let mut status = status.clone();
            return self.save(&mut status);
        }
        self.seq += 1;
        // A run's hash list goes to the journal once, with its first record.
        let list = status
            .run_hashes
            .get(id)
            .filter(|l| self.listed.get(id) != Some(&l.started_at));
        if let Some(l) = list {
            self.listed.insert(id.to_owned(), l.started_at);
        }
        let record = RecordRef {
            seq: self.seq,
            id,
            entry,
            run_hashes: list,
        };
        let json = serde_json::to_string(&record).map_err(|e| StoreError::Io {
            action: "cannot serialize a journal record for",
            path: self.journal_path.clone(),
            error: std::io::Error::other(e),
        })?;
        self.buf.clear();
        self.buf
            .extend_from_slice(checksum(json.as_bytes()).as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(json.as_bytes());
        self.buf.push(b'\n');
        self.journal
            .write_all(&self.buf)
            .map_err(io("cannot write", &self.journal_path))?;
        self.journal_len += self.buf.len() as u64;
        if durable {
            self.journal
                .sync_data()
                .map_err(io("cannot fsync", &self.journal_path))?;
        }
        Ok(())
    }

    fn save(&mut self, status: &mut Status) -> Result<()> {
        status.journal_seq = self.seq;
        write_status(&self.path, status)?;
        // Not synced: were the truncation lost, replay skips records up to
        // `journal_seq`, which the new file already holds.
        self.journal
            .set_len(0)
            .map_err(io("cannot truncate", &self.journal_path))?;
        self.journal_len = 0;
        self.listed.clear();
        Ok(())
    }
}

impl Store {
    /// The lock file at our path is still the one we hold.
    fn check_lock(&self) -> Result<()> {
        if same_file(&self.lock, &self.lock_path) {
            Ok(())
        } else {
            Err(StoreError::LockLost {
                path: self.lock_path.clone(),
            })
        }
    }
}

/// Create or open `<status>.lock` (never through a symlink), lock it, and
/// make sure the file locked is still the one at the path (it may have been
/// deleted or replaced between the open and the lock).
fn take_lock(path: &Path, lock_path: &Path) -> Result<File> {
    for _ in 0..5 {
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(lock_path)
            .map_err(io(
                "cannot open lock file (it must not be a symlink)",
                lock_path,
            ))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    path: path.to_owned(),
                    holder: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder.into()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", lock_path)(e)),
        }
        if !same_file(&lock, lock_path) {
            continue;
        }
        // Best effort: the pid is only for the message of a second process.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        let _ = lock.flush();
        return Ok(lock);
    }
    Err(StoreError::LockLost {
        path: lock_path.to_owned(),
    })
}

/// `file` is the file at `path` (same device and inode, not following links).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Temp files of atomic writes that a kill interrupted. Only called with
/// the lock held, so none of them belongs to a live writer.
fn remove_stale_temp_files(status: &Path) {
    let dir = match status.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut prefix = status.file_name().unwrap_or_default().to_owned();
    prefix.push(".tmp.");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One journal line, as written.
#[derive(serde::Serialize)]
struct RecordRef<'a> {
    seq: u64,
    id: &'a str,
    entry: &'a EntryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_hashes: Option<&'a crate::status::RunHashes>,
}

/// One journal line, as read.
#[derive(serde::Deserialize)]
struct Record {
    seq: u64,
    id: String,
    entry: EntryStatus,
    #[serde(default)]
    run_hashes: Option<crate::status::RunHashes>,
}

/// First 16 hex digits of the sha256 of a record's text: enough to tell a
/// torn or damaged line from a whole one.
fn checksum(bytes: &[u8]) -> String {
    let digest = crate::digest::hex_digest(bytes);
    digest["sha256:".len()..].chars().take(16).collect()
}

/// Apply the journal at `path` (if any) to `status`. True when it held
/// records. A damaged last line is a torn write and is ignored; a damaged
/// line followed by more is corruption.
fn replay(path: &Path, status: &mut Status) -> Result<bool> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("cannot read journal", path)(e)),
    };
    let corrupt = |line: usize, reason: &str| StoreError::Corrupt {
        path: path.to_owned(),
        reason: format!("journal line {line}: {reason}"),
    };
    let mut any = false;
    let mut lines = text.split_inclusive(|b| *b == b'\n').enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let last = lines.peek().is_none();
        let record = line
            .strip_suffix(b"\n")
            .and_then(|l| {
                let (sum, json) = l.split_at(l.iter().position(|b| *b == b' ')?);
                let json = &json[1..];
                (sum == checksum(json).as_bytes()).then_some(json)
            })
            .and_then(|json| serde_json::from_slice::<Record>(json).ok());
        let Some(record) = record else {
            if last {
                break; // torn tail: the write never completed
            }
            return Err(corrupt(n + 1, "damaged record followed by more records"));
        };
        any = true;
        if record.seq > status.journal_seq {
            status.journal_seq = record.seq;
            if let Some(list) = record.run_hashes {
                status.run_hashes.insert(record.id.clone(), list);
            } else if record.entry.run.is_none() {
                status.run_hashes.remove(&record.id);
            }
            status.resets.insert(record.id, record.entry);
        }
    }
    Ok(any)
}

fn lock_path(status: &Path) -> PathBuf {
    sibling(status, ".lock")
}

fn journal_path(status: &Path) -> PathBuf {
    sibling(status, ".journal")
}

fn sibling(status: &Path, suffix: &str) -> PathBuf {
    let mut name = status.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    status.with_file_name(name)
}

/// Write `status` as a complete status file at `path`, atomically (what a
/// fold writes; also `status --etcd --export`).
pub fn write_status(path: &Path, status: &Status) -> Result<()> {
    let value = serde_json::to_value(status).map_err(|e| StoreError::Io {
        action: "cannot serialize status for",
        path: path.to_owned(),
        error: std::io::Error::other(e),
    })?;
    let mut text = String::from(HEADER);
    text.push_str(&crate::yaml::to_yaml(&value));
    text.push_str(END);
    write_atomic(path, text.as_bytes())
}

/// Temp file + fsync + rename + directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("cannot create", &tmp))?;
        file.write_all(bytes).map_err(io("cannot write", &tmp))?;
        file.sync_all().map_err(io("cannot fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("cannot replace", path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot fsync directory", &dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt as _, PermissionsExt as _};

    #[test]
    fn default_path_sits_beside_the_config() {
        assert_eq!(
            default_status_path(Path::new("/etc/resetd/resets.yaml")),
            Path::new("/etc/resetd/resets.status.yaml")
        );
    }

    #[test]
    fn save_then_read_round_trips_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        assert!(status.resets.is_empty());
        status.config_digest = Some("sha256:x".into());
        store.save(&mut status).unwrap();
        assert_eq!(read(&path).unwrap(), status);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn second_open_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (_held, _) = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }));
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
    }

    #[test]
    fn corrupt_status_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        std::fs::write(&path, "resets: [unterminated\n").unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "resets: [unterminated\n"
        );
    }

    #[test]
    fn a_bad_field_is_located_by_line_column_and_path() {
        let path = Path::new("s.status.yaml");
        let head = "apiVersion: resetd/v1\nkind: SessionResetStatus\nresets:\n  r1:\n";
        for (body, expected) in [
            (
                "    phase: Bogus\n",
                "line 5, column 12, at resets.r1.phase: unknown variant `Bogus`",
            ),
            (
                "    phase: Succeeded\n    revision: many\n",
                "line 6, column 15, at resets.r1.revision: invalid type",
            ),
        ] {
            let err = parse(path, &format!("{head}{body}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("s.status.yaml"), "{err}");
        }
        let err = parse(path, "apiVersion: resetd/v1\nkind: Other\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2, column 7, at kind: expected apiVersion"),
            "{err}"
        );
    }

    #[test]
    fn an_os_error_is_printed_once_in_the_whole_chain() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        // A path under a regular file: ENOTDIR, as root too.
        let err = Store::open(&file.join("s.status.yaml")).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(chain.matches("os error 20").count(), 1, "{chain}");
    }

    #[test]
    fn an_unlocked_read_is_reused_only_while_the_files_are_unchanged() {
        use crate::status::Phase;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        status.resets.insert("a".into(), entry(Phase::Succeeded));
        store.save(&mut status).unwrap();
        drop(store);

        // Unchanged: not read again. (Damage that keeps the size and the
        // modification time would be seen by a second read.)
        let unlocked = read_unlocked(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let at = text.find("Succeeded").unwrap() as u64;
        file.write_all_at(b"Bogusssss", at).unwrap();
        file.set_modified(mtime).unwrap();
        let (store, reused) = Store::open_after(&path, Some(unlocked)).unwrap();
        assert_eq!(reused.resets["a"].phase, Phase::Succeeded);
        drop(store);
        std::fs::write(&path, &text).unwrap();

        // Saved by another resetd in between: read again.
        let unlocked = read_unlocked(&path).unwrap();
        let (mut other, mut newer) = Store::open(&path).unwrap();
        newer.resets.insert("a".into(), entry(Phase::Failed));
        other.save(&mut newer).unwrap();
        drop(other);
        let (store, fresh) = Store::open_after(&path, Some(unlocked)).unwrap();
        assert_eq!(fresh.resets["a"].phase, Phase::Failed);
        drop(store);

        // A journal record added in between: read again.
        let unlocked = read_unlocked(&path).unwrap();
        let (mut other, mut newer) = Store::open(&path).unwrap();
        newer.resets.insert("a".into(), entry(Phase::Running));
        other.record(&newer, "a", true).unwrap();
        drop(other); // a crash: the record is only in the journal
        let (_store, fresh) = Store::open_after(&path, Some(unlocked)).unwrap();
        assert_eq!(fresh.resets["a"].phase, Phase::Running);
    }

    fn entry(phase: crate::status::Phase) -> EntryStatus {
        let mut e = EntryStatus::new(0, "sha256:s", 1, chrono::Utc::now());
        e.phase = phase;
        e
    }

    #[test]
    fn records_survive_a_crash_and_are_folded_at_the_next_open() {
        use crate::status::Phase;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        status.resets.insert("a".into(), entry(Phase::Pending));
        store.save(&mut status).unwrap();
        status.resets.insert("a".into(), entry(Phase::Running));
        store.record(&status, "a", true).unwrap();
        drop(store); // a crash: no fold
        assert_eq!(read(&path).unwrap().resets["a"].phase, Phase::Running);
        let (_store, reopened) = Store::open(&path).unwrap();
        assert_eq!(reopened.resets["a"].phase, Phase::Running);
        let journal = std::fs::metadata(journal_path(&path)).unwrap();
        assert_eq!(journal.len(), 0, "folded into the status file at open");
        assert_eq!(
            read_snapshot(&path).unwrap().resets["a"].phase,
            Phase::Running
        );
    }

    #[test]
    fn a_torn_last_record_is_ignored_and_a_damaged_middle_one_is_corruption() {
        use crate::status::Phase;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        status.resets.insert("a".into(), entry(Phase::Running));
        store.record(&status, "a", true).unwrap();
        status.resets.insert("a".into(), entry(Phase::Succeeded));
        store.record(&status, "a", true).unwrap();
        drop(store);
        let whole = std::fs::read(journal_path(&path)).unwrap();
        let first_line = whole.iter().position(|b| *b == b'\n').unwrap() + 1;
        // Cut anywhere inside the second record: the first still applies.
        for cut in first_line..whole.len() {
            std::fs::write(journal_path(&path), &whole[..cut]).unwrap();
            assert_eq!(
                read(&path).unwrap().resets["a"].phase,
                Phase::Running,
                "cut at {cut}"
            );
        }
        let mut damaged = whole.clone();
        damaged[5] ^= 1;
        std::fs::write(journal_path(&path), &damaged).unwrap();
        assert!(matches!(read(&path), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn records_already_folded_are_not_replayed() {
        use crate::status::Phase;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        status.resets.insert("a".into(), entry(Phase::Running));
        store.record(&status, "a", true).unwrap();
        let stale = std::fs::read(journal_path(&path)).unwrap();
        status.resets.insert("a".into(), entry(Phase::Succeeded));
        store.save(&mut status).unwrap();
        drop(store);
        // As if the truncation after the fold never reached the disk.
        std::fs::write(journal_path(&path), stale).unwrap();
        assert_eq!(read(&path).unwrap().resets["a"].phase, Phase::Succeeded);
    }

    #[test]
    fn a_status_file_cut_anywhere_is_corrupt() {
        use crate::status::Phase;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        for id in ["a", "b", "c"] {
            status.resets.insert(id.into(), entry(Phase::Succeeded));
        }
        store.save(&mut status).unwrap();
        let full = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse(&path, &full).unwrap(), status);
        // Every cut but the last newline's loses something.
        for cut in 1..full.len() - 1 {
            assert!(
                matches!(parse(&path, &full[..cut]), Err(StoreError::Corrupt { .. })),
                "cut at {cut} of {} read as a shorter status",
                full.len()
            );
        }
    }

    #[test]
    fn the_lock_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(&path)).unwrap();
        assert!(Store::open(&path).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_deleted_lock_stops_the_holder_before_its_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let (mut store, mut status) = Store::open(&path).unwrap();
        status
            .resets
            .insert("a".into(), entry(crate::status::Phase::Running));
        store.record(&status, "a", true).unwrap();
        std::fs::remove_file(lock_path(&path)).unwrap();
        // Another resetd may now lock a new file at the path...
        let (_other, _) = Store::open(&path).unwrap();
        // ...so the first one must not send again (the executor asks before
        // every request, right before its durable record).
        assert!(matches!(store.may_send(), Err(StoreError::LockLost { .. })));
    }

    #[test]
    fn temp_files_left_by_a_kill_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status.yaml");
        let stale = dir.path().join("s.status.yaml.tmp.4242");
        std::fs::write(&stale, "half").unwrap();
        let other = dir.path().join("other.yaml.tmp.4242");
        std::fs::write(&other, "not ours").unwrap();
        let _store = Store::open(&path).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }
}
