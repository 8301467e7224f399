//! The executor: carries out a plan, one batch at a time, persisting as it
//! goes. Generic over the API (`Sessions`), the status store
//! (`StatusStore`) and the clock, so tests drive it in-process on paused
//! tokio time. The plan is self-contained: the executor never reads the
//! config, and changes the status only through `status`'s transitions.
//!
//! # Guarantees
//! - Before each request the entry's state (this batch in flight, the
//!   batches before it confirmed) is made durable. A crash at any point
//!   therefore re-sends at most the in-flight batch (its answer may have been
//!   lost — at-least-once, never lost), and never a confirmed one.
//! - Persisting a batch costs one journal record of that entry, whatever the
//!   number of entries; so does each entry the plan changed before the first
//!   request (a config edit reaches its request without a whole-status
//!   write), unless it changed a large share of them, when one whole write
//!   is cheaper. The whole status is written once at the end of a pass that
//!   changed anything.
//! - A stop is honoured between requests and during backoff waits; an
//!   in-flight request may finish. The unfinished run resumes next time.
//! - Between batches, `Control` may halt an entry's run (the daemon's kill
//!   switch: the entry was suspended, removed or switched to dry run).
//! - Runs are sequential and requests are spaced by the rate limit.

use std::hash::{BuildHasher as _, Hasher as _};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::api::ApiError;
use crate::plan::{Action, EntryPlan, Plan, RunSpec};
use crate::policy::{self, Verdict};
use crate::status::{EntryStatus, Outcome, Status};
use crate::store::{StatusStore, StoreError};

mod ports;
pub use ports::{
    Clock, Control, LiveConfig, Observer, RateLimiter, RunEnded, Sessions, Stop, SystemClock,
    TokioClock,
};

/// What a reconcile pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
    pub dry_runs: Vec<String>,
    pub expired: Vec<String>,
    /// Runs stopped between batches by `Control` (the kill switch).
    pub halted: Vec<String>,
    pub requests: u32,
    /// True when a stop interrupted a run (it resumes next time).
    pub interrupted: bool,
    /// The batches a stop left unsent (what the next run sends).
    pub unsent_batches: usize,
}

/// Everything a pass needs from the shell.
pub struct Executor<'a, A, P, C> {
    pub store: &'a mut P,
    pub api: Option<&'a A>,
    pub limiter: &'a mut RateLimiter,
    pub stop: Stop,
    pub control: &'a mut dyn Control,
    pub observer: &'a dyn Observer,
    pub clock: &'a C,
}

/// How one entry's run ended.
enum RunEnd {
    Finished(Outcome),
    /// `Control` halted it between batches.
    Halted,
    /// A stop interrupted it, this many batches short of its end.
    Stopped(usize),
}

/// The batches the runs among `entries` would send: what a stop leaves
/// unsent.
fn unsent(entries: &[EntryPlan]) -> usize {
    entries
        .iter()
        .filter_map(|e| match &e.action {
            Action::Run(spec) if !spec.dry_run => Some(spec.remaining_batches()),
            _ => None,
        })
        .sum()
}

enum BatchEnd {
    Confirmed,
    Failed,
    /// The token was refused: the run ends now.
    Abort(String),
    Stopped,
}

