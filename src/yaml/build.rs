//! Parser events → `serde_json::Value` plus the parallel tree of positions.
//!
//! Both scanners (`fast` and saphyr, see `mod.rs`) push the same events here,
//! so the bounds (depth, aliases, tags), duplicate keys and scalar resolution
//! are decided in one place whichever scanner read the file. Lists at the
//! paths a [`ListSink`] asks for are handed to it item by item instead of
//! being built into the value.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::{Item, ListSink, Loc, MAX_ALIAS_BYTES, MAX_ALIAS_NODES, MAX_DEPTH, Pos, Seg};
use super::{SyntaxError, quote_tag};

/// One parser event, whichever scanner produced it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event<'a> {
    DocumentStart,
    Scalar {
        text: Cow<'a, str>,
        /// A plain scalar without a tag: resolved by the core schema
        /// (`12` is a number); otherwise it is a string as written.
        resolve: bool,
        /// Anchor id (0: none).
        anchor: usize,
        /// A tag outside the core schema, as written (refused).
        tag: Option<String>,
    },
    SequenceStart {
        anchor: usize,
        tag: Option<String>,
    },
    MappingStart {
        anchor: usize,
        tag: Option<String>,
    },
    SequenceEnd,
    MappingEnd,
    Alias(usize),
}

/// Positions of a sequence's items: plain positions while every item is a
/// scalar (lists of names), whole `Loc`s once one is not.
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

/// Where a collection started, to size it when it ends (for anchors).
#[derive(Clone, Copy)]
struct Start {
    pos: Pos,
    anchor: usize,
    /// `Builder::nodes` and `Builder::bytes` when the collection started.
    first_node: usize,
    first_byte: usize,
    /// Deepest nesting below this collection (0: only scalars).
    height: usize,
}

enum Frame {
    Seq {
        start: Start,
        values: Vec<Value>,
        locs: SeqLocs,
    },
    Map {
        start: Start,
        values: Map<String, Value>,
        locs: Vec<(String, Pos, Loc)>,
        /// A key waiting for its value.
        key: Option<(String, Pos)>,
    },
    /// A list whose items go to the sink; only its length is kept.
    Sunk { start: Start, len: usize },
}

impl Frame {
    fn start(&mut self) -> &mut Start {
        match self {
            Frame::Seq { start, .. } | Frame::Map { start, .. } | Frame::Sunk { start, .. } => {
                start
            }
        }
    }
}

pub(super) struct Builder<'s, 'd> {
    stack: Vec<Frame>,
    /// Anchored nodes with their size, for aliases to copy.
    anchors: HashMap<usize, (Value, Loc, Size)>,
    root: Option<(Value, Loc)>,
    documents: usize,
    /// Nodes built so far, and how many of them aliases copied.
    nodes: usize,
    alias_nodes: usize,
    /// Bytes of scalar text built so far, and how many of them aliases copied.
    bytes: usize,
    alias_bytes: usize,
    sink: Option<&'s mut (dyn ListSink + 'd)>,
}

