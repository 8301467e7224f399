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

use crate::policy::Cause;

mod transitions;
pub use transitions::{Decision, RunFacts, Settled, Step};

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

/// The status file's `kind`, by which it is told from a config.
pub const KIND: &str = "SessionResetStatus";

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

impl Default for Status {
    fn default() -> Self {
        Status {
            api_version: "resetd/v1".into(),
            kind: KIND.into(),
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
    /// The file of a config directory the entry is in, relative to the
    /// directory (SPEC §2b); absent for a config that is one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
    /// The file of a config directory the entry was in for this run;
    /// absent for a config that is one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
            source: None,
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
