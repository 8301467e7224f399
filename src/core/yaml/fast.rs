//! A line scanner for the YAML that configs are written in: block mappings
//! and sequences indented with spaces, one-line scalars (plain, `'…'`,
//! `"…"` without escapes) and one-line flow collections, comments.
//!
//! saphyr's scanner reads ~90 MB/s, slower than the whole rest of
//! validation; this one reads a line at a time and produces exactly the
//! events saphyr would, at several times the speed. Anything outside that
//! subset (anchors, tags, block scalars, multi-line scalars or flows, tabs,
//! escapes, documents markers, `? ` keys, CR, control characters, any
//! syntax error) makes it *bail*: the caller then reads the file again with
//! saphyr, which decides. So this scanner never reports a syntax error and
//! never accepts a file saphyr refuses; `fast_tests.rs` holds it to saphyr's
//! events on thousands of generated documents.
//!
//! A line's events are emitted only once the whole line is understood, and
//! a value is known to be complete only when the next line is seen, as in
//! saphyr: so the builder's own errors (duplicate keys, depth) surface at
//! the same event either way.

use std::borrow::Cow;
use std::io::Read;

use super::build::{Builder, Event};
use super::inline::{Bail, Inline, Style, Tok, bail, skip_spaces};
use super::scalar::Tag;
use super::{Pos, SyntaxError};

/// Why scanning stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// Outside the subset: read the file with saphyr instead.
    Bail,
    /// The builder refused the document (same error saphyr's events give).
    Error(SyntaxError),
}

impl From<SyntaxError> for Stop {
    fn from(e: SyntaxError) -> Self {
        Stop::Error(e)
    }
}

impl From<Bail> for Stop {
    fn from(_: Bail) -> Self {
        Stop::Bail
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Map,
    Seq,
}

/// An open block collection and the column of its entries.
#[derive(Debug, Clone, Copy)]
struct Block {
    kind: Kind,
    indent: usize,
}

/// What the lines so far leave open.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// Nothing read yet.
    Start,
    /// The last value is complete. A deeper line would continue it (a
    /// multi-line scalar) or be an error; it matches no open collection,
    /// so it bails.
    Done,
    /// `key:` with nothing after it, the key at column `indent`: a deeper
    /// line opens its value, anything else makes it null (at the colon).
    Empty {
        indent: usize,
        colon: Pos,
        /// `key: &a`: the anchor of the value below (0: none) and where it
        /// stands (the value's position, as saphyr gives it).
        anchor: usize,
        anchor_at: Pos,
    },
}

/// The parts of an entry line after its indentation.
struct Entry {
    kind: Kind,
    /// Column of the key of a `- key: value` line (a mapping in the item).
    compact: Option<usize>,
    /// Byte offset of the colon of a `key:` with no value on the line.
    empty: Option<usize>,
}

pub(super) struct Fast {
    stack: Vec<Block>,
    pending: Pending,
    line: u32,
    /// The line being read.
    inline: Inline,
    /// The builder refused the plain scalar that ended the last line; the
    /// next content line may continue it (a multi-line scalar, which only
    /// saphyr reads), so the refusal waits for that line to be seen.
    deferred: Option<SyntaxError>,
    /// Tokens of the line handed to the builder so far (the last one is
    /// the one it refused, when it refused one).
    emitted: usize,
    /// Anchor ids by name, numbered as saphyr numbers them (from 1, a new
    /// id for each definition, a redefinition shadowing the last).
    anchors: std::collections::HashMap<String, usize>,
    next_anchor: usize,
    /// An anchor the line ended with (`key: &a`), for the node below, and
    /// where it stands.
    trailing_anchor: (usize, Pos),
    /// (line, byte offset, its column) of the last position worked out.
    column_cache: std::cell::Cell<(u32, usize, usize)>,
}

impl Fast {
    pub(super) fn new() -> Self {
        Fast {
            stack: Vec::new(),
            pending: Pending::Start,
            line: 0,
            inline: Inline::new(),
            deferred: None,
            emitted: 0,
            anchors: std::collections::HashMap::new(),
            next_anchor: 1,
            trailing_anchor: (0, Pos::default()),
            column_cache: std::cell::Cell::new((0, 0, 0)),
        }
    }

