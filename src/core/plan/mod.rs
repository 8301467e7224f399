//! The planner: (config, status, now) → what to do for each entry, and why.
//!
//! Pure and infallible: no I/O, no clock, no async. `run --once`, the daemon
//! and `plan` all call it; only the executor acts on its output.
//!
//! # Guarantees
//! - A one-shot entry (`immediate`, `at`) runs at most once per revision with
//!   a successful outcome; editing it without bumping `revision` only warns.
//! - A Failed entry whose request itself was refused is not run again until
//!   its content changes; one that failed for a passing reason is retried on
//!   its own, backing off, within `retryFailedFor` and never past `notAfter`
//!   (at once with a token other than the refused one). Either way only the
//!   hashes not yet confirmed for that revision (or slot) are sent.
//! - An entry first seen due after `notAfter` is expired, never run.
//! - Dry run (CLI, file or entry) never yields a request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::{Config, Settings};
use crate::digest::finish_digest;
use crate::policy::{self, RunRetry};
use crate::status::{Phase, RunProgress, Status};

mod decide;
use decide::decide;

/// What the planner takes from the shell besides the config, the status and
/// the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `--dry-run`.
    pub cli_dry_run: bool,
    /// Fingerprint of the token at hand (`api::Token::fingerprint`); `None`
    /// when there is none or it was not read. An entry whose run failed
    /// because the API refused a different token is retried at once.
    pub token: Option<String>,
    /// The first wait before a failed entry is retried on its own.
    pub retry_backoff: Duration,
    /// The account's sub-users, to resolve `users:` with.
    pub users: Users,
    /// The commit the config came from (SPEC §6), recorded with every run.
    pub source_revision: Option<String>,
}

/// The sub-user directory as the shell has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Users {
    /// Not looked up (no entry needed it yet, or there is no token).
    #[default]
    NotFetched,
    Fetched(std::sync::Arc<crate::users::Directory>),
    /// Looking them up failed, passingly (the API away): entries with users
    /// fail for a passing reason and are retried.
    Failed(String),
}

impl Users {
    fn directory(&self) -> Option<&crate::users::Directory> {
        match self {
            Users::Fetched(d) => Some(d),
            _ => None,
        }
    }
}

/// The first wait before a failed entry is retried on its own (SPEC §2: one
/// minute, doubling to an hour).
pub const RETRY_BACKOFF: Duration = Duration::from_secs(60);

