//! A config as a set of files (SPEC §2b): each file read and checked on its
//! own (`FilePart`), then merged (`merge`) into what the set gives. A
//! config that is one file is a set of one; a directory's files are listed
//! by `listing`.

use chrono::{DateTime, Utc};

use super::{Config, Loaded, check, listing, merge, read, read_part};
use crate::diagnostic::Diagnostic;

/// One file of a config, read and checked on its own (`check::local`):
/// what the checks across files and the building of the `Config` need
/// (`assemble`), and its own diagnostics. It holds no text and no table of
/// positions, so a daemon can keep it per file, by content digest, and
/// re-read only the files that changed.
#[derive(Debug)]
pub struct FilePart {
    /// sha256 of the file's bytes.
    pub digest: String,
    /// The file as diagnostics name it.
    pub(super) name: String,
    /// What its aliases copied: the bound is on the whole set.
    pub alias: crate::yaml::AliasUse,
    /// The file is a resetd status file (`kind: SessionResetStatus`): an
    /// error as a config of its own, skipped with a warning in a directory.
    pub(super) status: bool,
    /// Its diagnostics so far, in file order.
    pub(super) diagnostics: Vec<Diagnostic>,
    /// `None` when the file is not a document to merge (YAML it cannot
    /// read, a status file): its diagnostics say why.
    pub(super) local: Option<check::Local>,
}

/// Read and merge the files of `listing`. A single file is read as it
/// always was; the files of a directory each on its own, then merged.
pub fn load_listed(
    listing: &listing::Listing,
    now: DateTime<Utc>,
    build: bool,
) -> std::io::Result<Loaded> {
    if let (None, [file]) = (&listing.dir, listing.files.as_slice()) {
        return read(&file.path, now, build);
    }
    let mut parts = Vec::with_capacity(listing.files.len());
    let mut digests = Vec::with_capacity(listing.files.len());
    let mut budget = AliasBudget::default();
    for file in &listing.files {
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", file.name));
        if budget.spent() {
            // Past the bound nothing more is parsed; the digest still
            // covers every file, as the daemon's check does.
            digests.push(super::digest_file(&file.path).map_err(named)?);
            continue;
        }
        let part = read_part(&file.path, &file.name, now, build).map_err(named)?;
        digests.push(part.digest.clone());
        if budget.take(&part, &file.name) {
            parts.push((file.rel.clone(), part));
        }
    }
    let parts: Vec<_> = parts
        .iter()
        .map(|(rel, part)| (rel.clone(), part))
        .collect();
    let digest = listing.digest(digests.iter().map(String::as_str));
    Ok(assemble_set(listing, &parts, digest, budget.refused, build))
}

/// One bound on alias expansion for the whole set, not one per file: 1,000
/// files each just under the bound would otherwise expand to 1,000 times
/// it. The file that passes it is refused (located), and no file after it
/// is parsed.
#[derive(Default)]
pub struct AliasBudget {
    used: crate::yaml::AliasUse,
    /// The refusal, once the bound is passed.
    pub refused: Vec<Diagnostic>,
}

impl AliasBudget {
    /// True once the bound is passed.
    pub fn spent(&self) -> bool {
        !self.refused.is_empty()
    }

    /// Count `part`'s aliases; false (and the refusal recorded) when they
    /// pass the set's bound.
    pub fn take(&mut self, part: &FilePart, name: &str) -> bool {
        self.used = self.used.plus(part.alias);
        if !self.used.past_bound() {
            return true;
        }
        self.refused.push(Diagnostic {
            file: name.to_owned(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "aliases in the config directory's files expand, together, to more than {} \
                 nodes or {} MiB of text with this file (one bound for the whole set); \
                 refusing the set",
                crate::yaml::MAX_ALIAS_NODES,
                crate::yaml::MAX_ALIAS_BYTES >> 20
            ),
            severity: crate::diagnostic::Severity::Error,
        });
        false
    }
}

/// [`assemble`] for the files of a directory, `parts` in `listing`'s order:
/// the set's digest covers each file's relative name and content, and the
/// problems of the set itself (`listing`'s) come first and refuse it.
pub fn assemble_set(
    listing: &listing::Listing,
    parts: &[(Option<std::sync::Arc<str>>, &FilePart)],
    digest: String,
    mut refused: Vec<Diagnostic>,
    build: bool,
) -> Loaded {
    let mut loaded = assemble(parts, digest, build);
    if !listing.diagnostics.is_empty() || !refused.is_empty() {
        let mut all = listing.diagnostics.clone();
        all.append(&mut refused);
        all.append(&mut loaded.diagnostics);
        loaded.diagnostics = all;
        if loaded.diagnostics.iter().any(Diagnostic::is_error) {
            loaded.config = None;
        }
    }
    loaded
}

/// Build what a set of files gives (a single file is a set of one):
/// `files` in the config's order, each with its path relative to the
/// config directory (`None` for a single file); `digest` names the set.
/// The checks across files (`merge`) run every time: they are linear.
pub fn assemble(
    files: &[(Option<std::sync::Arc<str>>, &FilePart)],
    digest: String,
    build: bool,
) -> Loaded {
    // A status file in a directory (a `--status` kept there) is resetd's
    // own, never config: every command skips it alike, so what `validate`
    // accepts is what `run` accepts, with or without `--status`.
    let skipped =
        |source: &Option<std::sync::Arc<str>>, part: &FilePart| source.is_some() && part.status;
    let inputs: Vec<merge::Input<'_>> = files
        .iter()
        .filter(|(source, part)| !skipped(source, part))
        .filter_map(|(source, part)| {
            part.local.as_ref().map(|local| merge::Input {
                file: &part.name,
                source: source.clone(),
                local,
            })
        })
        .collect();
    let readable = inputs.len() == files.iter().filter(|(s, p)| !skipped(s, p)).count();
    let merged = merge::merge(&inputs, readable, build);
    let mut across = merged.diagnostics.into_iter();
    let mut diagnostics = Vec::new();
    for (source, part) in files {
        if skipped(source, part) {
            diagnostics.push(Diagnostic {
                file: part.name.clone(),
                line: 1,
                column: 1,
                path: String::new(),
                message: "a resetd status file (`kind: SessionResetStatus`): not config, \
                          skipped (keep status files beside the directory)"
                    .to_owned(),
                severity: crate::diagnostic::Severity::Warning,
            });
            continue;
        }
        let start = diagnostics.len();
        diagnostics.extend(part.diagnostics.iter().cloned());
        if part.local.is_some()
            && let Some(more) = across.next()
            && !more.is_empty()
        {
            diagnostics.extend(more);
            // Stable: in file order, errors before warnings on one spot.
            diagnostics[start..].sort_by_key(|d| (d.line, d.column, d.severity));
        }
    }
    let config = match merged.parts {
        Some((settings, resets, notifications))
            if readable && !diagnostics.iter().any(Diagnostic::is_error) =>
        {
            Some(Config {
                settings,
                resets,
                notifications,
                digest: digest.clone(),
            })
        }
        _ => None,
    };
    Loaded {
        config,
        diagnostics,
        digest,
    }
}
