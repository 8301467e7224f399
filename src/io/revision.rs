//! The commit a config came from (SPEC §6 `sourceRevision`): given with
//! `--source-revision` / `RESETD_SOURCE_REVISION`, or else the `HEAD` commit
//! of the git work tree the config lies in.
//!
//! It reads `HEAD` from the repository's files itself (`.git` or a
//! worktree's `gitdir:` file, `commondir`, loose refs, `packed-refs`)
//! rather than asking the `git` command. In the systemd layout the checkout
//! belongs to another user than the service's, and git refuses such a
//! repository ("dubious ownership", since 2.35.2). `-c safe.directory` on
//! the command line is honoured by newer git only (Debian 12's 2.39 does;
//! 2.35.2 to 2.37 and the fixes backported to older releases do not), and
//! telling git to trust the checkout would let its owner's `.git/config`
//! run commands as the service. Reading four small files runs nothing,
//! needs no git in the image and works for a read-only checkout owned by
//! anyone. Only a repository whose refs are in the reftable format, which
//! is not plain files, is left to `git` (with its ownership check in force).
//!
//! # Guarantees
//! - Nothing in the repository is executed; files are only read, and only
//!   under the repository's git directories (a ref name with `..` or one
//!   outside `refs/` is refused).
//! - The answer is a full commit id (40 or 64 hex digits) or unknown; when
//!   unknown, [`unknown_reason`] says why, for whoever needs the revision.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Why the last [`of`] found no revision; `None` after it found one.
static LAST_UNKNOWN: Mutex<Option<String>> = Mutex::new(None);

/// Symbolic refs followed at most (git itself stops at 5).
const MAX_SYMREF_DEPTH: usize = 5;

/// Why a work tree's HEAD could not be read. Names paths, never contents.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unknown {
    #[error("cannot resolve {path}: {error}")]
    Path { path: PathBuf, error: String },
    #[error("no git work tree holds {0}")]
    NoWorkTree(PathBuf),
    #[error("cannot read {path}: {error}")]
    Unreadable { path: PathBuf, error: String },
    #[error("{path} is not what git writes there ({what})")]
    Malformed { path: PathBuf, what: &'static str },
    #[error("HEAD names {0}, which has no commit yet")]
    Unborn(String),
    #[error("the refs in {dir} are in the reftable format and git could not read them: {reason}")]
    Reftable { dir: PathBuf, reason: String },
}