impl Inputs {
    pub fn new(cli_dry_run: bool) -> Self {
        Inputs {
            cli_dry_run,
            token: None,
            retry_backoff: RETRY_BACKOFF,
            users: Users::NotFetched,
            source_revision: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub now: DateTime<Utc>,
    /// Digest of the config planned from (for events, and the status).
    pub config_digest: String,
    /// The commit the config came from, for the records of this plan's runs.
    pub source_revision: Option<String>,
    pub entries: Vec<EntryPlan>,
    /// Ids in the status file that are no longer in the config.
    pub orphans: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct EntryPlan {
    pub id: String,
    /// The file of a config directory the entry is in (`Entry::source`).
    pub source: Option<std::sync::Arc<str>>,
    /// The entry's revision and content digest, and whether it recurs: what
    /// the status records of it, so the executor never reads the config.
    pub revision: u64,
    pub spec_digest: String,
    pub recurring: bool,
    pub action: Action,
    /// The phase the entry is in once this plan is applied (`Pending` for a
    /// run about to start).
    pub phase: Phase,
    /// One line an operator can act on.
    pub why: String,
    pub warnings: Vec<String>,
    /// Hashes the entry resolves to.
    pub hash_count: usize,
    pub next_run_at: Option<DateTime<Utc>>,
    /// When a Failed entry is retried on its own.
    pub next_retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send these hashes, or with `dry_run` only record them.
    Run(Box<RunSpec>),
    /// Due, but it cannot be sent (a user of it is unknown, or the
    /// sub-users could not be looked up): recorded as a Failed run with no
    /// request, before any DELETE of the entry.
    Fail {
        spec: Box<RunSpec>,
        error: String,
        cause: policy::Cause,
    },
    /// Due after `notAfter`: mark Expired without running.
    Expire,
    /// Nothing to do now.
    Wait,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub dry_run: bool,
    /// How each request of the run is sent and retried.
    pub request: Request,
    /// The schedule slot a recurring run is for.
    pub slot: Option<DateTime<Utc>>,
    /// The hashes this run sends, in order; batch `i` is
    /// `hashes[i * batch_size..][..batch_size]` of `hashes.to_arc()`, made
    /// when the run starts. Shared with the entry when nothing is skipped.
    pub hashes: crate::config::Members,
    pub batch_size: usize,
    /// When a recurring entry runs next after this run (the planner's one
    /// answer, recorded by the run's end).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Digest of `hashes`: batch indices in a saved `RunProgress` only apply to
    /// the same list.
    pub hashes_digest: String,
    /// Progress of an interrupted run of this same list, to continue from.
    pub resume: Option<RunProgress>,
    /// An automatic retry of a run that failed for a passing reason.
    pub retry: bool,
    /// How a failure of this run is retried.
    pub retry_rule: RunRetry,
    /// Which sub-user each looked-up hash belongs to (for the history).
    pub users: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    /// Users not looked up yet: the shell fetches the sub-users and plans
    /// again before sending (a dry run just says so).
    pub unresolved: usize,
    /// The commit the config came from, for the run's record.
    pub source_revision: Option<String>,
}

/// How a run's requests are sent: `settings` as they were when it was
/// planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_delay: Duration,
}

impl Request {
    fn of(settings: &Settings) -> Request {
        Request {
            timeout: settings.request_timeout,
            max_attempts: settings.max_attempts,
            retry_delay: settings.retry_delay,
        }
    }
}

impl RunSpec {
    pub fn batches(&self) -> usize {
        crate::status::batch_count(self.hashes.len(), self.batch_size)
    }

    /// Batches this run still has to send.
    pub fn remaining_batches(&self) -> usize {
        self.batches()
            .saturating_sub(self.resume.as_ref().map_or(0, |r| r.next_batch))
    }
}

impl Plan {
    pub fn runs(&self) -> impl Iterator<Item = (&EntryPlan, &RunSpec)> {
        self.entries.iter().filter_map(|e| match &e.action {
            Action::Run(spec) => Some((e, &**spec)),
            _ => None,
        })
    }

    /// True when some run would call the API (and so needs a token).
    pub fn needs_api(&self) -> bool {
        self.runs()
            .any(|(_, spec)| !spec.dry_run && (spec.remaining_batches() > 0 || spec.unresolved > 0))
    }

    /// True when a real run names users not looked up yet: fetch the
    /// sub-users and plan again.
    pub fn needs_users(&self) -> bool {
        self.runs()
            .any(|(_, spec)| !spec.dry_run && spec.unresolved > 0)
    }

    /// Every username the runs of this plan name (to know whether a cached
    /// directory lacks one).
    pub fn wanted_users<'c>(&self, config: &'c Config) -> impl Iterator<Item = &'c str> {
        let running: std::collections::HashSet<&str> =
            self.runs().map(|(e, _)| e.id.as_str()).collect();
        config
            .resets
            .iter()
            .filter(move |e| e.users > 0 && running.contains(e.id.as_str()))
            .flat_map(|e| e.hashes.iter())
            .filter_map(|m| crate::config::member_user(m))
    }

    /// Hold back every run that would call the API (there is no token):
    /// each waits, pending, saying `why`, while the rest of the plan goes
    /// on. Returns how many were held.
    pub fn hold_for_token(&mut self, why: &str) -> usize {
        let mut held = 0;
        for e in &mut self.entries {
            let needs_api = match &e.action {
                Action::Run(spec) => {
                    !spec.dry_run && (spec.remaining_batches() > 0 || spec.unresolved > 0)
                }
                _ => false,
            };
            if needs_api {
                held += 1;
                e.action = Action::Wait;
                e.phase = Phase::Pending;
                e.next_run_at = None;
                e.why = why.to_owned();
            }
        }
        held
    }
}

