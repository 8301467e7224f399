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
                "nextRetryAt": e.next_retry_at,
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
            // A Failed entry retried on its own runs next at its retry.
            time(st.next_due()),
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

/// `plan --resolve`: who each hash of each entry belongs to. Usernames come
/// from the API: they are escaped before they reach a terminal or a PR.
pub struct Owners {
    entries: Vec<EntryOwners>,
}

struct EntryOwners {
    id: String,
    hashes: Vec<(String, Owner)>,
    /// Usernames in `users:` that no sub-user has.
    unknown_users: Vec<String>,
}

enum Owner {
    SubUser(String),
    Account,
    Unknown,
}

impl Owner {
    fn kind(&self) -> &'static str {
        match self {
            Owner::SubUser(_) => "subuser",
            Owner::Account => "account",
            Owner::Unknown => "unknown",
        }
    }

    fn shown(&self) -> String {
        match self {
            Owner::SubUser(name) => crate::diagnostic::sanitize(name, 200, false),
            Owner::Account => "the account itself".into(),
            Owner::Unknown => "UNKNOWN: neither a sub-user nor the account's own hash".into(),
        }
    }
}

impl Owners {
    /// Every entry of `config` that is not suspended, in config order.
    pub fn of(
        config: &crate::config::Config,
        plan: &Plan,
        directory: &crate::users::Directory,
    ) -> Owners {
        use crate::users::{Resolved, resolve};
        let entries = config
            .resets
            .iter()
            .zip(&plan.entries)
            .filter(|(entry, _)| !entry.suspend)
            .map(|(entry, _)| {
                let (hashes, unknown_users) =
                    match resolve(&entry.hashes, entry.users, Some(directory)) {
                        Resolved::Hashes { hashes, .. } => (hashes.to_vec(), Vec::new()),
                        Resolved::Unknown(names) => (
                            entry
                                .hashes
                                .iter()
                                .filter(|m| crate::config::member_user(m).is_none())
                                .cloned()
                                .collect(),
                            names,
                        ),
                        Resolved::Unresolved { hashes, .. } => (hashes.to_vec(), Vec::new()),
                    };
                let hashes = hashes
                    .into_iter()
                    .map(|hash| {
                        let owner = match directory.owner_of(&hash) {
                            crate::users::Owner::SubUser(name) => Owner::SubUser(name.to_owned()),
                            crate::users::Owner::Account => Owner::Account,
                            crate::users::Owner::Unknown => Owner::Unknown,
                        };
                        (hash, owner)
                    })
                    .collect();
                EntryOwners {
                    id: entry.id.clone(),
                    hashes,
                    unknown_users,
                }
            })
            .collect();
        Owners { entries }
    }

    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.entries {
            for (hash, owner) in &e.hashes {
                if matches!(owner, Owner::Unknown) {
                    out.push(format!(
                        "`{}`: hash `{hash}` is neither a sub-user nor the account's own: check it",
                        e.id
                    ));
                }
            }
            for name in &e.unknown_users {
                out.push(format!(
                    "`{}`: no sub-user is called {}",
                    e.id,
                    crate::diagnostic::quote(name)
                ));
            }
        }
        out
    }

    pub fn human(&self) -> String {
        let mut out = String::from("\nWho the hashes belong to (the account's sub-users):\n");
        for e in &self.entries {
            let _ = writeln!(out, "  {}:", e.id);
            for (hash, owner) in &e.hashes {
                let _ = writeln!(out, "    {hash}  {}", owner.shown());
            }
        }
        for w in self.warnings() {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("\n#### Who the hashes belong to\n\n");
        let warnings = self.warnings();
        for w in &warnings {
            let _ = writeln!(out, "> **Warning:** {}", escape_cell(w));
        }
        if !warnings.is_empty() {
            out.push('\n');
        }
        for e in &self.entries {
            let unknown = e
                .hashes
                .iter()
                .filter(|(_, o)| matches!(o, Owner::Unknown))
                .count();
            let _ = writeln!(
                out,
                "<details><summary><code>{}</code>: {} hash(es), {unknown} unknown</summary>\n\n\
                 | hash | belongs to |\n| --- | --- |",
                e.id,
                e.hashes.len()
            );
            for (hash, owner) in &e.hashes {
                let _ = writeln!(
                    out,
                    "| `{hash}` | {} |",
                    escape_cell(&owner.shown()).replace('`', "'")
                );
            }
            out.push_str("\n</details>\n\n");
        }
        out
    }

    /// Adds `owners` to each planned entry, and `unknownHashes` (a count)
    /// and `ownerWarnings` at the top.
    pub fn add_to_json(&self, value: &mut Value) {
        let warnings = self.warnings();
        let unknown: usize = self
            .entries
            .iter()
            .map(|e| {
                e.hashes
                    .iter()
                    .filter(|(_, o)| matches!(o, Owner::Unknown))
                    .count()
            })
            .sum();
        let by_id: std::collections::HashMap<&str, &EntryOwners> =
            self.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        if let Some(entries) = value.get_mut("entries").and_then(Value::as_array_mut) {
            for entry in entries {
                let id = entry.get("id").and_then(Value::as_str).unwrap_or_default();
                let Some(owners) = by_id.get(id).copied() else {
                    continue;
                };
                let list: Vec<Value> = owners
                    .hashes
                    .iter()
                    .map(|(hash, owner)| {
                        json!({
                            "hash": hash,
                            "kind": owner.kind(),
                            "user": match owner {
                                Owner::SubUser(name) => Some(name.as_str()),
                                _ => None,
                            },
                        })
                    })
                    .collect();
                entry["owners"] = Value::Array(list);
                entry["unknownUsers"] = json!(owners.unknown_users);
            }
        }
        value["unknownHashes"] = json!(unknown);
        value["ownerWarnings"] = json!(warnings);
    }
}
