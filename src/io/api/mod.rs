//! The IPRoyal API client: `DELETE {api_base}/sessions`, and the two reads
//! sub-users need (`GET /residential-subusers`, every page; `GET /me`); and
//! `get_status`, the GET of a running daemon's `/status` for `plan`.
//!
//! With `notify`, one of the two users of reqwest. TLS is rustls with the
//! ring provider (builds on a machine with just a C compiler; no OpenSSL, no
//! cmake).
//!
//! # Guarantees
//! - The token is sent only as the bearer header (marked sensitive) and is
//!   never formatted: `Token`'s Debug and Display print `[redacted]`, and error
//!   messages are scrubbed of it in case a server echoes it back.

use std::time::Duration;

use serde_json::Value;

use crate::policy::Failure;

mod status_url;
mod token;
pub use status_url::{MAX_STATUS_BYTES, STATUS_TIMEOUT, StatusUrlError, get_status};
pub use token::{Credentials, TOKEN_ENV, Token, TokenError, load_token};

/// Default API base, per IPRoyal's documentation.
pub const DEFAULT_API_BASE: &str = "https://resi-api.iproyal.com/v1";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Errors name the URL they came from (a wrong `--api-base` shows in
    /// the status file), never the token.
    #[error("HTTP {code} from {url}: {message}")]
    Status {
        code: u16,
        url: String,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("no answer from {url} within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("cannot reach {url}: {message}")]
    Connection { url: String, message: String },
    /// A 2xx answer resetd cannot use (not the documented shape, too large).
    #[error("unexpected answer from {url}: {message}")]
    Answer { url: String, message: String },
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
            ApiError::Timeout { .. } => Failure::Timeout,
            ApiError::Answer { .. } => Failure::Invalid,
            ApiError::Connection { .. } | ApiError::BadBase(_) | ApiError::Client(_) => {
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
    /// `{api_base}/sessions`.
    url: reqwest::Url,
    /// `{api_base}/`, for the other endpoints.
    base: reqwest::Url,
    token: Token,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("url", &shown_url(&self.url))
            .finish_non_exhaustive()
    }
}

/// How long the API's connection may take to open (DNS, TCP, TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Api {
    pub fn new(api_base: &str, token: Token) -> Result<Api, ApiError> {
        Self::connecting_within(api_base, token, CONNECT_TIMEOUT)
    }

    /// `new`, with the connection's own deadline: an HA leader's is shorter
    /// than its safety margin, so a request allowed to start cannot leave
    /// after its lease could have expired.
    pub fn connecting_within(
        api_base: &str,
        token: Token,
        connect_timeout: Duration,
    ) -> Result<Api, ApiError> {
        // Installing the process-wide provider fails only when one is already
        // installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = api_base.trim_end_matches('/');
        // A query or fragment would end up in the middle of every endpoint.
        let url = reqwest::Url::parse(&format!("{base}/sessions"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .filter(|u| u.query().is_none() && u.fragment().is_none())
            .ok_or_else(|| ApiError::BadBase(shown_url_text(api_base)))?;
        let base = reqwest::Url::parse(&format!("{base}/"))
            .map_err(|_| ApiError::BadBase(shown_url_text(api_base)))?;
        let loopback = match url.host_str() {
            Some("localhost" | "[::1]") => true,
            Some(host) => host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if url.scheme() == "http" && !loopback {
            tracing::warn!(api = %shown_url(&url), "the API base is plain HTTP: the token travels unencrypted");
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            // A redirect answered elsewhere confirms nothing (and a captive
            // portal would swallow every reset): a 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(Api {
            client,
            url,
            base,
            token,
        })
    }

    /// The endpoint, as it may be shown (no credentials).
    pub fn url(&self) -> String {
        shown_url(&self.url)
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
            Err(e) => return Err(self.transport_error(e, timeout)),
        };
        let code = response.status().as_u16();
        if response.status().is_success() {
            // Read (a bounded part of) the body so a small one leaves the
            // connection reusable; its content is not documented or needed.
            let _ = read_bounded(response).await;
            return Ok(Answered { code });
        }
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "(no Location)".into());
            let location = error_message(&self.token.scrub(&location));
            return Err(ApiError::Status {
                code,
                url: self.shown_url(),
                retry_after: None,
                message: format!(
                    "redirected to {location}; redirects are never followed (a DELETE answered \
                     elsewhere confirms nothing): check --api-base / RESETD_API_BASE"
                ),
            });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let text = match read_bounded(response).await {
            Ok(t) => t,
            Err(e) => return Err(self.transport_error(e, timeout)),
        };
        // Scrubbed before the message is extracted and cut to length, so
        // neither unescaping nor truncation can expose a piece of the token.
        let mut message = self.token.scrub(&error_message(&self.token.scrub(&text)));
        if code == 401 || code == 403 {
            message = format!(
                "the API refused the token ({message}); check IPROYAL_API_TOKEN or --token-file, \
                 and that the account has API access"
            );
        }
        Err(ApiError::Status {
            code,
            url: self.shown_url(),
            retry_after,
            message,
        })
    }

    /// The URL as errors show it: scrubbed, in case a token was pasted into
    /// the API base.
    fn shown_url(&self) -> String {
        self.shown(&self.url)
    }

    fn shown(&self, url: &reqwest::Url) -> String {
        self.token.scrub(without_userinfo(url).as_str())
    }

    fn transport_error(&self, e: reqwest::Error, timeout: Duration) -> ApiError {
        self.transport_error_at(&self.url, e, timeout)
    }

    fn transport_error_at(
        &self,
        url: &reqwest::Url,
        e: reqwest::Error,
        timeout: Duration,
    ) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout {
                url: self.shown(url),
                after: timeout,
            }
        } else {
            ApiError::Connection {
                url: self.shown(url),
                message: self.token.scrub(&error_chain(&e.without_url())),
            }
        }
    }

    /// Every sub-user of the account, all pages, keeping only username and
    /// hash. Each page is retried as `retry` says (429/5xx/timeouts).
    pub async fn subusers(
        &self,
        timeout: Duration,
        retry: crate::policy::RetryPolicy,
    ) -> Result<Vec<crate::users::SubUser>, ApiError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            data: Vec<crate::users::SubUser>,
            #[serde(default)]
            meta: Option<Meta>,
        }
        #[derive(serde::Deserialize)]
        struct Meta {
            #[serde(default)]
            last_page: Option<u64>,
        }
        let mut users = Vec::new();
        let mut page: u64 = 1;
        loop {
            let mut url = self.endpoint("residential-subusers")?;
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", &SUBUSERS_PER_PAGE.to_string());
            let answer: Page = self.get_json(&url, timeout, retry).await?;
            let last_page = answer.meta.and_then(|m| m.last_page).unwrap_or(page);
            let empty = answer.data.is_empty();
            users.extend(answer.data);
            if empty || page >= last_page {
                return Ok(users);
            }
            // Refused as soon as the server claims more than will be read,
            // and again should its count keep growing.
            if last_page > MAX_SUBUSER_PAGES
                || page >= MAX_SUBUSER_PAGES
                || users.len() >= MAX_SUBUSERS
            {
                return Err(ApiError::Answer {
                    url: self.shown(&url),
                    message: format!(
                        "the account lists more than {MAX_SUBUSERS} sub-users ({last_page} pages \
                         of {SUBUSERS_PER_PAGE}); resetd reads at most {MAX_SUBUSER_PAGES} pages"
                    ),
                });
            }
            page += 1;
        }
    }

    /// The account's own `residential_user_hash` (`GET /me`).
    pub async fn own_hash(
        &self,
        timeout: Duration,
        retry: crate::policy::RetryPolicy,
    ) -> Result<String, ApiError> {
        #[derive(serde::Deserialize)]
        struct Me {
            residential_user_hash: String,
        }
        let url = self.endpoint("me")?;
        let me: Me = self.get_json(&url, timeout, retry).await?;
        Ok(me.residential_user_hash)
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, ApiError> {
        self.base
            .join(path)
            .map_err(|_| ApiError::BadBase(self.shown(&self.base)))
    }

    /// GET `url` as JSON of type `T`, read up to `MAX_PAGE_BYTES`, retried
    /// as `retry` says. Redirects are refused, as for the DELETE.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        timeout: Duration,
        retry: crate::policy::RetryPolicy,
    ) -> Result<T, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.get_json_once(url, timeout).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            match crate::policy::on_failure(&error.failure(), attempt, retry, 0.5) {
                crate::policy::Verdict::Retry(delay) => {
                    tracing::warn!("GET failed, retrying in {delay:?}: {error}");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(error),
            }
        }
    }

    async fn get_json_once<T: serde::de::DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let sent = self
            .client
            .get(url.clone())
            .bearer_auth(&self.token.0)
            .timeout(timeout)
            .send()
            .await;
        let mut response = sent.map_err(|e| self.transport_error_at(url, e, timeout))?;
        let code = response.status().as_u16();
        if !response.status().is_success() {
            let redirect = response.status().is_redirection();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            let text = read_bounded(response).await.unwrap_or_default();
            let mut message = self.token.scrub(&error_message(&self.token.scrub(&text)));
            if redirect {
                message = "redirects are never followed: check --api-base / RESETD_API_BASE".into();
            } else if code == 401 || code == 403 {
                message = format!(
                    "the API refused the token ({message}); check IPROYAL_API_TOKEN or \
                     --token-file, and that the account has API access"
                );
            }
            return Err(ApiError::Status {
                code,
                url: self.shown(url),
                retry_after,
                message,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error_at(url, e, timeout))?
        {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(ApiError::Answer {
                    url: self.shown(url),
                    message: format!("the answer is larger than {} MiB", MAX_PAGE_BYTES >> 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        // serde's own message names a field and a position, never a value:
        // a password in the answer cannot reach it.
        serde_json::from_slice(&body).map_err(|e| ApiError::Answer {
            url: self.shown(url),
            message: format!("not the documented JSON: {e}"),
        })
    }

    /// A fingerprint of the token (`api::Token::fingerprint`).
    pub fn token_fingerprint(&self) -> String {
        self.token.fingerprint()
    }
}

/// Time limit of one GET (a page of sub-users, `/me`).
pub const GET_TIMEOUT: Duration = Duration::from_secs(30);
/// Sub-users asked for per page.
pub const SUBUSERS_PER_PAGE: usize = 100;
/// The most pages of sub-users read (1,000,000 sub-users at 100 a page).
pub const MAX_SUBUSER_PAGES: u64 = 10_000;
/// The most sub-users kept.
pub const MAX_SUBUSERS: usize = 1_000_000;
/// The most of one answer of a GET read (a page of 100 sub-users is ~20 KiB).
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The most of an answer body read; the rest is never downloaded.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// At most `MAX_BODY_BYTES` of the body, as text (lossy): a server cannot
/// make resetd hold a large answer in memory.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
) -> Result<String, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await? {
            Some(chunk) => {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
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
/// `url` fit for a log line, an error or the status file: user name,
/// password and query may each carry a credential, so none is shown. The
/// one way resetd shows a URL it was given (API base, `--status-url`).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = without_userinfo(url);
    let query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    if query {
        format!("{shown}?redacted")
    } else {
        shown.to_string()
    }
}

/// `url` without its user name and password: for the URLs of requests
/// resetd makes, whose query is its own (`?page=2`).
fn without_userinfo(url: &reqwest::Url) -> reqwest::Url {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        let _ = shown.set_username("redacted");
        let _ = shown.set_password(None);
    }
    shown
}

/// [`shown_url`] of a URL given as text (one that does not parse is not
/// shown at all).
pub fn shown_url_text(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| "(an unparsable URL)".to_owned(), |u| shown_url(&u))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
    use super::status_url::get_status_within;
    use super::*;
    use crate::secret::escapings;
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

    /// What a server's answer becomes in resetd's output: the same steps as
    /// `delete_sessions` takes for an error body.
    fn reported(token: &Token, body: &str) -> String {
        token.scrub(&error_message(&token.scrub(body)))
    }

    fn leaks(token: &str, output: &str) -> Option<String> {
        let chars: Vec<char> = token.chars().collect();
        (0..=chars.len().saturating_sub(8)).find_map(|i| {
            let piece: String = chars[i..(i + 8).min(chars.len())].iter().collect();
            escapings(&piece)
                .into_iter()
                .find(|form| output.contains(form.as_str()))
        })
    }

    proptest::proptest! {
        #[test]
        fn no_piece_of_the_token_survives_any_echo(
            token in "[A-Za-z0-9/+=_.~-]{8,60}",
            junk in "[ -~]{0,40}",
            form in 0usize..5,
            start in 0usize..60,
            cut in 0usize..400,
            json in proptest::bool::ANY,
        ) {
            let t = Token::new(&token).unwrap();
            let start = start.min(token.len() - 8);
            let echoed = &token[start..];
            let forms = escapings(echoed);
            let mut echo = forms[form % forms.len()].clone();
            // The server may cut its own echo anywhere.
            let cut = cut.min(echo.len());
            while !echo.is_char_boundary(cut) { echo.pop(); }
            echo.truncate(cut);
            let body = if json {
                format!("{{\"message\": {}}}", serde_json::to_string(&format!("{junk}{echo}{junk}")).unwrap())
            } else {
                format!("{junk}{echo}{junk}")
            };
            let out = reported(&t, &body);
            proptest::prop_assert!(leaks(&token, &out).is_none(), "{out} leaks {:?}", leaks(&token, &out));
        }
    }

    #[test]
    fn pieces_cut_by_the_length_limit_or_escaped_are_scrubbed() {
        let token = "abcdefgh/ijklmnop/qrstuvwxyz0123456789ABCDEFGHIJKLMNO";
        let t = Token::new(token).unwrap();
        // An echo cut by the 300-character limit.
        let body = format!("{}{token}", "x".repeat(290));
        assert!(leaks(token, &reported(&t, &body)).is_none());
        // A JSON `\/`-escaped echo.
        let body = format!("{{\"error\": \"bad {}\"}}", token.replace('/', "\\/"));
        assert!(
            leaks(token, &reported(&t, &body)).is_none(),
            "{}",
            reported(&t, &body)
        );
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "abc\u{7}defgh\n").unwrap();
        assert!(matches!(
            load_token(Some(&file)),
            Err(TokenError::NotAHeader)
        ));
        std::fs::write(&file, "abc\ndefgh\n").unwrap();
        assert!(matches!(
            load_token(Some(&file)),
            Err(TokenError::NotAHeader)
        ));
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

    /// A server on 127.0.0.1 that reads one request and answers `reply`
    /// (nothing at all when empty, until the client hangs up).
    fn answer_once(reply: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            if reply.is_empty() {
                while stream.read(&mut byte).unwrap_or(0) == 1 {}
            } else {
                let _ = stream.write_all(reply);
            }
        });
        format!("http://{addr}/status")
    }

    #[tokio::test]
    async fn a_silent_daemon_is_an_error_naming_the_url() {
        let url = answer_once(b"");
        let bounded = get_status_within(&url, Duration::from_millis(300), 1024);
        // Without its timeout the GET would wait forever: fail, do not hang.
        let e = tokio::time::timeout(Duration::from_secs(10), bounded)
            .await
            .expect("the GET gave up within its timeout")
            .unwrap_err();
        assert_eq!(e.url, url);
        assert!(e.reason.contains("no complete answer within"), "{e}");
    }

    #[tokio::test]
    async fn a_status_past_the_bound_is_refused_whether_announced_or_not() {
        // Refused on the announced length, before any of the body is read.
        let announced = answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}");
        let e = get_status_within(&announced, Duration::from_secs(5), 16)
            .await
            .unwrap_err();
        assert!(e.reason.contains("larger than"), "{e}");
        let chunked = answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"apiVersion\": 1\r\n10\r\n, \"kind\": 2}    \r\n0\r\n\r\n",
        );
        let e = get_status_within(&chunked, Duration::from_secs(5), 16)
            .await
            .unwrap_err();
        assert!(e.reason.contains("larger than"), "{e}");
        // Within the bound, the same body is read and judged.
        let chunked = answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"apiVersion\": 1\r\n10\r\n, \"kind\": 2}    \r\n0\r\n\r\n",
        );
        let e = get_status_within(&chunked, Duration::from_secs(5), 32)
            .await
            .unwrap_err();
        assert!(e.reason.contains("not a resetd status"), "{e}");
    }

    #[test]
    fn a_url_is_shown_without_user_password_or_query() {
        let url = reqwest::Url::parse("https://ops:s3cret@resetd.internal:9090/status?key=abc#x")
            .unwrap();
        assert_eq!(
            shown_url(&url),
            "https://redacted@resetd.internal:9090/status?redacted"
        );
        let url = reqwest::Url::parse("https://tok3n@resetd.internal/").unwrap();
        assert_eq!(shown_url(&url), "https://redacted@resetd.internal/");
        let url = reqwest::Url::parse("http://127.0.0.1:9090/status").unwrap();
        assert_eq!(shown_url(&url), "http://127.0.0.1:9090/status");
        assert_eq!(shown_url_text("not a url"), "(an unparsable URL)");
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
