//! Loading a config file: YAML → schema check → semantic checks → `Config`.
//!
//! `load(path)` only reads the file; `parse(file, text, now)` does the work and
//! is what tests call. Every problem found comes back as a located
//! `Diagnostic`, all of them at once. A `Config` exists only when there were no
//! errors, so code that holds one never meets an unknown group, a cycle or an
//! unparsable cron expression.

mod check;
mod groups;
mod members;
pub use members::Members;
mod hashes;
pub mod listing;
mod merge;
mod notifications;
mod part;
mod report;
mod set;
pub use crate::digest::{finish_digest, hex_digest};
pub use check::parse_cron;
pub use set::{AliasBudget, FilePart, assemble, assemble_set, load_listed};
pub mod types;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Severity};

/// The environment variable the API token is read from (`api::TOKEN_ENV`,
/// the same name: a test holds them equal): no receiver may be given it.
pub const API_TOKEN_ENV: &str = "IPROYAL_API_TOKEN";

/// Refuse `loaded` when a receiver of its config would read the API token
/// file (`reads_token_file`): the config is dropped and the reason added as
/// an error naming `file` (the config), as for any invalid config.
pub fn refuse_token_file(loaded: &mut Loaded, token_file: Option<&Path>, file: &str) {
    let Some(why) = loaded
        .config
        .as_ref()
        .and_then(|c| reads_token_file(c, token_file))
    else {
        return;
    };
    loaded.config = None;
    loaded.diagnostics.push(Diagnostic {
        file: file.to_owned(),
        line: 1,
        column: 1,
        path: "notifications".to_owned(),
        message: why,
        severity: Severity::Error,
    });
}

/// A receiver of `config` that would read the API token file (`--token-file`)
/// as its secret, by name, with the field: `run` refuses such a config (a
/// receiver sends its secret where it says). `validate` cannot know the
/// path; it refuses `{ env: IPROYAL_API_TOKEN }` itself.
pub fn reads_token_file(config: &Config, token_file: Option<&Path>) -> Option<String> {
    let token = std::fs::canonicalize(token_file?).ok()?;
    config.notifications.iter().find_map(|r| {
        [
            ("urlFrom", &r.url_from),
            ("secretFrom", &r.secret_from),
            ("tokenFrom", &r.token_from),
        ]
        .into_iter()
        .find_map(|(field, source)| match source {
            Some(types::SecretFrom::File(path))
                if std::fs::canonicalize(path).is_ok_and(|p| p == token) =>
            {
                Some(format!(
                    "receiver `{}`: `{field}` names the API token file (--token-file): a \
                     receiver may never be given it",
                    r.name
                ))
            }
            _ => None,
        })
    })
}

/// A validated config, ready for planning.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub resets: Vec<Entry>,
    /// Receivers of notifications, checked; their secrets are not read yet.
    pub notifications: Vec<types::Notification>,
    /// sha256 of the file's bytes: the daemon reloads only when it changes.
    pub digest: String,
}

/// `settings` with durations parsed and defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub dry_run: bool,
    pub batch_size: usize,
    pub max_attempts: u32,
    pub request_timeout: Duration,
    /// `None`: no rate limit.
    pub max_requests_per_second: Option<f64>,
    /// First retry delay (doubles per attempt).
    pub retry_delay: Duration,
    /// How long a failed entry is retried on its own after its first failure.
    pub retry_failed_for: Duration,
}

/// How a user named in `users:` travels in a member list (`Entry::hashes`):
/// `@` and the username. No hash can start with `@` (`HASH_PATTERN`), so
/// the two never mix up.
pub fn user_member(username: &str) -> String {
    format!("@{username}")
}

/// The username in a member, if it is one.
pub fn member_user(member: &str) -> Option<&str> {
    member.strip_prefix('@')
}

