//! The status file's types and the pure transitions that change it.
//!
//! The status file is resetd's memory: what ran, for which revision, which
//! batches the API confirmed. Every transition here is a plain function of
//! (status, facts, time); persistence lives in `store`.
//!
//! # Guarantees
//! - Only this module writes an entry's `phase`, `nextRunAt`, `nextRetryAt`
//!   and `orphaned`, and the run lists (`runHashes`): the planner decides
//!   (`Decision`, `RunFacts`), the transitions here record.
//! - A batch is recorded as confirmed only after the API answered 2xx.
//! - `run` is present exactly while a run is unfinished; after a crash it says
//!   which batches still need sending.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{self, Cause};

/// How many runs `history` keeps per entry.
pub const HISTORY_LEN: usize = 10;

/// How many batches `len` hashes make at `size` per batch. With
/// `batch_range`, the one place batches are counted and cut.
pub fn batch_count(len: usize, size: usize) -> usize {
    len.div_ceil(size.max(1))
}

/// The indices of batch `i` of `len` hashes at `size` per batch (empty past
/// the end).
pub fn batch_range(len: usize, size: usize, i: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    let start = i.saturating_mul(size).min(len);
    start..start.saturating_add(size).min(len)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Status {
    pub api_version: String,
    pub kind: String,
    /// When resetd last wrote this file.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Digest of the config file last reconciled.
    #[serde(default)]
    pub config_digest: Option<String>,
    /// The last journal record folded into this file: records up to it are
    /// already here and are skipped if the journal is replayed again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub journal_seq: u64,
    #[serde(default)]
    pub resets: BTreeMap<String, EntryStatus>,
    /// The hash list of each unfinished run, by entry id. Kept apart from
    /// `resets` so that the per-batch journal record of an entry stays small;
    /// written once per run. It lets a run interrupted by a crash and then
    /// edited skip exactly the hashes it had confirmed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_hashes: BTreeMap<String, RunHashes>,
}

/// The list an unfinished run sends (batch `i` is its `batch_range`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunHashes {
    /// The run's `startedAt`: ties the list to that run.
    pub started_at: DateTime<Utc>,
    pub hashes: Vec<String>,
}

impl RunProgress {
    /// The hashes this run's confirmed batches covered, given the list the
    /// run sends (`list` must be that list: its batch indices are this run's).
    pub fn confirmed_in<'a>(&'a self, list: &'a [String]) -> impl Iterator<Item = &'a String> {
        self.confirmed_batches()
            .flat_map(move |i| &list[batch_range(list.len(), self.batch_size, i)])
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the planner decided for one entry, as the status records it
/// before any run starts (`Plan::decisions`).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub id: &'a str,
    pub revision: u64,
    pub spec_digest: &'a str,
    pub recurring: bool,
    pub hash_count: usize,
    pub phase: Phase,
    pub next_run_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub step: Step,
}

/// What happens to an entry in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A run (or its failure before sending) follows: its transitions
    /// record it.
    Runs,
    /// Marked Expired, not run.
    Expires,
    Waits,
}

