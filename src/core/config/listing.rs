//! Which files a config is (SPEC §2b): the one place that decides it, for
//! `validate`, `plan`, `run --once` and the daemon alike.
//!
//! A config is a file, or a directory: every `*.yaml` / `*.yml` file under
//! it, recursively, in byte order of their paths relative to it. Names
//! starting with `.` are skipped (`.git`, a ConfigMap's `..data` and its
//! timestamped directories: the keys' links beside them lead there); a
//! symlink to a regular file is followed, a symlinked directory is not
//! descended into (a link could make the tree a loop, or pull in a tree
//! nobody reviewed). Bounded: at most [`MAX_FILES`] files and
//! [`MAX_SET_BYTES`] in all, and [`MAX_ENTRIES`] directory entries looked
//! at; past a bound the set is refused with a located error and no file is
//! read. The walk is iterative: a deep tree cannot overflow the stack.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Severity};

/// The most config files a directory may hold.
pub const MAX_FILES: usize = 1_000;
/// The most bytes a directory's config files may hold in all.
pub const MAX_SET_BYTES: u64 = super::MAX_CONFIG_BYTES;
/// The most directory entries looked at (config files or not), so that a
/// directory of a million unrelated files is refused rather than walked.
pub const MAX_ENTRIES: usize = 100_000;

/// The files of a config.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The directory, for a config that is one (`None`: a single file).
    pub dir: Option<PathBuf>,
    /// Its files, in order.
    pub files: Vec<Listed>,
    /// Problems with the set itself (a bound passed, no config file, a file
    /// that cannot be one), each located at the file or directory it
    /// concerns; warnings for what was left out that a reader may expect
    /// to be in (a symlinked directory).
    pub diagnostics: Vec<Diagnostic>,
}

/// One file of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Where to read it.
    pub path: PathBuf,
    /// Its path relative to the config directory, `/`-separated (its
    /// entries' `source`); `None` for a config that is one file.
    pub rel: Option<Arc<str>>,
    /// How diagnostics name it: the config path as given, joined with `rel`.
    pub name: String,
}