/// One reset entry with its groups resolved.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub description: Option<String>,
    /// The file of a config directory the entry is in, relative to the
    /// directory (SPEC §2b); `None` for a config that is one file.
    pub source: Option<std::sync::Arc<str>>,
    /// Union of the groups' members and the entry's own, each once, in order
    /// of first appearance: hashes, and for each user of `users:` its
    /// `user_member` (resolved to a hash by the planner, never sent as is).
    /// Merged lazily from the groups' shared lists (`Members`).
    pub hashes: Members,
    /// How many of `hashes` are users (0: the list is all hashes).
    pub users: usize,
    /// The parts `hashes` merges, in its order, each with where it comes
    /// from (shared with `hashes`, not copied): `plan` says where each hash
    /// it sends came from.
    pub parts: std::sync::Arc<[Part]>,
    pub trigger: Schedule,
    pub revision: u64,
    pub not_after: Option<DateTime<Utc>>,
    pub suspend: bool,
    /// This entry's own `dryRun` (the file-wide setting is in `Settings`).
    pub dry_run: bool,
    /// Digest of what the entry sends and when (revision, trigger, notAfter,
    /// resolved hashes); a change means "new content" to the planner.
    pub spec_digest: String,
}

/// What an entry names a part of its members by (SPEC §2a: its `groups`,
/// then `hashes`, then `users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A group in `groups:`: its members, its includes merged in.
    Group(String),
    /// The entry's own `hashes:`.
    Hashes,
    /// The entry's own `users:`, as `user_member`s.
    Users,
}

/// A part of an entry's members and where it comes from.
pub type Part = (Origin, std::sync::Arc<[String]>);

/// A parsed trigger.
#[derive(Debug, Clone)]
pub enum Schedule {
    Immediate,
    At(DateTime<Utc>),
    // Shared: every build of the config clones each entry's trigger, and a
    // parsed expression is a few hundred bytes of bit sets.
    Cron(std::sync::Arc<croner::Cron>),
    Every(Duration),
}

impl Schedule {
    /// One-shot entries run once per revision; recurring ones on a schedule.
    pub fn is_recurring(&self) -> bool {
        matches!(self, Schedule::Cron(_) | Schedule::Every(_))
    }
}

/// What loading a file produced: a config when there were no errors, and
/// every diagnostic (warnings come along with a valid config).
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
    /// sha256 of the bytes read, valid config or not.
    pub digest: String,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Read and parse a config: a file, or a directory of files (SPEC §2b).
/// Only I/O errors are `Err`.
pub fn load(path: &Path, now: DateTime<Utc>) -> std::io::Result<Loaded> {
    load_listed(&listing::list(path)?, now, true)
}

/// [`load`] for `run` and `plan`, which know the status file: a `--status`
/// inside a config directory is resetd's own file, never read as config.
pub fn load_beside(
    path: &Path,
    status: Option<&Path>,
    now: DateTime<Utc>,
) -> std::io::Result<Loaded> {
    load_listed(&listing::list_skipping(path, status)?, now, true)
}

/// Check a config (a file or a directory) without keeping the resolved
/// config (`validate`): the same diagnostics as `load`, in less memory.
pub fn check_file(path: &Path, now: DateTime<Utc>) -> std::io::Result<Vec<Diagnostic>> {
    check_listed(&listing::list(path)?, now)
}

/// [`check_file`] of a config already listed.
pub fn check_listed(
    listing: &listing::Listing,
    now: DateTime<Utc>,
) -> std::io::Result<Vec<Diagnostic>> {
    load_listed(listing, now, false).map(|loaded| loaded.diagnostics)
}

/// The largest config file read. Larger files are refused before parsing,
/// so a mistaken `/dev/zero` or a runaway generator cannot exhaust memory.
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024 * 1024;

/// Open a config file for reading: a regular file (a FIFO would block the
/// reader forever, a device may never end) of at most `MAX_CONFIG_BYTES`.
/// The one place every reader of a config file opens it.
pub fn open(path: &Path) -> std::io::Result<impl std::io::Read> {
    // Checked before opening: opening a FIFO for reading blocks.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = std::fs::File::open(path)?;
    Ok(Bounded {
        inner: file,
        left: MAX_CONFIG_BYTES,
    })
}

