//! Text renderings of plans and status for people and PR comments. Pure.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::plan::{Action, Plan};
use crate::status::Status;

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// What `plan` said when it had no status to plan against (SPEC §4).
pub const EMPTY_STATUS_NOTICE: &str =
    "against an empty status: entries that already ran would show as new";

/// What a plan was made against. `plan` shows it in every format, because a
/// plan made against no status shows entries that already ran as new, and
/// a reviewer reading a PR comment cannot tell otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// A status file: `--status`, or the one beside the config.
    File,
    /// A running daemon's `/status` (`--status-url`).
    Daemon,
    /// No status at all: the status file beside the config does not exist.
    Empty,
}

impl StatusSource {
    /// The JSON `statusSource`: `null` when there was none.
    fn json_name(self) -> Option<&'static str> {
        match self {
            StatusSource::File => Some("file"),
            StatusSource::Daemon => Some("daemon"),
            StatusSource::Empty => None,
        }
    }

    pub fn notice(self) -> Option<&'static str> {
        (self == StatusSource::Empty).then_some(EMPTY_STATUS_NOTICE)
    }
}

/// `(label, hashes to send, batches)` of one planned entry.
fn action_summary(action: &Action) -> (&'static str, usize, usize) {
    match action {
        Action::Run(spec) if spec.dry_run => ("dry-run", spec.hashes.len(), spec.batches()),
        Action::Run(spec) => ("run", spec.hashes.len(), spec.remaining_batches()),
        Action::Fail { .. } => ("fail", 0, 0),
        Action::Expire => ("expire", 0, 0),
        Action::Wait => ("wait", 0, 0),
    }
}

pub fn plan_json(plan: &Plan, source: StatusSource) -> Value {
    let entries: Vec<Value> = plan
        .entries
        .iter()
        .map(|e| {
            let (action, send, batches) = action_summary(&e.action);
            json!({
                "id": e.id,
                "action": action,
                "phase": e.phase,
                "why": e.why,
                "hashCount": e.hash_count,
                "hashesToSend": send,
                "batches": batches,
                "nextRunAt": e.next_run_at,
                "warnings": e.warnings,
            })
        })
        .collect();
    json!({
        "now": plan.now,
        "statusSource": source.json_name(),
        "notice": source.notice(),
        "entries": entries,
        "orphans": plan.orphans,
    })
}

/// `plan_human` for `plan`, which also says when it had no status to plan
/// against. (`run --once` plans against its own status file, always.)
pub fn plan_human_against(plan: &Plan, source: StatusSource) -> String {
    let mut out = String::new();
    if let Some(notice) = source.notice() {
        let _ = writeln!(
            out,
            "NOTE: planned {notice} (no status file beside the config; give --status PATH or \
             --status-url URL)"
        );
    }
    out + &plan_human(plan)
}

pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let width = plan.entries.iter().map(|e| e.id.len()).max().unwrap_or(0);
    for e in &plan.entries {
        let (action, send, batches) = action_summary(&e.action);
        let counts = if send > 0 || matches!(e.action, Action::Run(_)) {
            format!(" ({send} hash(es), {batches} request(s))")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<8} {:<width$}  {}{counts}",
            action.to_uppercase(),
            e.id,
            e.why
        );
        for w in &e.warnings {
            let _ = writeln!(out, "         warning: {w}");
        }
    }
    for id in &plan.orphans {
        let _ = writeln!(
            out,
            "{:<8} {id:<width$}  removed from the config: never runs again",
            "ORPHAN"
        );
    }
    let runs = plan.runs().filter(|(_, s)| !s.dry_run).count();
    let dry = plan.runs().filter(|(_, s)| s.dry_run).count();
    let _ = writeln!(
        out,
        "{runs} to run, {dry} dry run(s), {} waiting, at {}",
        plan.entries.len() - runs - dry,
        time(Some(plan.now))
    );
    out
}

/// A table fit for a pull-request comment.
pub fn plan_markdown(plan: &Plan, source: StatusSource) -> String {
    let mut out = String::from("### resetd plan\n\n");
    if let Some(notice) = source.notice() {
        let _ = writeln!(
            out,
            "> **Note:** planned {notice}. Edits of entries that already ran cannot be \
             flagged here.\n"
        );
    }
    out.push_str(
        "| entry | action | hashes | requests | next run | why |\n| --- | --- | ---: | ---: | --- | --- |\n",
    );
    for e in &plan.entries {
        // The hashes column is the entry's size, whatever this plan does with
        // it; what a run sends now is in its requests and why.
        let (action, _, batches) = action_summary(&e.action);
        let _ = writeln!(
            out,
            "| `{}` | **{action}** | {} | {batches} | {} | {} |",
            e.id,
            e.hash_count,
            time(e.next_run_at),
            escape_cell(&e.why)
        );
    }
    for id in &plan.orphans {
        // The config no longer says how many hashes an orphan had.
        let _ = writeln!(
            out,
            "| `{id}` | orphan | - | 0 | - | removed from the config: never runs again |"
        );
    }
    let warnings: Vec<&String> = plan.entries.iter().flat_map(|e| &e.warnings).collect();
    if !warnings.is_empty() {
        out.push_str("\n**Warnings**\n\n");
        for w in warnings {
            let _ = writeln!(out, "- {}", escape_cell(w));
        }
    }
    let against = match source {
        StatusSource::File => "the status file",
        StatusSource::Daemon => "a running daemon's status",
        StatusSource::Empty => "an empty status",
    };
    let _ = writeln!(
        out,
        "\n_Planned at {} against {against}; nothing has been sent._",
        time(Some(plan.now))
    );
    out
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn status_human(status: &Status) -> String {
    let mut out = String::new();
    let width = status
        .resets
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(2)
        .max(2);
    let _ = writeln!(
        out,
        "{:<width$}  {:<9}  {:>3}  {:>7}  {:<20}  {:<20}  LAST ERROR",
        "ID", "PHASE", "REV", "HASHES", "LAST RUN", "NEXT RUN"
    );
    for (id, st) in &status.resets {
        let phase = format!("{:?}{}", st.phase, if st.orphaned { "*" } else { "" });
        let _ = writeln!(
            out,
            "{id:<width$}  {phase:<9}  {:>3}  {:>7}  {:<20}  {:<20}  {}",
            st.revision,
            st.hash_count,
            time(st.last_run_at),
            time(st.next_run_at),
            st.last_error.as_deref().unwrap_or("-")
        );
    }
    if status.resets.values().any(|s| s.orphaned) {
        out.push_str("* orphaned: removed from the config, never runs again\n");
    }
    out
}

/// Sub-users as an aligned two-column table. Names and hashes come from a
/// server: control characters are escaped, so none reaches the terminal.
pub fn subusers_table(users: &[crate::users::SubUser]) -> String {
    let shown = |text: &str| crate::diagnostic::sanitize(text, 200, false);
    let rows: Vec<(String, String)> = users
        .iter()
        .map(|u| (shown(&u.username), shown(&u.hash)))
        .collect();
    let width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        .max("USERNAME".len());
    let mut out = format!("{:width$}  HASH\n", "USERNAME");
    for (name, hash) in &rows {
        out.push_str(&format!("{name:width$}  {hash}\n"));
    }
    out.push_str(&format!("{} sub-user(s)\n", users.len()));
    out
}
