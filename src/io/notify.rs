//! Notifications (SPEC §6): events about runs and configs, delivered to
//! Slack, signed webhooks and GitHub commit statuses in the background.
//!
//! `Notifier::send` only pushes onto a bounded queue per receiver; one task
//! per receiver delivers its queue in order (so a later GitHub status is
//! never overtaken by an earlier one, and a slow receiver holds up no other).
//! `wire` owns what is sent; this module owns how.
//!
//! # Guarantees
//! - `send` never blocks and never waits on the network: nothing here can
//!   delay a DELETE. A full queue drops the event, counted as `dropped`.
//! - Each delivery is tried at most `MAX_ATTEMPTS` times (429, 5xx,
//!   timeouts and connection errors are retried, as `policy::on_failure`
//!   says), each attempt within `REQUEST_TIMEOUT`; redirects are never
//!   followed; at most 64 KiB of an answer is read.
//! - Receiver URLs, keys and tokens are `Secret`s: logs and errors name the
//!   receiver, never its URL, and any echo of a secret is scrubbed.
//!
//! # Caveats
//! Secrets are read once, by `start`; a rotated secret needs a new
//! `Notifier`. Deliveries still queued when the process ends are lost
//! (`drain` says how many).

pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{mpsc, watch};

use crate::policy::{self, Failure, RetryPolicy, Verdict};
pub use crate::secret::{Secret, SecretError, SecretSource};

/// Events queued per receiver before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Attempts per delivery, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Time limit of one attempt, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// GitHub's API, when `apiBase` is not given.
pub const GITHUB_API_BASE: &str = "https://api.github.com";

/// The longest `Retry-After` honoured. Lower than the IPRoyal client's: a
/// receiver asking for more is not worth holding its queue for, and
/// `run --once` waits only 10 s.
const MAX_RETRY_AFTER: Duration = policy::MAX_DELAY;

/// What happened: the config's own type (`on:`), so the names are defined once.
pub use crate::config::types::EventKind;

/// One event, as a webhook receives it (field names in SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(rename = "event")]
    pub kind: EventKind,
    /// The entry id; `None` for `ConfigRejected`.
    pub entry: Option<String>,
    pub revision: Option<u64>,
    pub phase: Option<String>,
    /// Counts: the entry's hashes, those the API confirmed, requests sent.
    pub hashes: usize,
    pub confirmed: usize,
    pub requests: u32,
    pub message: String,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub config_digest: Option<String>,
    pub source_revision: Option<String>,
}

/// A receiver type and where its secrets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverKind {
    Slack {
        url: SecretSource,
    },
    Webhook {
        url: SecretSource,
        secret: Option<SecretSource>,
    },
    Github {
        /// `owner/name`.
        repository: String,
        token: SecretSource,
        /// `GITHUB_API_BASE` unless the config says otherwise.
        api_base: String,
    },
}

/// One receiver as the config declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverSpec {
    pub name: String,
    pub kind: ReceiverKind,
    pub on: Vec<EventKind>,
}

/// Told the result of every delivery: `ok`, `failed` (refused, or attempts
/// used up) or `dropped` (the queue was full).
pub trait NotifyObserver: Send + Sync {
    fn delivered(&self, receiver: &str, result: &str);
}

/// No one to tell (`run --once` serves no metrics).
impl NotifyObserver for () {
    fn delivered(&self, _receiver: &str, _result: &str) {}
}

/// Why notifications cannot start. Names the receiver and the secret's
/// source, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification receiver `{receiver}`: {error}")]
    Secret {
        receiver: String,
        error: SecretError,
    },
    #[error("notification receiver `{receiver}`: {problem}")]
    Invalid { receiver: String, problem: String },
    #[error("notifications need a tokio runtime to deliver from")]
    NoRuntime,
    #[error("cannot build the notification HTTP client: {0}")]
    Client(String),
}

/// Queues events for delivery. Cheap to clone; disabled when there are no
/// receivers.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .inner
            .iter()
            .flat_map(|i| i.queues.iter().map(|q| q.name.as_str()))
            .collect();
        f.debug_struct("Notifier")
            .field("receivers", &names)
            .finish()
    }
}

struct Inner {
    queues: Vec<Queue>,
    observer: Arc<dyn NotifyObserver>,
    /// Deliveries queued or under way, for `drain`.
    pending: watch::Sender<usize>,
}