/// A reader that fails (rather than silently truncating) past its bound.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {} MiB", MAX_CONFIG_BYTES / (1024 * 1024)),
            )),
        }
    }
}

/// The digest `load` would compute, without parsing: what the daemon
/// compares to see whether a file changed and whether it has settled.
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut reader = open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) => return Ok(finish_digest(hasher)),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn read(path: &Path, now: DateTime<Utc>, build: bool) -> std::io::Result<Loaded> {
    let part = read_part(path, &path.display().to_string(), now, build)?;
    Ok(assemble(&[(None, &part)], part.digest.clone(), build))
}

/// Read and check one file of a config. `name` is how diagnostics name it.
/// Only I/O errors are `Err`.
pub fn read_part(
    path: &Path,
    name: &str,
    now: DateTime<Utc>,
    build: bool,
) -> std::io::Result<FilePart> {
    // One streamed pass: the text is never held whole, and every position a
    // diagnostic needs is known when it is found.
    let mut lists = hashes::HashLists::new(build);
    let meter = std::cell::Cell::default();
    let read =
        crate::yaml::parse_file_metered(|| open(path), Some(&mut lists), reviewed(), Some(&meter));
    let (parsed, digest) = match read {
        Ok(read) => read,
        Err(e) => return not_utf8(path, name, e),
    };
    let mut part = file_part(name, digest, parsed, lists, now, build);
    part.alias = meter.get();
    if part
        .diagnostics
        .iter()
        .any(|d| d.message.contains("found a tab"))
        && let Ok(file) = open(path)
    {
        let lines = std::io::BufRead::lines(std::io::BufReader::new(file)).map_while(Result::ok);
        place_tab_errors(&mut part.diagnostics, lines);
    }
    Ok(part)
}

/// The YAML scanner reports a tab in indentation where the scalar before it
/// ended, often on the line above; point at the tab itself.
fn place_tab_errors<S: AsRef<str>>(diagnostics: &mut [Diagnostic], lines: impl Iterator<Item = S>) {
    let Some(d) = diagnostics
        .iter_mut()
        .find(|d| d.message.contains("found a tab"))
    else {
        return;
    };
    let from = usize::try_from(d.line).unwrap_or(usize::MAX).max(1);
    for (n, line) in lines.enumerate().skip(from - 1) {
        let line = line.as_ref();
        let indent = &line[..line.len() - line.trim_start().len()];
        if let Some(at) = indent.find('\t') {
            d.line = u32::try_from(n + 1).unwrap_or(u32::MAX);
            d.column = u32::try_from(at + 1).unwrap_or(u32::MAX);
            d.message = "a tab in indentation (YAML indents with spaces only)".into();
            return;
        }
    }
}

/// An encoding error is a located problem with the file (exit 1, like any
/// invalid config); other read errors stay I/O errors.
fn not_utf8(path: &Path, name: &str, e: std::io::Error) -> std::io::Result<FilePart> {
    let Some(enc) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::yaml::EncodingError>())
    else {
        return Err(e);
    };
    Ok(FilePart {
        name: name.to_owned(),
        alias: crate::yaml::AliasUse::default(),
        status: false,
        local: None,
        diagnostics: vec![Diagnostic {
            file: name.to_owned(),
            line: enc.line,
            column: 1,
            path: String::new(),
            message: enc.message.to_owned(),
            severity: Severity::Error,
        }],
        // The whole file's digest, as for any other content: the daemon
        // compares it to decide the file has settled.
        digest: digest_file(path)?,
    })
}

/// Config text as YAML, read the way a config is (a reviewed file: nothing
/// in it may read two ways), without the schema: the document and its
/// positions.
pub fn parse_yaml(text: &str) -> crate::yaml::Parsed {
    crate::yaml::parse_with(text, None, reviewed())
}