    /// Scan a whole text.
    pub(super) fn scan_str(text: &str, b: &mut Builder) -> Result<(), Stop> {
        if text.starts_with('\u{feff}') || !plain_text(text) {
            return Err(Stop::Bail);
        }
        let mut fast = Fast::new();
        let mut lines = text.split('\n');
        let last = if text.ends_with('\n') {
            lines.next_back();
            None
        } else {
            lines.next_back()
        };
        for line in lines.chain(last) {
            fast.line(line, b)?;
        }
        fast.finish(b)
    }

    /// Scan a file as it is read. Reading stops at a builder error or a
    /// bail (the caller reads the rest, or again).
    pub(super) fn scan_reader(
        mut reader: impl Read,
        b: &mut Builder,
    ) -> std::io::Result<Result<(), Stop>> {
        let mut fast = Fast::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut filled = 0;
        let mut first = true;
        loop {
            if filled == buf.len() {
                // A line longer than the buffer.
                buf.resize(buf.len() * 2, 0);
            }
            let n = match reader.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            filled += n;
            if first && (filled >= 3 || n == 0) {
                first = false;
                // Byte order marks: saphyr skips UTF-8's; the loader
                // explains UTF-16's.
                if buf[..filled].starts_with(&[0xEF, 0xBB, 0xBF])
                    || buf[..filled].starts_with(&[0xFF, 0xFE])
                    || buf[..filled].starts_with(&[0xFE, 0xFF])
                {
                    return Ok(Err(Stop::Bail));
                }
            }
            let complete = if n == 0 {
                filled
            } else {
                match buf[..filled].iter().rposition(|c| *c == b'\n') {
                    Some(p) => p + 1,
                    None => continue,
                }
            };
            let Ok(text) = std::str::from_utf8(&buf[..complete]) else {
                return Ok(Err(Stop::Bail));
            };
            if !plain_text(text) {
                return Ok(Err(Stop::Bail));
            }
            let body = text.strip_suffix('\n').unwrap_or(text);
            if !text.is_empty() {
                for line in body.split('\n') {
                    if let Err(stop) = fast.line(line, b) {
                        return Ok(Err(stop));
                    }
                }
            }
            buf.copy_within(complete..filled, 0);
            filled -= complete;
            if n == 0 {
                break;
            }
        }
        Ok(fast.finish(b))
    }