/// The sending side of one receiver's queue.
struct Queue {
    name: String,
    on: Vec<EventKind>,
    /// A GitHub status needs a commit: events without one are not queued.
    needs_revision: bool,
    /// Whether the log was told that an event had no commit to mark: once
    /// per receiver, not once per event.
    told_no_revision: AtomicBool,
    tx: mpsc::Sender<Arc<Event>>,
    /// Events dropped so far: logged at powers of two, not each time, so a
    /// flood of drops cannot flood the log too.
    dropped: AtomicU64,
}

impl Notifier {
    /// No receivers: `send` does nothing, `drain` returns 0 at once.
    pub fn disabled() -> Notifier {
        Notifier { inner: None }
    }

    /// Read every receiver's secrets and start one delivery task each.
    /// Must be called inside a tokio runtime. An error names the receiver
    /// and the variable or file, never a secret.
    pub fn start(
        receivers: Vec<ReceiverSpec>,
        observer: Arc<dyn NotifyObserver>,
    ) -> Result<Notifier, NotifyError> {
        if receivers.is_empty() {
            return Ok(Notifier::disabled());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        // As in `Api::new`: an already installed provider is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("resetd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(REQUEST_TIMEOUT)
            // A receiver that redirects has moved or is a login page:
            // following it could hand a signed body or a token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(crate::api::error_chain(&e)))?;
        let targets = receivers
            .into_iter()
            .map(Target::resolve)
            .collect::<Result<Vec<_>, _>>()?;
        let (pending, _) = watch::channel(0usize);
        let mut queues = Vec::new();
        for (spec, target) in targets {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            queues.push(Queue {
                needs_revision: matches!(target.kind, TargetKind::Github { .. }),
                told_no_revision: AtomicBool::new(false),
                name: spec.name.clone(),
                on: spec.on,
                tx,
                dropped: AtomicU64::new(0),
            });
            let worker = Worker {
                name: spec.name,
                target,
                client: client.clone(),
                observer: Arc::clone(&observer),
                pending: pending.clone(),
            };
            runtime.spawn(worker.run(rx));
        }
        Ok(Notifier {
            inner: Some(Arc::new(Inner {
                queues,
                observer,
                pending,
            })),
        })
    }

    /// Queue `event` for every receiver whose `on` lists its kind.
    pub fn send(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        let event = Arc::new(event);
        for queue in &inner.queues {
            if !queue.on.contains(&event.kind) {
                continue;
            }
            if queue.needs_revision && event.source_revision.is_none() {
                queue.no_revision(&event);
                continue;
            }
            // Counted before the push, so the worker can never finish it
            // before it is counted.
            inner.pending.send_modify(|n| *n += 1);
            if queue.tx.try_send(Arc::clone(&event)).is_err() {
                inner.pending.send_modify(|n| *n = n.saturating_sub(1));
                inner.observer.delivered(&queue.name, "dropped");
                let dropped = queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        receiver = %queue.name,
                        event = %event.kind,
                        dropped,
                        "notification dropped: the receiver's queue of {QUEUE_CAPACITY} is full"
                    );
                }
            }
        }
    }

    /// Wait until every queued delivery is done, or `limit` has passed;
    /// how many were still queued or under way.
    pub async fn drain(&self, limit: Duration) -> usize {
        let Some(inner) = &self.inner else {
            return 0;
        };
        let mut pending = inner.pending.subscribe();
        let _ = tokio::time::timeout(limit, pending.wait_for(|n| *n == 0)).await;
        *pending.borrow()
    }
}

impl Queue {
    /// A GitHub receiver got an event without a source revision: it has no
    /// commit to mark, which an operator relying on commit statuses must
    /// hear, with the reason, once.
    fn no_revision(&self, event: &Event) {
        if self.told_no_revision.swap(true, Ordering::Relaxed) {
            return;
        }
        let why = crate::revision::unknown_reason()
            .unwrap_or_else(|| "none was given and none was found".to_owned());
        tracing::warn!(
            receiver = %self.name,
            event = %event.kind,
            "no commit status sent: the config's source revision is unknown ({why}); \
             give `--source-revision` (RESETD_SOURCE_REVISION) or make the checkout readable; \
             said once, events without a revision are skipped"
        );
    }
}

