//! Collects a file's diagnostics, turning document paths into positions.

use std::collections::HashSet;

use super::format_path;
use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{Loc, Seg};

/// How many "unusual hash shape" warnings are listed one by one per file; the
/// rest are summed up so a file of generated hashes stays readable.
const HASH_SHAPE_WARNINGS: usize = 20;

/// Collects diagnostics, turning document paths into positions.
pub struct Report<'a> {
    file: &'a str,
    loc: &'a Loc,
    diagnostics: Vec<Diagnostic>,
    /// Paths that already carry an error, so a value is not also warned about.
    error_paths: HashSet<String>,
    odd_hashes: usize,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a str, loc: &'a Loc) -> Self {
        Report {
            file,
            loc,
            diagnostics: Vec::new(),
            error_paths: HashSet::new(),
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
        let path = format_path(&full);
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

    /// True when an error was already reported at exactly this path.
    pub(super) fn has_error_at(&self, path: &[Seg]) -> bool {
        self.error_paths.contains(&format_path(path))
    }

    pub(super) fn line_of(&self, path: &[Seg]) -> u32 {
        self.loc.find(path).line
    }

    pub(super) fn odd_hash(&mut self, path: &[Seg], hash: &str) {
        if self.error_paths.contains(&format_path(path)) {
            return;
        }
        self.odd_hashes += 1;
        if self.odd_hashes <= HASH_SHAPE_WARNINGS {
            self.warning(
                path,
                format!(
                    "hash `{hash}` is not shaped like IPRoyal's 26-character user hashes \
                     (e.g. 01H7YCG0R9GYY1YCPS2S4QA6WB); check it is a residential user hash"
                ),
            );
        }
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
