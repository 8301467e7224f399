//! The executor: carries out a plan, one batch at a time, saving progress.
//!
//! # Guarantees
//! - Before each request the batch is saved as in flight; after a 2xx it is
//!   saved as confirmed. A crash at any point therefore resumes with exactly
//!   the batches not confirmed (the in-flight one is sent again: its answer
//!   may have been lost — at-least-once, never lost).
//! - A stop request is honoured between requests and during backoff waits;
//!   an in-flight request is allowed to finish. The unfinished run stays in
//!   the status file and resumes on the next start.
//! - Runs are sequential and requests are spaced by the rate limit.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::Api;
use crate::config::{Config, Entry};
use crate::plan::{Plan, RunSpec, apply_to_status};
use crate::policy::{self, Verdict};
use crate::status::{Outcome, Status};
use crate::store::{Store, StoreError};

/// Receives what happens, for metrics. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// One API request ended: `code` is the HTTP status, `None` for a timeout
    /// (`timed_out`) or a connection failure.
    fn request(&self, _code: Option<u16>, _elapsed: Duration, _timed_out: bool) {}
    fn hashes_confirmed(&self, _count: usize) {}
    fn run_finished(&self, _outcome: Outcome) {}
}

impl Observer for () {}

/// Spaces requests at most `n` per second, process-wide.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_second: Option<u32>) -> Self {
        RateLimiter {
            interval: per_second.map(|n| Duration::from_secs(1) / n.max(1)),
            next: None,
        }
    }

    pub fn set_rate(&mut self, per_second: Option<u32>) {
        self.interval = per_second.map(|n| Duration::from_secs(1) / n.max(1));
    }

    async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let at = self.next.map_or(now, |n| n.max(now));
        tokio::time::sleep_until(at).await;
        self.next = Some(at + interval);
    }
}

/// Asks the executor to stop between requests.
#[derive(Debug, Clone)]
pub struct Stop {
    rx: watch::Receiver<bool>,
    /// For `never`: the sender is kept (and never used) so the channel stays
    /// open and `wait` waits rather than returning at once.
    _sender: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Stop {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        Stop { rx, _sender: None }
    }

    /// A stop that never fires (`run --once`).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        Stop {
            rx,
            _sender: Some(std::sync::Arc::new(tx)),
        }
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    async fn wait(&mut self) {
        // An error means the sender is gone: nobody can ask to stop any more.
        if self.rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What a reconcile pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
    pub dry_runs: Vec<String>,
    pub expired: Vec<String>,
    pub requests: u32,
    /// True when a stop interrupted a run (it resumes next time).
    pub interrupted: bool,
}

/// Everything a pass needs from the shell.
pub struct Executor<'a> {
    pub store: &'a mut Store,
    pub api: Option<&'a Api>,
    pub limiter: &'a mut RateLimiter,
    pub stop: Stop,
    pub observer: &'a dyn Observer,
}

enum BatchEnd {
    Confirmed,
    Failed,
    /// The token was refused: the run ends now.
    Abort(String),
    Stopped,
}

