//! Secrets resetd holds but must never show: where they come from
//! (`SecretSource`), the redacting `Secret`, and `scrub`, the one function
//! that removes a secret from text a server or a library wrote back.
//!
//! # Guarantees
//! - `Secret`'s Debug and Display print `[redacted]`; its value leaves only
//!   through `expose`, for the request that needs it.
//! - Errors about a secret name its source (the variable, the file), never
//!   its value.

use std::path::PathBuf;

/// Where a secret comes from (`{env: NAME}` or `{file: PATH}` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl SecretSource {
    /// The secret as it is now. Surrounding whitespace (a trailing newline
    /// from `echo` or a Kubernetes secret file) is dropped; empty is an error.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let raw = match self {
            SecretSource::Env(name) => std::env::var(name).unwrap_or_default(),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| SecretError::Unreadable(self.clone(), e))?,
        };
        Secret::new(&raw).ok_or_else(|| SecretError::Empty(self.clone()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0} is unset or empty")]
    Empty(SecretSource),
    /// The cause is in the message only, so an error chain prints it once.
    #[error("cannot read {0}: {1}")]
    Unreadable(SecretSource, std::io::Error),
}

/// A secret value (a URL with a token in it, a signing key, a token). It
/// cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `None` when `raw` is empty after trimming.
    pub fn new(raw: &str) -> Option<Secret> {
        let t = raw.trim();
        (!t.is_empty()).then(|| Secret(t.to_owned()))
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` without any piece of this secret (see `scrub`).
    pub fn scrub(&self, text: &str) -> String {
        scrub(&self.0, text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Replace every piece of `secret` in `text`: any 8 consecutive characters
/// of it (the whole secret if shorter), as they are or as a server may have
/// escaped them (JSON, `\/`, percent-encoding). A server echoing a secret
/// back, cut short or escaped, leaks none of it. Run before any truncation,
/// so no cut can split a piece.
pub fn scrub(secret: &str, text: &str) -> String {
    const PIECE: usize = 8;
    let chars: Vec<char> = secret.chars().collect();
    if chars.is_empty() {
        return text.to_owned();
    }
    let width = PIECE.min(chars.len());
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for start in 0..=chars.len() - width {
        let piece: String = chars[start..start + width].iter().collect();
        for form in escapings(&piece) {
            spans.extend(text.match_indices(&form).map(|(at, m)| (at, at + m.len())));
        }
    }
    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (from, to) in spans {
        if to <= done {
            continue;
        }
        if from >= done {
            out.push_str(&text[done..from]);
            out.push_str("[redacted]");
        }
        done = to;
    }
    out.push_str(&text[done..]);
    out
}

/// The ways a server may have written `piece` back: as is, JSON-escaped
/// (with and without `\/`), percent-encoded (upper and lower case hex).
pub(crate) fn escapings(piece: &str) -> Vec<String> {
    let json = serde_json::to_string(piece).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(&json)
        .to_owned();
    let percent = |upper: bool| -> String {
        piece
            .bytes()
            .map(|b| match b {
                _ if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    let mut forms = vec![
        piece.to_owned(),
        json.replace('/', "\\/"),
        json,
        percent(true),
        percent(false),
    ];
    forms.sort();
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_formats_and_is_scrubbed_in_pieces() {
        let secret = Secret::new(" hook-T0KEN-abcdef123456\n").unwrap();
        assert_eq!(
            format!("{secret} {secret:?}"),
            "[redacted] Secret([redacted])"
        );
        assert_eq!(secret.expose(), "hook-T0KEN-abcdef123456");
        // An echo cut short still loses every 8-character piece.
        let out = secret.scrub("echo: hook-T0KEN-abcd (truncated)");
        assert!(!out.contains("T0KEN"), "{out}");
        assert!(Secret::new(" \n").is_none());
        assert_eq!(scrub("", "text"), "text");
    }

    #[test]
    fn errors_name_the_source_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = SecretSource::File(empty.clone()).read().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("file {} is unset or empty", empty.display())
        );
        let e = SecretSource::Env("RESETD_TEST_SURELY_UNSET_7c1".into())
            .read()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "env RESETD_TEST_SURELY_UNSET_7c1 is unset or empty"
        );
        let e = SecretSource::File(dir.path().join("missing"))
            .read()
            .unwrap_err();
        assert!(e.to_string().starts_with("cannot read file "), "{e}");
    }
}
