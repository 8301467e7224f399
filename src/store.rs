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

use crate::status::Status;

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
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The default status path: `resets.yaml` → `resets.status.yaml`, beside it.
pub fn default_status_path(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.with_file_name(format!("{stem}.status.yaml"))
}

/// Read a status file without locking it (for `plan` and `status`). A missing
/// file is an empty status.
pub fn read(path: &Path) -> Result<Status> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status::default()),
        Err(e) => Err(io("cannot read status file", path)(e)),
    }
}

/// Parse status text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<Status> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let (value, _) = crate::yaml::parse(text)
        .map_err(|e| corrupt(format!("line {}: {}", e.pos.line, e.message)))?;
    let status: Status = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if status.kind != "SessionResetStatus" || status.api_version != "resetd/v1" {
        return Err(corrupt(format!(
            "expected apiVersion resetd/v1, kind SessionResetStatus; found {} {}",
            status.api_version, status.kind
        )));
    }
    Ok(status)
}

/// The status file, held open for writing by this process.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// Held for the life of the store: the OS lock is the mutual exclusion.
    _lock: File,
}

impl Store {
    /// Lock the status file and load it (empty if it does not exist yet).
    pub fn open(path: &Path) -> Result<(Store, Status)> {
        let lock_path = lock_path(path);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io("cannot open lock file", &lock_path))?;
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
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", &lock_path)(e)),
        }
        // Best effort: the pid is only for the message of a second process.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        let _ = lock.flush();
        let status = read(path)?;
        Ok((
            Store {
                path: path.to_owned(),
                _lock: lock,
            },
            status,
        ))
    }

    /// Write `status` atomically.
    pub fn save(&mut self, status: &Status) -> Result<()> {
        let value = serde_json::to_value(status).map_err(|e| StoreError::Io {
            action: "cannot serialize status for",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut text = String::from("# Written by resetd; do not edit while it runs.\n");
        text.push_str(&crate::yaml::to_yaml(&value));
        write_atomic(&self.path, text.as_bytes())
    }
}

fn lock_path(status: &Path) -> PathBuf {
    let mut name = status.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    status.with_file_name(name)
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
    use std::os::unix::fs::PermissionsExt as _;

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
        store.save(&status).unwrap();
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
}
