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
        let _ = writeln!(out, "{level}: {}", d.message);
        let _ = write!(out, "  --> {}:{}:{}", d.file, d.line, d.column);
        if !d.path.is_empty() {
            let _ = write!(out, " at {}", d.path);
        }
        out.push('\n');
    }
    out
}

/// A JSON array of diagnostics, one object each.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string_pretty(diagnostics).unwrap_or_else(|_| String::from("[]"))
}

/// GitHub Actions workflow commands, which annotate the PR diff.
pub fn render_github(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let message = if d.path.is_empty() {
            d.message.clone()
        } else {
            format!("{}: {}", d.path, d.message)
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
    fn human_names_file_line_column_and_path() {
        let text = render_human(&[sample()]);
        assert!(text.contains("error: 50% wrong"), "{text}");
        assert!(text.contains("--> a,b.yaml:3:7 at resets[0].id"), "{text}");
    }
}
