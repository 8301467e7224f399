//! Located problems in a config file, and the three ways they are printed.
//!
//! Every problem resetd finds in a file, from YAML syntax to an include cycle,
//! becomes one `Diagnostic` with a 1-based line and column and a readable path
//! such as `resets[2].groups[0]`, so CI can annotate the exact line of a PR.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// Where in the document, e.g. `resets[2].groups[0]`; empty for the whole file.
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

/// Characters of a value from the file quoted in a message; the rest is `…`.
pub const QUOTE_CHARS: usize = 60;
/// Characters of a rendered message (and of a path) at most: a config is
/// hostile input, and a 50 MB value must not become a 50 MB diagnostic.
pub const MESSAGE_CHARS: usize = 500;

/// A value taken from the file, for a message: in backticks, at most
/// [`QUOTE_CHARS`] characters of it, control characters escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::from("`");
    let mut chars = value.chars();
    for c in chars.by_ref().take(QUOTE_CHARS) {
        push_escaped(&mut out, c, false);
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('`');
    out
}

/// Characters that could rewrite a terminal or a reviewer's reading of the
/// text: C0/C1 controls, DEL, and bidirectional overrides.
fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char, keep_newlines: bool) {
    if is_dangerous(c) && !(keep_newlines && matches!(c, '\n' | '\r')) {
        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
    } else {
        out.push(c);
    }
}

/// Render-time safety net for every message and path, whatever built it:
/// control characters escaped, each backtick-quoted part cut to
/// [`QUOTE_CHARS`] characters and the whole to `max` characters.
/// `keep_newlines`: for the GitHub format, whose own escaping covers them.
pub fn sanitize(text: &str, max: usize, keep_newlines: bool) -> String {
    let mut out = String::new();
    let mut written = 0;
    let mut quoted = false;
    let mut in_quote = 0;
    for c in text.chars() {
        if c == '`' {
            quoted = !quoted;
            in_quote = 0;
        } else if quoted {
            in_quote += 1;
            if in_quote > QUOTE_CHARS {
                if in_quote == QUOTE_CHARS + 1 {
                    out.push('…');
                }
                continue;
            }
        }
        if written == max {
            out.push('…');
            break;
        }
        written += 1;
        push_escaped(&mut out, c, keep_newlines);
    }
    out
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// rustc-like text: `error: message` then `  --> file:line:col (path)`.
pub fn render_human(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message = sanitize(&d.message, MESSAGE_CHARS, false);
        let _ = writeln!(out, "{level}: {message}");
        let _ = write!(
            out,
            "  --> {}:{}:{}",
            sanitize(&d.file, MESSAGE_CHARS, false),
            d.line,
            d.column
        );
        if !d.path.is_empty() {
            let _ = write!(out, " at {}", sanitize(&d.path, MESSAGE_CHARS, false));
        }
        out.push('\n');
    }
    out
}

/// A JSON array of diagnostics, one object each.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    let bounded: Vec<Diagnostic> = diagnostics
        .iter()
        .map(|d| Diagnostic {
            message: sanitize(&d.message, MESSAGE_CHARS, false),
            path: sanitize(&d.path, MESSAGE_CHARS, false),
            ..d.clone()
        })
        .collect();
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string_pretty(&bounded).unwrap_or_else(|_| String::from("[]"))
}

/// GitHub Actions workflow commands, which annotate the PR diff.
pub fn render_github(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let body = sanitize(&d.message, MESSAGE_CHARS, true);
        let message = if d.path.is_empty() {
            body
        } else {
            format!("{}: {body}", sanitize(&d.path, MESSAGE_CHARS, true))
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={}::{}",
            escape_property(&d.file),
            d.line,
            d.column,
            escape_data(&message)
        );
    }
    out
}

// GitHub's escaping rules for workflow commands: data escapes %, CR, LF;
// properties also escape `:` and `,`.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Diagnostic {
        Diagnostic {
            file: "a,b.yaml".into(),
            line: 3,
            column: 7,
            path: "resets[0].id".into(),
            message: "50% wrong\nreally".into(),
            severity: Severity::Error,
        }
    }

    #[test]
    fn github_escapes_properties_and_data() {
        assert_eq!(
            render_github(&[sample()]),
            "::error file=a%2Cb.yaml,line=3,col=7::resets[0].id: 50%25 wrong%0Areally\n"
        );
    }

    #[test]
    fn values_are_quoted_short_and_escaped() {
        let long = "a".repeat(1000);
        let q = quote(&format!("\u{1b}[31m{long}"));
        assert!(q.starts_with("`\\u{1b}[31maaa"), "{q}");
        assert!(q.ends_with("…`"), "{q}");
        assert!(q.chars().count() < QUOTE_CHARS + 20, "{q}");
        assert!(!q.contains('\u{1b}'));
    }

    #[test]
    fn every_format_bounds_and_escapes_messages() {
        let huge = "x".repeat(1 << 20);
        let d = Diagnostic {
            message: format!("hash `{huge}` is listed twice\u{1b}]0;pwned\u{7}\n{huge}"),
            path: format!("groups.{huge}\u{1b}"),
            ..sample()
        };
        for out in [
            render_human(std::slice::from_ref(&d)),
            render_json(std::slice::from_ref(&d)),
            render_github(std::slice::from_ref(&d)),
        ] {
            assert!(out.len() < 3 * MESSAGE_CHARS, "{} bytes", out.len());
            assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
            assert!(out.contains("is listed twice"), "{out}");
        }
        assert!(!render_human(&[d]).contains("twice\n"));
    }

    #[test]
    fn human_names_file_line_column_and_path() {
        let text = render_human(&[sample()]);
        assert!(text.contains("error: 50% wrong"), "{text}");
        assert!(text.contains("--> a,b.yaml:3:7 at resets[0].id"), "{text}");
    }
}