/// Why a run under way must stop at the next batch boundary, judged against
/// a newer `config`: the kill switch of SPEC §5.
pub fn halt_reason(config: &Config, id: &str, cli_dry_run: bool) -> Option<&'static str> {
    match config.resets.iter().find(|e| e.id == id) {
        None => Some("the entry was removed from the config"),
        Some(e) if e.suspend => Some("the entry was suspended"),
        Some(e) if cli_dry_run || config.settings.dry_run || e.dry_run => {
            Some("dry run was turned on")
        }
        Some(_) => None,
    }
}

/// Digest of an ordered hash list.
pub fn hashes_digest<'a>(hashes: impl IntoIterator<Item = &'a String>) -> String {
    let mut hasher = Sha256::new();
    for hash in hashes {
        hasher.update(hash.as_bytes());
        hasher.update(b"\n");
    }
    finish_digest(hasher)
}

/// Decide, for every entry, what to do at `now`.
pub fn plan(config: &Config, status: &Status, now: DateTime<Utc>, inputs: &Inputs) -> Plan {
    let at = crate::schedule::DueAt::new(now);
    let entries = config
        .resets
        .iter()
        .map(|entry| {
            decide(
                entry,
                status.resets.get(&entry.id),
                status.run_hashes.get(&entry.id),
                &config.settings,
                inputs,
                &at,
            )
        })
        .collect();
    let ids: foldhash::HashSet<&str> = config.resets.iter().map(|e| e.id.as_str()).collect();
    let orphans = status
        .resets
        .keys()
        .filter(|id| !ids.contains(id.as_str()))
        .cloned()
        .collect();
    Plan {
        now,
        config_digest: config.digest.clone(),
        source_revision: inputs.source_revision.clone(),
        entries,
        orphans,
    }
}

impl Plan {
    /// Record this plan's decisions in `status` (`Status::settle`): what
    /// changed.
    pub fn settle(&self, status: &mut Status) -> crate::status::Settled {
        status.settle(
            self.decisions(),
            &self.orphans,
            &self.config_digest,
            self.now,
            self.source_revision.as_deref(),
        )
    }

    /// What the status records of this plan before any run starts
    /// (`Status::settle`): one decision per entry, in config order.
    pub fn decisions(&self) -> impl Iterator<Item = crate::status::Decision<'_>> {
        self.entries.iter().map(|e| crate::status::Decision {
            id: &e.id,
            source: e.source.as_deref(),
            revision: e.revision,
            spec_digest: &e.spec_digest,
            recurring: e.recurring,
            hash_count: e.hash_count,
            phase: e.phase,
            next_run_at: e.next_run_at,
            next_retry_at: e.next_retry_at,
            step: match e.action {
                Action::Run(_) | Action::Fail { .. } => crate::status::Step::Runs,
                Action::Expire => crate::status::Step::Expires,
                Action::Wait => crate::status::Step::Waits,
            },
        })
    }
}

impl RunSpec {
    /// The facts the status transitions need about this run of `entry`;
    /// `hashes` is `self.hashes.to_arc()`, made when the run starts.
    pub fn facts<'a>(
        &'a self,
        entry: &'a EntryPlan,
        hashes: &'a [String],
    ) -> crate::status::RunFacts<'a> {
        crate::status::RunFacts {
            revision: entry.revision,
            spec_digest: &entry.spec_digest,
            hashes,
            hash_count: self.hashes.len(),
            hashes_digest: &self.hashes_digest,
            batch_size: self.batch_size,
            slot: self.slot,
            next_run_at: self.next_run_at,
            one_shot: !entry.recurring,
            retry: self.retry,
            retry_rule: self.retry_rule,
            token: None,
            users: &self.users,
            source_revision: self.source_revision.as_deref(),
            source: entry.source.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests;
