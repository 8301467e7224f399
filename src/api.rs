//! The IPRoyal API client: one call, `DELETE {api_base}/sessions`.
//!
//! The only user of reqwest. TLS is rustls with the ring provider (builds on a
//! machine with just a C compiler; no OpenSSL, no cmake).
//!
//! # Guarantees
//! - The token is sent only as the bearer header (marked sensitive) and is
//!   never formatted: `Token`'s Debug and Display print `[redacted]`, and error
//!   messages are scrubbed of it in case a server echoes it back.

use std::time::Duration;

use serde_json::Value;

use crate::policy::Failure;

/// Default API base, per IPRoyal's documentation.
pub const DEFAULT_API_BASE: &str = "https://resi-api.iproyal.com/v1";

/// An IPRoyal API token. It cannot be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// From the environment or a token file; surrounding whitespace (a
    /// trailing newline from `echo`) is dropped. `None` when empty.
    pub fn new(raw: &str) -> Option<Token> {
        let t = raw.trim();
        (!t.is_empty()).then(|| Token(t.to_owned()))
    }

    /// Replace any occurrence of the token in `text`.
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, "[redacted]")
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
}

impl Credentials {
    pub fn new(api_base: &str, token_file: Option<&std::path::Path>) -> Self {
        Credentials {
            api_base: api_base.to_owned(),
            token_file: token_file.map(ToOwned::to_owned),
            current: None,
        }
    }

    /// A client with the current token; an error when there is none (or
    /// the API base is unusable).
    pub fn api(&mut self) -> anyhow::Result<&Api> {
        let token = load_token(self.token_file.as_deref())?;
        let stale = self
            .current
            .as_ref()
            .is_none_or(|(current, _)| *current != token);
        if stale {
            let api = Api::new(&self.api_base, token.clone())?;
            self.current = Some((token, api));
        }
        match &self.current {
            Some((_, api)) => Ok(api),
            None => Err(anyhow::anyhow!("no API client")),
        }
    }

    /// The client built by the last successful `api()`, if any.
    pub fn current(&self) -> Option<&Api> {
        self.current.as_ref().map(|(_, api)| api)
    }
}

/// The token from `--token-file`, else from `IPROYAL_API_TOKEN`.
pub fn load_token(file: Option<&std::path::Path>) -> Result<Token, TokenError> {
    let raw = match file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| TokenError::File(path.to_owned(), e))?
        }
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    Token::new(&raw).ok_or_else(|| match file {
        Some(path) => TokenError::EmptyFile(path.to_owned()),
        None => TokenError::Missing,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no API token: resets are due and not in dry run; set {TOKEN_ENV} or pass --token-file (nothing was sent)"
    )]
    Missing,
    #[error("cannot read token file {0}: {1}")]
    File(std::path::PathBuf, #[source] std::io::Error),
    #[error("token file {0} is empty")]
    EmptyFile(std::path::PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("HTTP {code}: {message}")]
    Status {
        code: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("invalid API base URL `{0}`")]
    BadBase(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl ApiError {
    /// The retry policy's view of this error.
    pub fn failure(&self) -> Failure {
        match self {
            ApiError::Status {
                code, retry_after, ..
            } => Failure::Status {
                code: *code,
                retry_after: *retry_after,
            },
            ApiError::Timeout(_) => Failure::Timeout,
            ApiError::Connection(_) | ApiError::BadBase(_) | ApiError::Client(_) => {
                Failure::Connection
            }
        }
    }
}

/// A 2xx answer.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub code: u16,
}

pub struct Api {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Token,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(api_base: &str, token: Token) -> Result<Api, ApiError> {
        // Installing the process-wide provider fails only when one is already
        // installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = api_base.trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/sessions"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ApiError::BadBase(api_base.to_owned()))?;
        let loopback = match url.host_str() {
            Some("localhost" | "[::1]") => true,
            Some(host) => host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if url.scheme() == "http" && !loopback {
            tracing::warn!(api = %url, "the API base is plain HTTP: the token travels unencrypted");
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(Api { client, url, token })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Send one DELETE for `hashes`. Any 2xx is success.
    pub async fn delete_sessions(
        &self,
        hashes: &[String],
        timeout: Duration,
    ) -> Result<Answered, ApiError> {
        let body = serde_json::json!({ "residential_user_hashes": hashes });
        let sent = self
            .client
            .delete(self.url.clone())
            .bearer_auth(&self.token.0)
            .json(&body)
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(ApiError::Timeout(timeout)),
            Err(e) => return Err(ApiError::Connection(self.token.scrub(&error_chain(&e)))),
        };
        let code = response.status().as_u16();
        if response.status().is_success() {
            // Drain the body so the connection can be reused; its content is
            // not documented and not needed.
            let _ = response.bytes().await;
            return Ok(Answered { code });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return Err(ApiError::Timeout(timeout)),
            Err(e) => return Err(ApiError::Connection(self.token.scrub(&error_chain(&e)))),
        };
        let mut message = self.token.scrub(&error_message(&text));
        if code == 401 || code == 403 {
            message = format!(
                "the API refused the token ({message}); check IPROYAL_API_TOKEN or --token-file, \
                 and that the account has API access"
            );
        }
        Err(ApiError::Status {
            code,
            retry_after,
            message,
        })
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// IPRoyal documents no error body; take what a JSON API usually says
/// (`error.message`, `message`, `errors`, `error`), else the text itself.
pub fn error_message(body: &str) -> String {
    const MAX: usize = 300;
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let text = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        v.pointer("/error/message")
            .and_then(text)
            .or_else(|| v.get("message").and_then(text))
            .or_else(|| v.get("errors").and_then(text))
            .or_else(|| v.get("error").and_then(text))
    });
    let message = from_json.unwrap_or_else(|| body.trim().to_owned());
    let message = if message.is_empty() {
        "(empty body)".to_owned()
    } else {
        message
    };
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// An error with its causes, which reqwest keeps in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn token_never_formats() {
        let token = Token::new("secret-token\n").unwrap();
        assert_eq!(format!("{token} {token:?}"), "[redacted] Token([redacted])");
        assert_eq!(
            token.scrub("bad token secret-token"),
            "bad token [redacted]"
        );
        assert!(Token::new(" \n").is_none());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = chrono::Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
            .unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn error_bodies_are_read_leniently() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad hash"}}"#),
            "bad hash"
        );
        assert_eq!(
            error_message(r#"{"message":"Unauthenticated."}"#),
            "Unauthenticated."
        );
        assert_eq!(error_message(r#"{"errors":["a","b"]}"#), r#"["a","b"]"#);
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_message(""), "(empty body)");
        assert_eq!(error_message(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn api_base_must_be_http() {
        let token = Token::new("t").unwrap();
        assert!(matches!(
            Api::new("ftp://x", token.clone()),
            Err(ApiError::BadBase(_))
        ));
        let api = Api::new("http://127.0.0.1:9/v1/", token).unwrap();
        assert_eq!(api.url(), "http://127.0.0.1:9/v1/sessions");
    }
}
