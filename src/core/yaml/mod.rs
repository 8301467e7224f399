//! YAML text → `serde_json::Value` plus a parallel tree of source positions.
//!
//! The schema validator and serde both want a JSON value, while every diagnostic
//! must name a line and column. Building both trees from one pass over the
//! parser's events keeps them in lock-step: any JSON path that exists in the
//! value can be turned into a position, whatever produced the path (the schema
//! validator, a semantic check, or serde).
//!
//! Two scanners produce the events: `fast`, a line scanner for the YAML that
//! configs are written in, and saphyr-parser for everything else (`fast`
//! bails out to it, so saphyr decides every file `fast` does not fully
//! understand). `build` turns events into the value; lists a [`ListSink`]
//! asks for (a config's hashes) go to it item by item instead, with their
//! positions, so a million hashes never become a million `Value`s.
//! `emit` writes YAML back (for the status file); `utf8` streams a file
//! into saphyr.
//!
//! Scalars are resolved with the YAML 1.2 core schema (`scalar`), tags by
//! their exact YAML 1.2 meaning or refused. Anchors and aliases of any node
//! are read as YAML 1.2 reads them, lists under a sink's paths included.
//! Duplicate keys are errors, because with "last one wins" a reviewer can
//! read one value while resetd acts on another. A reviewed file
//! ([`Dialect::Reviewed`]) may also not read two ways: `text` refuses
//! characters and directives that do, `scalar::two_readings` plain scalars
//! that YAML 1.1 reads as another value (`off`, `010`, `<<` merge keys).

use saphyr_parser::{BufferedInput, Input, Parser, ScalarStyle, Span};
use serde_json::Value;

mod build;
mod emit;
mod fast;
#[cfg(test)]
mod fast_tests;
mod inline;
mod scalar;
mod text;
mod utf8;

use build::{Builder, Event};
pub use emit::to_yaml;
use fast::{Fast, Stop};
use scalar::{Core, Tag};
use text::Tap;
pub use utf8::EncodingError;
use utf8::Utf8Chars;

/// How strictly a file is read.
#[derive(Clone, Copy)]
pub enum Dialect<'a> {
    /// A file resetd wrote (the status): YAML 1.2, as it is.
    Plain,
    /// A file people review (a config): YAML 1.2, and nothing in it may read
    /// two ways — characters YAML 1.1 tools take for line breaks,
    /// bidirectional controls, characters YAML forbids, a stray byte order
    /// mark, `%YAML` other than 1.2, plain scalars YAML 1.1 reads as
    /// another type or value. `field` tells the format's own field names:
    /// as mapping keys they mean that field whatever type YAML 1.1 gives
    /// them (`on:`).
    Reviewed { field: &'a dyn Fn(&str) -> bool },
}

/// A 1-based line and column, as editors and CI annotations count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        let m = span.start;
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
        }
    }
}

/// Positions of every node of a parsed document, shaped like the value.
#[derive(Debug, Clone, PartialEq)]
pub enum Loc {
    Scalar(Pos),
    Seq(Pos, Vec<Loc>),
    /// A sequence of scalars only: 8 bytes an item instead of a whole `Loc`.
    Scalars(Pos, Vec<Pos>),
    /// Each key with the key's own position and the value's locations,
    /// sorted by key.
    Map(Pos, Vec<(String, Pos, Loc)>),
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The entry for `key` in a `Loc::Map`'s sorted entries.
fn entry<'a>(entries: &'a [(String, Pos, Loc)], key: &str) -> Option<&'a (String, Pos, Loc)> {
    entries
        .binary_search_by(|(name, _, _)| name.as_str().cmp(key))
        .ok()
        .map(|i| &entries[i])
}

impl Loc {
    pub fn pos(&self) -> Pos {
        match self {
            Loc::Scalar(p) | Loc::Seq(p, _) | Loc::Scalars(p, _) | Loc::Map(p, _) => *p,
        }
    }