/// One receiver's resolved secrets and address.
struct Target {
    kind: TargetKind,
    /// Every secret of this receiver, to scrub from what it answers.
    secrets: Vec<Secret>,
}

enum TargetKind {
    Slack {
        url: reqwest::Url,
    },
    Webhook {
        url: reqwest::Url,
        key: Option<Secret>,
    },
    Github {
        statuses: reqwest::Url,
        token: Secret,
    },
}

impl Target {
    fn resolve(spec: ReceiverSpec) -> Result<(ReceiverSpec, Target), NotifyError> {
        let name = spec.name.clone();
        let read = |source: &SecretSource| {
            source.read().map_err(|error| NotifyError::Secret {
                receiver: name.clone(),
                error,
            })
        };
        let invalid = |problem: String| NotifyError::Invalid {
            receiver: name.clone(),
            problem,
        };
        let url_of = |source: &SecretSource| -> Result<(reqwest::Url, Secret), NotifyError> {
            let secret = read(source)?;
            // The parser's own message could quote the value: say only where
            // it came from.
            let url = reqwest::Url::parse(secret.expose())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| invalid(format!("the URL from {source} is not an http(s) URL")))?;
            Ok((url, secret))
        };
        let target = match &spec.kind {
            ReceiverKind::Slack { url } => {
                let (url, secret) = url_of(url)?;
                Target {
                    kind: TargetKind::Slack { url },
                    secrets: vec![secret],
                }
            }
            ReceiverKind::Webhook { url, secret } => {
                let (url, url_secret) = url_of(url)?;
                let key = secret.as_ref().map(read).transpose()?;
                Target {
                    secrets: [Some(url_secret), key.clone()]
                        .into_iter()
                        .flatten()
                        .collect(),
                    kind: TargetKind::Webhook { url, key },
                }
            }
            ReceiverKind::Github {
                repository,
                token,
                api_base,
            } => {
                let statuses = statuses_url(api_base, repository).map_err(invalid)?;
                let token_source = token;
                let token = read(token_source)?;
                if HeaderValue::from_str(&format!("Bearer {}", token.expose())).is_err() {
                    return Err(invalid(format!(
                        "the token from {token_source} cannot be sent as an HTTP header"
                    )));
                }
                Target {
                    secrets: vec![token.clone()],
                    kind: TargetKind::Github { statuses, token },
                }
            }
        };
        Ok((spec, target))
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, secret| secret.scrub(&text))
    }
}

/// `{api_base}/repos/{owner}/{name}/statuses/`, to which a commit is added.
fn statuses_url(api_base: &str, repository: &str) -> Result<reqwest::Url, String> {
    let parts: Vec<&str> = repository.split('/').collect();
    let [owner, repo] = parts[..] else {
        return Err(format!("repository `{repository}` is not `owner/name`"));
    };
    if owner.is_empty() || repo.is_empty() || repository.contains(['?', '#', '%']) {
        return Err(format!("repository `{repository}` is not `owner/name`"));
    }
    let mut url = reqwest::Url::parse(api_base)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
        .ok_or_else(|| {
            format!(
                "apiBase `{}` is not an http(s) URL",
                crate::api::shown_url_text(api_base)
            )
        })?;
    url.path_segments_mut()
        .map_err(|()| {
            format!(
                "apiBase `{}` is not an http(s) URL",
                crate::api::shown_url_text(api_base)
            )
        })?
        .pop_if_empty()
        .extend(["repos", owner, repo, "statuses", ""]);
    Ok(url)
}

/// One receiver's delivery task.
struct Worker {
    name: String,
    target: Target,
    client: reqwest::Client,
    observer: Arc<dyn NotifyObserver>,
    pending: watch::Sender<usize>,
}

