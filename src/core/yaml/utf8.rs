//! Streaming a file into the parser: UTF-8 decoded chunk by chunk, so a
//! large config is never held whole.

/// Decodes UTF-8 from a reader chunk by chunk.
pub(super) struct Utf8Chars<R> {
    reader: R,
    bytes: Vec<u8>,
    /// Bytes of an incomplete character at the end of the last chunk.
    carry: usize,
    chars: Vec<char>,
    next: usize,
    pub(super) error: Option<std::io::Error>,
    /// Line breaks decoded so far, to locate an encoding error.
    newlines: usize,
    /// Nothing read yet: the place to recognise a UTF-16 byte order mark.
    at_start: bool,
}

/// The file is not UTF-8, at this 1-based line (carried inside the
/// `io::Error` so the loader can turn it into a located diagnostic).
#[derive(Debug)]
pub struct EncodingError {
    pub line: u32,
    pub message: &'static str,
}

impl std::fmt::Display for EncodingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for EncodingError {}

impl<R: std::io::Read> Utf8Chars<R> {
    pub(super) fn new(reader: R) -> Self {
        Utf8Chars {
            reader,
            bytes: vec![0; 64 * 1024],
            carry: 0,
            chars: Vec::new(),
            next: 0,
            error: None,
            newlines: 0,
            at_start: true,
        }
    }

    /// Decode the next chunk; false at the end or on error.
    fn refill(&mut self) -> bool {
        self.chars.clear();
        self.next = 0;
        while self.chars.is_empty() {
            let read = match self.reader.read(&mut self.bytes[self.carry..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            };
            let end = self.carry + read;
            if self.at_start && end >= 2 {
                self.at_start = false;
                if matches!(self.bytes[..2], [0xFF, 0xFE] | [0xFE, 0xFF]) {
                    self.fail("the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8");
                    return false;
                }
            }
            let (valid, rest) = match std::str::from_utf8(&self.bytes[..end]) {
                Ok(s) => (s, 0),
                // An incomplete character at the end of a chunk is kept for the
                // next read; anything else is not UTF-8.
                Err(e) if e.error_len().is_none() && read > 0 => {
                    let upto = e.valid_up_to();
                    (
                        std::str::from_utf8(&self.bytes[..upto]).unwrap_or_default(),
                        end - upto,
                    )
                }
                Err(e) => {
                    let before = &self.bytes[..e.valid_up_to()];
                    self.newlines += before.iter().filter(|b| **b == b'\n').count();
                    self.fail("not valid UTF-8 (resetd reads UTF-8 only)");
                    return false;
                }
            };
            self.newlines += valid.bytes().filter(|b| *b == b'\n').count();
            self.chars.extend(valid.chars());
            self.bytes.copy_within(end - rest..end, 0);
            self.carry = rest;
            if read == 0 {
                return !self.chars.is_empty();
            }
        }
        true
    }
}

impl<R> Utf8Chars<R> {
    fn fail(&mut self, message: &'static str) {
        let line = u32::try_from(self.newlines + 1).unwrap_or(u32::MAX);
        self.error = Some(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            EncodingError { line, message },
        ));
    }
}

impl<R: std::io::Read> Iterator for Utf8Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.next >= self.chars.len() && !self.refill() {
            return None;
        }
        let c = self.chars[self.next];
        self.next += 1;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use crate::yaml::{Dialect, parse, parse_file};

    #[test]
    fn reading_from_a_stream_matches_parsing_text() {
        let text: String = (0..3000)
            .map(|i| format!("a{i}: 1\nb{i}: [x, \"é ü 😀\"]\nc{i}: {{d: e}}\n"))
            .collect();
        // A tiny reader splits multi-byte characters across reads.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        // Both scanners: an escape sequence sends the text to saphyr.
        for text in [text.clone(), format!("{text}t: \"\\u0041\"\n")] {
            let expected = parse(&text).unwrap().0;
            let (parsed, digest) =
                parse_file(|| Ok(Trickle(text.as_bytes())), None, Dialect::Plain).unwrap();
            assert_eq!(parsed.unwrap().0, expected);
            assert_eq!(digest, crate::digest::hex_digest(text.as_bytes()));
        }
        assert!(parse_file(|| Ok(&b"a: \xff\n"[..]), None, Dialect::Plain).is_err());
    }
}
