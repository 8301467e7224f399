//! The config's lists of hashes, checked item by item as the file is read.
//!
//! A file can hold a million hashes. Each is checked where it stands (the
//! schema's `Hash`, a repeat within its list, IPRoyal's usual shape) and
//! located by the position the scanner just read, then dropped: `validate`
//! keeps only each list's length. For `run`, the lists are kept as strings.
//! The document value holds an empty list in their place, which is what
//! the schema validator sees there ([`crate::schema::hash_lists`] says where
//! that is sound).

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde_json::Value;

use crate::diagnostic::Severity;
use crate::schema::Step;
use crate::yaml::{Item, ListSink, Pos, Seg};

/// How many "unusual hash shape" warnings are listed one by one per file
/// (the first ones in the file); the rest are summed up so a file of
/// generated hashes stays readable.
pub(super) const HASH_SHAPE_WARNINGS: usize = 20;

/// Crockford base32, 26 characters: the shape of IPRoyal's published hashes.
fn is_ulid_shaped(hash: &str) -> bool {
    static CROCKFORD: [bool; 256] = crate::core::byte_set(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    // A fold without early exit, which the compiler vectorises.
    hash.len() == 26
        && hash
            .bytes()
            .fold(true, |ok, b| ok & CROCKFORD[usize::from(b)])
}

/// A problem found in a list, already located.
pub(super) struct Found {
    pub(super) path: Vec<Seg>,
    pub(super) pos: Pos,
    pub(super) message: String,
    pub(super) severity: Severity,
}

/// One list, once read.
#[derive(Debug, Default)]
pub(super) struct List {
    pub(super) len: usize,
    /// The string items in order, repeats included; kept for `run` only.
    pub(super) hashes: Vec<String>,
}

/// The list being read: its items' text, end to end, and a table of the
/// distinct ones, to tell repeats without a `String` per hash.
struct Current {
    path: Vec<Seg>,
    list: List,
    text: String,
    ends: Vec<u32>,
    distinct: HashTable<u32>,
}

impl Current {
    fn item<'t>(text: &'t str, ends: &[u32], i: u32) -> &'t str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &text[start..ends[i] as usize]
    }
}

pub(super) struct HashLists {
    /// Keep the hashes (for `run`), not only the lists' lengths.
    keep: bool,
    where_lists_are: &'static [Vec<Step>],
    lists: HashMap<Vec<Seg>, List>,
    pub(super) found: Findings,
    current: Option<Current>,
    /// Buffers of the last list, reused by the next.
    spare: Option<(String, Vec<u32>, HashTable<u32>)>,
    hasher: foldhash::fast::RandomState,
}

/// What the checks found, apart from the lists (so both can be borrowed).
#[derive(Default)]
pub(super) struct Findings {
    pub(super) found: Vec<Found>,
    /// Hashes of an unusual shape (warned about up to a limit).
    pub(super) odd: usize,
}

impl Findings {
    fn push(&mut self, path: Vec<Seg>, pos: Pos, message: String, severity: Severity) {
        self.found.push(Found {
            path,
            pos,
            message,
            severity,
        });
    }
}

/// `path[index]`, for a finding.
fn item_path(path: &[Seg], index: usize) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(Seg::Index(index));
    p
}

impl HashLists {
    pub(super) fn new(keep: bool) -> Self {
        HashLists {
            keep,
            where_lists_are: crate::schema::hash_lists(),
            lists: HashMap::new(),
            found: Findings::default(),
            current: None,
            spare: None,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The list at `path`, if one was read there.
    pub(super) fn take(&mut self, path: &[Seg]) -> Option<List> {
        self.lists.remove(path)
    }
}

impl ListSink for HashLists {
    fn wants(&self, path: &[Seg]) -> bool {
        crate::schema::path_matches(self.where_lists_are, path)
    }

    fn begin(&mut self, path: &[Seg], _pos: Pos) {
        let (mut text, mut ends, mut distinct) = self.spare.take().unwrap_or_default();
        text.clear();
        ends.clear();
        distinct.clear();
        self.current = Some(Current {
            path: path.to_vec(),
            list: List::default(),
            text,
            ends,
            distinct,
        });
    }

    fn item(&mut self, item: Item<'_>, pos: Pos) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let found = &mut self.found;
        let index = cur.list.len;
        cur.list.len += 1;
        let hash = match item {
            Item::Str(s) => Some(s),
            Item::Other(_) => None,
        };
        let valid = hash.is_some_and(crate::schema::hash_known_valid) || {
            let value = match item {
                Item::Str(s) => Value::String(s.to_owned()),
                Item::Other(v) => v.clone(),
            };
            let violations = crate::schema::check_hash(&value, &item_path(&cur.path, index));
            let valid = violations.is_empty();
            for v in violations {
                found.push(v.path, pos, v.message, Severity::Error);
            }
            valid
        };
        let Some(hash) = hash else {
            return;
        };
        let h = self.hasher.hash_one(hash);
        let Current {
            path,
            list,
            text,
            ends,
            distinct,
        } = cur;
        let repeat = distinct
            .find(h, |&i| Current::item(text, ends, i) == hash)
            .is_some();
        if repeat {
            found.push(
                item_path(path, index),
                pos,
                format!("hash `{hash}` is listed twice; it is sent once"),
                Severity::Warning,
            );
        } else {
            text.push_str(hash);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            let i = u32::try_from(ends.len() - 1).unwrap_or(u32::MAX);
            let hasher = &self.hasher;
            distinct.insert_unique(h, i, |&j| hasher.hash_one(Current::item(text, ends, j)));
            if valid && !is_ulid_shaped(hash) {
                found.odd += 1;
                if found.odd <= HASH_SHAPE_WARNINGS {
                    found.push(
                        item_path(path, index),
                        pos,
                        format!(
                            "hash `{hash}` is not shaped like IPRoyal's 26-character user hashes \
                             (e.g. 01H7YCG0R9GYY1YCPS2S4QA6WB); check it is a residential user hash"
                        ),
                        Severity::Warning,
                    );
                }
            }
        }
        if self.keep {
            list.hashes.push(hash.to_owned());
        }
    }

    fn end(&mut self) {
        if let Some(cur) = self.current.take() {
            self.lists.insert(cur.path, cur.list);
            self.spare = Some((cur.text, cur.ends, cur.distinct));
        }
    }

    fn clear(&mut self) {
        *self = HashLists::new(self.keep);
    }
}
