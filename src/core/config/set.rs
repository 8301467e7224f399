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
    for file in &listing.files {
        let part = read_part(&file.path, &file.name, now, build)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.name)))?;
        parts.push((file.rel.clone(), part));
    }
    let parts: Vec<_> = parts
        .iter()
        .map(|(rel, part)| (rel.clone(), part))
        .collect();
    Ok(assemble_set(listing, &parts, build))
}

/// [`assemble`] for the files of a directory, `parts` in `listing`'s order:
/// the set's digest covers each file's relative name and content, and the
/// problems of the set itself (`listing`'s) come first and refuse it.
pub fn assemble_set(
    listing: &listing::Listing,
    parts: &[(Option<std::sync::Arc<str>>, &FilePart)],
    build: bool,
) -> Loaded {
    let digest = listing.digest(parts.iter().map(|(_, part)| part.digest.as_str()));
    let mut loaded = assemble(parts, digest, build);
    if !listing.diagnostics.is_empty() {
        let mut all = listing.diagnostics.clone();
        all.append(&mut loaded.diagnostics);
        loaded.diagnostics = all;
        if listing.has_errors() {
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
    let inputs: Vec<merge::Input<'_>> = files
        .iter()
        .filter_map(|(source, part)| {
            part.local.as_ref().map(|local| merge::Input {
                file: &part.name,
                source: source.clone(),
                local,
            })
        })
        .collect();
    let readable = inputs.len() == files.len();
    let merged = merge::merge(&inputs, build);
    let mut across = merged.diagnostics.into_iter();
    let mut diagnostics = Vec::new();
    for (_, part) in files {
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