impl Status {
    /// When the next entry falls due, from what the planner recorded here:
    /// each entry's `nextRunAt` and `nextRetryAt` (orphans never run).
    /// `None`: only a change can bring work.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.resets.values().filter_map(EntryStatus::next_due).min()
    }

    /// Bring the status in line with a plan's decisions, before any run
    /// starts: new entries appear, phases and next times are updated,
    /// expiries and orphans recorded. Runs are recorded by the transitions
    /// below as they happen. True when anything changed (an idle pass then
    /// writes nothing).
    pub fn settle<'a>(
        &mut self,
        decisions: impl Iterator<Item = Decision<'a>>,
        orphans: &[String],
        config_digest: &str,
        now: DateTime<Utc>,
        source_revision: Option<&str>,
    ) -> bool {
        let mut changed = false;
        for decided in decisions {
            let st = self.resets.entry(decided.id.to_owned()).or_insert_with(|| {
                changed = true;
                EntryStatus::new(
                    decided.revision,
                    decided.spec_digest,
                    decided.hash_count,
                    now,
                )
            });
            // A run resuming keeps the next run its interrupted run was for;
            // otherwise the planner's answer stands (none for a suspended
            // entry, or one whose schedule never matches again).
            let next_run_at = match (decided.step, decided.next_run_at) {
                (Step::Runs, None) if decided.recurring => st.next_run_at,
                (_, next) => next,
            };
            changed |= st.revision != decided.revision
                || st.spec_digest != decided.spec_digest
                || st.hash_count != decided.hash_count
                || st.orphaned
                || st.phase != decided.phase
                || st.next_run_at != next_run_at;
            st.revision = decided.revision;
            decided.spec_digest.clone_into(&mut st.spec_digest);
            st.hash_count = decided.hash_count;
            st.orphaned = false;
            st.phase = decided.phase;
            st.next_run_at = next_run_at;
            // A waiting Failed entry shows its next retry as the planner sees
            // it now (a newer `retryFailedFor` or `notAfter` may have moved it).
            if decided.step == Step::Waits && st.run.is_none() {
                changed |= st.next_retry_at != decided.next_retry_at;
                st.next_retry_at = decided.next_retry_at;
            }
            if decided.step == Step::Expires {
                changed = true;
                st.next_retry_at = None;
                st.finish(
                    RunRecord {
                        started_at: now,
                        finished_at: now,
                        outcome: Outcome::Expired,
                        revision: decided.revision,
                        hashes: 0,
                        confirmed: 0,
                        requests: 0,
                        error: None,
                        users: BTreeMap::default(),
                        source_revision: source_revision.map(str::to_owned),
                    },
                    decided.spec_digest,
                    None,
                );
            }
        }
        for id in orphans {
            if let Some(st) = self.resets.get_mut(id) {
                changed |= !st.orphaned
                    || st.run.is_some()
                    || st.next_run_at.is_some()
                    || st.next_retry_at.is_some();
                st.orphaned = true;
                // An entry removed from the config never runs again, not even
                // to finish an interrupted run.
                st.run = None;
                st.next_run_at = None;
                st.next_retry_at = None;
            }
            changed |= self.run_hashes.remove(id).is_some();
        }
        if self.config_digest.as_deref() != Some(config_digest) {
            changed = true;
            self.config_digest = Some(config_digest.to_owned());
        }
        changed
    }

    /// Start `id`'s run (or continue `resume`); a fresh run's list is kept
    /// in `runHashes` until it ends.
    pub fn begin_run(
        &mut self,
        id: &str,
        facts: &RunFacts,
        resume: Option<RunProgress>,
        now: DateTime<Utc>,
    ) {
        let fresh = resume.is_none();
        let Some(st) = self.resets.get_mut(id) else {
            return;
        };
        st.begin_run(facts, resume, now);
        if let (true, Some(run)) = (fresh, &st.run) {
            let recorded = RunHashes {
                started_at: run.started_at,
                hashes: facts.hashes.to_vec(),
            };
            self.run_hashes.insert(id.to_owned(), recorded);
        }
    }

    /// Finish `id`'s run (see `EntryStatus::end_run`); its list is dropped.
    pub fn end_run(
        &mut self,
        id: &str,
        facts: &RunFacts,
        abort: Option<String>,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.run_hashes.remove(id);
        match self.resets.get_mut(id) {
            Some(st) => st.end_run(facts, abort, now),
            None => Outcome::Failed,
        }
    }

    /// True when a Failed entry waits to be retried because the API refused
    /// the token: a new token would retry it at once.
    pub fn awaits_new_token(&self) -> bool {
        self.resets.values().any(|st| {
            st.phase == Phase::Failed
                && st
                    .retrying
                    .as_ref()
                    .is_some_and(|r| r.refused_token.is_some())
        })
    }
}