impl<'s, 'd> Builder<'s, 'd> {
    pub(super) fn new(sink: Option<&'s mut (dyn ListSink + 'd)>) -> Self {
        Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            documents: 0,
            nodes: 0,
            alias_nodes: 0,
            bytes: 0,
            alias_bytes: 0,
            sink,
        }
    }

    /// The path of the node the next event starts.
    fn path(&self) -> Vec<Seg> {
        self.stack
            .iter()
            .filter_map(|f| match f {
                Frame::Seq { values, .. } => Some(Seg::Index(values.len())),
                Frame::Sunk { len, .. } => Some(Seg::Index(*len)),
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

    /// The document, once every event is in (an empty file is an empty
    /// mapping, so that the schema reports the missing `apiVersion`).
    pub(super) fn finish(self) -> (Value, Loc) {
        self.root.unwrap_or_else(|| {
            (
                Value::Object(Map::new()),
                Loc::Map(Pos { line: 1, column: 1 }, Vec::new()),
            )
        })
    }

    pub(super) fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(pos, "only one YAML document is allowed per file"));
                }
            }
            Event::Scalar {
                text,
                resolve,
                anchor,
                tag,
            } => {
                self.refuse_tag(tag, pos)?;
                let bytes = text.len();
                self.nodes += 1;
                self.bytes += bytes;
                let size = Size {
                    nodes: 1,
                    bytes,
                    height: 0,
                };
                // The hot path: an item of a sunk list is checked where it
                // stands and never becomes a `Value`.
                if anchor == 0
                    && let Some(Frame::Sunk { len, .. }) = self.stack.last_mut()
                    && let Some(sink) = self.sink.as_deref_mut()
                {
                    *len += 1;
                    match resolve.then(|| resolve_special(&text)).flatten() {
                        Some(value) => sink.item(Item::Other(&value), pos),
                        None => sink.item(Item::Str(&text), pos),
                    }
                    return Ok(());
                }
                let value = if resolve {
                    resolve_special(&text).unwrap_or_else(|| Value::String(text.into_owned()))
                } else {
                    Value::String(text.into_owned())
                };
                self.push(value, Loc::Scalar(pos), (anchor, size), pos, true)?;
            }
            Event::SequenceStart { anchor, tag } => {
                self.refuse_tag(tag, pos)?;
                self.check_depth(1, pos)?;
                let start = Start {
                    pos,
                    anchor,
                    first_node: self.nodes,
                    first_byte: self.bytes,
                    height: 0,
                };
                // An anchored list is built whole (an alias may copy it) and
                // handed to the sink when it lands.
                let path = self.path();
                if anchor == 0
                    && let Some(sink) = self.sink.as_deref_mut().filter(|s| s.wants(&path))
                {
                    sink.begin(&path, pos);
                    self.stack.push(Frame::Sunk { start, len: 0 });
                } else {
                    self.stack.push(Frame::Seq {
                        start,
                        values: Vec::new(),
                        locs: SeqLocs::Scalars(Vec::new()),
                    });
                }
            }
            Event::MappingStart { anchor, tag } => {
                self.refuse_tag(tag, pos)?;
                self.check_depth(1, pos)?;
                self.stack.push(Frame::Map {
                    start: Start {
                        pos,
                        anchor,
                        first_node: self.nodes,
                        first_byte: self.bytes,
                        height: 0,
                    },
                    values: Map::new(),
                    locs: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, loc, start, sunk) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        values,
                        locs,
                    }) => (
                        Value::Array(shrunk(values)),
                        locs.finish(start.pos),
                        start,
                        false,
                    ),
                    Some(Frame::Map {
                        start,
                        values,
                        mut locs,
                        ..
                    }) => {
                        // Sorted once, so that a path resolves by binary
                        // search in maps of many thousand groups.
                        locs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                        (
                            Value::Object(values),
                            Loc::Map(start.pos, locs),
                            start,
                            false,
                        )
                    }
                    Some(Frame::Sunk { start, .. }) => {
                        if let Some(sink) = self.sink.as_deref_mut() {
                            sink.end();
                        }
                        (
                            Value::Array(Vec::new()),
                            Loc::Scalars(start.pos, Vec::new()),
                            start,
                            true,
                        )
                    }
                    None => return Err(self.error(pos, "unbalanced YAML collection")),
                };
                self.nodes += 1;
                let size = Size {
                    nodes: self.nodes - start.first_node,
                    bytes: self.bytes - start.first_byte,
                    height: start.height + 1,
                };
                self.push(value, loc, (start.anchor, size), start.pos, !sunk)?;
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
                self.push(value, loc, (0, size), pos, true)?;
            }
        }
        Ok(())
    }

    /// Refuse a tag outside the core schema, naming it.
    fn refuse_tag(&self, tag: Option<String>, pos: Pos) -> Result<(), SyntaxError> {
        match tag {
            None => Ok(()),
            Some(shown) => Err(self.error(pos, quote_tag(&shown))),
        }
    }

    /// Refuse a node `height` collections deep where the open ones already are.
    fn check_depth(&self, height: usize, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() + height > MAX_DEPTH {
            return Err(self.error(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// A whole list landing where the sink wants lists (an anchored list, or
    /// an alias of one): its items go to the sink, the value keeps an empty
    /// list, as for a list streamed there.
    fn sink_whole(&mut self, value: Value, loc: Loc) -> (Value, Loc) {
        let Value::Array(items) = value else {
            return (value, loc);
        };
        let path = self.path();
        let Some(sink) = self.sink.as_deref_mut().filter(|s| s.wants(&path)) else {
            return (Value::Array(items), loc);
        };
        let pos = loc.pos();
        sink.begin(&path, pos);
        for (i, item) in items.iter().enumerate() {
            let at = match &loc {
                Loc::Scalars(_, p) => p.get(i).copied().unwrap_or(pos),
                Loc::Seq(_, l) => l.get(i).map_or(pos, Loc::pos),
                _ => pos,
            };
            match item {
                Value::String(s) => sink.item(Item::Str(s), at),
                other => sink.item(Item::Other(other), at),
            }
        }
        sink.end();
        (Value::Array(Vec::new()), Loc::Scalars(pos, Vec::new()))
    }

    /// Attach a finished node to its parent (or make it the root).
    /// `anchor`: (anchor id or 0, size of the node). `whole`: a list that
    /// may still go to the sink (false for the stand-in of one that did).
    fn push(
        &mut self,
        value: Value,
        loc: Loc,
        anchor: (usize, Size),
        pos: Pos,
        whole: bool,
    ) -> Result<(), SyntaxError> {
        let (anchor, size) = anchor;
        if let Some(frame) = self.stack.last_mut() {
            let start = frame.start();
            start.height = start.height.max(size.height);
        }
        if anchor != 0 {
            self.anchors
                .insert(anchor, (value.clone(), loc.clone(), size));
        }
        let (value, loc) = match self.stack.last() {
            Some(Frame::Map { key: Some(_), .. })
                if whole && value.is_array() && self.sink.is_some() =>
            {
                self.sink_whole(value, loc)
            }
            _ => (value, loc),
        };
        let mut duplicate = None;
        match self.stack.last_mut() {
            None => self.root = Some((value, loc)),
            Some(Frame::Sunk { len, .. }) => {
                *len += 1;
                if let Some(sink) = self.sink.as_deref_mut() {
                    match &value {
                        Value::String(s) => sink.item(Item::Str(s), pos),
                        other => sink.item(Item::Other(other), pos),
                    }
                }
            }
            Some(Frame::Seq { values, locs, .. }) => {
                values.push(value);
                locs.push(loc);
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

/// YAML 1.2 core schema resolution of an untagged plain scalar: the value
/// when it is not a string (null, a boolean, a number), `None` when it is.
pub(super) fn resolve_special(text: &str) -> Option<Value> {
    // Most scalars (hashes, names) hold a character no null, boolean or
    // number has: they are strings, without trying each form.
    if text.bytes().any(|c| !SPECIAL[usize::from(c)]) {
        return None;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(n) = resolve_int(text) {
        return Some(Value::Number(n));
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Some(Value::Number(n));
    }
    None
}

/// The characters of the core schema's nulls, booleans and numbers.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let chars = b"0123456789abcdefABCDEFxo.+-~nNuUlLtTrRsS";
    let mut i = 0;
    while i < chars.len() {
        table[chars[i] as usize] = true;
        i += 1;
    }
    table
};

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