/// Why one attempt failed: the retry policy's view and words for the log.
struct Attempt {
    failure: Failure,
    message: String,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Event>>) {
        while let Some(event) = rx.recv().await {
            let result = self.deliver(&event).await;
            self.observer
                .delivered(&self.name, if result { "ok" } else { "failed" });
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// Every attempt `policy::on_failure` allows; true when delivered.
    async fn deliver(&self, event: &Event) -> bool {
        let Some((url, headers, body)) = self.request(event) else {
            return false;
        };
        let retry = RetryPolicy {
            max_attempts: MAX_ATTEMPTS,
            base_delay: Duration::from_millis(200),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.attempt(&url, &headers, &body).await {
                Ok(()) => {
                    tracing::debug!(receiver = %self.name, event = %event.kind, attempt, "notification delivered");
                    return true;
                }
                Err(e) => e,
            };
            // Jitter as for the sub-user reads: one task per receiver
            // sends in order, so there is no herd of retries to spread.
            match policy::on_failure(&error.failure, attempt, retry, 0.5) {
                Verdict::Retry(delay) => {
                    let delay = delay.min(MAX_RETRY_AFTER);
                    tracing::info!(
                        receiver = %self.name,
                        event = %event.kind,
                        attempt,
                        "notification not delivered, retrying in {delay:?}: {}",
                        error.message
                    );
                    tokio::time::sleep(delay).await;
                }
                Verdict::GiveUp | Verdict::StopRun => {
                    tracing::warn!(
                        receiver = %self.name,
                        event = %event.kind,
                        entry = event.entry.as_deref().unwrap_or(""),
                        attempts = attempt,
                        "notification not delivered: {}",
                        error.message
                    );
                    return false;
                }
            }
        }
    }

    /// The request for `event`: URL, headers, body. `None` only if a
    /// header cannot be built, which `start` has ruled out.
    fn request(&self, event: &Event) -> Option<(reqwest::Url, HeaderMap, Vec<u8>)> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match &self.target.kind {
            TargetKind::Slack { url } => Some((url.clone(), headers, wire::slack_body(event))),
            TargetKind::Webhook { url, key } => {
                let body = wire::webhook_body(event);
                if let Some(key) = key {
                    let signature = wire::signature(key.expose().as_bytes(), &body);
                    headers.insert(
                        HeaderName::from_static("x-resetd-signature"),
                        HeaderValue::from_str(&signature).ok()?,
                    );
                }
                Some((url.clone(), headers, body))
            }
            TargetKind::Github { statuses, token } => {
                let sha = event.source_revision.as_deref()?;
                let mut url = statuses.clone();
                url.path_segments_mut().ok()?.pop().push(sha);
                let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
                auth.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, auth);
                headers.insert(
                    reqwest::header::ACCEPT,
                    HeaderValue::from_static("application/vnd.github+json"),
                );
                headers.insert(
                    HeaderName::from_static("x-github-api-version"),
                    HeaderValue::from_static("2022-11-28"),
                );
                Some((url, headers, wire::CommitStatus::of(event).body()))
            }
        }
    }

    async fn attempt(
        &self,
        url: &reqwest::Url,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Attempt> {
        let sent = self
            .client
            .post(url.clone())
            .headers(headers.clone())
            .body(body.to_vec())
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await;
        let response = sent.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            // Read (a bounded part of) the answer so the connection can
            // be reused; what a receiver says on success is not needed.
            let _ = crate::api::read_bounded(response).await;
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::api::parse_retry_after(v, Utc::now()));
        let message = if status.is_redirection() {
            "redirected; redirects are never followed (check the receiver's URL)".to_owned()
        } else {
            let text = crate::api::read_bounded(response).await.unwrap_or_default();
            // Scrubbed before and after extraction, as for the API: a
            // receiver echoing its URL or token leaks none of it.
            self.target
                .scrub(&crate::api::error_message(&self.target.scrub(&text)))
        };
        Err(Attempt {
            failure: Failure::Status {
                code: status.as_u16(),
                retry_after,
            },
            message: format!("HTTP {}: {message}", status.as_u16()),
        })
    }

    fn transport(&self, e: reqwest::Error) -> Attempt {
        if e.is_timeout() {
            Attempt {
                failure: Failure::Timeout,
                message: format!("no answer within {REQUEST_TIMEOUT:?}"),
            }
        } else {
            Attempt {
                failure: Failure::Connection,
                message: self
                    .target
                    .scrub(&crate::api::error_chain(&e.without_url())),
            }
        }
    }
}