impl Default for Status {
    fn default() -> Self {
        Status {
            api_version: "resetd/v1".into(),
            kind: "SessionResetStatus".into(),
            updated_at: None,
            config_digest: None,
            journal_seq: 0,
            resets: BTreeMap::new(),
            run_hashes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Due, not yet started; or stopped by SIGTERM/SIGINT with its
    /// progress kept (`run`): it resumes there.
    Pending,
    /// Waiting for its time (`nextRunAt`).
    Scheduled,
    /// A run is under way (or was, when resetd was killed: it resumes).
    Running,
    Succeeded,
    /// The last run failed. Retried on its own at `nextRetryAt` when the
    /// cause passes (the API away, the token refused); otherwise only a
    /// change of the entry (or of `revision`) runs it again.
    Failed,
    /// Would have run; dry run was on, so nothing was sent.
    DryRun,
    /// First seen due after `notAfter`; never run.
    Expired,
    Suspended,
}

/// The end of a run, as recorded in `lastOutcome` and `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    DryRun,
    Expired,
}

impl From<Outcome> for Phase {
    fn from(o: Outcome) -> Phase {
        match o {
            Outcome::Succeeded => Phase::Succeeded,
            Outcome::Failed => Phase::Failed,
            Outcome::DryRun => Phase::DryRun,
            Outcome::Expired => Phase::Expired,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryStatus {
    pub phase: Phase,
    /// Revision of the entry in the config last reconciled.
    pub revision: u64,
    pub spec_digest: String,
    pub hash_count: usize,
    /// API requests made by the last run, retries included.
    #[serde(default)]
    pub attempts: u32,
    pub first_seen_at: DateTime<Utc>,
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub next_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// When a Failed entry is next retried on its own (SPEC §2); `None` when
    /// it is not (the request itself was refused, or retries are over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The streak of passing failures the entry is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrying: Option<Retrying>,
    /// What the last finished run did, and for which content.
    #[serde(default)]
    pub last_outcome: Option<LastOutcome>,
    /// The schedule slot the last recurring run was for (cron minute, or the
    /// start of an `every` run): the next slot is counted from here.
    #[serde(default)]
    pub last_slot: Option<DateTime<Utc>>,
    /// Hashes the API confirmed for `revision` by runs that did not succeed in
    /// full, so a fixing commit sends only the rest.
    #[serde(default)]
    pub confirmed: Option<Confirmed>,
    /// The unfinished run, if any.
    #[serde(default)]
    pub run: Option<RunProgress>,
    /// The entry is no longer in the config; it will never run again.
    #[serde(default)]
    pub orphaned: bool,
    /// The last runs, newest last.
    #[serde(default)]
    pub history: Vec<RunRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastOutcome {
    pub outcome: Outcome,
    pub revision: u64,
    pub spec_digest: String,
}

/// Runs of an entry that failed for passing reasons, back to back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retrying {
    /// When the first of them failed: retries stop `retryFailedFor` later.
    pub since: DateTime<Utc>,
    /// Automatic retries made since.
    #[serde(default)]
    pub retries: u32,
    /// Fingerprint of the token the API refused (`api::Token::fingerprint`,
    /// never the token): a different token is retried at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Confirmed {
    pub revision: u64,
    /// For a recurring entry, the slot whose retry may skip these hashes
    /// (the next slot sends everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
    pub hashes: Vec<String>,
}

/// Progress of an unfinished run. Batches are sent in order, so progress is
/// a cursor plus the batches that failed permanently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunProgress {
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub slot: Option<DateTime<Utc>>,
    pub revision: u64,
    pub spec_digest: String,
    /// Digest of the exact, ordered list of hashes this run sends: batch
    /// indices mean something only for that list.
    pub hashes_digest: String,
    pub hash_count: usize,
    pub batch_size: usize,
    pub batches: usize,
    /// Batches below this index are done (confirmed, or in `failedBatches`).
    pub next_batch: usize,
    /// The batch whose request was sent and not yet answered. After a crash
    /// it is sent again: its answer may have been lost (at-least-once).
    #[serde(default)]
    pub in_flight: Option<usize>,
    #[serde(default)]
    pub failed_batches: Vec<usize>,
    #[serde(default)]
    pub requests: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The worst cause among the batches that failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
}

impl RunProgress {
    /// Indices of confirmed batches.
    pub fn confirmed_batches(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.next_batch).filter(|i| !self.failed_batches.contains(i))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub revision: u64,
    /// Hashes this run was to send.
    pub hashes: usize,
    /// Hashes the API confirmed.
    #[serde(default)]
    pub confirmed: usize,
    pub requests: u32,
    #[serde(default)]
    pub error: Option<String>,
    /// The sub-users this run named, and the hash each was resolved to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, String>,
    /// The commit the config came from (`--source-revision`, or the HEAD of
    /// the config's git work tree); null when unknown.
    #[serde(default)]
    pub source_revision: Option<String>,
}

impl EntryStatus {
    /// A status for an entry seen for the first time.
    pub fn new(revision: u64, spec_digest: &str, hash_count: usize, now: DateTime<Utc>) -> Self {
        EntryStatus {
            phase: Phase::Pending,
            revision,
            spec_digest: spec_digest.to_owned(),
            hash_count,
            attempts: 0,
            first_seen_at: now,
            last_run_at: None,
            completed_at: None,
            next_run_at: None,
            last_error: None,
            next_retry_at: None,
            retrying: None,
            last_outcome: None,
            last_slot: None,
            confirmed: None,
            run: None,
            orphaned: false,
            history: Vec::new(),
        }
    }

    /// Hashes confirmed for `revision` (and, for a recurring entry, its
    /// `slot`; `None` for one-shots) by earlier runs that did not succeed.
    pub fn confirmed_for(&self, revision: u64, slot: Option<DateTime<Utc>>) -> &[String] {
        match &self.confirmed {
            Some(c) if c.revision == revision && c.slot == slot => &c.hashes,
            _ => &[],
        }
    }

    /// Record the end of a run (or an expiry) and its audit line.
    pub fn finish(&mut self, record: RunRecord, spec_digest: &str, slot: Option<DateTime<Utc>>) {
        if record.outcome != Outcome::Failed {
            self.retrying = None;
            self.next_retry_at = None;
        }
        self.phase = record.outcome.into();
        self.completed_at = Some(record.finished_at);
        self.last_error = record.error.clone();
        self.last_outcome = Some(LastOutcome {
            outcome: record.outcome,
            revision: record.revision,
            spec_digest: spec_digest.to_owned(),
        });
        if slot.is_some() {
            self.last_slot = slot;
        }
        self.run = None;
        self.history.push(record);
        if self.history.len() > HISTORY_LEN {
            let excess = self.history.len() - HISTORY_LEN;
            self.history.drain(..excess);
        }
    }
}

/// What a run is about, as the executor hands it to the transitions below.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    pub revision: u64,
    pub spec_digest: &'a str,
    /// The list the run sends (empty for a dry run, which sends nothing).
    pub hashes: &'a [String],
    /// How many hashes the run is about (for a dry run, what it would send).
    pub hash_count: usize,
    pub hashes_digest: &'a str,
    pub batch_size: usize,
    pub slot: Option<DateTime<Utc>>,
    /// When a recurring entry runs next, as the planner worked it out.
    pub next_run_at: Option<DateTime<Utc>>,
    /// One-shot entries remember confirmed hashes across failed runs of a
    /// revision, recurring ones across the retries of a slot.
    pub one_shot: bool,
    /// The run is an automatic retry of a failed one: it continues the
    /// failure streak instead of starting afresh.
    pub retry: bool,
    /// How a failure of this run is retried.
    pub retry_rule: policy::RunRetry,
    /// Fingerprint of the token the run sends with, recorded if refused.
    pub token: Option<&'a str>,
    /// The sub-users the run names and their hashes, for the history.
    pub users: &'a BTreeMap<String, String>,
    /// The commit the config came from, for the history.
    pub source_revision: Option<&'a str>,
}

impl RunFacts<'_> {
    /// The slot that confirmed hashes are kept for (none for one-shots).
    pub fn confirmed_slot(&self) -> Option<DateTime<Utc>> {
        if self.one_shot { None } else { self.slot }
    }
}

impl EntryStatus {
    /// When this entry falls due next: its next run or its next retry,
    /// whichever comes first (never, for an orphan).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        if self.orphaned {
            return None;
        }
        self.next_run_at.into_iter().chain(self.next_retry_at).min()
    }

    /// Start a run, or continue `resume` (an interrupted run of the same list).
    pub fn begin_run(&mut self, facts: &RunFacts, resume: Option<RunProgress>, now: DateTime<Utc>) {
        let fresh = resume.is_none();
        let progress = resume.unwrap_or_else(|| RunProgress {
            started_at: now,
            slot: facts.slot,
            revision: facts.revision,
            spec_digest: facts.spec_digest.to_owned(),
            hashes_digest: facts.hashes_digest.to_owned(),
            hash_count: facts.hashes.len(),
            batch_size: facts.batch_size,
            batches: batch_count(facts.hashes.len(), facts.batch_size),
            next_batch: 0,
            in_flight: None,
            failed_batches: Vec::new(),
            requests: 0,
            last_error: None,
            cause: None,
        });
        if !facts.retry {
            self.retrying = None;
        } else if let (true, Some(streak)) = (fresh, &mut self.retrying) {
            streak.retries = streak.retries.saturating_add(1);
        }
        self.next_retry_at = None;
        self.phase = Phase::Running;
        self.last_run_at = Some(progress.started_at);
        self.attempts = progress.requests;
        self.run = Some(progress);
    }

    fn progress(&mut self) -> Option<&mut RunProgress> {
        self.run.as_mut()
    }

    /// A request for `batch` is about to be sent (recorded before sending).
    pub fn batch_sending(&mut self, batch: usize) {
        if let Some(run) = self.progress() {
            run.in_flight = Some(batch);
            run.requests += 1;
        }
        self.attempts += 1;
    }

    /// The API answered 2xx for `batch`.
    pub fn batch_confirmed(&mut self, batch: usize) {
        if let Some(run) = self.progress() {
            run.in_flight = None;
            run.next_batch = batch + 1;
        }
    }

    /// `batch` failed for good (permanent error, or attempts exhausted).
    pub fn batch_failed(&mut self, batch: usize, error: String, cause: Cause) {
        if let Some(run) = self.progress() {
            run.in_flight = None;
            run.next_batch = batch + 1;
            run.failed_batches.push(batch);
            run.last_error = Some(error);
            run.cause = run.cause.max(Some(cause));
        }
    }

    /// A retryable error on `batch`; it will be sent again.
    pub fn batch_retrying(&mut self, error: String) {
        if let Some(run) = self.progress() {
            run.in_flight = None;
            run.last_error = Some(error);
        }
    }

    /// Finish the current run. `abort` is set when the run stopped before its
    /// last batch because the token was refused: it then counts as Failed.
    pub fn end_run(
        &mut self,
        facts: &RunFacts,
        abort: Option<String>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let Some(run) = self.run.take() else {
            return Outcome::Failed;
        };
        let confirmed_now: Vec<&String> = run.confirmed_in(facts.hashes).collect();
        let complete = abort.is_none()
            && run.cause.is_none()
            && run.failed_batches.is_empty()
            && run.next_batch >= run.batches;
        let outcome = if complete {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        if complete {
            self.confirmed = None;
        } else {
            let slot = facts.confirmed_slot();
            let mut hashes = self.confirmed_for(facts.revision, slot).to_vec();
            hashes.extend(confirmed_now.iter().map(|h| (*h).clone()));
            self.confirmed = Some(Confirmed {
                revision: facts.revision,
                slot,
                hashes,
            });
        }
        let cause = if abort.is_some() {
            run.cause.max(Some(Cause::Token))
        } else {
            run.cause
        };
        self.next_retry_at = None;
        match cause {
            _ if complete => self.retrying = None,
            Some(Cause::Request) => self.retrying = None,
            // Failed for a passing reason (or, with no cause recorded, for
            // none resetd knows of): retried on its own.
            cause => {
                let streak = self.retrying.get_or_insert(Retrying {
                    since: now,
                    retries: 0,
                    refused_token: None,
                });
                streak.refused_token = match cause {
                    Some(Cause::Token) => facts.token.map(str::to_owned),
                    _ => None,
                };
                self.next_retry_at =
                    policy::next_retry(streak.since, streak.retries, now, &facts.retry_rule);
            }
        }
        let error = abort.or(run.last_error.clone().filter(|_| !complete));
        self.attempts = run.requests;
        self.next_run_at = facts.next_run_at;
        self.finish(
            RunRecord {
                started_at: run.started_at,
                finished_at: now,
                outcome,
                revision: facts.revision,
                hashes: facts.hashes.len(),
                confirmed: confirmed_now.len(),
                requests: run.requests,
                error,
                users: facts.users.clone(),
                source_revision: facts.source_revision.map(str::to_owned),
            },
            facts.spec_digest,
            facts.slot,
        );
        outcome
    }

    /// Record a dry run: what would have been sent, nothing sent.
    pub fn record_dry_run(&mut self, facts: &RunFacts, now: DateTime<Utc>) {
        self.last_run_at = Some(now);
        self.attempts = 0;
        self.next_run_at = facts.next_run_at;
        self.finish(
            RunRecord {
                started_at: now,
                finished_at: now,
                outcome: Outcome::DryRun,
                revision: facts.revision,
                hashes: facts.hash_count,
                confirmed: 0,
                requests: 0,
                error: None,
                users: facts.users.clone(),
                source_revision: facts.source_revision.map(str::to_owned),
            },
            facts.spec_digest,
            facts.slot,
        );
    }

    /// A run that fails before any request (a user of it is unknown, or the
    /// sub-users could not be looked up): Failed, retried on its own or not
    /// as `cause` says, like a run that failed while sending.
    pub fn fail_unsent(
        &mut self,
        facts: &RunFacts,
        error: String,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Outcome {
        self.begin_run(facts, None, now);
        if let Some(run) = self.run.as_mut() {
            run.cause = Some(cause);
            run.last_error = Some(error);
        }
        self.end_run(facts, None, now)
    }
}

impl EntryStatus {
    /// A stop (SIGTERM/SIGINT) ended the run before its last batch: it
    /// waits to resume where it stopped (`Pending`, its progress and any
    /// batch still in flight kept). `Running` is left for runs a crash cut
    /// short, since nothing could record it.
    pub fn run_stopped(&mut self) {
        if self.run.is_some() && self.phase == Phase::Running {
            self.phase = Phase::Pending;
        }
    }
}

impl Status {
    /// A stop gave up waiting for a request at the shutdown timeout: the run
    /// it belonged to (the one with a batch in flight) stops there.
    pub fn abandon_in_flight(&mut self) {
        for st in self.resets.values_mut() {
            if st.run.as_ref().is_some_and(|r| r.in_flight.is_some()) {
                st.run_stopped();
            }
        }
    }
}
