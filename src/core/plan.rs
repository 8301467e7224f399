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

use crate::config::{Config, Entry, Settings};
use crate::digest::finish_digest;
use crate::policy::{self, RunRetry};
use crate::schedule::{self, Due};
use crate::status::{EntryStatus, Outcome, Phase, RunProgress, Status};

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
                now,
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

fn decide(
    entry: &Entry,
    st: Option<&EntryStatus>,
    run_list: Option<&crate::status::RunHashes>,
    settings: &Settings,
    inputs: &Inputs,
    now: DateTime<Utc>,
) -> EntryPlan {
    let dry_run = inputs.cli_dry_run || settings.dry_run || entry.dry_run;
    let rule = RunRetry {
        backoff: inputs.retry_backoff,
        window: settings.retry_failed_for,
        not_after: entry.not_after,
    };
    let mut plan = EntryPlan {
        id: entry.id.clone(),
        revision: entry.revision,
        spec_digest: entry.spec_digest.clone(),
        recurring: entry.trigger.is_recurring(),
        action: Action::Wait,
        phase: Phase::Pending,
        why: String::new(),
        warnings: Vec::new(),
        hash_count: entry.hashes.len(),
        next_run_at: None,
        next_retry_at: None,
    };
    let wait = |mut plan: EntryPlan, phase: Phase, why: String| {
        plan.phase = phase;
        plan.why = why;
        plan
    };
    if entry.suspend {
        return wait(plan, Phase::Suspended, "suspended: `suspend: true`".into());
    }
    let resolved = crate::users::resolve(&entry.hashes, entry.users, inputs.users.directory());
    let members = Known::of(&resolved);
    if let crate::users::Resolved::Hashes { hashes, .. } = &resolved {
        plan.hash_count = hashes.len();
    }
    let recurring = entry.trigger.is_recurring();
    let last = st.and_then(|s| s.last_outcome.as_ref());
    let same_content = |digest: &str| digest == entry.spec_digest;

    if let Some(run) = st.and_then(|s| s.run.as_ref()) {
        if dry_run {
            return wait(
                plan,
                Phase::Running,
                "an interrupted run waits to resume; dry run is on, so it does not".into(),
            );
        }
        let retry = st.is_some_and(|s| s.retrying.is_some());
        let spec = run_spec(
            entry, &members, st, settings, false, run.slot, now, retry, rule,
        );
        let resumable =
            spec.hashes_digest == run.hashes_digest && spec.batch_size == run.batch_size;
        let (spec, skipped) = if resumable {
            (spec, 0)
        } else {
            without_confirmed(run, run_list, entry.revision, spec)
        };
        plan.why = if resumable {
            format!(
                "resume interrupted run at batch {} of {}",
                run.next_batch + 1,
                run.batches
            )
        } else {
            format!(
                "restart interrupted run: its hashes or batch size changed since; \
                 {skipped} hash(es) it had confirmed are skipped"
            )
        };
        let spec = RunSpec {
            resume: resumable.then(|| run.clone()),
            ..spec
        };
        return into_action(plan, spec, &resolved, inputs);
    }

    // A run that failed for a passing reason, retried on its own.
    let auto = match (st, last) {
        (Some(st), Some(l)) if l.outcome == Outcome::Failed && same_content(&l.spec_digest) => {
            Some(auto_retry(st, &rule, inputs.token.as_deref(), now))
        }
        _ => None,
    };
    match &auto {
        Some(AutoRetry::Now(why)) => {
            let slot = if recurring {
                st.and_then(|s| s.last_slot)
            } else {
                None
            };
            // A recurring entry whose next slot is due runs for that slot
            // instead (below); its retry would be a second run.
            let slot_due = recurring
                && matches!(
                    schedule::due(
                        &entry.trigger,
                        slot,
                        st.map_or(now, |s| s.first_seen_at),
                        now
                    ),
                    Due::Now { .. }
                );
            // Under dry run a retry waits: it would only record a dry run
            // over the failure it is meant to recover from.
            if !dry_run && !slot_due && (!recurring || slot.is_some()) {
                let spec = run_spec(
                    entry, &members, st, settings, dry_run, slot, now, true, rule,
                );
                let skipped = members.hashes.len() - spec.hashes.len();
                plan.why = format!("{why}; {skipped} hash(es) already confirmed are skipped");
                plan.next_run_at = spec.next_run_at;
                return into_action(plan, spec, &resolved, inputs);
            }
        }
        Some(AutoRetry::At(t)) => plan.next_retry_at = Some(*t),
        _ => {}
    }

    if let Some(last) = last {
        let terminal = match last.outcome {
            Outcome::Expired if same_content(&last.spec_digest) => Some((
                Phase::Expired,
                "expired: first seen due after `notAfter`".to_owned(),
            )),
            Outcome::Succeeded if !recurring && last.revision == entry.revision => {
                if !same_content(&last.spec_digest) {
                    plan.warnings.push(format!(
                        "`{}` changed since it succeeded at revision {}, but revision was not \
                         bumped: it will not run again (bump `revision` to run it)",
                        entry.id, last.revision
                    ));
                }
                Some((
                    Phase::Succeeded,
                    format!("done: succeeded at revision {}", last.revision),
                ))
            }
            Outcome::Failed if !recurring && same_content(&last.spec_digest) => Some((
                Phase::Failed,
                match &auto {
                    Some(AutoRetry::At(t)) => format!(
                        "failed: retried on its own at {}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    Some(AutoRetry::No(why)) => {
                        format!("failed: {why}; change the entry or bump `revision`")
                    }
                    _ => "failed: its retry waits while dry run is on".to_owned(),
                },
            )),
            Outcome::DryRun if !recurring && dry_run && same_content(&last.spec_digest) => Some((
                Phase::DryRun,
                "dry run recorded; unchanged since".to_owned(),
            )),
            _ => None,
        };
        if let Some((phase, why)) = terminal {
            return wait(plan, phase, why);
        }
    }

    let first_seen = st.map_or(now, |s| s.first_seen_at);
    let last_slot = st.and_then(|s| s.last_slot);
    match schedule::due(&entry.trigger, last_slot, first_seen, now) {
        Due::Now { .. } if entry.not_after.is_some_and(|t| now > t) => {
            plan.action = Action::Expire;
            plan.phase = Phase::Expired;
            plan.why = format!(
                "due after `notAfter` ({}): marked Expired, not run",
                entry
                    .not_after
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            );
            plan
        }
        Due::Now { slot } => {
            let spec = run_spec(
                entry, &members, st, settings, dry_run, slot, now, false, rule,
            );
            plan.why = run_reason(entry, st, &spec, members.hashes.len());
            plan.next_run_at = spec.next_run_at;
            into_action(plan, spec, &resolved, inputs)
        }
        Due::At(t) => {
            plan.next_run_at = Some(t);
            let phase = match last {
                Some(l) if recurring => l.outcome.into(),
                _ => Phase::Scheduled,
            };
            wait(
                plan,
                phase,
                format!(
                    "scheduled for {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )
        }
        Due::Never => {
            let why = match entry.trigger {
                crate::config::Schedule::Every(_) => {
                    "the next run would fall past the last representable instant: never"
                }
                _ => "the cron expression never matches again",
            };
            wait(plan, Phase::Scheduled, why.into())
        }
    }
}

/// Whether and when a Failed entry (same content as its failed run) is
/// retried on its own.
enum AutoRetry {
    /// Now; says why.
    Now(String),
    At(DateTime<Utc>),
    /// Not on its own; says why.
    No(String),
}

fn auto_retry(
    st: &EntryStatus,
    rule: &RunRetry,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> AutoRetry {
    let Some(streak) = &st.retrying else {
        return AutoRetry::No(
            "the request itself was refused, so it is not retried on its own".into(),
        );
    };
    if !policy::retry_window_open(streak.since, now, rule) {
        return AutoRetry::No(format!(
            "retries stopped: `retryFailedFor` ({}) since the first failure, or `notAfter`, has passed",
            humantime::format_duration(rule.window)
        ));
    }
    let n = streak.retries.saturating_add(1);
    if let (Some(refused), Some(token)) = (&streak.refused_token, token)
        && refused != token
    {
        return AutoRetry::Now(format!(
            "retry {n}: the API refused the last token, and the token has changed since"
        ));
    }
    let failed_at = st.completed_at.unwrap_or(streak.since);
    match policy::next_retry(streak.since, streak.retries, failed_at, rule) {
        Some(at) if at <= now => AutoRetry::Now(format!(
            "retry {n}: the last run failed for a passing reason ({})",
            st.last_error.as_deref().unwrap_or("unknown error")
        )),
        Some(at) => AutoRetry::At(at),
        None => AutoRetry::No(format!(
            "retries stopped: the next one would fall past `retryFailedFor` ({}) or `notAfter`",
            humantime::format_duration(rule.window)
        )),
    }
}

/// The hashes an entry sends, as far as they are known.
struct Known {
    hashes: crate::config::Members,
    users: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    unresolved: usize,
}

impl Known {
    fn of(resolved: &crate::users::Resolved) -> Known {
        use crate::users::Resolved;
        match resolved {
            Resolved::Hashes { hashes, users } => Known {
                hashes: hashes.clone(),
                users: std::sync::Arc::clone(users),
                unresolved: 0,
            },
            Resolved::Unresolved { hashes, users } => Known {
                hashes: hashes.clone(),
                users: std::sync::Arc::default(),
                unresolved: *users,
            },
            Resolved::Unknown(_) => Known {
                hashes: crate::config::Members::default(),
                users: std::sync::Arc::default(),
                unresolved: 0,
            },
        }
    }
}

/// A run of `spec`, or its failure before any request when its users are
/// unknown or could not be looked up.
fn into_action(
    mut plan: EntryPlan,
    mut spec: RunSpec,
    resolved: &crate::users::Resolved,
    inputs: &Inputs,
) -> EntryPlan {
    spec.source_revision.clone_from(&inputs.source_revision);
    let failure = match (resolved, &inputs.users) {
        (crate::users::Resolved::Unknown(names), _) => Some((
            format!(
                "unknown user(s) {}: no sub-user of the account has that username (`resetd \
                 subusers` lists them)",
                names
                    .iter()
                    .map(|n| crate::diagnostic::quote(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            policy::Cause::Request,
        )),
        (crate::users::Resolved::Unresolved { .. }, Users::Failed(error)) if !spec.dry_run => {
            Some((
                format!("cannot look up its users: {error}"),
                policy::Cause::Passing,
            ))
        }
        _ => None,
    };
    if let Some((error, cause)) = failure {
        plan.why = format!("fails before sending: {error}");
        plan.phase = Phase::Failed;
        plan.action = Action::Fail {
            spec: Box::new(spec),
            error,
            cause,
        };
        return plan;
    }
    if spec.unresolved > 0 && spec.dry_run {
        plan.why = format!(
            "{}; {} user(s) left unresolved (their hashes are looked up only with a token)",
            plan.why, spec.unresolved
        );
    }
    plan.action = Action::Run(Box::new(spec));
    plan
}

#[allow(clippy::too_many_arguments)]
fn run_spec(
    entry: &Entry,
    members: &Known,
    st: Option<&EntryStatus>,
    settings: &Settings,
    dry_run: bool,
    slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    retry: bool,
    retry_rule: RunRetry,
) -> RunSpec {
    // Hashes confirmed by an earlier, failed run of the same revision (for a
    // recurring entry: of the same slot, i.e. by the run this one retries)
    // are not sent again.
    let confirmed_slot = if entry.trigger.is_recurring() {
        slot
    } else {
        None
    };
    let confirmed = st.map_or(&[][..], |s| s.confirmed_for(entry.revision, confirmed_slot));
    let hashes = if confirmed.is_empty() {
        members.hashes.clone()
    } else {
        let done: std::collections::HashSet<&str> = confirmed.iter().map(String::as_str).collect();
        crate::config::Members::one(
            members
                .hashes
                .iter()
                .filter(|h| !done.contains(h.as_str()))
                .cloned()
                .collect(),
        )
    };
    RunSpec {
        dry_run,
        request: Request::of(settings),
        slot,
        next_run_at: slot.and_then(|s| schedule::next_after(&entry.trigger, s, now)),
        hashes_digest: hashes_digest(hashes.iter()),
        hashes,
        batch_size: settings.batch_size,
        resume: None,
        retry,
        retry_rule,
        users: std::sync::Arc::clone(&members.users),
        unresolved: members.unresolved,
        source_revision: None,
    }
}

/// The hashes an interrupted run had confirmed are not sent again by the
/// run that replaces it (the entry was edited while resetd was down). They
/// are known from the run's recorded list; a status without one (written by
/// an older resetd) still knows them when the old list is a prefix of the new
/// one (only its digest is there to compare). Otherwise everything is sent:
/// a reset may repeat, never be lost. Returns the spec and how many were
/// skipped.
fn without_confirmed(
    run: &RunProgress,
    run_list: Option<&crate::status::RunHashes>,
    revision: u64,
    spec: RunSpec,
) -> (RunSpec, usize) {
    if run.revision != revision {
        return (spec, 0);
    }
    // The interrupted run's own list: recorded, or else (an older status)
    // the prefix of the new list that has the old list's digest.
    let all = spec.hashes.to_arc();
    let list = match (run_list, all.get(..run.hash_count)) {
        (Some(l), _) if l.started_at == run.started_at && l.hashes.len() == run.hash_count => {
            &l.hashes[..]
        }
        (_, Some(prefix)) if hashes_digest(prefix) == run.hashes_digest => prefix,
        _ => return (spec, 0),
    };
    let done: std::collections::HashSet<&str> =
        run.confirmed_in(list).map(String::as_str).collect();
    if done.is_empty() {
        return (spec, 0);
    }
    let hashes: Vec<String> = spec
        .hashes
        .iter()
        .filter(|h| !done.contains(h.as_str()))
        .cloned()
        .collect();
    let skipped = spec.hashes.len() - hashes.len();
    let spec = RunSpec {
        hashes_digest: hashes_digest(&hashes),
        hashes: crate::config::Members::one(hashes.into()),
        ..spec
    };
    (spec, skipped)
}

fn run_reason(entry: &Entry, st: Option<&EntryStatus>, spec: &RunSpec, all: usize) -> String {
    let verb = if spec.dry_run { "dry run" } else { "run" };
    let last = st.and_then(|s| s.last_outcome.as_ref());
    let skipped = all.saturating_sub(spec.hashes.len());
    match last {
        _ if entry.trigger.is_recurring() => match spec.slot {
            Some(slot) => format!(
                "{verb}: due for slot {}",
                slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!("{verb}: due"),
        },
        None => format!("{verb}: new entry"),
        Some(l) if l.revision != entry.revision => {
            format!("{verb}: revision bumped to {}", entry.revision)
        }
        Some(l) if l.outcome == Outcome::Failed => format!(
            "{verb}: changed since it failed; {skipped} hash(es) already confirmed are skipped"
        ),
        Some(l) if l.outcome == Outcome::DryRun => format!("{verb}: dry run is now off"),
        Some(_) => format!("{verb}: changed since last run"),
    }
}

impl Plan {
    /// Record this plan's decisions in `status` (`Status::settle`); true
    /// when anything changed.
    pub fn settle(&self, status: &mut Status) -> bool {
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
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