impl<A: Sessions, P: StatusStore, C: Clock> Executor<'_, A, P, C> {
    /// Apply `plan` (made from `status`) and persist as it goes.
    pub async fn execute(
        &mut self,
        plan: &Plan,
        status: &mut Status,
    ) -> Result<Summary, StoreError> {
        let mut summary = Summary::default();
        let settled = plan.settle(status);
        for entry_plan in &plan.entries {
            if entry_plan.action == Action::Expire {
                tracing::warn!(entry = %entry_plan.id, "expired: {}", entry_plan.why);
                summary.expired.push(entry_plan.id.clone());
                if let Some(st) = status.resets.get(&entry_plan.id) {
                    self.recorded(plan, &entry_plan.id, st, false);
                }
            }
            for warning in &entry_plan.warnings {
                tracing::warn!(entry = %entry_plan.id, "{warning}");
            }
        }
        // An idle pass (a resync, a timer with nothing due) writes nothing.
        let mut dirty = self.persist_settled(status, &settled)?;
        for (i, entry) in plan.entries.iter().enumerate() {
            let spec = match &entry.action {
                Action::Run(spec) => spec,
                Action::Fail { spec, error, cause } => {
                    dirty = true;
                    self.fail_unsent(plan, entry, spec, error, *cause, status)?;
                    summary.failed.push(entry.id.clone());
                    continue;
                }
                _ => continue,
            };
            if self.stop.is_set() {
                summary.interrupted = true;
                summary.unsent_batches += unsent(&plan.entries[i..]);
                break;
            }
            dirty = true;
            if spec.unresolved > 0 && !spec.dry_run {
                // The shell looks users up and plans again before a pass;
                // never send a list that lacks them.
                let error = "its users were not looked up".to_owned();
                self.fail_unsent(
                    plan,
                    entry,
                    spec,
                    &error,
                    crate::policy::Cause::Passing,
                    status,
                )?;
                summary.failed.push(entry.id.clone());
                continue;
            }
            if spec.dry_run {
                self.dry_run(plan, entry, spec, status);
                summary.dry_runs.push(entry.id.clone());
                continue;
            }
            tracing::info!(entry = %entry.id, hashes = spec.hashes.len(), batches = spec.batches(), "{}", entry.why);
            match self.run(plan, entry, spec, status, &mut summary).await? {
                RunEnd::Finished(Outcome::Succeeded) => summary.succeeded.push(entry.id.clone()),
                RunEnd::Finished(_) => summary.failed.push(entry.id.clone()),
                RunEnd::Halted => summary.halted.push(entry.id.clone()),
                RunEnd::Stopped(left) => {
                    summary.interrupted = true;
                    summary.unsent_batches += left + unsent(&plan.entries[i + 1..]);
                    break;
                }
            }
        }
        // The status file becomes the complete record again.
        if dirty {
            self.save(status)?;
        }
        Ok(summary)
    }

    /// Make what the plan settled survive a crash before the first request:
    /// a journal record per changed entry, made durable by the first batch's
    /// own durable record (or by the fold at the end of the pass). Losing
    /// them to a crash loses nothing the next plan would not decide again.
    /// Past a quarter of the entries, one whole write costs less. True when
    /// the status still needs its fold.
    fn persist_settled(
        &mut self,
        status: &mut Status,
        settled: &crate::status::Settled,
    ) -> Result<bool, StoreError> {
        if settled.entries.len().saturating_mul(4) > status.resets.len() {
            self.save(status)?;
            return Ok(false);
        }
        for id in &settled.entries {
            self.store.record(status, id, false)?;
        }
        Ok(settled.any())
    }

    fn save(&mut self, status: &mut Status) -> Result<(), StoreError> {
        status.updated_at = Some(self.clock.now());
        self.store.save(status)
    }

    /// Tell the observer about `st`'s newest history record.
    fn recorded(&self, plan: &Plan, id: &str, st: &EntryStatus, token_refused: bool) {
        if let Some(record) = st.history.last() {
            self.observer.run_recorded(&RunEnded {
                entry: id,
                record,
                token_refused,
                config_digest: &plan.config_digest,
            });
        }
    }

    /// A dry run is recorded in memory only: it sends nothing, so losing it
    /// to a crash loses nothing but its line in the history.
    fn dry_run(&mut self, plan: &Plan, entry: &EntryPlan, spec: &RunSpec, status: &mut Status) {
        if let Some(st) = status.resets.get_mut(&entry.id) {
            // Nothing is sent: the merged list is never made.
            st.record_dry_run(&spec.facts(entry, &[]), self.clock.now());
            self.recorded(plan, &entry.id, st, false);
        }
        tracing::info!(
            entry = %entry.id,
            hashes = spec.hashes.len(),
            batches = spec.batches(),
            "dry run: would send {} hash(es) in {} DELETE request(s); nothing sent",
            spec.hashes.len(),
            spec.batches()
        );
    }

    /// A run that fails before any request (see `Action::Fail`).
    fn fail_unsent(
        &mut self,
        plan: &Plan,
        entry: &EntryPlan,
        spec: &RunSpec,
        error: &str,
        cause: crate::policy::Cause,
        status: &mut Status,
    ) -> Result<(), StoreError> {
        let Some(st) = status.resets.get_mut(&entry.id) else {
            return Ok(());
        };
        let list = spec.hashes.to_arc();
        st.fail_unsent(
            &spec.facts(entry, &list),
            error.to_owned(),
            cause,
            self.clock.now(),
        );
        let next = retry_note(st.next_retry_at);
        self.recorded(plan, &entry.id, st, false);
        self.store.record(status, &entry.id, false)?;
        tracing::error!(entry = %entry.id, "run failed before any request: {error}; {next}");
        Ok(())
    }

    /// A stop interrupted `id`'s run before `batch` (of `batches`) was
    /// confirmed: keep its progress (the fold at the end of the pass makes it
    /// durable).
    fn stopped(
        &mut self,
        status: &mut Status,
        id: &str,
        batch: usize,
        batches: usize,
    ) -> Result<RunEnd, StoreError> {
        if let Some(st) = status.resets.get_mut(id) {
            st.run_stopped();
        }
        self.store.record(status, id, false)?;
        tracing::info!(entry = %id, "stopping: the run resumes at batch {} next time", batch + 1);
        Ok(RunEnd::Stopped(batches.saturating_sub(batch)))
    }

    /// One entry's run.
    async fn run(
        &mut self,
        plan: &Plan,
        entry: &EntryPlan,
        spec: &RunSpec,
        status: &mut Status,
        summary: &mut Summary,
    ) -> Result<RunEnd, StoreError> {
        let token = self.api.and_then(Sessions::token_fingerprint);
        // The merged list exists while this entry's run needs it (an entry
        // naming one group shares that group's list).
        let list = spec.hashes.to_arc();
        let facts = crate::status::RunFacts {
            token: token.as_deref(),
            ..spec.facts(entry, &list)
        };
        let start = spec.resume.as_ref().map_or(0, |r| r.next_batch);
        // Not persisted on its own: the first batch's record carries it.
        status.begin_run(&entry.id, &facts, spec.resume.clone(), self.clock.now());
        let mut abort = None;
        for batch in start..spec.batches() {
            if self.stop.is_set() {
                return self.stopped(status, &entry.id, batch, spec.batches());
            }
            if let Some(reason) = self.control.halt(&entry.id) {
                self.store.record(status, &entry.id, false)?;
                tracing::warn!(entry = %entry.id, "run halted before batch {} of {}: {reason}", batch + 1, spec.batches());
                return Ok(RunEnd::Halted);
            }
            let hashes = &list[crate::status::batch_range(list.len(), spec.batch_size, batch)];
            match self
                .send_batch(spec, &entry.id, batch, hashes, status, summary)
                .await?
            {
                BatchEnd::Confirmed | BatchEnd::Failed => {}
                BatchEnd::Abort(message) => {
                    abort = Some(message);
                    break;
                }
                BatchEnd::Stopped => {
                    return self.stopped(status, &entry.id, batch, spec.batches());
                }
            }
        }
        let now = self.clock.now();
        let token_refused = abort.is_some();
        let outcome = status.end_run(&entry.id, &facts, abort, now);
        let Some(st) = status.resets.get(&entry.id) else {
            return Ok(RunEnd::Finished(outcome));
        };
        let last = st.history.last().cloned();
        let next_retry = st.next_retry_at;
        self.recorded(plan, &entry.id, st, token_refused);
        // Not synced: were it lost, the last batch would be the in-flight
        // one, re-sent once; the next durable record or the fold covers it.
        self.store.record(status, &entry.id, false)?;
        if let Some(record) = last {
            match outcome {
                Outcome::Succeeded => tracing::info!(
                    entry = %entry.id, hashes = record.confirmed, requests = record.requests,
                    "run succeeded: {} hash(es) reset", record.confirmed
                ),
                _ => {
                    let next = retry_note(next_retry);
                    tracing::error!(
                        entry = %entry.id, confirmed = record.confirmed, hashes = record.hashes, requests = record.requests,
                        "run failed: {}; {next}",
                        record.error.as_deref().unwrap_or("unknown error")
                    );
                }
            }
        }
        Ok(RunEnd::Finished(outcome))
    }

    async fn send_batch(
        &mut self,
        spec: &RunSpec,
        id: &str,
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            // No request starts once another process may hold the status.
            self.store.may_send()?;
            if let Some(st) = status.resets.get_mut(id) {
                st.batch_sending(batch);
            }
            // The one durable write per request: it also makes the previous
            // batch's confirmation durable, so a crash re-sends only this one.
            self.store.record(status, id, true)?;
            self.limiter.wait().await;
            // Asked again after the rate limit's wait: a store whose right
            // to send lapses with time (an HA leader's lease) may have lost
            // it meanwhile.
            self.store.may_send()?;
            let sent_at = Instant::now();
            let result = api.delete_sessions(hashes, spec.request.timeout).await;
            let elapsed = sent_at.elapsed();
            summary.requests += 1;
            let Some(st) = status.resets.get_mut(id) else {
                return Ok(BatchEnd::Failed);
            };
            let error = match result {
                Ok(answer) => {
                    self.observer.request(Some(answer.code), elapsed, false);
                    self.observer.hashes_confirmed(hashes.len());
                    st.batch_confirmed(batch);
                    tracing::info!(entry = %id, batch, code = answer.code, hashes = hashes.len(), "batch confirmed");
                    return Ok(BatchEnd::Confirmed);
                }
                Err(e) => e,
            };
            let code = match &error {
                ApiError::Status { code, .. } => Some(*code),
                _ => None,
            };
            let timed_out = matches!(error, ApiError::Timeout { .. });
            self.observer.request(code, elapsed, timed_out);
            let message = error.to_string();
            let retry = policy::RetryPolicy {
                max_attempts: spec.request.max_attempts,
                base_delay: spec.request.retry_delay,
            };
            let failure = error.failure();
            match policy::on_failure(&failure, attempt, retry, jitter()) {
                Verdict::Retry(delay) => {
                    st.batch_retrying(message.clone());
                    tracing::warn!(entry = %id, batch, attempt, "request failed, retrying in {delay:?}: {message}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.wait() => return Ok(BatchEnd::Stopped),
                    }
                }
                Verdict::GiveUp => {
                    st.batch_failed(batch, message.clone(), failure.cause());
                    tracing::error!(entry = %id, batch, attempt, "batch failed: {message}");
                    return Ok(BatchEnd::Failed);
                }
                Verdict::StopRun => {
                    st.batch_retrying(message.clone());
                    tracing::error!(entry = %id, batch, "{message}");
                    return Ok(BatchEnd::Abort(message));
                }
            }
        }
    }
}

/// Carry out `plan` in memory against `api`, with time from `clock` and no
/// rate limit: how the planner's tests and property checks drive the real
/// executor (on paused tokio time, with a `TokioClock`).
pub async fn execute_in_memory<A: Sessions, C: Clock>(
    plan: &Plan,
    status: &mut Status,
    api: &A,
    clock: &C,
) -> Result<(Summary, crate::store::MemStore), StoreError> {
    let mut store = crate::store::MemStore::default();
    let mut limiter = RateLimiter::new(None);
    let summary = Executor {
        store: &mut store,
        api: Some(api),
        limiter: &mut limiter,
        stop: Stop::never(),
        control: &mut (),
        observer: &(),
        clock,
    }
    .execute(plan, status)
    .await?;
    Ok((summary, store))
}

/// What happens next to a Failed entry, for its log line.
fn retry_note(next_retry_at: Option<DateTime<Utc>>) -> String {
    match next_retry_at {
        Some(at) => format!(
            "retried on its own at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "not retried until the entry changes".to_owned(),
    }
}

/// A number in `[0, 1)` that differs between calls, for backoff jitter.
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}
