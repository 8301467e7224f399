//! YAML text → `serde_json::Value` plus a parallel tree of source positions.
//!
//! The schema validator and serde both want a JSON value, while every diagnostic
//! must name a line and column. Building both trees from one pass over the
//! parser's events keeps them in lock-step: any JSON path that exists in the
//! value can be turned into a position, whatever produced the path (the schema
//! validator, a semantic check, or serde).
//!
//! `emit` writes YAML back (for the status file); `utf8` streams a file
//! into the parser.
//!
//! Scalars are resolved with the YAML 1.2 core schema (so `on`/`yes` stay
//! strings, unlike YAML 1.1). Anchors and aliases are supported; merge keys
//! (`<<`) are not and surface as unknown fields. Duplicate keys are errors,
//! because with "last one wins" a reviewer can read one value while resetd acts
//! on another.

use std::collections::HashMap;

use saphyr_parser::{BufferedInput, Event, Input, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

mod emit;
mod utf8;

pub use emit::to_yaml;
pub use utf8::EncodingError;
use utf8::Utf8Chars;

/// A 1-based line and column, as editors and CI annotations count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone)]
pub enum Loc {
    Scalar(Pos),
    Seq(Pos, Vec<Loc>),
    /// A sequence of scalars only (a list of hashes): 8 bytes an item
    /// instead of a whole `Loc`.
    Scalars(Pos, Vec<Pos>),
    /// Each key with the key's own position and the value's locations.
    Map(Pos, Vec<(String, Pos, Loc)>),
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
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
                (Loc::Map(_, entries), Seg::Key(k)) => {
                    entries.iter().find(|(name, _, _)| name == k).map(|e| &e.2)
                }
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
                (Loc::Map(_, entries), Seg::Key(k)) => {
                    &entries.iter().find(|(name, _, _)| name == k)?.2
                }
                _ => return None,
            };
        }
        match node {
            Loc::Map(_, entries) => entries.iter().find(|(k, _, _)| k == key).map(|e| e.1),
            _ => None,
        }
    }
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

/// The tags of the YAML 1.2 core schema (after `!!` is resolved); any other tag
/// (`!ruby/object`, `!!python/object/apply`, `!!set`, a local `!foo`) is an
/// error rather than silently read as a plain value.
const CORE_TAGS: [&str; 7] = ["str", "int", "float", "bool", "null", "map", "seq"];

/// `None` for no tag, the non-specific `!` or a core-schema tag; otherwise the
/// tag as written, for the error message.
fn foreign_tag(tag: Option<&saphyr_parser::Tag>) -> Option<String> {
    let tag = tag?;
    if tag.handle.is_empty() && tag.suffix == "!" {
        return None;
    }
    if tag.is_yaml_core_schema() && CORE_TAGS.contains(&tag.suffix.as_str()) {
        return None;
    }
    let shown = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    Some(shown)
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

/// Parse one YAML document. An empty file is an empty mapping, so that the
/// schema reports the missing `apiVersion` instead of a confusing "null".
pub fn parse(text: &str) -> Parsed {
    Builder::new(Parser::new_from_str(text), true).document()
}

/// Parse one YAML document from a reader, never holding the whole text (a
/// config can be tens of megabytes). Also returns the sha256 digest of the
/// bytes read. An I/O error or invalid UTF-8 is the outer `Err`.
///
/// Without `item_positions`, items of lists of scalars (hashes) get no
/// position of their own and resolve to their list's: 8 bytes a hash saved,
/// for callers that parse again with positions when there is something to
/// report.
pub fn parse_reader(
    reader: impl std::io::Read,
    item_positions: bool,
) -> std::io::Result<(Parsed, String)> {
    let mut chars = Utf8Chars::new(reader);
    let parsed =
        Builder::new(Parser::new(BufferedInput::new(&mut chars)), item_positions).document();
    if let Some(e) = chars.error.take() {
        return Err(e);
    }
    Ok((parsed, crate::config::finish_digest(chars.hasher)))
}

/// Positions of a sequence's items: plain positions while every item is a
/// scalar (lists of hashes), whole `Loc`s once one is not.
enum SeqLocs {
    Scalars(Vec<Pos>),
    Mixed(Vec<Loc>),
}

impl SeqLocs {
    fn push(&mut self, loc: Loc) {
        match (self, loc) {
            (SeqLocs::Scalars(items), Loc::Scalar(p)) => items.push(p),
            (this @ SeqLocs::Scalars(_), loc) => {
                let SeqLocs::Scalars(items) = std::mem::replace(this, SeqLocs::Mixed(Vec::new()))
                else {
                    return;
                };
                let mut mixed: Vec<Loc> = items.into_iter().map(Loc::Scalar).collect();
                mixed.push(loc);
                *this = SeqLocs::Mixed(mixed);
            }
            (SeqLocs::Mixed(items), loc) => items.push(loc),
        }
    }

    fn finish(self, pos: Pos) -> Loc {
        match self {
            SeqLocs::Scalars(items) => Loc::Scalars(pos, shrunk(items)),
            SeqLocs::Mixed(items) => Loc::Seq(pos, shrunk(items)),
        }
    }
}

/// Lists are built by pushing; trim the growth slack once they are done.
fn shrunk<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// How much an anchored node weighs when an alias copies it.
#[derive(Debug, Clone, Copy)]
struct Size {
    nodes: usize,
    /// Bytes of scalar text (keys included).
    bytes: usize,
    /// Collections nested in it, itself included (0 for a scalar).
    height: usize,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        /// `Builder::nodes` and `Builder::bytes` when the collection started,
        /// to size anchors.
        first_node: usize,
        first_byte: usize,
        /// Deepest nesting below this collection (0: only scalars).
        height: usize,
        values: Vec<Value>,
        locs: SeqLocs,
    },
    Map {
        pos: Pos,
        anchor: usize,
        first_node: usize,
        first_byte: usize,
        height: usize,
        values: Map<String, Value>,
        locs: Vec<(String, Pos, Loc)>,
        /// A key waiting for its value.
        key: Option<(String, Pos)>,
    },
}

