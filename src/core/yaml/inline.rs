//! What is inside a line, for the line scanner (`fast.rs`): keys, one-line
//! scalars and one-line flow collections, as byte offsets into the line.
//! Stricter than YAML: whatever is not certain here bails out to saphyr.

/// Leave this line (and the file) to saphyr.
pub(super) struct Bail;

pub(super) fn bail<T>() -> Result<T, Bail> {
    Err(Bail)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Style {
    Plain,
    /// Quoted, taken as written.
    Quoted,
    /// Single-quoted with `''` in it, which stands for `'`.
    SingleEscaped,
}

/// One event of a line, as byte offsets into it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tok {
    Scalar {
        /// Where the node starts (its opening quote, if quoted).
        at: usize,
        start: usize,
        end: usize,
        style: Style,
    },
    SeqStart(usize),
    MapStart(usize),
    SeqEnd,
    MapEnd,
    /// `&name` at `at`: the next node's anchor (its name's offsets); the
    /// node then starts at `at`, as saphyr says.
    Anchor {
        at: usize,
        start: usize,
        end: usize,
    },
    /// `*name`: a copy of the node anchored so.
    Alias {
        at: usize,
        start: usize,
        end: usize,
    },
}

/// `&name` or `*name` at `at`: its token (an anchor or an alias) and the
/// offset after the name, or `None` when the name is not one read here.
fn property(s: &[u8], at: usize, flow: bool) -> Option<(Tok, usize)> {
    let end = name_end(s, at + 1, flow)?;
    let start = at + 1;
    let tok = match s[at] {
        b'&' => Tok::Anchor { at, start, end },
        _ => Tok::Alias { at, start, end },
    };
    Some((tok, end))
}

/// The end of an anchor or alias name starting at `at` (after `&`/`*`):
/// letters, digits, `_` and `-` only (stricter than YAML), followed by a
/// space, the line's end or, in a flow, `,`/`]`/`}`; `None` otherwise.
fn name_end(s: &[u8], at: usize, flow: bool) -> Option<usize> {
    let mut end = at;
    while s
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
    {
        end += 1;
    }
    let ends = match s.get(end) {
        None | Some(b' ') => true,
        Some(b',' | b']' | b'}') => flow,
        _ => false,
    };
    (end > at && end - at <= 128 && ends).then_some(end)
}

/// Where a flow collection is in its grammar.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flow {
    /// Just opened: an entry or the closing bracket.
    First,
    /// After an entry: `,` or the closing bracket.
    AfterEntry,
    /// After `,`: an entry (no trailing comma: it needs saphyr's rules).
    AfterComma,
    /// After a quoted key: `:`.
    AfterKey,
    /// After a key's `:`: the value.
    AfterColon,
}

/// Deepest flow nesting read here; deeper ones go to saphyr (and to the
/// builder's depth bound).
const MAX_FLOW: usize = 16;

/// Longest key read here: saphyr limits implicit keys to 1024 characters.
const MAX_KEY: usize = 512;

/// The events of one line, and the flow collections open in it.
pub(super) struct Inline {
    pub(super) toks: Vec<Tok>,
    flows: Vec<(bool, Flow)>,
}

impl Inline {
    pub(super) fn new() -> Self {
        Inline {
            toks: Vec::new(),
            flows: Vec::new(),
        }
    }

    /// What follows a `- `: the key of a mapping in the item (pushed; the
    /// offset of its colon), or a whole value (pushed; `None`).
    pub(super) fn seq_item(&mut self, s: &[u8], at: usize) -> Result<Option<usize>, Bail> {
        if plain_start(s, at) {
            // One scan tells a plain item from a key.
            return match plain(s, at, false) {
                (end, End::Colon(colon)) if colon - at <= MAX_KEY => {
                    self.toks.push(scalar(at, at, end, Style::Plain));
                    Ok(Some(colon))
                }
                (_, End::Colon(_)) => bail(),
                (end, _) => {
                    self.toks.push(scalar(at, at, end, Style::Plain));
                    Ok(None)
                }
            };
        }
        if let Some(colon) = self.key(s, at)? {
            return Ok(Some(colon));
        }
        match self.value(s, at)? {
            Some(_) => bail(),
            None => Ok(None),
        }
    }

