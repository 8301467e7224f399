//! Parser events → `serde_json::Value` plus the parallel tree of positions.
//!
//! Both scanners (`fast` and saphyr, see `mod.rs`) push the same events here,
//! so the bounds (depth, aliases, tags), duplicate keys and scalar resolution
//! are decided in one place whichever scanner read the file. Lists at the
//! paths a [`ListSink`] asks for are handed to it item by item instead of
//! being built into the value.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::SyntaxError;
use super::scalar::{self, Core, Tag};
use super::{Dialect, Item, ListSink, Loc, MAX_ALIAS_BYTES, MAX_ALIAS_NODES, MAX_DEPTH, Pos, Seg};

/// One parser event, whichever scanner produced it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Event<'a> {
    DocumentStart,
    Scalar {
        text: Cow<'a, str>,
        /// Plain (not quoted, not a block scalar): without a tag, resolved
        /// by the core schema (`12` is a number).
        plain: bool,
        /// Anchor id (0: none).
        anchor: usize,
        tag: Tag,
    },
    SequenceStart {
        anchor: usize,
        tag: Tag,
    },
    MappingStart {
        anchor: usize,
        tag: Tag,
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
    dialect: Dialect<'s>,
    /// Where to report what aliases have copied so far (`AliasUse`), for a
    /// bound across several documents (a config directory's files).
    meter: Option<&'s std::cell::Cell<super::AliasUse>>,
    /// Open collections that carry an anchor. Inside one, nothing goes to
    /// the sink as it is read: an alias may copy the node, lists and all,
    /// so it is built whole and its lists are handed over when it lands.
    anchored: usize,
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
            dialect: Dialect::Plain,
            meter: None,
            anchored: 0,
        }
    }

    /// Report what aliases copy to `meter` as the document is built.
    pub(super) fn with_meter(
        mut self,
        meter: Option<&'s std::cell::Cell<super::AliasUse>>,
    ) -> Self {
        self.meter = meter;
        self
    }

    /// Read as `dialect` says (the default: [`Dialect::Plain`]).
    pub(super) fn with_dialect(mut self, dialect: Dialect<'s>) -> Self {
        self.dialect = dialect;
        self
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
                plain,
                anchor,
                tag,
            } => {
                let special = self.scalar(&text, plain, &tag, pos)?;
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
                    match &special {
                        Some(value) => sink.item(Item::Other(value), pos),
                        None => sink.item(Item::Str(&text), pos),
                    }
                    return Ok(());
                }
                let value = special.unwrap_or_else(|| Value::String(text.into_owned()));
                self.push(value, Loc::Scalar(pos), (anchor, size), pos, false)?;
            }
            Event::SequenceStart { anchor, tag } => {
                self.collection_tag(&tag, Core::Seq, pos)?;
                self.check_depth(1, pos)?;
                let start = Start {
                    pos,
                    anchor,
                    first_node: self.nodes,
                    first_byte: self.bytes,
                    height: 0,
                };
                // An anchored list, or one inside an anchored node, is built
                // whole (an alias may copy it) and handed to the sink when
                // the anchored node lands.
                self.anchored += usize::from(anchor != 0);
                let path = self.path();
                if anchor == 0
                    && self.anchored == 0
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
                self.collection_tag(&tag, Core::Map, pos)?;
                self.check_depth(1, pos)?;
                self.anchored += usize::from(anchor != 0);
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
                self.anchored -= usize::from(start.anchor != 0);
                let size = Size {
                    nodes: self.nodes - start.first_node,
                    bytes: self.bytes - start.first_byte,
                    height: start.height + 1,
                };
                // An anchored list that went to the sink cannot be: lists
                // with anchors are built whole.
                let whole = start.anchor != 0 && !sunk;
                self.push(value, loc, (start.anchor, size), start.pos, whole)?;
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
                if let Some(meter) = self.meter {
                    meter.set(super::AliasUse {
                        nodes: self.alias_nodes,
                        bytes: self.alias_bytes,
                    });
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

    /// What a scalar resolves to (`None`: the string as written), refused
    /// when its tag says otherwise or, in a reviewed file, when YAML 1.1
    /// would read it another way.
    fn scalar(
        &self,
        text: &str,
        plain: bool,
        tag: &Tag,
        pos: Pos,
    ) -> Result<Option<Value>, SyntaxError> {
        if let Dialect::Reviewed { field } = self.dialect {
            let read_1_1 = match tag {
                Tag::None => plain,
                Tag::Core(core) => matches!(core, Core::Int | Core::Float),
                _ => false,
            };
            // A key that is one of the format's own field names (`on:`)
            // means that field whatever type YAML gives it.
            let field_key =
                matches!(self.stack.last(), Some(Frame::Map { key: None, .. })) && field(text);
            if read_1_1
                && !field_key
                && let Some(why) = scalar::two_readings(text)
            {
                return Err(self.error(pos, why));
            }
        }
        scalar::value(text, plain, tag).map_err(|why| self.error(pos, why))
    }

    /// Refuse a tag a collection of this kind cannot have.
    fn collection_tag(&self, tag: &Tag, kind: Core, pos: Pos) -> Result<(), SyntaxError> {
        match tag {
            Tag::None | Tag::NonSpecific => Ok(()),
            Tag::Core(core) if *core == kind => Ok(()),
            Tag::Core(core) => {
                let what = if kind == Core::Map {
                    "a mapping"
                } else {
                    "a sequence"
                };
                Err(self.error(
                    pos,
                    format!("{} on {what}: the tag says otherwise", core.name()),
                ))
            }
            Tag::Foreign(shown) => Err(self.error(pos, super::quote_tag(shown))),
        }
    }

    /// Refuse a node `height` collections deep where the open ones already are.
    fn check_depth(&self, height: usize, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() + height > MAX_DEPTH {
            return Err(self.error(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// A node built whole (an anchored node, or an alias's copy) landing
    /// outside every anchored node: each list in it at a path the sink
    /// wants goes to the sink, and the value keeps an empty list there, as
    /// for a list streamed there. An explicit stack: no recursion, however
    /// deep the node (the depth is bounded all the same).
    fn sink_nested(&mut self, mut value: Value, mut loc: Loc) -> (Value, Loc) {
        // Inside a sunk list, the node is one item of it.
        if self.stack.iter().any(|f| matches!(f, Frame::Sunk { .. })) {
            return (value, loc);
        }
        let base = self.path();
        let Some(sink) = self.sink.as_deref_mut() else {
            return (value, loc);
        };
        let mut work: Vec<(Vec<Seg>, &mut Value, &mut Loc)> = vec![(base, &mut value, &mut loc)];
        while let Some((path, value, loc)) = work.pop() {
            match value {
                Value::Array(items) if sink.wants(&path) => {
                    let pos = loc.pos();
                    sink.begin(&path, pos);
                    for (i, item) in items.iter().enumerate() {
                        let at = match &*loc {
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
                    items.clear();
                    items.shrink_to_fit();
                    *loc = Loc::Scalars(pos, Vec::new());
                }
                Value::Array(items) => {
                    if let Loc::Seq(_, locs) = loc {
                        for (i, (item, at)) in items.iter_mut().zip(locs.iter_mut()).enumerate() {
                            if item.is_array() || item.is_object() {
                                let mut p = path.clone();
                                p.push(Seg::Index(i));
                                work.push((p, item, at));
                            }
                        }
                    }
                }
                Value::Object(map) => {
                    if let Loc::Map(_, entries) = loc {
                        // Both sides sorted by key, to walk them in step.
                        let mut items: Vec<(&String, &mut Value)> = map.iter_mut().collect();
                        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
                        for ((name, item), (key, _, at)) in
                            items.into_iter().zip(entries.iter_mut())
                        {
                            if name == key && (item.is_array() || item.is_object()) {
                                let mut p = path.clone();
                                p.push(Seg::Key(name.clone()));
                                work.push((p, item, at));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        (value, loc)
    }

    /// Attach a finished node to its parent (or make it the root).
    /// `anchor`: (anchor id or 0, size of the node). `whole`: built whole
    /// (anchored, or an alias's copy), so lists in it may still go to the
    /// sink.
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
        let (value, loc) = if whole
            && self.anchored == 0
            && self.sink.is_some()
            && (value.is_array() || value.is_object())
        {
            self.sink_nested(value, loc)
        } else {
            (value, loc)
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
                        // A reviewer's tool may show no key, `null` or
                        // `~`; JSON has no null key.
                        Value::Null if matches!(self.dialect, Dialect::Reviewed { .. }) => {
                            return Err(SyntaxError {
                                pos,
                                path: Vec::new(),
                                message: "a null key (empty, `~` or `null`): YAML tools \
                                          disagree on what it is named; write the key's name"
                                    .into(),
                            });
                        }
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