/// How a config is read: as a reviewed file, whose field names are the
/// schema's.
pub fn reviewed() -> crate::yaml::Dialect<'static> {
    crate::yaml::Dialect::Reviewed {
        field: &crate::schema::is_field_name,
    }
}

/// Parse config text. `file` names it in diagnostics; `now` is used only for
/// warnings such as an `at` trigger in the past.
pub fn parse(file: &str, text: &str, now: DateTime<Utc>) -> Loaded {
    let mut lists = hashes::HashLists::new(true);
    let parsed = crate::yaml::parse_with(text, Some(&mut lists), reviewed());
    let mut part = file_part(file, hex_digest(text.as_bytes()), parsed, lists, now, true);
    place_tab_errors(&mut part.diagnostics, text.lines());
    assemble(&[(None, &part)], part.digest.clone(), true)
}

/// Check one file on its own: YAML, schema, and the checks a file can
/// answer alone (`check::local`).
fn file_part(
    file: &str,
    digest: String,
    parsed: crate::yaml::Parsed,
    mut lists: hashes::HashLists,
    now: DateTime<Utc>,
    keep: bool,
) -> FilePart {
    let (value, loc) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            return FilePart {
                name: file.to_owned(),
                alias: crate::yaml::AliasUse::default(),
                status: false,
                digest,
                local: None,
                diagnostics: vec![Diagnostic {
                    file: file.to_owned(),
                    line: e.pos.line,
                    column: e.pos.column,
                    path: format_path(&e.path),
                    message: e.message,
                    severity: Severity::Error,
                }],
            };
        }
    };
    if let Some(diagnostic) = status_file(file, &value, &loc) {
        return FilePart {
            name: file.to_owned(),
            alias: crate::yaml::AliasUse::default(),
            status: true,
            digest,
            local: None,
            diagnostics: vec![diagnostic],
        };
    }
    let mut report = report::Report::new(file, &loc);
    let found = std::mem::take(&mut lists.found);
    report.hash_findings(found.found, found.odd);
    for violation in crate::schema::check(&value) {
        match &violation.key {
            Some(key) => report.error_at_key(&violation.path, key, violation.message),
            None => report.error(&violation.path, violation.message),
        }
    }
    let local = check::local(value, &mut lists, now, keep, &mut report);
    FilePart {
        name: file.to_owned(),
        alias: crate::yaml::AliasUse::default(),
        status: false,
        digest,
        local: Some(local),
        diagnostics: report.finish(),
    }
}

/// A resetd status file where a config was expected: one error that says
/// so, not the dozen schema errors its fields would raise. An error for
/// `validate` as for `run`: the files `validate` accepts are exactly those
/// `run` accepts (SPEC §2).
fn status_file(
    file: &str,
    value: &serde_json::Value,
    loc: &crate::yaml::Loc,
) -> Option<Diagnostic> {
    if value.get("kind").and_then(serde_json::Value::as_str) != Some(crate::status::KIND) {
        return None;
    }
    let path = [crate::yaml::Seg::Key("kind".into())];
    let pos = loc.find(&path);
    Some(Diagnostic {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        path: format_path(&path),
        // The path unquoted: a quoted part of a message is cut short.
        message: format!(
            "a resetd status file (`kind: {}`), not a config (to read it: resetd status --status {file})",
            crate::status::KIND
        ),
        severity: Severity::Error,
    })
}

/// `resets[2].groups[0]`, `groups.eu-scrapers.include[1]`, `settings.batchSize`.
pub fn format_path(path: &[crate::yaml::Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            crate::yaml::Seg::Index(i) => out.push_str(&format!("[{i}]")),
            crate::yaml::Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn a_read_past_the_bound_is_an_error_not_a_short_file() {
        let mut within = super::Bounded {
            inner: &b"12345"[..],
            left: 5,
        };
        let mut text = String::new();
        within.read_to_string(&mut text).unwrap();
        assert_eq!(text, "12345");
        let mut past = super::Bounded {
            inner: &b"123456"[..],
            left: 5,
        };
        let err = past.read_to_string(&mut String::new()).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