impl Listing {
    /// True when a problem of the set refuses it whatever its files say.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

fn located(file: &Path, message: String, severity: Severity) -> Diagnostic {
    Diagnostic {
        file: file.display().to_string(),
        line: 1,
        column: 1,
        path: String::new(),
        message,
        severity,
    }
}

fn is_config_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The files of the config at `config`. A path that is not a directory (or
/// cannot be looked at) is a config of one file: reading it says what is
/// wrong, as it always did. Only a directory that cannot be read is `Err`.
pub fn list(config: &Path) -> std::io::Result<Listing> {
    list_skipping(config, None)
}

/// [`list`], leaving out resetd's own status file when `--status` puts it
/// inside the directory (it is never config; `run` and `plan` know it).
pub fn list_skipping(config: &Path, status: Option<&Path>) -> std::io::Result<Listing> {
    let is_dir = std::fs::metadata(config).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(Listing {
            dir: None,
            files: vec![Listed {
                path: config.to_owned(),
                rel: None,
                name: config.display().to_string(),
            }],
            diagnostics: Vec::new(),
        });
    }
    let mut diagnostics = Vec::new();
    // Links are followed only to files inside the directory: a committed
    // `x.yaml -> /run/secrets/token` must not be read, let alone quoted.
    let root = std::fs::canonicalize(config)?;
    let own = status.and_then(resolved);
    // (relative path, full path, size)
    let mut found: Vec<(String, PathBuf, u64)> = Vec::new();
    let mut seen = 0usize;
    let mut pending: Vec<(PathBuf, String)> = vec![(config.to_owned(), String::new())];
    'walk: while let Some((dir, prefix)) = pending.pop() {
        // An unreadable directory is an I/O error naming it (exit 2), as
        // an unreadable file is.
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()));
        for item in std::fs::read_dir(&dir).map_err(named)? {
            let item = item.map_err(named)?;
            seen += 1;
            if seen > MAX_ENTRIES {
                diagnostics.push(located(
                    &dir,
                    format!(
                        "more than {MAX_ENTRIES} entries under the config directory: refused \
                         unread (a config directory holds at most {MAX_FILES} config files)"
                    ),
                    Severity::Error,
                ));
                found.clear();
                break 'walk;
            }
            let path = item.path();
            let raw = item.file_name();
            let bytes = raw.as_bytes();
            if bytes.starts_with(b".") {
                continue;
            }
            let kind = item.file_type().map_err(named)?;
            let Some(name) = raw.to_str().map(str::to_owned) else {
                // Only a name that could be config (or hold it) matters.
                if kind.is_dir() || bytes.ends_with(b".yaml") || bytes.ends_with(b".yml") {
                    diagnostics.push(located(
                        &path,
                        "a name that is not UTF-8 in the config directory: rename it".into(),
                        Severity::Error,
                    ));
                }
                continue;
            };
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                pending.push((path, format!("{rel}/")));
                continue;
            }
            let target = if kind.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        diagnostics.push(located(
                            &path,
                            "a symlinked directory: not read (only real directories of a \
                             config directory are)"
                                .into(),
                            Severity::Warning,
                        ));
                        continue;
                    }
                    Ok(m) => Some(m),
                    Err(_) => None,
                }
            } else {
                item.metadata().ok()
            };
            if !is_config_name(&name) {
                continue;
            }
            if own
                .as_ref()
                .is_some_and(|own| resolved(&path).as_ref() == Some(own))
            {
                continue;
            }
            // A link is read at its target, which must lie in the tree.
            let path = if kind.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(to) if to.starts_with(&root) => to,
                    Ok(_) => {
                        diagnostics.push(located(
                            &path,
                            "a symlink to a file outside the config directory: not read (links \
                             are followed inside the directory only, as ConfigMap keys are)"
                                .into(),
                            Severity::Error,
                        ));
                        continue;
                    }
                    Err(_) => path,
                }
            } else {
                path
            };
            match target {
                Some(m) if m.is_file() => found.push((rel, path, m.len())),
                Some(_) => diagnostics.push(located(
                    &path,
                    "not a regular file (a FIFO or a device is never read as config)".into(),
                    Severity::Error,
                )),
                None => diagnostics.push(located(
                    &path,
                    "a symlink to nothing (or to what cannot be looked at)".into(),
                    Severity::Error,
                )),
            }
        }
    }
    found.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if let Some((_, path, _)) = found.get(MAX_FILES) {
        diagnostics.push(located(
            path,
            format!(
                "{} config files in the directory: it may hold at most {MAX_FILES} (this is \
                 the first past the bound); refused unread",
                found.len()
            ),
            Severity::Error,
        ));
        found.clear();
    }
    let mut total = 0u64;
    for (_, path, len) in &found {
        total = total.saturating_add(*len);
        if total > MAX_SET_BYTES {
            diagnostics.push(located(
                path,
                format!(
                    "the config directory's files pass {} MiB in all with this one; refused \
                     unread",
                    MAX_SET_BYTES / (1024 * 1024)
                ),
                Severity::Error,
            ));
            found.clear();
            break;
        }
    }
    if found.is_empty() && !diagnostics.iter().any(Diagnostic::is_error) {
        // An empty mount is a failed sync, never "every entry removed".
        diagnostics.push(located(
            config,
            "no config file (`*.yaml`, `*.yml`) in the config directory: refused (an empty \
             directory is a failed sync, not a config without entries)"
                .into(),
            Severity::Error,
        ));
    }
    let files = found
        .into_iter()
        .map(|(rel, path, _)| Listed {
            name: config.join(&rel).display().to_string(),
            rel: Some(Arc::from(rel)),
            path,
        })
        .collect();
    Ok(Listing {
        dir: Some(config.to_owned()),
        files,
        diagnostics,
    })
}

/// `path` with its directory resolved (the file itself may not exist yet).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

/// The default status path of a config directory: `<dir>.status.yaml`
/// beside it (`resets.d/` → `resets.d.status.yaml`), never inside it, where
/// it would be read as config and a ConfigMap swap would drop it. `None`
/// when `config` is not a directory.
pub fn dir_status_path(config: &Path) -> Option<PathBuf> {
    if !std::fs::metadata(config).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    // `.`, `..` or `dir/..` name no directory by themselves.
    let named = match config.file_name() {
        Some(_) if !config.ends_with("..") => config.to_owned(),
        _ => std::fs::canonicalize(config).ok()?,
    };
    let name = named.file_name()?.to_string_lossy().into_owned();
    Some(named.with_file_name(format!("{name}.status.yaml")))
}

impl Listing {
    /// The digest of a directory's set (`configDigest`), given each listed
    /// file's content digest in order: each file's relative path and
    /// content, so that renaming a file changes it as editing one does,
    /// and the set's own problems (a set refused unread differs by why).
    pub fn digest<'a>(&self, contents: impl Iterator<Item = &'a str>) -> String {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for (file, digest) in self.files.iter().zip(contents) {
            hasher.update(file.rel.as_deref().unwrap_or("").as_bytes());
            hasher.update([0]);
            hasher.update(digest.as_bytes());
            hasher.update(b"\n");
        }
        for d in &self.diagnostics {
            hasher.update(format!("!{}\0{}\n", d.file, d.message));
        }
        crate::digest::finish_digest(hasher)
    }
}