    /// Where the node at `path` starts. A path that leaves the tree (a missing
    /// required field, say) resolves to the deepest node that exists, which is
    /// where the user has to add something.
    pub fn find(&self, path: &[Seg]) -> Pos {
        let mut node = self;
        for seg in path {
            let next = match (node, seg) {
                (Loc::Scalars(_, items), Seg::Index(i)) => {
                    return items.get(*i).copied().unwrap_or(node.pos());
                }
                (Loc::Seq(_, items), Seg::Index(i)) => items.get(*i),
                (Loc::Map(_, entries), Seg::Key(k)) => entry(entries, k).map(|e| &e.2),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos()
    }

    /// Position of the key `key` in the mapping at `path` (for "unknown field"
    /// errors, which are about the key, not the value).
    pub fn find_key(&self, path: &[Seg], key: &str) -> Option<Pos> {
        let mut node = self;
        for seg in path {
            node = match (node, seg) {
                (Loc::Seq(_, items), Seg::Index(i)) => items.get(*i)?,
                (Loc::Map(_, entries), Seg::Key(k)) => &entry(entries, k)?.2,
                _ => return None,
            };
        }
        match node {
            Loc::Map(_, entries) => entry(entries, key).map(|e| e.1),
            _ => None,
        }
    }
}

/// An item of a list given to a [`ListSink`].
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A string (quoted, or plain and not a number, boolean or null).
    Str(&'a str),
    /// Anything else, as the value it resolves to.
    Other(&'a Value),
}

/// Receives, item by item, the lists at the paths it wants, in place of the
/// document value (which keeps an empty list there).
pub trait ListSink {
    /// Whether the list at `path` goes to the sink.
    fn wants(&self, path: &[Seg]) -> bool;
    /// A list at `path`, starting at `pos`, begins.
    fn begin(&mut self, path: &[Seg], pos: Pos);
    /// The next item of the list.
    fn item(&mut self, item: Item<'_>, pos: Pos);
    /// The list ended.
    fn end(&mut self);
    /// Forget everything received: the file is read again from the start.
    fn clear(&mut self);
}

/// Most nodes that aliases may copy into one document. Configs come from pull
/// requests, which may be hostile: without a bound, a "billion laughs"
/// document of nested aliases expands exponentially while being validated.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// Most bytes of scalar text that aliases may copy into one document: a
/// megabyte scalar aliased a thousand times is few nodes but gigabytes.
pub const MAX_ALIAS_BYTES: usize = 16 << 20;

/// Deepest nesting of collections (block and flow alike, aliases included).
/// Nothing deeper is ever built, so no recursive walk, clone or drop of the
/// tree can run out of stack however the file is written.
pub const MAX_DEPTH: usize = 64;

/// The tag of a node as the builder needs it: the non-specific `!`, a
/// core-schema tag, or any other (refused, as written, for the message).
fn tag_of(tag: Option<&saphyr_parser::Tag>) -> Tag {
    let Some(tag) = tag else {
        return Tag::None;
    };
    if tag.handle.is_empty() && tag.suffix == "!" {
        return Tag::NonSpecific;
    }
    if tag.is_yaml_core_schema() {
        if let Some(core) = Core::from_suffix(&tag.suffix) {
            return Tag::Core(core);
        }
        return Tag::Foreign(format!("!!{}", tag.suffix));
    }
    Tag::Foreign(format!("{}{}", tag.handle, tag.suffix))
}

/// The error for a refused tag.
fn quote_tag(shown: &str) -> String {
    format!(
        "YAML tag {} is not supported (only the core schema's !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)",
        crate::diagnostic::quote(shown)
    )
}

/// A YAML problem that prevents building the document at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub path: Vec<Seg>,
    pub message: String,
}

/// A parsed document: the value and where each of its nodes starts.
pub type Parsed = Result<(Value, Loc), SyntaxError>;

/// Parse one YAML document as [`Dialect::Plain`] (a status file). An empty
/// file is an empty mapping, so that the schema reports the missing
/// `apiVersion` instead of a confusing "null".
pub fn parse(text: &str) -> Parsed {
    parse_with(text, None, Dialect::Plain)
}

/// [`parse`] as `dialect` says, handing the lists `sink` wants to it.
pub fn parse_with(text: &str, mut sink: Option<&mut dyn ListSink>, dialect: Dialect) -> Parsed {
    if let Dialect::Reviewed { .. } = dialect
        && let Some(e) = text::check_str(text)
    {
        return Err(e);
    }
    {
        let mut builder = Builder::new(sink.as_deref_mut()).with_dialect(dialect);
        match Fast::scan_str(text, &mut builder) {
            Ok(()) => return Ok(builder.finish()),
            Err(Stop::Error(e)) => return Err(e),
            Err(Stop::Bail) => {}
        }
    }
    if let Some(sink) = sink.as_deref_mut() {
        sink.clear();
    }
    saphyr(
        Parser::new_from_str(text),
        Builder::new(sink).with_dialect(dialect),
    )
}

/// Parse one YAML document from a file, never holding the whole text (a
/// config can be tens of megabytes), handing the lists `sink` wants to it.
/// `open` opens the file; it is called again when the fast scanner leaves the
/// file to saphyr. Also returns the sha256 digest of the file's bytes (all of
/// them, even when the document is refused early). An I/O error or invalid
/// UTF-8 is the outer `Err`.
/// What a document's aliases copied: nodes and bytes of scalar text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AliasUse {
    pub nodes: usize,
    pub bytes: usize,
}

impl AliasUse {
    /// The sum of two documents' use, for a bound across both.
    pub fn plus(self, other: AliasUse) -> AliasUse {
        AliasUse {
            nodes: self.nodes.saturating_add(other.nodes),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }

    /// True past [`MAX_ALIAS_NODES`] or [`MAX_ALIAS_BYTES`].
    pub fn past_bound(self) -> bool {
        self.nodes > MAX_ALIAS_NODES || self.bytes > MAX_ALIAS_BYTES
    }
}

pub fn parse_file<R: std::io::Read>(
    open: impl FnMut() -> std::io::Result<R>,
    sink: Option<&mut dyn ListSink>,
    dialect: Dialect,
) -> std::io::Result<(Parsed, String)> {
    parse_file_metered(open, sink, dialect, None)
}

/// [`parse_file`], reporting what its aliases copied to `meter`.
pub fn parse_file_metered<R: std::io::Read>(
    mut open: impl FnMut() -> std::io::Result<R>,
    mut sink: Option<&mut dyn ListSink>,
    dialect: Dialect,
    meter: Option<&std::cell::Cell<AliasUse>>,
) -> std::io::Result<(Parsed, String)> {
    // Every byte goes through a `Tap`, which hashes it and checks the
    // text; its verdict comes first, whoever read the file and wherever
    // they stopped.
    let verdict = |parsed: Parsed, problem: Option<SyntaxError>| match (dialect, problem) {
        (Dialect::Reviewed { .. }, Some(e)) => Err(e),
        _ => parsed,
    };
    {
        let mut tap = Tap::new(open()?);
        let mut builder = Builder::new(sink.as_deref_mut())
            .with_dialect(dialect)
            .with_meter(meter);
        let parsed = match Fast::scan_reader(&mut tap, &mut builder)? {
            Ok(()) => Some(Ok(builder.finish())),
            Err(Stop::Error(e)) => Some(Err(e)),
            Err(Stop::Bail) => None,
        };
        if let Some(parsed) = parsed {
            let (hasher, problem) = tap.finish()?;
            return Ok((
                verdict(parsed, problem),
                crate::digest::finish_digest(hasher),
            ));
        }
    }
    if let Some(sink) = sink.as_deref_mut() {
        sink.clear();
    }
    if let Some(meter) = meter {
        meter.set(AliasUse::default());
    }
    let mut tap = Tap::new(open()?);
    let parsed = {
        let mut chars = Utf8Chars::new(&mut tap);
        let parsed = saphyr(
            Parser::new(BufferedInput::new(&mut chars)),
            Builder::new(sink).with_dialect(dialect).with_meter(meter),
        );
        if let Some(e) = chars.error.take() {
            return Err(e);
        }
        parsed
    };
    // A refused document stops the parser early; the digest covers the
    // whole file all the same (the daemon compares it with the file's).
    let (hasher, problem) = tap.finish()?;
    Ok((
        verdict(parsed, problem),
        crate::digest::finish_digest(hasher),
    ))
}

/// Feed saphyr's events to the builder.
fn saphyr<'i, T: Input>(mut parser: Parser<'i, T>, mut builder: Builder) -> Parsed {
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| SyntaxError {
            pos: Pos {
                line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                column: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
            },
            path: Vec::new(),
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let pos = Pos::from_span(&span);
        let event = match event {
            saphyr_parser::Event::DocumentStart(_) => Event::DocumentStart,
            saphyr_parser::Event::Scalar(text, style, anchor, tag) => Event::Scalar {
                plain: style == ScalarStyle::Plain,
                tag: tag_of(tag.as_deref()),
                text,
                anchor,
            },
            saphyr_parser::Event::SequenceStart(anchor, tag) => Event::SequenceStart {
                anchor,
                tag: tag_of(tag.as_deref()),
            },
            saphyr_parser::Event::MappingStart(anchor, tag) => Event::MappingStart {
                anchor,
                tag: tag_of(tag.as_deref()),
            },
            saphyr_parser::Event::SequenceEnd => Event::SequenceEnd,
            saphyr_parser::Event::MappingEnd => Event::MappingEnd,
            saphyr_parser::Event::Alias(id) => Event::Alias(id),
            saphyr_parser::Event::StreamEnd => break,
            _ => continue,
        };
        builder.event(event, pos)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn core_schema_scalars() {
        let (v, _) = parse(
            "a: on\nb: 12\nc: 1.5\nd: ~\ne: 'true'\nf: 0x1F\ng: 1e3\nh: 2026-12-01T02:00:00Z\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": "on", "b": 12, "c": 1.5, "d": null, "e": "true", "f": 31, "g": 1000.0, "h": "2026-12-01T02:00:00Z"})
        );
    }

    #[test]
    fn positions_follow_paths() {
        let text = "resets:\n  - id: a\n    groups: [x, y]\n";
        let (_, loc) = parse(text).unwrap();
        let p = loc.find(&[
            Seg::Key("resets".into()),
            Seg::Index(0),
            Seg::Key("groups".into()),
            Seg::Index(1),
        ]);
        assert_eq!(
            p,
            Pos {
                line: 3,
                column: 17
            }
        );
        let k = loc.find_key(&[Seg::Key("resets".into()), Seg::Index(0)], "groups");
        assert_eq!(k, Some(Pos { line: 3, column: 5 }));
    }

    #[test]
    fn duplicate_key_is_an_error_at_the_second_key() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn anchors_and_aliases_copy_values() {
        let (v, _) = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(v, json!({"a": [1, 2], "b": [1, 2]}));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{}", err.message);
    }

    #[test]
    fn nesting_is_bounded_block_and_flow() {
        let ok = format!("{}x", "- ".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}x", "- ".repeat(MAX_DEPTH + 1));
        let err = parse(&deep).unwrap_err();
        assert!(
            err.message.contains("nesting deeper than 64 levels"),
            "{}",
            err.message
        );
        assert_eq!(err.pos.line, 1);
        let flow = format!("a:\n  b: {}{}\n", "[".repeat(200), "]".repeat(200));
        let err = parse(&flow).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{}", err.message);
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn aliases_cannot_deepen_past_the_bound() {
        let inner = format!("{}x{}", "[".repeat(40), "]".repeat(40));
        let text = format!("a: &a {inner}\nb: {}*a{}\n", "[".repeat(30), "]".repeat(30));
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting deeper"), "{}", err.message);
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn alias_bytes_are_bounded() {
        let big = "x".repeat(1 << 20);
        let mut text = format!("a: &a {big}\nb:\n");
        for _ in 0..40 {
            text.push_str("  - *a\n");
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("MiB of text"), "{}", err.message);
        assert_eq!(err.pos.line, 2 + 17);
    }

    #[test]
    fn only_core_schema_tags_are_accepted() {
        let (v, _) = parse("a: !!str 12\nb: !!int 3\nc: ! x\nd: !!map {}\ne: !!seq []\n").unwrap();
        assert_eq!(v, json!({"a": "12", "b": 3, "c": "x", "d": {}, "e": []}));
        for (tag, text) in [
            ("!ruby/object", "a: 1\nb: !ruby/object {}\n"),
            (
                "!!python/object/apply",
                "a: 1\nb: !!python/object/apply [x]\n",
            ),
            ("!!set", "a: 1\nb: !!set {x}\n"),
            ("!foo", "a: 1\nb: !foo x\n"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.message.contains(&format!("`{tag}`")),
                "{tag}: {}",
                err.message
            );
            assert_eq!(err.pos.line, 2, "{tag}");
        }
    }

    #[test]
    fn empty_text_is_an_empty_mapping() {
        let (v, _) = parse("").unwrap();
        assert_eq!(v, json!({}));
    }
}