impl Executor<'_> {
    /// Apply `plan` (made from `config` and `status`) and persist as it goes.
    pub async fn execute(
        &mut self,
        config: &Config,
        plan: &Plan,
        status: &mut Status,
    ) -> Result<Summary, StoreError> {
        let mut summary = Summary::default();
        let before = status.clone();
        apply_to_status(status, config, plan);
        for entry_plan in &plan.entries {
            if entry_plan.action == crate::plan::Action::Expire {
                tracing::warn!(entry = %entry_plan.id, "expired: {}", entry_plan.why);
                summary.expired.push(entry_plan.id.clone());
            }
            for warning in &entry_plan.warnings {
                tracing::warn!(entry = %entry_plan.id, "{warning}");
            }
        }
        // An idle pass (a resync, a timer with nothing due) writes nothing.
        if *status != before {
            self.save(status)?;
        }
        for (entry_plan, spec) in plan.runs() {
            let Some(entry) = config.resets.iter().find(|e| e.id == entry_plan.id) else {
                continue;
            };
            if self.stop.is_set() {
                summary.interrupted = true;
                break;
            }
            tracing::info!(entry = %entry.id, hashes = spec.hashes.len(), batches = spec.batches(), "{}", entry_plan.why);
            match self.run(config, entry, spec, status, &mut summary).await? {
                Some(Outcome::Succeeded) => summary.succeeded.push(entry.id.clone()),
                Some(Outcome::DryRun) => summary.dry_runs.push(entry.id.clone()),
                Some(_) => summary.failed.push(entry.id.clone()),
                None => {
                    summary.interrupted = true;
                    break;
                }
            }
        }
        Ok(summary)
    }

    fn save(&mut self, status: &mut Status) -> Result<(), StoreError> {
        status.updated_at = Some(Utc::now());
        self.store.save(status)
    }

    /// One entry's run. `None` when a stop interrupted it.
    async fn run(
        &mut self,
        config: &Config,
        entry: &Entry,
        spec: &RunSpec,
        status: &mut Status,
        summary: &mut Summary,
    ) -> Result<Option<Outcome>, StoreError> {
        let facts = spec.facts(entry);
        let Some(st) = status.resets.get_mut(&entry.id) else {
            return Ok(None);
        };
        if spec.dry_run {
            st.record_dry_run(&facts, Utc::now());
            tracing::info!(
                entry = %entry.id,
                hashes = spec.hashes.len(),
                batches = spec.batches(),
                "dry run: would send {} hash(es) in {} DELETE request(s); nothing sent",
                spec.hashes.len(),
                spec.batches()
            );
            self.observer.run_finished(Outcome::DryRun);
            self.save(status)?;
            return Ok(Some(Outcome::DryRun));
        }
        let start = spec.resume.as_ref().map_or(0, |r| r.next_batch);
        st.begin_run(&facts, spec.resume.clone(), Utc::now());
        self.save(status)?;
        let mut abort = None;
        for batch in start..spec.batches() {
            let hashes = &spec.hashes
                [batch * spec.batch_size..((batch + 1) * spec.batch_size).min(spec.hashes.len())];
            match self
                .send_batch(config, entry, batch, hashes, status, summary)
                .await?
            {
                BatchEnd::Confirmed | BatchEnd::Failed => {}
                BatchEnd::Abort(message) => {
                    abort = Some(message);
                    break;
                }
                BatchEnd::Stopped => {
                    self.save(status)?;
                    tracing::info!(entry = %entry.id, "stopping: the run resumes at batch {} next time", batch + 1);
                    return Ok(None);
                }
            }
        }
        let Some(st) = status.resets.get_mut(&entry.id) else {
            return Ok(None);
        };
        let outcome = st.end_run(&facts, abort, Utc::now());
        if let (Some(slot), true) = (spec.slot, entry.trigger.is_recurring()) {
            st.next_run_at = crate::schedule::next_after(&entry.trigger, slot, Utc::now());
        }
        let last = st.history.last().cloned();
        self.save(status)?;
        self.observer.run_finished(outcome);
        if let Some(record) = last {
            match outcome {
                Outcome::Succeeded => tracing::info!(
                    entry = %entry.id, hashes = record.confirmed, requests = record.requests,
                    "run succeeded: {} hash(es) reset", record.confirmed
                ),
                _ => tracing::error!(
                    entry = %entry.id, confirmed = record.confirmed, hashes = record.hashes, requests = record.requests,
                    "run failed: {}; it is not retried until the entry changes",
                    record.error.as_deref().unwrap_or("unknown error")
                ),
            }
        }
        Ok(Some(outcome))
    }

    async fn send_batch(
        &mut self,
        config: &Config,
        entry: &Entry,
        batch: usize,
        hashes: &[String],
        status: &mut Status,
        summary: &mut Summary,
    ) -> Result<BatchEnd, StoreError> {
        let Some(api) = self.api else {
            // The caller checks for a token before planning real runs; if it
            // did not, fail the batch rather than pretend.
            let message = "no API token: set IPROYAL_API_TOKEN or --token-file".to_owned();
            return Ok(BatchEnd::Abort(message));
        };
        let settings = &config.settings;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(st) = status.resets.get_mut(&entry.id) {
                st.batch_sending(batch);
            }
            self.save(status)?;
            self.limiter.wait().await;
            let sent_at = Instant::now();
            let result = api.delete_sessions(hashes, settings.request_timeout).await;
            let elapsed = sent_at.elapsed();
            summary.requests += 1;
            let Some(st) = status.resets.get_mut(&entry.id) else {
                return Ok(BatchEnd::Failed);
            };
            let error = match result {
                Ok(answer) => {
                    self.observer.request(Some(answer.code), elapsed, false);
                    self.observer.hashes_confirmed(hashes.len());
                    st.batch_confirmed(batch);
                    self.save(status)?;
                    tracing::info!(entry = %entry.id, batch, code = answer.code, hashes = hashes.len(), "batch confirmed");
                    return Ok(BatchEnd::Confirmed);
                }
                Err(e) => e,
            };
            let code = match &error {
                crate::api::ApiError::Status { code, .. } => Some(*code),
                _ => None,
            };
            let timed_out = matches!(error, crate::api::ApiError::Timeout(_));
            self.observer.request(code, elapsed, timed_out);
            let message = error.to_string();
            let retry = policy::RetryPolicy {
                max_attempts: settings.max_attempts,
                base_delay: settings.retry_delay,
            };
            match policy::on_failure(&error.failure(), attempt, retry, jitter()) {
                Verdict::Retry(delay) => {
                    st.batch_retrying(message.clone());
                    self.save(status)?;
                    tracing::warn!(entry = %entry.id, batch, attempt, "request failed, retrying in {delay:?}: {message}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.wait() => return Ok(BatchEnd::Stopped),
                    }
                }
                Verdict::GiveUp => {
                    st.batch_failed(batch, message.clone());
                    self.save(status)?;
                    tracing::error!(entry = %entry.id, batch, attempt, "batch failed: {message}");
                    return Ok(BatchEnd::Failed);
                }
                Verdict::StopRun => {
                    st.batch_retrying(message.clone());
                    tracing::error!(entry = %entry.id, batch, "{message}");
                    return Ok(BatchEnd::Abort(message));
                }
            }
        }
    }
}

/// A number in `[0, 1)` that differs between calls, for backoff jitter.
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}