    /// The position of byte `at` of the current line. Counted on from the
    /// last position asked for when `at` is past it, so a line of a
    /// hundred thousand items costs linear time, not quadratic.
    fn pos(&self, text: &str, at: usize) -> Pos {
        // Most positions are near the start of a short line.
        if at <= 128 && text.as_bytes()[..at].is_ascii() {
            return Pos {
                line: self.line,
                column: u32::try_from(at + 1).unwrap_or(u32::MAX),
            };
        }
        let (from, column) = match self.column_cache.get() {
            (line, from, column) if line == self.line && from <= at => (from, column),
            _ => (0, 0),
        };
        let between = &text.as_bytes()[from..at];
        let column = column
            + if between.is_ascii() {
                between.len()
            } else {
                text[from..at].chars().count()
            };
        self.column_cache.set((self.line, at, column));
        Pos {
            line: self.line,
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }

    /// Read one line (without its `\n`).
    fn line(&mut self, text: &str, b: &mut Builder) -> Result<(), Stop> {
        self.line += 1;
        let bytes = text.as_bytes();
        let indent = bytes.iter().take_while(|c| **c == b' ').count();
        let rest = &bytes[indent..];
        if rest.is_empty() || rest[0] == b'#' {
            return Ok(());
        }
        if indent == 0 && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
            return Err(Stop::Bail);
        }
        if let Some(e) = self.deferred.take() {
            // Deeper than the entry it ended: a continuation, saphyr's to read.
            let continues = self.stack.last().is_none_or(|top| indent > top.indent);
            if continues {
                return Err(Stop::Bail);
            }
            // saphyr reads the next token before it hands the scalar on: a
            // line it cannot read is its error, not the scalar's.
            self.inline.toks.clear();
            self.entry(bytes, indent)?;
            return Err(Stop::Error(e));
        }
        self.inline.toks.clear();
        let entry = self.entry(bytes, indent)?;
        // Where the line belongs is decided before any of its events goes
        // out: a deeper line opens the pending key's value; any other must
        // be the next entry of an open collection (their indents increase
        // up the stack).
        let opened = match self.pending {
            Pending::Start => {
                if indent != 0 || entry.kind != Kind::Map {
                    return Err(Stop::Bail);
                }
                true
            }
            Pending::Empty { indent: k, .. } => indent > k,
            Pending::Done => false,
        };
        let keep = self.stack.iter().take_while(|b| b.indent <= indent).count();
        if !opened {
            match keep.checked_sub(1).map(|i| self.stack[i]) {
                Some(top) if top.indent == indent && top.kind == entry.kind => {}
                _ => return Err(Stop::Bail),
            }
        }
        match self.pending {
            Pending::Start => b.event(Event::DocumentStart, self.pos(text, 0))?,
            Pending::Empty { .. } if !opened => self.pending_null(b)?,
            Pending::Empty { .. } | Pending::Done => {}
        }
        if opened {
            let (anchor, anchor_at) = match self.pending {
                Pending::Empty {
                    anchor, anchor_at, ..
                } => (anchor, anchor_at),
                _ => (0, Pos::default()),
            };
            let start = match entry.kind {
                Kind::Map => Event::MappingStart {
                    anchor,
                    tag: Tag::None,
                },
                Kind::Seq => Event::SequenceStart {
                    anchor,
                    tag: Tag::None,
                },
            };
            let at = if anchor == 0 {
                self.pos(text, indent)
            } else {
                anchor_at
            };
            b.event(start, at)?;
            self.stack.push(Block {
                kind: entry.kind,
                indent,
            });
        } else {
            while self.stack.len() > keep
                && let Some(top) = self.stack.pop()
            {
                b.event(end(top.kind), self.pos(text, indent))?;
            }
        }
        if let Err(e) = self.emit(text, b) {
            // A refused plain scalar at the end of the line may yet be the
            // first line of a longer one.
            match (e, self.inline.toks.last()) {
                (
                    Stop::Error(e),
                    Some(Tok::Scalar {
                        style: Style::Plain,
                        ..
                    }),
                ) if entry.empty.is_none() && self.emitted == self.inline.toks.len() => {
                    self.deferred = Some(e);
                    self.pending = Pending::Done;
                    return Ok(());
                }
                (e, _) => return Err(e),
            }
        }
        let owner = match entry.compact {
            Some(key) => {
                self.stack.push(Block {
                    kind: Kind::Map,
                    indent: key,
                });
                key
            }
            None => indent,
        };
        self.pending = match entry.empty {
            Some(colon) => Pending::Empty {
                indent: owner,
                colon: self.pos(text, colon),
                anchor: self.trailing_anchor.0,
                anchor_at: self.trailing_anchor.1,
            },
            None => Pending::Done,
        };
        Ok(())
    }

    /// A pending empty value (`key:` with nothing below) is null: at its
    /// anchor when it has one, as saphyr places it, else at the colon.
    fn pending_null(&self, b: &mut Builder) -> Result<(), Stop> {
        if let Pending::Empty {
            colon,
            anchor,
            anchor_at,
            ..
        } = self.pending
        {
            let at = if anchor == 0 { colon } else { anchor_at };
            b.event(null(anchor), at)?;
        }
        Ok(())
    }

    /// The end of the text: a pending empty value is null; every open
    /// collection closes.
    fn finish(&mut self, b: &mut Builder) -> Result<(), Stop> {
        if let Some(e) = self.deferred.take() {
            return Err(Stop::Error(e));
        }
        self.pending_null(b)?;
        let at = Pos {
            line: self.line + 1,
            column: 1,
        };
        while let Some(top) = self.stack.pop() {
            b.event(end(top.kind), at)?;
        }
        Ok(())
    }