/// The revision to record for `config`: `given`, or its work tree's HEAD.
pub fn of(config: &Path, given: Option<&str>) -> Option<String> {
    let found = match given {
        Some(rev) if !rev.trim().is_empty() => Ok(rev.trim().to_owned()),
        _ => head_of(config),
    };
    let (revision, why) = match found {
        Ok(rev) => (Some(rev), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Ok(mut last) = LAST_UNKNOWN.lock() {
        *last = why;
    }
    revision
}

/// Why the last [`of`] in this process found no revision (`None` when it
/// found one, or was never asked): for a receiver that needs a commit.
pub fn unknown_reason() -> Option<String> {
    LAST_UNKNOWN.lock().ok().and_then(|last| last.clone())
}

/// The HEAD commit of the work tree holding `config` (followed through
/// symlinks: a `current -> release` link points into the checkout).
pub fn head_of(config: &Path) -> Result<String, Unknown> {
    let real = std::fs::canonicalize(config).map_err(|e| Unknown::Path {
        path: config.to_owned(),
        error: e.to_string(),
    })?;
    let start = real.parent().unwrap_or(&real);
    let repo = Repo::find(start).ok_or_else(|| Unknown::NoWorkTree(real.clone()))?;
    match repo.head() {
        Err(Unknown::Reftable { dir, .. }) => {
            ask_git(start).map_err(|reason| Unknown::Reftable { dir, reason })
        }
        found => found,
    }
}

/// A work tree's git directories.
#[derive(Debug)]
struct Repo {
    /// This work tree's own: `HEAD` and per-worktree refs.
    git_dir: PathBuf,
    /// Shared by every worktree of the repository: branches, `packed-refs`.
    common_dir: PathBuf,
}

impl Repo {
    /// The repository of the nearest directory at or above `start` holding
    /// `.git`, as git finds it: a directory, or a file `gitdir: PATH` (a
    /// linked worktree or a submodule).
    fn find(start: &Path) -> Option<Repo> {
        for dir in start.ancestors() {
            let dot = dir.join(".git");
            let git_dir = if dot.is_dir() {
                dot
            } else if dot.is_file() {
                let text = read_small(&dot).ok()?;
                let target = text.strip_prefix("gitdir:")?.trim();
                dir.join(target)
            } else {
                continue;
            };
            if !git_dir.join("HEAD").is_file() {
                // Not a repository (git keeps looking, and so do we).
                continue;
            }
            let common_dir = match read_small(&git_dir.join("commondir")) {
                Ok(common) => git_dir.join(common.trim()),
                Err(_) => git_dir.clone(),
            };
            return Some(Repo {
                git_dir,
                common_dir,
            });
        }
        None
    }

    /// The commit HEAD names, following symbolic refs.
    fn head(&self) -> Result<String, Unknown> {
        if self.common_dir.join("reftable").is_dir() {
            return Err(self.reftable());
        }
        let mut path = self.git_dir.join("HEAD");
        let mut text = read_small(&path).map_err(|e| unreadable(&path, &e))?;
        for _ in 0..MAX_SYMREF_DEPTH {
            let Some(name) = text.strip_prefix("ref:").map(str::trim) else {
                return commit_id(&text).ok_or(Unknown::Malformed {
                    path,
                    what: "neither a commit id nor `ref: NAME`",
                });
            };
            // What reftable repositories leave in HEAD for older readers.
            if name == "refs/heads/.invalid" {
                return Err(self.reftable());
            }
            if !is_safe_ref_name(name) {
                return Err(Unknown::Malformed {
                    path,
                    what: "a ref name outside refs/",
                });
            }
            path = self.ref_dir(name).join(name);
            match read_small(&path) {
                Ok(loose) => text = loose,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return self
                        .packed(name)?
                        .ok_or_else(|| Unknown::Unborn(name.to_owned()));
                }
                Err(e) => return Err(unreadable(&path, &e)),
            }
        }
        Err(Unknown::Malformed {
            path,
            what: "symbolic refs nested too deep",
        })
    }

    /// Where a loose ref lives: per-worktree refs in the worktree's own
    /// directory, the rest in the common one.
    fn ref_dir(&self, name: &str) -> &Path {
        const PER_WORKTREE: &[&str] = &["refs/worktree/", "refs/bisect/", "refs/rewritten/"];
        if PER_WORKTREE.iter().any(|p| name.starts_with(p)) {
            &self.git_dir
        } else {
            &self.common_dir
        }
    }

    /// `name`'s commit in `packed-refs`, if it is there.
    fn packed(&self, name: &str) -> Result<Option<String>, Unknown> {
        let path = self.common_dir.join("packed-refs");
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(&path, &e)),
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| unreadable(&path, &e))?;
            // `# pack-refs with: …` and `^<peeled id>` lines name no ref.
            if line.starts_with(['#', '^']) {
                continue;
            }
            if let Some((id, ref_name)) = line.split_once(' ')
                && ref_name == name
            {
                return commit_id(id).map(Some).ok_or(Unknown::Malformed {
                    path,
                    what: "a line that is not `<commit id> <ref>`",
                });
            }
        }
        Ok(None)
    }

    fn reftable(&self) -> Unknown {
        Unknown::Reftable {
            dir: self.common_dir.clone(),
            reason: String::new(),
        }
    }
}

/// A ref name git could have written: under `refs/`, no `..`, no empty or
/// hidden component, so it cannot lead out of the git directory.
fn is_safe_ref_name(name: &str) -> bool {
    name.starts_with("refs/")
        && name
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.contains('\\'))
}

/// `text` as a full commit id (SHA-1 or SHA-256), trimmed.
fn commit_id(text: &str) -> Option<String> {
    let id = text.trim();
    (matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| id.to_ascii_lowercase())
}

/// A file of git's own that holds one line (HEAD, a ref, `gitdir:`):
/// at most 4 KiB of it is read, so a hostile or mistaken file costs nothing.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(4096)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn unreadable(path: &Path, e: &std::io::Error) -> Unknown {
    Unknown::Unreadable {
        path: path.to_owned(),
        error: e.to_string(),
    }
}

/// `git rev-parse --verify HEAD` in `dir`, for refs resetd cannot read as
/// files. git's ownership check stays in force: this runs git in a
/// repository, so it must not be told to trust one it does not.
fn ask_git(dir: &Path) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "HEAD"])
        // A read: no lock files in the operator's checkout.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match commit_id(&text) {
        Some(id) if output.status.success() => Ok(id),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or("no commit id").trim();
            Err(crate::diagnostic::sanitize(first, 200, false))
        }
    }
}

#[cfg(test)]
mod tests;
