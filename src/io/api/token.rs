//! The API token: where it comes from (`--token-file`, else
//! `IPROYAL_API_TOKEN`), the redacting `Token`, and `Credentials`, the one
//! place it is read (once per pass) and the client built with it.

use super::Api;

/// An IPRoyal API token. It cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub(super) String);

impl Token {
    /// From the environment or a token file; surrounding whitespace (a
    /// trailing newline from `echo`) is dropped. `None` when empty.
    pub fn new(raw: &str) -> Option<Token> {
        let t = raw.trim();
        (!t.is_empty()).then(|| Token(t.to_owned()))
    }

    /// A short name for this token that reveals nothing of it: the first 48
    /// bits of a SHA-256 of it, in hex. Kept in the status file to tell a
    /// rotated token from the one the API refused.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("resetd token fingerprint\0{}", self.0));
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `text` without any piece of the token (`secret::scrub`). Run before
    /// any truncation, so no cut can split a piece.
    pub fn scrub(&self, text: &str) -> String {
        crate::secret::scrub(&self.0, text)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "IPROYAL_API_TOKEN";

#[cfg(test)]
#[test]
fn the_config_refuses_the_token_by_the_name_it_is_read_by() {
    assert_eq!(TOKEN_ENV, crate::config::API_TOKEN_ENV);
}

/// Where the token comes from and the client built with it: the one place
/// `run --once` and the daemon get an API client. The token is read only
/// when a request is due, and read again each time, so a rotated secret
/// (a mounted file) is picked up without a restart.
#[derive(Debug)]
pub struct Credentials {
    api_base: String,
    token_file: Option<std::path::PathBuf>,
    /// The client for the token last read.
    current: Option<(Token, Api)>,
    /// What reading the token gave in this pass: `api()` does not read it
    /// again until `forget_read`.
    read: Option<Result<(), String>>,
    /// The API connection's deadline (`Api::connecting_within`).
    connect_timeout: std::time::Duration,
}

impl Credentials {
    pub fn new(api_base: &str, token_file: Option<&std::path::Path>) -> Self {
        Credentials {
            api_base: api_base.to_owned(),
            token_file: token_file.map(ToOwned::to_owned),
            current: None,
            read: None,
            connect_timeout: super::CONNECT_TIMEOUT,
        }
    }

    /// Open API connections within `timeout` (an HA leader: within its
    /// safety margin).
    pub fn connecting_within(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A client with the current token; an error when there is none (or
    /// the API base is unusable). The token is read once until
    /// `forget_read` (once per pass); a token that changed gets a new client.
    pub fn api(&mut self) -> anyhow::Result<&Api> {
        if self.read.is_none() {
            let outcome = match load_token(self.token_file.as_deref()) {
                Ok(token) => {
                    let stale = self
                        .current
                        .as_ref()
                        .is_none_or(|(current, _)| *current != token);
                    if stale {
                        match Api::connecting_within(
                            &self.api_base,
                            token.clone(),
                            self.connect_timeout,
                        ) {
                            Ok(api) => {
                                self.current = Some((token, api));
                                Ok(())
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    } else {
                        Ok(())
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            if outcome.is_err() {
                self.current = None;
            }
            self.read = Some(outcome);
        }
        match (&self.read, &self.current) {
            (Some(Ok(())), Some((_, api))) => Ok(api),
            (Some(Err(e)), _) => Err(anyhow::anyhow!("{e}")),
            _ => Err(anyhow::anyhow!("no API client")),
        }
    }

    /// The next `api()` reads the token again (it may have been rotated).
    pub fn forget_read(&mut self) {
        self.read = None;
    }

    /// True when the token comes from a file, which may be rotated while
    /// resetd runs (the environment cannot change under it).
    pub fn from_file(&self) -> bool {
        self.token_file.is_some()
    }

    /// The client built by the last successful `api()`, if any.
    pub fn current(&self) -> Option<&Api> {
        self.current.as_ref().map(|(_, api)| api)
    }
}

/// The token from `--token-file`, else from `IPROYAL_API_TOKEN`.
pub fn load_token(file: Option<&std::path::Path>) -> Result<Token, TokenError> {
    let raw = match file {
        Some(path) => read_bounded(path)?,
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            from: file.map_or_else(|| TOKEN_ENV.to_owned(), |p| p.display().to_string()),
        });
    }
    let token = Token::new(&raw).ok_or_else(|| match file {
        Some(path) => TokenError::EmptyFile(path.to_owned()),
        None => TokenError::Missing,
    })?;
    // Checked here, before any request: otherwise every request fails as a
    // "network error" and is retried, and the entry fails for good.
    if reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.0)).is_err() {
        return Err(TokenError::NotAHeader);
    }
    Ok(token)
}

/// The largest token read. An IPRoyal token is tens of characters; a
/// mistaken `--token-file` (a log, an image) is refused before it is read
/// whole, rather than scrubbed, 8 characters at a time, out of every line.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The token file's text, at most `MAX_TOKEN_BYTES` (and one more, to tell
/// a larger file): only a regular file is read, so a FIFO cannot hang it.
fn read_bounded(path: &std::path::Path) -> Result<String, TokenError> {
    use std::io::Read as _;
    let file_error = |e| TokenError::File(path.to_owned(), e);
    let meta = std::fs::metadata(path).map_err(file_error)?;
    if meta.is_dir() {
        return Err(file_error(std::io::Error::from_raw_os_error(libc::EISDIR)));
    }
    if !meta.is_file() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(file_error(e));
    }
    if meta.len() > MAX_TOKEN_BYTES as u64 {
        return Err(TokenError::TooLarge {
            from: path.display().to_string(),
        });
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(file_error)?;
    Ok(text)
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no API token: set {TOKEN_ENV} or pass --token-file")]
    Missing,
    #[error(
        "the API token in {from} is larger than {MAX_TOKEN_BYTES} bytes: not a token (is it \
         the right file?)"
    )]
    TooLarge { from: String },
    /// The cause is in the message only, not also a `source()`, so that
    /// printing the error chain shows it once.
    #[error("cannot read token file {0}: {1}")]
    File(std::path::PathBuf, std::io::Error),
    #[error("token file {0} is empty")]
    EmptyFile(std::path::PathBuf),
    #[error(
        "the API token cannot be sent as an HTTP header (it holds a control character or a \
         line break inside it); check {TOKEN_ENV} or --token-file (nothing was sent)"
    )]
    NotAHeader,
}