    fn emit(&mut self, text: &str, b: &mut Builder) -> Result<(), Stop> {
        self.emitted = 0;
        let mut anchor = 0;
        let mut anchor_at = 0;
        for i in 0..self.inline.toks.len() {
            self.emitted = i + 1;
            let tok = self.inline.toks[i];
            let (event, at) = match tok {
                Tok::Anchor { at, start, end } => {
                    let id = self.next_anchor;
                    self.next_anchor += 1;
                    self.anchors.insert(text[start..end].to_owned(), id);
                    anchor = id;
                    anchor_at = at;
                    continue;
                }
                Tok::Alias { at, start, end } => match self.anchors.get(&text[start..end]) {
                    Some(id) => (Event::Alias(*id), at),
                    // saphyr words the error.
                    None => return Err(Stop::Bail),
                },
                Tok::Scalar {
                    at,
                    start,
                    end,
                    style,
                } => {
                    let raw = &text[start..end];
                    let text = match style {
                        Style::SingleEscaped => Cow::Owned(raw.replace("''", "'")),
                        Style::Plain | Style::Quoted => Cow::Borrowed(raw),
                    };
                    let event = Event::Scalar {
                        text,
                        plain: style == Style::Plain,
                        anchor: std::mem::take(&mut anchor),
                        tag: Tag::None,
                    };
                    (event, at)
                }
                Tok::SeqStart(at) => (
                    Event::SequenceStart {
                        anchor: std::mem::take(&mut anchor),
                        tag: Tag::None,
                    },
                    at,
                ),
                Tok::MapStart(at) => (
                    Event::MappingStart {
                        anchor: std::mem::take(&mut anchor),
                        tag: Tag::None,
                    },
                    at,
                ),
                Tok::SeqEnd => (Event::SequenceEnd, 0),
                Tok::MapEnd => (Event::MappingEnd, 0),
            };
            // An anchored node starts at its anchor.
            let at = match event {
                Event::Scalar { anchor: a, .. }
                | Event::SequenceStart { anchor: a, .. }
                | Event::MappingStart { anchor: a, .. }
                    if a != 0 =>
                {
                    anchor_at
                }
                _ => at,
            };
            b.event(event, self.pos(text, at))?;
        }
        self.trailing_anchor = (anchor, self.pos(text, anchor_at));
        Ok(())
    }

    /// Parse an entry line (`key: …` or `- …`) into `self.toks`.
    fn entry(&mut self, s: &[u8], indent: usize) -> Result<Entry, Bail> {
        if s[indent] == b'-' {
            if s.get(indent + 1) != Some(&b' ') {
                return bail();
            }
            let at = skip_spaces(s, indent + 1);
            // A bare `-`, or `- - x`: saphyr's.
            if at == s.len() || s[at] == b'#' || (s[at] == b'-' && s.get(at + 1) == Some(&b' ')) {
                return bail();
            }
            if let Some(colon) = self.inline.seq_item(s, at)? {
                self.inline.toks.insert(0, Tok::MapStart(at));
                let empty = self.inline.value(s, colon + 1)?;
                return Ok(Entry {
                    kind: Kind::Seq,
                    compact: Some(at),
                    empty,
                });
            }
            return Ok(Entry {
                kind: Kind::Seq,
                compact: None,
                empty: None,
            });
        }
        let Some(colon) = self.inline.key(s, indent)? else {
            return bail();
        };
        let empty = self.inline.value(s, colon + 1)?;
        Ok(Entry {
            kind: Kind::Map,
            compact: None,
            empty,
        })
    }
}

/// No control characters (tabs and CR included) and no byte order mark:
/// text the line scanner can read. Checked a block at a time, which the
/// compiler vectorises.
fn plain_text(text: &str) -> bool {
    let clean = text.as_bytes().chunks(64).all(|block| {
        !block.iter().fold(false, |bad, &c| {
            bad | ((c < 0x20) & (c != b'\n')) | (c == 0x7f)
        })
    });
    clean && !text.contains('\u{feff}')
}

fn null(anchor: usize) -> Event<'static> {
    Event::Scalar {
        text: Cow::Borrowed(""),
        plain: true,
        anchor,
        tag: Tag::None,
    }
}

fn end(kind: Kind) -> Event<'static> {
    match kind {
        Kind::Map => Event::MappingEnd,
        Kind::Seq => Event::SequenceEnd,
    }
}
