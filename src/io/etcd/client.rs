//! The etcd v3 client: its JSON gateway (`POST /v3/...`) over reqwest.
//!
//! # Guarantees
//! - Every request has a deadline (`timeout`, never longer than a third of
//!   the lease TTL for the calls that keep a leader's lease) and every
//!   answer body is read up to `MAX_ANSWER` bytes, so a hung or hostile
//!   endpoint costs a bounded time and memory.
//! - An endpoint that cannot be reached (refused, timed out, 5xx) is left
//!   for the next one in the list; the one that answered is tried first
//!   next time.
//! - The etcd password and the auth token it buys are `Secret`s: never
//!   logged, never in an error. URLs are shown without credentials.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::shown_url;
use crate::secret::Secret;

use super::wire::{LeaseAnswer, RangeAnswer, TxnAnswer, b64, op_json, prefix_end};

/// The largest answer read: a page of the status (`PAGE` keys, each at most
/// etcd's 1.5 MiB request limit, in practice far less) fits many times over.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The environment variables of etcd's user and password.
pub const USERNAME_ENV: &str = "RESETD_ETCD_USERNAME";
pub const PASSWORD_ENV: &str = "RESETD_ETCD_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("bad etcd endpoint `{0}`: give http:// or https:// URLs, comma-separated")]
    BadEndpoint(String),
    #[error(
        "etcd endpoint {0} carries credentials: give them in RESETD_ETCD_USERNAME and \
         RESETD_ETCD_PASSWORD instead"
    )]
    Credentials(String),
    #[error("etcd TLS: {0}")]
    Tls(String),
    #[error("no etcd endpoint answered {what} ({tried}): {last}")]
    Unreachable {
        what: &'static str,
        tried: String,
        last: String,
    },
    #[error("etcd at {url} refused {what}: {message}")]
    Refused {
        url: String,
        what: &'static str,
        message: String,
        /// The gRPC code (5: not found, 16: unauthenticated…).
        code: i64,
    },
    #[error("etcd at {url} answered {what} with something unreadable: {reason}")]
    BadAnswer {
        url: String,
        what: &'static str,
        reason: String,
    },
}

pub type Result<T, E = EtcdError> = std::result::Result<T, E>;

/// TLS files for `https://` endpoints.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// etcd's user and password (`RESETD_ETCD_USERNAME` / `_PASSWORD`).
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: String,
    /// `None`: an empty password.
    pub password: Option<Secret>,
}

impl Auth {
    /// From the environment; `None` when no user name is set.
    pub fn from_env() -> Option<Auth> {
        let user = std::env::var(USERNAME_ENV).ok().filter(|u| !u.is_empty())?;
        let password = Secret::new(&std::env::var(PASSWORD_ENV).unwrap_or_default());
        Some(Auth { user, password })
    }
}

/// A client of one etcd cluster.
pub struct Client {
    http: reqwest::Client,
    urls: Vec<reqwest::Url>,
    /// The endpoint that answered last: tried first next time.
    current: AtomicUsize,
    auth: Option<Auth>,
    /// The token `auth` bought, sent with every request; renewed when etcd
    /// says it is no longer valid.
    token: Mutex<Option<Secret>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

/// A key and value as etcd holds them.
#[derive(Debug, Clone, Default)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// How much one range read may keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub keys: usize,
    pub bytes: usize,
}

/// The members of a group: a few hundred bytes each.
pub const MEMBERS: Limits = Limits {
    keys: 10_000,
    bytes: 4 * 1024 * 1024,
};

/// A condition of a transaction: the key's create revision (0: absent),
/// or the lease it is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Cmp<'a> {
    Created(&'a str, i64),
    Lease(&'a str, i64),
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        lease: i64,
    },
    /// Delete every key under a prefix.
    DeletePrefix(String),
    Get(String),
}

/// What a transaction did.
#[derive(Debug, Default)]
pub struct TxnResult {
    pub succeeded: bool,
    /// The revision after it (for a put: the put's revision).
    pub revision: i64,
    /// The keys its range operations found, in order.
    pub kvs: Vec<Kv>,
}

