//! The bytes of a reviewed file, before YAML: characters that make one text
//! read two ways, characters YAML forbids, a byte order mark past the
//! start, and a `%YAML` directive other than 1.2.
//!
//! A reviewer approves what their tools show. U+2028 is part of a comment
//! to a YAML 1.2 parser and a line break to a YAML 1.1 one (PyYAML, many
//! viewers), so `suspend: false # ok<U+2028>dryRun: true` is one line to
//! resetd and two to the reviewer; bidirectional controls reorder what is
//! displayed ("Trojan Source"). Such a file is refused, located, whatever
//! else is wrong with it: the check sees every byte of the file (it sits
//! in the reader both scanners read through, [`Tap`]), and its verdict
//! comes before any parse result, so the answer never depends on which
//! scanner read the file or where it stopped.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::{Pos, SyntaxError};

/// Reads a file for the scanners, hashing and checking every byte on the
/// way; [`Tap::finish`] reads what they left unread.
pub(super) struct Tap<R> {
    inner: R,
    hasher: Sha256,
    check: Check,
}

impl<R: Read> Tap<R> {
    pub(super) fn new(inner: R) -> Self {
        Tap {
            inner,
            hasher: Sha256::new(),
            check: Check::new(),
        }
    }

    /// Read the rest of the file; its digest and the first problem in it.
    pub(super) fn finish(mut self) -> std::io::Result<(Sha256, Option<SyntaxError>)> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((self.hasher, self.check.finish()))
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.check.feed(&buf[..n]);
        Ok(n)
    }
}

/// The first problem in `text`, checked whole.
pub(super) fn check_str(text: &str) -> Option<SyntaxError> {
    let mut check = Check::new();
    check.feed(text.as_bytes());
    check.finish()
}

/// Bytes looked at together on the fast path: large enough that the
/// per-block work (the last line break, counting characters) is noise,
/// small enough that a suspect byte costs a short slow stretch.
const BLOCK: usize = 4096;

/// The longest directive line looked at; a longer one is not `%YAML 1.2`.
const MAX_DIRECTIVE: usize = 64;

/// Where a line of the document prefix is.
enum Prefix {
    /// Past the prefix: nothing but characters is looked at.
    Done,
    LineStart,
    /// Only spaces and tabs so far.
    Blank,
    Comment,
    /// A `%` line, as read so far (at most `MAX_DIRECTIVE` bytes).
    Directive(Vec<u8>),
}

/// A byte-at-a-time checker that is fed the file in pieces of any size.
struct Check {
    /// Bytes seen so far.
    offset: u64,
    line: u32,
    /// Characters before this one on its line.
    column: u32,
    /// The two bytes before the current one (a character's lead bytes).
    prev: [u8; 2],
    /// Where the document prefix (blank, comment and directive lines,
    /// where a `%YAML` directive may stand) is.
    prefix: Prefix,
    first: Option<SyntaxError>,
}

impl Check {
    fn new() -> Self {
        Check {
            offset: 0,
            line: 1,
            column: 0,
            prev: [0, 0],
            prefix: Prefix::LineStart,
            first: None,
        }
    }

    fn finish(mut self) -> Option<SyntaxError> {
        if self.first.is_none() {
            self.end_directive();
        }
        self.first
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.first.is_some() {
            return;
        }
        for block in bytes.chunks(BLOCK) {
            // Most blocks are printable ASCII and line breaks: only the
            // position moves. The lead bytes of every character looked for
            // below (0xC2, 0xE2, 0xEF) and the controls send a block, and
            // the one after a block ending inside such a character, the
            // slow way.
            let plain = matches!(self.prefix, Prefix::Done)
                && !matches!(self.prev[1], 0xC2 | 0xE2 | 0xEF)
                && !matches!(self.prev[0], 0xE2 | 0xEF)
                && !suspect(block);
            if plain {
                self.skip(block);
            } else {
                for &c in block {
                    self.byte(c);
                    if self.first.is_some() {
                        return;
                    }
                }
            }
        }
    }

