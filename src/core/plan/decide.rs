//! One entry's decision: what to do with it now, and when it is next due
//! (`decide`); which hashes its run sends (`run_spec`, and
//! `without_confirmed` for an interrupted run whose list changed).

use chrono::{DateTime, Utc};

use super::{Action, EntryPlan, Inputs, Request, RunSpec, Users, hashes_digest};
use crate::config::{Entry, Settings};
use crate::policy::{self, RunRetry};
use crate::schedule::{self, Due};
use crate::status::{EntryStatus, Outcome, Phase, RunProgress};

pub(super) fn decide(
    entry: &Entry,
    st: Option<&EntryStatus>,
    run_list: Option<&crate::status::RunHashes>,
    settings: &Settings,
    inputs: &Inputs,
    at: &schedule::DueAt,
) -> EntryPlan {
    let now = at.now();
    let dry_run = inputs.cli_dry_run || settings.dry_run || entry.dry_run;
    let rule = RunRetry {
        backoff: inputs.retry_backoff,
        window: settings.retry_failed_for,
        not_after: entry.not_after,
    };
    let mut plan = EntryPlan {
        id: entry.id.clone(),
        source: entry.source.clone(),
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
                    at.due(&entry.trigger, slot, st.map_or(now, |s| s.first_seen_at)),
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
    match at.due(&entry.trigger, last_slot, first_seen) {
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