impl ReceiverSpec {
    /// A receiver as the config declares it (checked by `validate`: the
    /// fields each type needs are there).
    pub fn from_config(n: &crate::config::types::Notification) -> Option<ReceiverSpec> {
        use crate::config::types::{ReceiverType, SecretFrom};
        let source = |from: &Option<SecretFrom>| {
            from.as_ref().map(|f| match f {
                SecretFrom::Env(name) => SecretSource::Env(name.clone()),
                SecretFrom::File(path) => SecretSource::File(path.into()),
            })
        };
        let kind = match n.kind {
            ReceiverType::Slack => ReceiverKind::Slack {
                url: source(&n.url_from)?,
            },
            ReceiverType::Webhook => ReceiverKind::Webhook {
                url: source(&n.url_from)?,
                secret: source(&n.secret_from),
            },
            ReceiverType::Github => ReceiverKind::Github {
                repository: n.repository.as_ref()?.0.clone(),
                token: source(&n.token_from)?,
                api_base: n
                    .api_base
                    .as_ref()
                    .map_or_else(|| GITHUB_API_BASE.to_owned(), |u| u.0.clone()),
            },
        };
        Some(ReceiverSpec {
            name: n.name.0.clone(),
            kind,
            on: n.on.clone(),
        })
    }
}

/// Start the config's receivers that can start: one whose secret cannot be
/// read is logged and left out. Resets never wait on notifications.
pub fn start_available(
    config: &crate::config::Config,
    observer: Arc<dyn NotifyObserver>,
) -> Notifier {
    let mut receivers: Vec<ReceiverSpec> = config
        .notifications
        .iter()
        .filter_map(ReceiverSpec::from_config)
        .collect();
    loop {
        match Notifier::start(receivers.clone(), Arc::clone(&observer)) {
            Ok(notifier) => return notifier,
            Err(e) if receiver_of(&e).is_some() => {
                tracing::error!("{e}; this receiver is left out (resets go on)");
                let receiver = receiver_of(&e).unwrap_or_default().to_owned();
                receivers.retain(|r| r.name != receiver);
            }
            Err(e) => {
                tracing::error!("{e}; no notifications are sent (resets go on)");
                return Notifier::disabled();
            }
        }
    }
}

/// The receiver an error is about, when it is about one.
fn receiver_of(e: &NotifyError) -> Option<&str> {
    match e {
        NotifyError::Secret { receiver, .. } | NotifyError::Invalid { receiver, .. } => {
            Some(receiver)
        }
        _ => None,
    }
}

/// Turns the executor's run records into events.
pub struct RunEvents {
    pub notifier: Notifier,
}

impl crate::reconcile::Observer for RunEvents {
    fn run_recorded(&self, ended: &crate::reconcile::RunEnded<'_>) {
        use crate::status::Outcome;
        let record = ended.record;
        let kind = match record.outcome {
            Outcome::Failed if ended.token_refused => EventKind::AuthError,
            Outcome::Succeeded => EventKind::Succeeded,
            Outcome::Failed => EventKind::Failed,
            Outcome::DryRun => EventKind::DryRun,
            Outcome::Expired => EventKind::Expired,
        };
        let message = match (&record.error, record.outcome) {
            (Some(error), _) => error.clone(),
            (None, Outcome::Succeeded) => {
                format!("{} of {} hash(es) reset", record.confirmed, record.hashes)
            }
            (None, Outcome::DryRun) => {
                format!(
                    "dry run: would send {} hash(es); nothing sent",
                    record.hashes
                )
            }
            (None, Outcome::Expired) => "first seen due after notAfter: never run".to_owned(),
            (None, Outcome::Failed) => "failed".to_owned(),
        };
        self.notifier.send(Event {
            kind,
            entry: Some(ended.entry.to_owned()),
            revision: Some(record.revision),
            phase: Some(format!("{:?}", record.outcome)),
            hashes: record.hashes,
            confirmed: record.confirmed,
            requests: record.requests,
            message,
            started_at: Some(record.started_at),
            completed_at: Some(record.finished_at),
            config_digest: Some(ended.config_digest.to_owned()),
            source_revision: record.source_revision.clone(),
        });
    }
}

/// The event for a config the daemon refused (it runs the last good one).
pub fn config_rejected(
    message: String,
    config_digest: Option<String>,
    source_revision: Option<String>,
) -> Event {
    Event {
        kind: EventKind::ConfigRejected,
        entry: None,
        revision: None,
        phase: None,
        hashes: 0,
        confirmed: 0,
        requests: 0,
        message,
        started_at: None,
        completed_at: Some(Utc::now()),
        config_digest,
        source_revision,
    }
}