impl Client {
    /// `endpoints`: comma-separated URLs.
    pub fn new(endpoints: &str, tls: &TlsFiles, auth: Option<Auth>) -> Result<Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut urls = Vec::new();
        for raw in endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let url = reqwest::Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| EtcdError::BadEndpoint(crate::api::shown_url_text(raw)))?;
            if !url.username().is_empty() || url.password().is_some() {
                // reqwest would send it as Basic auth, which etcd reads as a
                // (bad) token.
                return Err(EtcdError::Credentials(shown_url(&url)));
            }
            urls.push(url);
        }
        if urls.is_empty() || urls.len() > 32 {
            return Err(EtcdError::BadEndpoint(format!(
                "{} endpoint(s)",
                urls.len()
            )));
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(1))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4);
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| EtcdError::Tls(format!("{}: {e}", path.display())))
        };
        if let Some(ca) = &tls.ca {
            let pem = read(ca)?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| EtcdError::Tls(format!("{}: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| EtcdError::Tls(format!("{}: {e}", cert.display())))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(EtcdError::Tls(
                    "give --etcd-cert and --etcd-key together".into(),
                ));
            }
        }
        let http = builder
            .build()
            .map_err(|e| EtcdError::Tls(crate::api::error_chain(&e)))?;
        Ok(Client {
            http,
            urls,
            current: AtomicUsize::new(0),
            auth,
            token: Mutex::new(None),
        })
    }

    /// The endpoints, fit to show.
    pub fn endpoints(&self) -> String {
        self.urls
            .iter()
            .map(shown_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// POST `body` to `path` at the first endpoint that answers.
    async fn call(
        &self,
        what: &'static str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value> {
        let first = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        let mut reauthenticated = false;
        let mut i = 0;
        while i < self.urls.len() {
            let index = (first + i) % self.urls.len();
            let url = &self.urls[index];
            match self.post(url, path, body, timeout).await {
                Ok(value) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(Attempt::Down(reason)) => {
                    last = format!("{}: {reason}", shown_url(url));
                    i += 1;
                }
                Err(Attempt::Refused(message, code)) => {
                    // An expired auth token: buy a new one, once.
                    if self.auth.is_some() && !reauthenticated && is_auth_error(&message, code) {
                        reauthenticated = true;
                        if let Ok(mut token) = self.token.lock() {
                            *token = None;
                        }
                        continue;
                    }
                    return Err(EtcdError::Refused {
                        url: shown_url(url),
                        what,
                        message,
                        code,
                    });
                }
                Err(Attempt::Bad(reason)) => {
                    return Err(EtcdError::BadAnswer {
                        url: shown_url(url),
                        what,
                        reason,
                    });
                }
            }
        }
        Err(EtcdError::Unreachable {
            what,
            tried: self.endpoints(),
            last,
        })
    }

    async fn post(
        &self,
        base: &reqwest::Url,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, Attempt> {
        let url = base
            .join(path)
            .map_err(|e| Attempt::Bad(format!("cannot join {path}: {e}")))?;
        let token = if path == "/v3/auth/authenticate" {
            None
        } else {
            self.token(base, timeout).await?
        };
        let mut request = self.http.post(url).json(body).timeout(timeout);
        if let Some(token) = &token {
            request = request.header(reqwest::header::AUTHORIZATION, token.expose());
        }
        let response = request.send().await.map_err(|e| {
            Attempt::Down(if e.is_timeout() {
                format!("no answer within {timeout:?}")
            } else {
                crate::api::error_chain(&e.without_url())
            })
        })?;
        let code = response.status();
        let bytes = read_bounded(response).await?;
        if code.is_server_error() && code != reqwest::StatusCode::NOT_IMPLEMENTED {
            // Unavailable, no leader, timed out inside etcd: another member may do.
            return Err(Attempt::Down(format!(
                "HTTP {}: {}",
                code.as_u16(),
                message_of(&bytes)
            )));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Attempt::Bad(format!("HTTP {}: not JSON: {e}", code.as_u16())))?;
        if !code.is_success() || value.get("error").is_some() {
            let code = value.get("code").and_then(Value::as_i64).unwrap_or(0);
            return Err(Attempt::Refused(message_of(&bytes), code));
        }
        Ok(value)
    }

    /// The auth token, bought from `base` if none is held yet.
    async fn token(
        &self,
        base: &reqwest::Url,
        timeout: Duration,
    ) -> Result<Option<Secret>, Attempt> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        if let Some(token) = self.token.lock().ok().and_then(|t| t.clone()) {
            return Ok(Some(token));
        }
        let password = auth.password.as_ref().map_or("", Secret::expose);
        let body = json!({"name": auth.user, "password": password});
        let url = base
            .join("/v3/auth/authenticate")
            .map_err(|e| Attempt::Bad(e.to_string()))?;
        let response = self
            .http
            .post(url)
            .json(&body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Attempt::Down(crate::api::error_chain(&e.without_url())))?;
        let code = response.status();
        let bytes = read_bounded(response).await?;
        if !code.is_success() {
            // What etcd says of a refused login names neither value, but it
            // is scrubbed all the same.
            let message = message_of(&bytes);
            let message = match &auth.password {
                Some(p) => p.scrub(&message),
                None => message,
            };
            return Err(Attempt::Refused(format!("authentication: {message}"), 16));
        }
        let token = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).and_then(Secret::new))
            .ok_or_else(|| Attempt::Bad("authentication answered no token".into()))?;
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some(token.clone());
        }
        Ok(Some(token))
    }

    /// Every key under `prefix`, in key order, read in pages of `page` keys
    /// at one revision (so the pages agree). Bounded in keys and in the
    /// bytes kept over all pages; an answer whose keys are not in order
    /// under the prefix is refused at once.
    pub async fn range_prefix(
        &self,
        prefix: &str,
        page: usize,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Vec<Kv>> {
        let end = prefix_end(prefix);
        let mut out: Vec<Kv> = Vec::new();
        let mut bytes = 0_usize;
        let mut start = prefix.to_owned();
        let mut revision = 0_i64;
        let bad = |reason: String| EtcdError::BadAnswer {
            url: self.endpoints(),
            what: "a range read",
            reason,
        };
        loop {
            let body = json!({
                "key": b64(start.as_bytes()),
                "range_end": b64(&end),
                "limit": page.to_string(),
                "revision": revision.to_string(),
            });
            let value = self
                .call("a range read", "/v3/kv/range", &body, timeout)
                .await?;
            let answer: RangeAnswer = decode(self, "a range read", value)?;
            if revision == 0 {
                revision = answer.header.revision.0;
            }
            let more = answer.more;
            if more && answer.kvs.is_empty() {
                return Err(bad(format!(
                    "an empty page under {prefix} that says more follow"
                )));
            }
            for kv in answer.kvs {
                let kv = kv.into_kv(self)?;
                let in_order = out.last().is_none_or(|last| kv.key > last.key);
                if !kv.key.starts_with(prefix) || !in_order {
                    return Err(bad(format!(
                        "key {:?} is not the next key under {prefix}",
                        kv.key.chars().take(200).collect::<String>()
                    )));
                }
                bytes = bytes.saturating_add(kv.key.len() + kv.value.len());
                out.push(kv);
            }
            if out.len() > limits.keys || bytes > limits.bytes {
                return Err(bad(format!(
                    "more than {} keys or {} MiB under {prefix}",
                    limits.keys,
                    limits.bytes / (1024 * 1024)
                )));
            }
            match (more, out.last()) {
                (true, Some(last)) => {
                    // The next page starts just after the last key read.
                    start = format!("{}\0", last.key);
                }
                _ => return Ok(out),
            }
        }
    }

    /// The newest `mod_revision` of any key under `prefix` (0: none): one
    /// key, no value, however many keys there are.
    pub async fn newest_change(&self, prefix: &str, timeout: Duration) -> Result<i64> {
        let body = json!({
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "limit": "1",
            "keys_only": true,
            "sort_order": "DESCEND",
            "sort_target": "MOD",
        });
        let value = self
            .call("a range read", "/v3/kv/range", &body, timeout)
            .await?;
        let answer: RangeAnswer = decode(self, "a range read", value)?;
        Ok(answer.kvs.first().map_or(0, |kv| kv.mod_revision.0))
    }

    /// One key (a linearizable read: it needs an etcd quorum).
    pub async fn get(&self, key: &str, timeout: Duration) -> Result<Option<Kv>> {
        let body = json!({"key": b64(key.as_bytes())});
        let value = self.call("a read", "/v3/kv/range", &body, timeout).await?;
        let answer: RangeAnswer = decode(self, "a read", value)?;
        answer
            .kvs
            .into_iter()
            .next()
            .map(|kv| kv.into_kv(self))
            .transpose()
    }

    /// `if every compare holds then success else failure`.
    pub async fn txn(
        &self,
        compare: &[Cmp<'_>],
        success: &[Op],
        failure: &[Op],
        timeout: Duration,
    ) -> Result<TxnResult> {
        let compare: Vec<Value> = compare
            .iter()
            .map(|cmp| match cmp {
                Cmp::Created(key, rev) => {
                    json!({"target": "CREATE", "result": "EQUAL", "key": b64(key.as_bytes()),
                           "create_revision": rev.to_string()})
                }
                Cmp::Lease(key, lease) => {
                    json!({"target": "LEASE", "result": "EQUAL", "key": b64(key.as_bytes()),
                           "lease": lease.to_string()})
                }
            })
            .collect();
        let ops = |ops: &[Op]| -> Vec<Value> { ops.iter().map(op_json).collect() };
        let body = json!({"compare": compare, "success": ops(success), "failure": ops(failure)});
        let value = self
            .call("a transaction", "/v3/kv/txn", &body, timeout)
            .await?;
        let answer: TxnAnswer = decode(self, "a transaction", value)?;
        let mut kvs = Vec::new();
        for response in answer.responses {
            if let Some(range) = response.response_range {
                for kv in range.kvs {
                    kvs.push(kv.into_kv(self)?);
                }
            }
        }
        Ok(TxnResult {
            succeeded: answer.succeeded,
            revision: answer.header.revision.0,
            kvs,
        })
    }

    /// A new lease of `ttl`; its id.
    pub async fn grant(&self, ttl: Duration, timeout: Duration) -> Result<i64> {
        let body = json!({"TTL": ttl.as_secs().to_string()});
        let value = self
            .call("a lease grant", "/v3/lease/grant", &body, timeout)
            .await?;
        let answer: LeaseAnswer = decode(self, "a lease grant", value)?;
        if answer.id.0 == 0 || answer.ttl.0 <= 0 {
            return Err(EtcdError::BadAnswer {
                url: self.endpoints(),
                what: "a lease grant",
                reason: "no lease in the answer".into(),
            });
        }
        Ok(answer.id.0)
    }

    /// Keep `lease` alive; the TTL it now has (0: it is gone).
    pub async fn keep_alive(&self, lease: i64, timeout: Duration) -> Result<i64> {
        let body = json!({"ID": lease.to_string()});
        let value = self
            .call("a lease keep-alive", "/v3/lease/keepalive", &body, timeout)
            .await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            result: LeaseAnswer,
        }
        let answer: Answer = decode(self, "a lease keep-alive", value)?;
        Ok(answer.result.ttl.0)
    }

    /// Give `lease` up: the keys bound to it go at once.
    pub async fn revoke(&self, lease: i64, timeout: Duration) -> Result<()> {
        let body = json!({"ID": lease.to_string()});
        match self
            .call("a lease revoke", "/v3/lease/revoke", &body, timeout)
            .await
        {
            // Already gone is what was wanted.
            Err(EtcdError::Refused { code: 5, .. }) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Why one endpoint did not do.
enum Attempt {
    /// Unreachable or unavailable: try the next endpoint.
    Down(String),
    /// etcd answered no (message, gRPC code): the same everywhere.
    Refused(String, i64),
    /// An answer that cannot be read.
    Bad(String),
}

fn is_auth_error(message: &str, code: i64) -> bool {
    code == 16 || message.contains("invalid auth token") || message.contains("auth token")
}

/// etcd's error message from an error body, bounded.
fn message_of(bytes: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or(v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_owned(),
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, Attempt> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(Attempt::Bad(format!(
            "answer larger than {MAX_ANSWER} bytes"
        )));
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_ANSWER {
                    return Err(Attempt::Bad(format!(
                        "answer larger than {MAX_ANSWER} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => {
                return Err(Attempt::Down(if e.is_timeout() {
                    "the answer did not arrive in time".into()
                } else {
                    crate::api::error_chain(&e.without_url())
                }));
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    client: &Client,
    what: &'static str,
    value: Value,
) -> Result<T> {
    serde_json::from_value(value).map_err(|e| EtcdError::BadAnswer {
        url: client.endpoints(),
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_http_urls() {
        let tls = TlsFiles::default();
        assert!(Client::new("http://127.0.0.1:2379,https://e:2379", &tls, None).is_ok());
        for bad in ["", "127.0.0.1:2379", "ftp://x", "http://a:b@:1"] {
            assert!(Client::new(bad, &tls, None).is_err(), "{bad}");
        }
        let e = Client::new("http://u:pw-SECRET@127.0.0.1:2379", &tls, None).unwrap_err();
        assert!(matches!(e, EtcdError::Credentials(_)), "{e}");
        assert!(!e.to_string().contains("pw-SECRET"), "{e}");
    }
}
