//! Collects a file's diagnostics, turning document paths into positions.

use std::collections::HashSet;

use super::format_path;
use super::hashes::{Found, HASH_SHAPE_WARNINGS};
use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{Loc, Pos, Seg};

/// How deep [`Report::has_error_under`] can look: the fields of the
/// settings, of a group and of an entry (`resets[2].trigger`).
const PART_DEPTH: usize = 3;

/// Collects diagnostics, turning document paths into positions.
pub struct Report<'a> {
    file: &'a str,
    loc: &'a Loc,
    diagnostics: Vec<Diagnostic>,
    /// Paths that already carry an error, so a value is not also warned about.
    error_paths: HashSet<String>,
    /// Every path, up to `PART_DEPTH` steps, that has an error at or below
    /// it: which fields of a part the schema refused.
    error_prefixes: HashSet<Vec<Seg>>,
    /// Hashes of an unusual shape beyond those warned about one by one.
    odd_hashes: usize,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str, loc: &'a Loc) -> Self {
        Report {
            file,
            loc,
            diagnostics: Vec::new(),
            error_paths: HashSet::new(),
            error_prefixes: HashSet::new(),
            odd_hashes: 0,
        }
    }

    fn push(&mut self, path: &[Seg], key: Option<&str>, message: String, severity: Severity) {
        let pos = key
            .and_then(|k| self.loc.find_key(path, k))
            .unwrap_or_else(|| self.loc.find(path));
        let mut full = path.to_vec();
        if let Some(k) = key {
            full.push(Seg::Key(k.to_owned()));
        }
        self.push_at(full, pos, message, severity);
    }

    fn push_at(&mut self, path: Vec<Seg>, pos: Pos, message: String, severity: Severity) {
        if severity == Severity::Error {
            for depth in 1..=path.len().min(PART_DEPTH) {
                if !self.error_prefixes.contains(&path[..depth]) {
                    self.error_prefixes.insert(path[..depth].to_vec());
                }
            }
        }
        let path = format_path(&path);
        if severity == Severity::Error {
            self.error_paths.insert(path.clone());
        }
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path,
            message,
            severity,
        });
    }

    pub fn error(&mut self, path: &[Seg], message: impl Into<String>) {
        self.push(path, None, message.into(), Severity::Error);
    }

    pub fn error_at_key(&mut self, path: &[Seg], key: &str, message: impl Into<String>) {
        self.push(path, Some(key), message.into(), Severity::Error);
    }

    pub fn warning(&mut self, path: &[Seg], message: impl Into<String>) {
        self.push(path, None, message.into(), Severity::Warning);
    }

    /// What the hash lists' checks found, located as they were read.
    pub(super) fn hash_findings(&mut self, found: Vec<Found>, odd: usize) {
        for f in found {
            self.push_at(f.path, f.pos, f.message, f.severity);
        }
        self.odd_hashes = odd;
    }

    /// True when an error was already reported at exactly this path.
    pub(super) fn has_error_at(&self, path: &[Seg]) -> bool {
        self.error_paths.contains(&format_path(path))
    }

    /// True when an error was reported at this path or below it (paths of
    /// at most `PART_DEPTH` steps).
    pub(super) fn has_error_under(&self, path: &[Seg]) -> bool {
        self.error_prefixes.contains(path)
    }

    /// Where `path` is in the file (its nearest present ancestor if it is
    /// not there): what the checks across files point at.
    pub(super) fn pos_of(&self, path: &[Seg]) -> Pos {
        self.loc.find(path)
    }

    /// Where the key `key` of the mapping at `path` is written (the value's
    /// position when it cannot be found).
    pub(super) fn key_pos_of(&self, path: &[Seg], key: &str) -> Pos {
        self.loc
            .find_key(path, key)
            .unwrap_or_else(|| self.loc.find(&[path, &[Seg::Key(key.to_owned())]].concat()))
    }

    /// Diagnostics in file order, errors before warnings on the same spot.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        if self.odd_hashes > HASH_SHAPE_WARNINGS {
            let more = self.odd_hashes - HASH_SHAPE_WARNINGS;
            self.warning(
                &[],
                format!("{more} more hashes are not shaped like IPRoyal's user hashes"),
            );
        }
        self.diagnostics
            .sort_by_key(|d| (d.line, d.column, d.severity));
        self.diagnostics
    }
}
