//! The status transitions: the one place an entry's `phase`, `nextRunAt`,
//! `nextRetryAt`, `orphaned` and the run lists change. The planner decides
//! (`Decision`, `RunFacts`); these record, as plain functions of (status,
//! facts, time).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    Confirmed, EntryStatus, Outcome, Phase, Retrying, RunHashes, RunProgress, RunRecord, Status,
    batch_count,
};
use crate::policy::{self, Cause};

/// What the planner decided for one entry, as the status records it
/// before any run starts (`Plan::decisions`).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub id: &'a str,
    /// The file of a config directory the entry is in (SPEC §2b).
    pub source: Option<&'a str>,
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

/// What `Status::settle` changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[must_use]
pub struct Settled {
    /// The entries whose status changed (orphans among them), in the order
    /// settled.
    pub entries: Vec<String>,
    /// `configDigest` changed: a status-wide field, not an entry's.
    pub config_digest: bool,
}

impl Settled {
    pub fn any(&self) -> bool {
        self.config_digest || !self.entries.is_empty()
    }
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
    /// below as they happen. Says what changed, entry by entry, so that the
    /// caller persists only that (an idle pass then writes nothing).
    pub fn settle<'a>(
        &mut self,
        decisions: impl Iterator<Item = Decision<'a>>,
        orphans: &[String],
        config_digest: &str,
        now: DateTime<Utc>,
        source_revision: Option<&str>,
    ) -> Settled {
        let mut settled = Settled::default();
        for decided in decisions {
            let mut changed = false;
            // Looked up before inserting: an id is copied only when new.
            if !self.resets.contains_key(decided.id) {
                changed = true;
                let new = EntryStatus::new(
                    decided.revision,
                    decided.spec_digest,
                    decided.hash_count,
                    now,
                );
                self.resets.insert(decided.id.to_owned(), new);
            }
            let Some(st) = self.resets.get_mut(decided.id) else {
                continue;
            };
            // A run resuming keeps the next run its interrupted run was for;
            // otherwise the planner's answer stands (none for a suspended
            // entry, or one whose schedule never matches again).
            let next_run_at = match (decided.step, decided.next_run_at) {
                (Step::Runs, None) if decided.recurring => st.next_run_at,
                (_, next) => next,
            };
            // Moved to another file: recorded, and nothing else changes.
            if st.source.as_deref() != decided.source {
                changed = true;
                st.source = decided.source.map(str::to_owned);
            }
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
                        source: decided.source.map(str::to_owned),
                    },
                    decided.spec_digest,
                    None,
                );
            }
            if changed {
                settled.entries.push(decided.id.to_owned());
            }
        }
        for id in orphans {
            let mut changed = self.run_hashes.remove(id).is_some();
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
            if changed {
                settled.entries.push(id.clone());
            }
        }
        if self.config_digest.as_deref() != Some(config_digest) {
            settled.config_digest = true;
            self.config_digest = Some(config_digest.to_owned());
        }
        settled
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
    /// the token: a new token would retry it at once. Not once its retries
    /// are over (no `nextRetryAt`): a new token could not bring one.
    pub fn awaits_new_token(&self) -> bool {
        self.resets.values().any(|st| {
            st.phase == Phase::Failed
                && st.next_retry_at.is_some()
                && st
                    .retrying
                    .as_ref()
                    .is_some_and(|r| r.refused_token.is_some())
        })
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
    /// The file of a config directory the entry is in, for the history.
    pub source: Option<&'a str>,
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
                source: facts.source.map(str::to_owned),
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
                source: facts.source.map(str::to_owned),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_retry_still_ahead_waits_for_a_new_token() {
        let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let mut status = Status::default();
        let mut st = EntryStatus::new(0, "d", 1, now);
        st.phase = Phase::Failed;
        st.retrying = Some(Retrying {
            since: now,
            retries: 0,
            refused_token: Some("abcdef012345".into()),
        });
        st.next_retry_at = Some(now);
        status.resets.insert("r1".into(), st);
        assert!(status.awaits_new_token());
        // Retries over (`retryFailedFor` or `notAfter` passed): a new token
        // cannot bring one, so the token file is not watched for it.
        if let Some(st) = status.resets.get_mut("r1") {
            st.next_retry_at = None;
        }
        assert!(!status.awaits_new_token());
    }
}