    /// A block without anything to check: count lines and characters.
    fn skip(&mut self, block: &[u8]) {
        let chars = |s: &[u8]| {
            let n = s.iter().filter(|c| (**c & 0xC0) != 0x80).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        match block.iter().rposition(|c| *c == b'\n') {
            Some(last) => {
                // Counted in u8 lanes of at most 255 bytes: summing into a
                // wide integer byte by byte does not vectorise well.
                let lines: usize = block
                    .chunks(255)
                    .map(|lane| {
                        let n = lane
                            .iter()
                            .fold(0u8, |n, c| n.wrapping_add(u8::from(*c == b'\n')));
                        usize::from(n)
                    })
                    .sum();
                self.line = self
                    .line
                    .saturating_add(u32::try_from(lines).unwrap_or(u32::MAX));
                self.column = chars(&block[last + 1..]);
            }
            None => self.column = self.column.saturating_add(chars(block)),
        }
        self.offset += block.len() as u64;
        let n = block.len();
        self.prev = match n {
            1 => [self.prev[1], block[0]],
            _ => [block[n - 2], block[n - 1]],
        };
    }

    fn byte(&mut self, c: u8) {
        let [p2, p1] = self.prev;
        // The column of the character this byte belongs to.
        let column = match c & 0xC0 {
            0x80 => self.column,
            _ => self.column + 1,
        };
        let found: Option<String> = match (p2, p1, c) {
            (_, _, b'\t' | b'\n' | b'\r') => None,
            (_, _, 0..=0x1F) => Some(format!(
                "control character U+{c:04X} is not allowed in YAML; remove it (in a \
                 double-quoted string it can be written as an escape)"
            )),
            (_, _, 0x7F) => {
                Some("control character U+007F (DEL) is not allowed in YAML; remove it".to_owned())
            }
            (_, 0xC2, 0x85) => Some(two_ways("U+0085 NEXT LINE")),
            (_, 0xC2, 0x80..=0x9F) => Some(format!(
                "control character U+{c:04X} (C1) is not allowed in YAML; remove it"
            )),
            (0xE2, 0x80, 0xA8) => Some(two_ways("U+2028 LINE SEPARATOR")),
            (0xE2, 0x80, 0xA9) => Some(two_ways("U+2029 PARAGRAPH SEPARATOR")),
            (0xE2, 0x80, 0xAA..=0xAE) | (0xE2, 0x81, 0xA6..=0xA9) => {
                let code = 0x2000 | (u32::from(p1 & 0x3F) << 6) | u32::from(c & 0x3F);
                Some(format!(
                    "U+{code:04X} is a bidirectional control: it makes the text display in \
                     another order than it is read, so a reviewer may see something other \
                     than what resetd reads; remove it"
                ))
            }
            (0xEF, 0xBB, 0xBF) if self.offset != 2 => Some(
                "a byte order mark (U+FEFF) is allowed only at the very start of the file; \
                 remove it"
                    .to_owned(),
            ),
            (0xEF, 0xBF, 0xBE | 0xBF) => Some(format!(
                "U+FFF{} is not a character YAML allows; remove it",
                if c == 0xBE { 'E' } else { 'F' }
            )),
            _ => None,
        };
        if let Some(message) = found {
            self.first = Some(SyntaxError {
                pos: Pos {
                    line: self.line,
                    column,
                },
                path: Vec::new(),
                message,
            });
            return;
        }
        if !matches!(self.prefix, Prefix::Done) {
            self.prefix_byte(c);
        }
        let crlf = c == b'\n' && p1 == b'\r';
        if matches!(c, b'\n' | b'\r') {
            if !crlf {
                self.line = self.line.saturating_add(1);
            }
            self.column = 0;
        } else {
            self.column = column;
        }
        self.offset += 1;
        self.prev = [p1, c];
    }

    /// Follow the lines of the document prefix, for `%YAML`.
    fn prefix_byte(&mut self, c: u8) {
        if matches!(c, b'\n' | b'\r') {
            self.end_directive();
            self.prefix = Prefix::LineStart;
            return;
        }
        let bom = [0xEF, 0xBB, 0xBF];
        self.prefix = match std::mem::replace(&mut self.prefix, Prefix::Done) {
            Prefix::LineStart if self.offset < 3 && bom.get(self.offset as usize) == Some(&c) => {
                Prefix::LineStart
            }
            Prefix::LineStart if c == b'%' => Prefix::Directive(vec![c]),
            Prefix::LineStart | Prefix::Blank => match c {
                b' ' | b'\t' => Prefix::Blank,
                b'#' => Prefix::Comment,
                _ => Prefix::Done,
            },
            Prefix::Comment => Prefix::Comment,
            Prefix::Directive(mut line) => {
                if line.len() < MAX_DIRECTIVE {
                    line.push(c);
                }
                Prefix::Directive(line)
            }
            Prefix::Done => Prefix::Done,
        };
    }

    /// A directive line ended: only `%YAML 1.2` may be declared.
    fn end_directive(&mut self) {
        let Prefix::Directive(line) = std::mem::replace(&mut self.prefix, Prefix::LineStart) else {
            return;
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.split(" #").next().unwrap_or_default();
        let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
        if words.next() != Some("%YAML") {
            return;
        }
        let version = words.next().unwrap_or_default();
        if version == "1.2" {
            return;
        }
        let why = match version {
            "1.1" | "1.0" => {
                "YAML 1.1 reads many plain values differently (`010` is 8, `off` is false), \
                 and resetd reads YAML 1.2 only"
            }
            _ => "resetd reads YAML 1.2 only",
        };
        self.first = Some(SyntaxError {
            pos: Pos {
                line: self.line,
                column: 1,
            },
            path: Vec::new(),
            message: format!(
                "`%YAML {}`: {why}; remove the directive or declare `%YAML 1.2`",
                version.escape_debug()
            ),
        });
    }
}

/// Whether `block` holds a byte that needs a closer look: a control
/// character other than tab and LF, DEL, or the lead byte of a character
/// looked for (0xC2: C1 and U+0085; 0xE2: U+2028/9 and the bidirectional
/// controls; 0xEF: the BOM and U+FFFE/F). Branch-free over 32-byte lanes,
/// so the compiler vectorises it.
fn suspect(block: &[u8]) -> bool {
    block.chunks(32).any(|lane| {
        let mut acc = 0u8;
        for &c in lane {
            let control = u8::from(c < 0x20) & u8::from(c != b'\n') & u8::from(c != b'\t');
            acc |= control
                | u8::from(c == 0x7f)
                | u8::from(c == 0xC2)
                | u8::from(c == 0xE2)
                | u8::from(c == 0xEF);
        }
        acc != 0
    })
}

fn two_ways(name: &str) -> String {
    format!(
        "{name}: YAML 1.2 reads it as an ordinary character and YAML 1.1 tools as a \
         line break, so this file reads two ways; remove it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<(u32, u32, String)> {
        check_str(text).map(|e| (e.pos.line, e.pos.column, e.message))
    }

    #[test]
    fn clean_text_passes_in_pieces_of_any_size() {
        let text = format!(
            "%YAML 1.2\n---\n# é ü 😀\na: \"x\"\r\nb: [1, 2]\n{}",
            "c: d\n".repeat(100)
        );
        assert_eq!(at(&text), None);
        let mut check = Check::new();
        for b in text.as_bytes().chunks(3) {
            check.feed(b);
        }
        assert!(check.finish().is_none());
        assert_eq!(at("\u{feff}a: 1\n"), None);
    }

    #[test]
    fn characters_that_read_two_ways_are_located() {
        for (ch, name) in [
            ('\u{2028}', "U+2028"),
            ('\u{2029}', "U+2029"),
            ('\u{85}', "U+0085"),
            ('\u{202e}', "U+202E"),
            ('\u{202a}', "U+202A"),
            ('\u{2066}', "U+2066"),
            ('\u{2069}', "U+2069"),
            ('\u{7}', "U+0007"),
            ('\u{7f}', "U+007F"),
            ('\u{9b}', "U+009B"),
            ('\u{fffe}', "U+FFFE"),
            ('\u{ffff}', "U+FFFF"),
            ('\u{feff}', "byte order mark"),
        ] {
            // After a long clean stretch, so the fast blocks lead up to it.
            let text = format!("{}é: x # ok{ch}    dryRun: true\n", "a: b\n".repeat(30));
            let (line, column, message) = at(&text).unwrap_or_else(|| panic!("{name} passed"));
            assert_eq!((line, column), (31, 10), "{name}");
            assert!(message.contains(name), "{name}: {message}");
            // Split at every byte: a character cut between two reads.
            let bytes = text.as_bytes();
            for cut in 140..bytes.len() {
                let mut check = Check::new();
                check.feed(&bytes[..cut]);
                check.feed(&bytes[cut..]);
                let e = check
                    .finish()
                    .unwrap_or_else(|| panic!("{name} cut at {cut}"));
                assert_eq!((e.pos.line, e.pos.column), (31, 10), "{name} cut at {cut}");
            }
        }
    }

    #[test]
    fn crlf_and_cr_count_as_one_line_break() {
        assert_eq!(at("a: 1\r\nb: \u{7}\n").map(|e| (e.0, e.1)), Some((2, 4)));
        assert_eq!(at("a: 1\rb: \u{7}\n").map(|e| (e.0, e.1)), Some((2, 4)));
    }

    #[test]
    fn only_yaml_1_2_may_be_declared() {
        assert_eq!(at("%YAML 1.2\n---\na: 1\n"), None);
        assert_eq!(at("# c\n%YAML 1.2 # x\n--- a: 1\n"), None);
        for (text, line) in [
            ("%YAML 1.1\n---\na: 010\n", 1),
            ("# comment\n\n%YAML 2.0\n---\na: 1\n", 3),
            ("%TAG !e! tag:e.com,2000:\n%YAML   1.1\n---\na: 1\n", 2),
            ("\u{feff}%YAML 1.1\n---\na: 1\n", 1),
        ] {
            let (l, c, m) = at(text).unwrap_or_else(|| panic!("{text:?} passed"));
            assert_eq!((l, c), (line, 1), "{text:?}");
            assert!(m.contains("YAML 1.2 only"), "{m}");
        }
        // Past the prefix a `%` line is content (or an error of the
        // parser's), never a directive of this check's.
        assert_eq!(at("a: |\n  x\n%YAML 1.1\n"), None);
    }
}
