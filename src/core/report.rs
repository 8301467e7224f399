//! Text renderings of plans and status for people and PR comments. Pure.
//!
//! `plan` shows what each run sends and where each hash came from
//! (`send`): every hash in JSON (`json`, written out as it is made), counts
//! by source in human and markdown output, and in markdown the hashes of
//! short runs in a collapsed block. `owners`: who each hash belongs to, for
//! `plan --resolve`.

mod json;
mod owners;
mod send;

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

pub use json::write_plan as write_plan_json;
pub use owners::Owners;
pub use send::{Counts, Sent, Source};

use crate::config::{Config, Origin};
use crate::plan::{Action, Plan};
use crate::status::Status;

/// The longest run whose hashes the markdown plan lists (collapsed): a PR
/// comment stays readable, and `--format json` lists every hash of any run.
pub const MARKDOWN_LIST_MAX: usize = 20;

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
    /// The shared status of an HA group, read from etcd (`--etcd`).
    Etcd,
}

impl StatusSource {
    /// The JSON `statusSource`: `null` when there was none.
    fn json_name(self) -> Option<&'static str> {
        match self {
            StatusSource::File => Some("file"),
            StatusSource::Daemon => Some("daemon"),
            StatusSource::Etcd => Some("etcd"),
            StatusSource::Empty => None,
        }
    }

    pub fn notice(self) -> Option<&'static str> {
        (self == StatusSource::Empty).then_some(EMPTY_STATUS_NOTICE)
    }
}

/// `(label, hashes to send, batches)` of one planned entry: for a resumed
/// run, the hashes and batches still to send.
fn action_summary(action: &Action) -> (&'static str, usize, usize) {
    match action {
        Action::Run(spec) if spec.dry_run => ("dry-run", spec.hashes.len(), spec.batches()),
        Action::Run(spec) => (
            "run",
            spec.hashes.len() - send::first_sent(spec),
            spec.remaining_batches(),
        ),
        Action::Fail { .. } => ("fail", 0, 0),
        Action::Expire => ("expire", 0, 0),
        Action::Wait => ("wait", 0, 0),
    }
}

/// Each planned entry with its entry of the config, and what its run sends
/// (`None` when this plan does not run it). Made one entry at a time: a
/// run's labelled list lives only while it is shown.
fn with_sent<'a>(
    config: &'a Config,
    plan: &'a Plan,
) -> impl Iterator<Item = (&'a crate::plan::EntryPlan, Option<Sent<'a>>)> {
    // The planner plans every entry of the config, in its order.
    config
        .resets
        .iter()
        .zip(&plan.entries)
        .map(|(entry, planned)| {
            let sent = match &planned.action {
                Action::Run(spec) => Some(Sent::of(entry, spec)),
                _ => None,
            };
            (planned, sent)
        })
}

/// `plan_human` for `plan`, which also says when it had no status to plan
/// against, and where the hashes each run sends come from. (`run --once`
/// plans against its own status file, always.)
pub fn plan_human_against(config: &Config, plan: &Plan, source: StatusSource) -> String {
    let mut out = String::new();
    if let Some(notice) = source.notice() {
        let _ = writeln!(
            out,
            "NOTE: planned {notice} (no status file beside the config; give --status PATH or \
             --status-url URL)"
        );
    }
    let lines = with_sent(config, plan).map(|(e, sent)| {
        let by_source = sent.map(|s| human_counts(s.counts()));
        (e, by_source)
    });
    out + &human(plan, lines)
}

pub fn plan_human(plan: &Plan) -> String {
    human(plan, plan.entries.iter().map(|e| (e, None)))
}

/// `: 2 from groups, 1 own, 1 user(s) not looked up` (the sources that
/// add any).
fn human_counts(counts: &Counts) -> String {
    counts_by_source(counts, "from groups".to_owned())
}