struct Builder<'a, T: Input> {
    parser: Parser<'a, T>,
    stack: Vec<Frame>,
    /// Anchored nodes with their size, for aliases to copy.
    anchors: HashMap<usize, (Value, Loc, Size)>,
    root: Option<(Value, Loc)>,
    /// Nodes built so far, and how many of them aliases copied.
    nodes: usize,
    alias_nodes: usize,
    /// Bytes of scalar text built so far, and how many of them aliases copied.
    bytes: usize,
    alias_bytes: usize,
    /// Record a position for each item of a list of scalars.
    item_positions: bool,
}

impl<'a, T: Input> Builder<'a, T> {
    fn new(parser: Parser<'a, T>, item_positions: bool) -> Self {
        Builder {
            parser,
            item_positions,
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            nodes: 0,
            alias_nodes: 0,
            bytes: 0,
            alias_bytes: 0,
        }
    }

    fn path(&self) -> Vec<Seg> {
        self.stack
            .iter()
            .filter_map(|f| match f {
                Frame::Seq { values, .. } => Some(Seg::Index(values.len())),
                Frame::Map { key, .. } => key.as_ref().map(|(k, _)| Seg::Key(k.clone())),
            })
            .collect()
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos,
            path: self.path(),
            message: message.into(),
        }
    }

    fn document(mut self) -> Result<(Value, Loc), SyntaxError> {
        let mut documents = 0;
        while let Some(next) = self.parser.next_event() {
            let (event, span) = next.map_err(|e| SyntaxError {
                pos: Pos {
                    line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                    column: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
                },
                path: Vec::new(),
                message: format!("YAML syntax error: {}", e.info()),
            })?;
            let pos = Pos::from_span(&span);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(self.error(pos, "only one YAML document is allowed per file"));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.refuse_tag(tag.as_deref(), pos)?;
                    let bytes = text.len();
                    let forced_string = tag
                        .as_ref()
                        .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                    let value = if style == ScalarStyle::Plain && !forced_string {
                        resolve_plain(&text)
                    } else {
                        Value::String(text.into_owned())
                    };
                    self.nodes += 1;
                    self.bytes += bytes;
                    let size = Size {
                        nodes: 1,
                        bytes,
                        height: 0,
                    };
                    self.push(value, Loc::Scalar(pos), (anchor, size), pos)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.refuse_tag(tag.as_deref(), pos)?;
                    self.check_depth(1, pos)?;
                    self.stack.push(Frame::Seq {
                        pos,
                        anchor,
                        first_node: self.nodes,
                        first_byte: self.bytes,
                        height: 0,
                        values: Vec::new(),
                        locs: SeqLocs::Scalars(Vec::new()),
                    });
                }
                Event::MappingStart(anchor, tag) => {
                    self.refuse_tag(tag.as_deref(), pos)?;
                    self.check_depth(1, pos)?;
                    self.stack.push(Frame::Map {
                        pos,
                        anchor,
                        first_node: self.nodes,
                        first_byte: self.bytes,
                        height: 0,
                        values: Map::new(),
                        locs: Vec::new(),
                        key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (value, loc, anchor, (first_node, first_byte, height), start) =
                        match self.stack.pop() {
                            Some(Frame::Seq {
                                pos,
                                anchor,
                                first_node,
                                first_byte,
                                height,
                                values,
                                locs,
                            }) => (
                                Value::Array(shrunk(values)),
                                locs.finish(pos),
                                anchor,
                                (first_node, first_byte, height),
                                pos,
                            ),
                            Some(Frame::Map {
                                pos,
                                anchor,
                                first_node,
                                first_byte,
                                height,
                                values,
                                locs,
                                ..
                            }) => (
                                Value::Object(values),
                                Loc::Map(pos, locs),
                                anchor,
                                (first_node, first_byte, height),
                                pos,
                            ),
                            None => return Err(self.error(pos, "unbalanced YAML collection")),
                        };
                    self.nodes += 1;
                    let size = Size {
                        nodes: self.nodes - first_node,
                        bytes: self.bytes - first_byte,
                        height: height + 1,
                    };
                    self.push(value, loc, (anchor, size), start)?;
                }
                Event::Alias(id) => {
                    let size = self
                        .anchors
                        .get(&id)
                        .map(|a| a.2)
                        .ok_or_else(|| self.error(pos, "alias refers to an unknown anchor"))?;
                    self.alias_nodes += size.nodes;
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return Err(self.error(
                            pos,
                            format!("aliases expand to more than {MAX_ALIAS_NODES} nodes; refusing the document"),
                        ));
                    }
                    self.alias_bytes = self.alias_bytes.saturating_add(size.bytes);
                    if self.alias_bytes > MAX_ALIAS_BYTES {
                        return Err(self.error(
                            pos,
                            format!(
                                "aliases expand to more than {} MiB of text; refusing the document",
                                MAX_ALIAS_BYTES >> 20
                            ),
                        ));
                    }
                    self.check_depth(size.height, pos)?;
                    let (value, loc, _) = self
                        .anchors
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| self.error(pos, "alias refers to an unknown anchor"))?;
                    self.nodes += size.nodes;
                    self.bytes += size.bytes;
                    self.push(value, loc, (0, size), pos)?;
                }
                Event::StreamEnd => break,
                _ => {}
            }
        }
        Ok(self.root.unwrap_or_else(|| {
            (
                Value::Object(Map::new()),
                Loc::Map(Pos { line: 1, column: 1 }, Vec::new()),
            )
        }))
    }

    /// Refuse a tag outside the core schema, naming it.
    fn refuse_tag(&self, tag: Option<&saphyr_parser::Tag>, pos: Pos) -> Result<(), SyntaxError> {
        match foreign_tag(tag) {
            None => Ok(()),
            Some(shown) => Err(self.error(
                pos,
                format!(
                    "YAML tag {} is not supported (only the core schema's !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)",
                    crate::diagnostic::quote(&shown)
                ),
            )),
        }
    }

    /// Refuse a node `height` collections deep where the open ones already are.
    fn check_depth(&self, height: usize, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() + height > MAX_DEPTH {
            return Err(self.error(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Attach a finished node to its parent (or make it the root).
    /// `anchor`: (anchor id or 0, size of the node).
    fn push(
        &mut self,
        value: Value,
        loc: Loc,
        anchor: (usize, Size),
        pos: Pos,
    ) -> Result<(), SyntaxError> {
        let (anchor, size) = anchor;
        if let Some(Frame::Seq { height, .. } | Frame::Map { height, .. }) = self.stack.last_mut() {
            *height = (*height).max(size.height);
        }
        if anchor != 0 {
            self.anchors
                .insert(anchor, (value.clone(), loc.clone(), size));
        }
        let mut duplicate = None;
        match self.stack.last_mut() {
            None => self.root = Some((value, loc)),
            Some(Frame::Seq { values, locs, .. }) => {
                values.push(value);
                if self.item_positions
                    || !matches!((&*locs, &loc), (SeqLocs::Scalars(_), Loc::Scalar(_)))
                {
                    locs.push(loc);
                }
            }
            Some(Frame::Map {
                values, locs, key, ..
            }) => match key.take() {
                None => {
                    let name = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => String::from("null"),
                        Value::Array(_) | Value::Object(_) => {
                            return Err(SyntaxError {
                                pos,
                                path: Vec::new(),
                                message: "mapping keys must be plain strings".into(),
                            });
                        }
                    };
                    if values.contains_key(&name) {
                        duplicate = Some(name);
                    } else {
                        *key = Some((name, pos));
                    }
                }
                Some((name, key_pos)) => {
                    values.insert(name.clone(), value);
                    locs.push((name, key_pos, loc));
                }
            },
        }
        match duplicate {
            Some(name) => Err(self.error(
                pos,
                format!("duplicate key {}", crate::diagnostic::quote(&name)),
            )),
            None => Ok(()),
        }
    }
}

/// YAML 1.2 core schema resolution of an untagged plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = resolve_int(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

fn resolve_int(text: &str) -> Option<Number> {
    let (digits, radix) = if let Some(oct) = text.strip_prefix("0o") {
        (oct, 8)
    } else if let Some(hex) = text.strip_prefix("0x") {
        (hex, 16)
    } else {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return text
            .parse::<i64>()
            .map(Number::from)
            .ok()
            .or_else(|| text.parse::<u64>().map(Number::from).ok());
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(Number::from)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` — Rust's
/// float parser alone would also accept `inf`, `NaN` and `1e5x`-like surprises.
fn looks_like_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
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