    /// A block mapping key at `at`: pushes it and returns the offset of its
    /// colon, or `None` (nothing pushed) when the text there is not a key.
    pub(super) fn key(&mut self, s: &[u8], at: usize) -> Result<Option<usize>, Bail> {
        let (tok, after) = match s[at] {
            b'"' | b'\'' => {
                let (tok, after) = quoted(s, at)?;
                (tok, skip_spaces(s, after))
            }
            _ if plain_start(s, at) => match plain(s, at, false) {
                (end, End::Colon(colon)) => (scalar(at, at, end, Style::Plain), colon),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        if s.get(after) != Some(&b':') || !matches!(s.get(after + 1), None | Some(b' ')) {
            return Ok(None);
        }
        if after - at > MAX_KEY {
            return bail();
        }
        self.toks.push(tok);
        Ok(Some(after))
    }

    /// The value after a key's colon or a `- `: pushes it, or returns the
    /// colon's offset when there is none on this line (`from - 1`).
    pub(super) fn value(&mut self, s: &[u8], from: usize) -> Result<Option<usize>, Bail> {
        let mut at = skip_spaces(s, from);
        if at == s.len() || (s[at] == b'#' && at > from) {
            return Ok(Some(from - 1));
        }
        if s[at] == b'&' {
            let Some((tok, end)) = property(s, at, false) else {
                return bail();
            };
            self.toks.push(tok);
            let next = skip_spaces(s, end);
            if next == s.len() || s[next] == b'#' {
                // `key: &a` and the node on the lines below.
                return Ok(Some(from - 1));
            }
            // An alias has no anchor of its own (`&b *a` is an error).
            if s[next] == b'*' {
                return bail();
            }
            at = next;
        }
        if s[at] == b'*' {
            let Some((tok, end)) = property(s, at, false) else {
                return bail();
            };
            self.toks.push(tok);
            let rest = skip_spaces(s, end);
            return if rest == s.len() || (s[rest] == b'#' && rest > end) {
                Ok(None)
            } else {
                bail()
            };
        }
        let after = match s[at] {
            b'"' | b'\'' => {
                let (tok, after) = quoted(s, at)?;
                self.toks.push(tok);
                after
            }
            b'[' | b'{' => self.flow(s, at)?,
            _ if plain_start(s, at) => match plain(s, at, false) {
                (end, End::Line | End::Comment) => {
                    self.toks.push(scalar(at, at, end, Style::Plain));
                    return Ok(None);
                }
                _ => return bail(),
            },
            _ => return bail(),
        };
        let rest = skip_spaces(s, after);
        if rest == s.len() || (s[rest] == b'#' && rest > after) {
            Ok(None)
        } else {
            bail()
        }
    }

    /// A one-line flow collection at `at`; returns the offset after it.
    fn flow(&mut self, s: &[u8], mut at: usize) -> Result<usize, Bail> {
        self.flows.clear();
        loop {
            at = skip_spaces(s, at);
            let Some(&c) = s.get(at) else {
                return bail();
            };
            let Some(&(map, state)) = self.flows.last() else {
                // The collection itself.
                self.open(s[at], at)?;
                at += 1;
                continue;
            };
            let close = if map { b'}' } else { b']' };
            match state {
                Flow::First | Flow::AfterEntry if c == close => {
                    self.flows.pop();
                    self.toks.push(if map { Tok::MapEnd } else { Tok::SeqEnd });
                    at += 1;
                    match self.flows.last_mut() {
                        Some(parent) => parent.1 = Flow::AfterEntry,
                        None => return Ok(at),
                    }
                }
                Flow::AfterEntry if c == b',' => {
                    self.set(Flow::AfterComma);
                    at += 1;
                }
                Flow::AfterKey if c == b':' => {
                    self.set(Flow::AfterColon);
                    at += 1;
                }
                Flow::AfterEntry | Flow::AfterKey => return bail(),
                Flow::First | Flow::AfterComma if map => {
                    // A key: quoted (`:` may follow at once, as in JSON) or
                    // plain (`: ` or `:` before a flow indicator).
                    if matches!(c, b'"' | b'\'') {
                        let (tok, after) = quoted(s, at)?;
                        self.toks.push(tok);
                        self.set(Flow::AfterKey);
                        at = after;
                    } else if plain_start(s, at) {
                        let (end, stop) = plain(s, at, true);
                        let End::Colon(colon) = stop else {
                            return bail();
                        };
                        self.toks.push(scalar(at, at, end, Style::Plain));
                        self.set(Flow::AfterColon);
                        at = colon + 1;
                    } else {
                        return bail();
                    }
                }
                Flow::First | Flow::AfterComma | Flow::AfterColon => {
                    at = self.flow_node(s, at)?;
                }
            }
        }
    }

    fn set(&mut self, state: Flow) {
        if let Some(top) = self.flows.last_mut() {
            top.1 = state;
        }
    }

    fn open(&mut self, c: u8, at: usize) -> Result<(), Bail> {
        if self.flows.len() >= MAX_FLOW {
            return bail();
        }
        match c {
            b'[' => {
                self.toks.push(Tok::SeqStart(at));
                self.flows.push((false, Flow::First));
            }
            b'{' => {
                self.toks.push(Tok::MapStart(at));
                self.flows.push((true, Flow::First));
            }
            _ => return bail(),
        }
        Ok(())
    }

    /// A sequence item or a mapping value inside a flow collection.
    fn flow_node(&mut self, s: &[u8], at: usize) -> Result<usize, Bail> {
        match s[at] {
            b'&' => {
                let Some(end) = name_end(s, at + 1, true) else {
                    return bail();
                };
                let next = skip_spaces(s, end);
                // An anchor on nothing (`[&a]`) is saphyr's to read.
                if next == end
                    || matches!(s.get(next), None | Some(b',' | b']' | b'}' | b'&' | b'*'))
                {
                    return bail();
                }
                self.toks.push(Tok::Anchor {
                    at,
                    start: at + 1,
                    end,
                });
                self.flow_node(s, next)
            }
            b'*' => {
                let Some(end) = name_end(s, at + 1, true) else {
                    return bail();
                };
                // `*a :` would make the alias a key.
                let next = skip_spaces(s, end);
                if s.get(next) == Some(&b':') {
                    return bail();
                }
                self.toks.push(Tok::Alias {
                    at,
                    start: at + 1,
                    end,
                });
                self.set(Flow::AfterEntry);
                Ok(end)
            }
            b'[' | b'{' => {
                // The parent's state is set when the nested one closes.
                self.open(s[at], at)?;
                Ok(at + 1)
            }
            b'"' | b'\'' => {
                let (tok, after) = quoted(s, at)?;
                self.toks.push(tok);
                self.set(Flow::AfterEntry);
                Ok(after)
            }
            _ if plain_start(s, at) => match plain(s, at, true) {
                (end, End::Flow) => {
                    self.toks.push(scalar(at, at, end, Style::Plain));
                    self.set(Flow::AfterEntry);
                    Ok(end)
                }
                _ => bail(),
            },
            _ => bail(),
        }
    }
}

fn scalar(at: usize, start: usize, end: usize, style: Style) -> Tok {
    Tok::Scalar {
        at,
        start,
        end,
        style,
    }
}

pub(super) fn skip_spaces(s: &[u8], mut at: usize) -> usize {
    while s.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

fn is_flow(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// A plain scalar may start here (a stricter rule than YAML's: anything
/// else goes to saphyr).
fn plain_start(s: &[u8], at: usize) -> bool {
    match s[at] {
        b'0'..=b'9'
        | b'a'..=b'z'
        | b'A'..=b'Z'
        | b'_'
        | b'.'
        | b'/'
        | b'+'
        | b'('
        | b')'
        | b'~'
        | b'$'
        | b'^'
        | b'='
        | b';'
        | b'<'
        | b'\\'
        | 0x80.. => true,
        b'-' => s
            .get(at + 1)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.'),
        _ => false,
    }
}

/// What ended a plain scalar.
#[derive(Debug, PartialEq)]
enum End {
    Line,
    /// ` #`: a comment follows.
    Comment,
    /// `: ` (or `:` at the end of the line, or before a flow indicator in a
    /// flow): the scalar is a key; the colon's offset.
    Colon(usize),
    /// A flow indicator (in a flow collection only).
    Flow,
    /// Something the line scanner leaves to saphyr.
    Odd,
}

/// A plain scalar starting at `at`: the end of its text (trailing spaces
/// excluded) and what ended it.
fn plain(s: &[u8], at: usize, flow: bool) -> (usize, End) {
    let mut end = at;
    let mut i = at;
    while let Some(&c) = s.get(i) {
        match c {
            b' ' => {}
            b'#' if s[i - 1] == b' ' => return (end, End::Comment),
            // In a flow, `:` right before `,`, `]` or `}` ends a key with an
            // empty value; before `[` or `{` it is no separator at all
            // (`hashes:[H1]` is an error in YAML, and saphyr's to report).
            b':' if match s.get(i + 1) {
                None | Some(b' ') => true,
                Some(&n) => flow && matches!(n, b',' | b']' | b'}'),
            } =>
            {
                return (end, End::Colon(i));
            }
            // `[x -]`: saphyr refuses a lone `-` before a flow indicator
            // (YAML itself reads "x -"); leave such a line to saphyr.
            b'-' if flow && s[i - 1] == b' ' && s.get(i + 1).is_some_and(|n| is_flow(*n)) => {
                return (end, End::Odd);
            }
            _ if flow && is_flow(c) => return (end, End::Flow),
            _ => end = i + 1,
        }
        i += 1;
    }
    (end, End::Line)
}

/// A one-line quoted scalar at `at` (no escapes in double quotes): its
/// token and the offset after the closing quote.
fn quoted(s: &[u8], at: usize) -> Result<(Tok, usize), Bail> {
    let quote = s[at];
    let mut escaped = false;
    let mut i = at + 1;
    loop {
        let Some(&c) = s.get(i) else {
            return bail();
        };
        if c == b'\\' && quote == b'"' {
            return bail();
        }
        if c == quote {
            if quote == b'\'' && s.get(i + 1) == Some(&b'\'') {
                escaped = true;
                i += 2;
                continue;
            }
            let style = if escaped {
                Style::SingleEscaped
            } else {
                Style::Quoted
            };
            return Ok((scalar(at, at + 1, i, style), i + 1));
        }
        i += 1;
    }
}