/// `: 6 from groups, 1 own, …` (the sources with hashes only), the groups
/// named as `groups` says.
fn counts_by_source(c: &Counts, groups: String) -> String {
    let parts: Vec<String> = [
        (c.groups, groups),
        (c.hashes, "own".to_owned()),
        (c.users, "from users".to_owned()),
        (c.unresolved_users, "user(s) not looked up".to_owned()),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

/// The human plan: one line per entry, `by_source` after its hash count.
fn human<'a>(
    plan: &'a Plan,
    lines: impl Iterator<Item = (&'a crate::plan::EntryPlan, Option<String>)>,
) -> String {
    let mut out = String::new();
    let width = plan.entries.iter().map(|e| e.id.len()).max().unwrap_or(0);
    for (e, by_source) in lines {
        let (action, send, batches) = action_summary(&e.action);
        let counts = if send > 0 || matches!(e.action, Action::Run(_)) {
            match by_source.filter(|b| !b.is_empty()) {
                Some(by_source) => format!(" ({send} hash(es){by_source}; {batches} request(s))"),
                None => format!(" ({send} hash(es), {batches} request(s))"),
            }
        } else {
            String::new()
        };
        let file = e
            .source
            .as_ref()
            .map(|s| format!("({}) ", shown_source(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8} {:<width$}  {file}{}{counts}",
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
    let count = |f: fn(&Action) -> bool| plan.entries.iter().filter(|e| f(&e.action)).count();
    let fail = count(|a| matches!(a, Action::Fail { .. }));
    let expire = count(|a| matches!(a, Action::Expire));
    let waiting = count(|a| matches!(a, Action::Wait));
    let mut summary = format!("{runs} to run, {dry} dry run(s)");
    if fail > 0 {
        summary.push_str(&format!(", {fail} failing before sending"));
    }
    if expire > 0 {
        summary.push_str(&format!(", {expire} expiring"));
    }
    let _ = writeln!(
        out,
        "{summary}, {waiting} waiting, at {}",
        time(Some(plan.now))
    );
    out
}

/// A table fit for a pull-request comment, then what each run sends: its
/// hashes by source, and the hashes themselves (collapsed) for runs of at
/// most `MARKDOWN_LIST_MAX`.
pub fn plan_markdown(config: &Config, plan: &Plan, source: StatusSource) -> String {
    let mut out = String::from("### resetd plan\n\n");
    if let Some(notice) = source.notice() {
        let _ = writeln!(
            out,
            "> **Note:** planned {notice}. Edits of entries that already ran cannot be \
             flagged here.\n"
        );
    }
    const TABLE_HEAD: &str = "| entry | action | hashes | requests | sent from groups / own / \
                              users | next run | why |\n\
                              | --- | --- | ---: | ---: | ---: | --- | --- |\n";
    // A config directory's plan has a table per file, in the config's
    // order (entries come file by file): each team reviews its own part.
    let by_file = plan.entries.iter().any(|e| e.source.is_some());
    if !by_file {
        out.push_str(TABLE_HEAD);
    }
    let mut file: Option<&str> = None;
    // What will be sent, below the table; made while the rows are.
    let mut sends = String::new();
    for (e, sent) in with_sent(config, plan) {
        if by_file && (file.is_none() || file != e.source.as_deref()) {
            file = Some(e.source.as_deref().unwrap_or("-"));
            let _ = write!(
                out,
                "{}#### `{}`\n\n{TABLE_HEAD}",
                if out.ends_with("|\n") { "\n" } else { "" },
                shown_source(file.unwrap_or("-")).replace('`', "'")
            );
        }
        // The hashes column is the entry's size, whatever this plan does with
        // it; what a run sends now is in its requests and why.
        let (action, _, batches) = action_summary(&e.action);
        let by_source = match &sent {
            Some(sent) => {
                let c = sent.counts();
                let unresolved = match c.unresolved_users {
                    0 => String::new(),
                    n => format!(" + {n} user(s) not looked up"),
                };
                format!("{} / {} / {}{unresolved}", c.groups, c.hashes, c.users)
            }
            None => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}` | **{action}** | {} | {batches} | {by_source} | {} | {} |",
            e.id,
            e.hash_count,
            time(e.next_run_at),
            escape_cell(&e.why)
        );
        if let Some(sent) = &sent {
            markdown_sent(&mut sends, &e.id, action, sent);
        }
    }
    if by_file && !plan.orphans.is_empty() {
        let _ = write!(out, "\n#### Removed from the config\n\n{TABLE_HEAD}");
    }
    for id in &plan.orphans {
        // The config no longer says how many hashes an orphan had.
        let _ = writeln!(
            out,
            "| `{id}` | orphan | - | 0 | - | - | removed from the config: never runs again |"
        );
    }
    if !sends.is_empty() {
        out.push_str("\n#### What will be sent\n\n");
        out.push_str(sends.trim_end());
        out.push('\n');
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
        StatusSource::Etcd => "the shared status in etcd",
        StatusSource::Empty => "an empty status",
    };
    let _ = writeln!(
        out,
        "\n_Planned at {} against {against}; nothing has been sent._",
        time(Some(plan.now))
    );
    out
}

/// One run of the markdown plan's "What will be sent": its counts by
/// source; its hashes, collapsed, when there are at most
/// `MARKDOWN_LIST_MAX` (users not looked up included).
fn markdown_sent(out: &mut String, id: &str, action: &str, sent: &Sent<'_>) {
    let hashes = sent.hashes().len();
    let what = if action == "dry-run" {
        "dry run: recorded, not sent"
    } else {
        action
    };
    let headline = format!(
        "<code>{id}</code> ({what}): {hashes} hash(es){}",
        markdown_counts(sent)
    );
    let rows = hashes + sent.unresolved().len();
    if rows > MARKDOWN_LIST_MAX {
        let _ = writeln!(
            out,
            "{headline}. More than {MARKDOWN_LIST_MAX}, so not listed here: `resetd plan \
             --format json` lists every hash, in order, with its source.\n"
        );
        return;
    }
    if rows == 0 {
        let _ = writeln!(out, "{headline}.\n");
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>{headline}</summary>\n\n| # | hash | from |\n| ---: | --- | --- |"
    );
    let mut n = 0;
    for (from, hashes) in sent.segments() {
        let from = from.map_or_else(|| "-".to_owned(), markdown_source);
        for hash in hashes {
            n += 1;
            let _ = writeln!(out, "| {n} | `{hash}` | {from} |");
        }
    }
    for user in sent.unresolved() {
        let _ = writeln!(
            out,
            "| | not looked up (`plan --resolve` does) | {} |",
            markdown_source(*user)
        );
    }
    out.push_str("\n</details>\n\n");
}

/// `: 2 from groups (<code>eu</code> 2), 1 own, 1 from users` (the sources
/// that add any; each group once, by name).
fn markdown_counts(sent: &Sent<'_>) -> String {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for &(name, n) in sent.by_group() {
        match groups.iter_mut().find(|(g, _)| *g == name) {
            Some((_, total)) => *total += n,
            None => groups.push((name, n)),
        }
    }
    let groups = groups
        .iter()
        .map(|(name, n)| format!("<code>{name}</code> {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    counts_by_source(sent.counts(), format!("from groups ({groups})"))
}

/// A source in a markdown cell: ``group `eu`, user `bob` ``. A username is
/// any text but whitespace: escaped, and kept in one code span.
fn markdown_source(from: Source<'_>) -> String {
    let user = from.user.map(|name| {
        let name = crate::diagnostic::sanitize(name, 200, false).replace('`', "'");
        format!("user `{}`", escape_cell(&name))
    });
    let part = match from.origin {
        Origin::Group(name) => Some(format!("group `{name}`")),
        Origin::Hashes => Some("own `hashes`".to_owned()),
        // The user says it all.
        Origin::Users => None,
    };
    part.into_iter().chain(user).collect::<Vec<_>>().join(", ")
}

/// A file name as plans show it: a file name may hold any byte but `/` and
/// NUL, so control characters are escaped (never reaching a terminal or
/// breaking a markdown heading) and its length bounded.
fn shown_source(source: &str) -> String {
    crate::diagnostic::sanitize(source, 200, false)
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
