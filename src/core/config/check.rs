//! Semantic checks the schema cannot express, and building the `Config`.
//!
//! Runs even when the schema found errors, so that one run reports every
//! independent problem: a part (the settings, a group, an entry) that does
//! not deserialize is read again without the fields the schema refused, and
//! its other fields are checked as usual (a duplicate `id` is reported even
//! when the entry also has a typo). What follows from a refused field is not
//! reported again: such a part is not checked for "resolves to no hashes".

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Members;
use super::groups::{Resolver, check_groups};
use super::hashes::HashLists;
use super::part::{at, key, part, part_fixed};
use super::report::Report;
use super::types::{self, Trigger};
use super::{Entry, Origin, Part, Schedule, Settings};
use crate::yaml::Seg;

/// Parse a duration field and hold it to its documented range. `name` is the
/// field as the user wrote it, for the message.
fn parse_duration(
    text: &str,
    name: &str,
    range: types::DurationRange,
    path: &[Seg],
    report: &mut Report,
) -> Option<std::time::Duration> {
    let allowed = format!(
        "allowed: {} to {}",
        types::short_duration(range.min),
        types::short_duration(range.max)
    );
    match humantime::parse_duration(text.trim()) {
        Ok(d) if range.contains(d) => Some(d),
        Ok(d) if d.is_zero() => {
            report.error(
                path,
                format!("`{name}` must be greater than zero ({allowed})"),
            );
            None
        }
        Ok(d) if d < range.min => {
            report.error(
                path,
                format!(
                    "`{name}` must be at least {} ({allowed})",
                    types::short_duration(range.min)
                ),
            );
            None
        }
        // Too large, or too large for humantime to even represent.
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
            report.error(
                path,
                format!(
                    "`{name}` must be at most {} ({allowed})",
                    types::short_duration(range.max)
                ),
            );
            None
        }
        Err(e) => {
            report.error(
                path,
                format!("invalid duration `{text}`: {e} (examples: 30s, 5m, 6h, 1h 30m)"),
            );
            None
        }
    }
}

/// Hold an `at` or `notAfter` instant to [`types::INSTANTS`].
fn check_instant(t: DateTime<Utc>, name: &str, path: &[Seg], report: &mut Report) -> bool {
    let range = types::INSTANTS;
    if range.contains(t) {
        return true;
    }
    report.error(
        path,
        format!(
            "`{name}` must be between {} and {} (in UTC)",
            range.min(),
            range.max()
        ),
    );
    false
}

/// Names of the properties the schema types as integers.
fn integer_properties() -> &'static HashSet<String> {
    static NAMES: OnceLock<HashSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashSet::new();
        collect_integer_properties(&crate::schema::value(), &mut names);
        names
    })
}

fn collect_integer_properties(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, schema) in props {
                    if schema.get("type").and_then(Value::as_str) == Some("integer") {
                        out.insert(name.clone());
                    }
                }
            }
            map.values()
                .for_each(|child| collect_integer_properties(child, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|child| collect_integer_properties(child, out)),
        _ => {}
    }
}

/// JSON Schema counts `10.0` and `1e1` as integers, serde does not: without
/// this check such a file would pass `validate` and then be refused by `run`
/// without a word. Values the schema already reported are left alone.
fn integers_only(map: Option<&Value>, path: &[Seg], report: &mut Report) {
    let Some(Value::Object(map)) = map else {
        return;
    };
    for (name, value) in map {
        if let Value::Number(n) = value
            && !(n.is_u64() || n.is_i64())
            && integer_properties().contains(name)
        {
            let here = at(path, key(name));
            if !report.has_error_at(&here) {
                report.error(
                    &here,
                    format!(
                        "`{name}` must be written as an integer, without a fraction or exponent"
                    ),
                );
            }
        }
    }
}

/// Parse a 5-field UTC cron expression.
pub fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron expression `{text}` has {fields} fields; expected 5 (minute hour day-of-month month day-of-week)"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("invalid cron expression `{text}`: {e}"))
}

/// Run every semantic check; returns the settings and entries when every part
/// deserialized (the caller still discards them if any error was reported).
/// `lists`: the hash lists read beside `doc`. `build`: false when only the
/// diagnostics are wanted (`validate`): resolved entries are then not kept,
/// which matters for files of a million hashes.
pub fn semantic(
    doc: Value,
    lists: &mut HashLists,
    now: DateTime<Utc>,
    build: bool,
    report: &mut Report,
) -> Option<(Settings, Vec<Entry>, Vec<types::Notification>)> {
    let mut complete = true;
    let mut doc = match doc {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    integers_only(doc.get("settings"), &[key("settings")], report);
    let settings = match doc.remove("settings") {
        None => Some(types::Settings::default()),
        Some(v) => part::<types::Settings>(v, &[key("settings")], report).map(|(s, clean)| {
            complete &= clean;
            s
        }),
    };
    let settings = settings.and_then(|s| settings_of(&s, report));
    complete &= settings.is_some();

    let notifications = super::notifications::check(doc.remove("notifications"), report);
    complete &= notifications.is_some();
    let groups = check_groups(doc.remove("groups"), lists, report);
    let mut resolver = Resolver::new(&groups.parsed);
    let mut used_groups: HashSet<String> = HashSet::new();
    let mut first_line_of_id: HashMap<String, u32> = HashMap::new();
    // Generated files repeat a few expressions thousands of times.
    let mut crons: HashMap<String, Result<croner::Cron, String>> = HashMap::new();
    let mut entries = Vec::new();
    let resets = match doc.remove("resets") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (i, raw) in resets.into_iter().enumerate() {
        let path = vec![key("resets"), Seg::Index(i)];
        integers_only(Some(&raw), &path, report);
        let own = lists.take(&at(&path, key("hashes"))).unwrap_or_default();
        // An entry without a usable id is still checked for the rest; a
        // string id (even one of the wrong shape) must also be unique.
        let id = raw.get("id").and_then(Value::as_str).map(str::to_owned);
        let has_id = id.is_some();
        let fix = |map: &mut serde_json::Map<String, Value>| {
            map.insert("id".into(), Value::String(id.unwrap_or_default()));
        };
        let Some((reset, clean)) = part_fixed::<types::Reset>(raw, &path, report, fix) else {
            complete = false;
            continue;
        };
        complete &= clean;
        match first_line_of_id.get(&reset.id.0) {
            _ if !has_id => {}
            Some(line) => report.error(
                &at(&path, key("id")),
                format!("duplicate id `{}` (first used on line {line})", reset.id),
            ),
            None => {
                let line = report.line_of(&at(&path, key("id")));
                first_line_of_id.insert(reset.id.0.clone(), line);
            }
        }
        let mut resolvable = clean;
        let mut listed = HashSet::new();
        for (k, g) in reset.groups.iter().enumerate() {
            let here = [path.clone(), vec![key("groups"), Seg::Index(k)]].concat();
            if !groups.names.contains(&g.0) {
                report.error(&here, format!("unknown group `{g}`"));
                resolvable = false;
            } else if !listed.insert(g.0.as_str()) {
                report.warning(&here, format!("group `{g}` is listed twice"));
            }
            resolvable &= !groups.tainted.contains(&g.0);
            used_groups.insert(g.0.clone());
        }

        let trigger_path = at(&path, key("trigger"));
        let schedule = match &reset.trigger {
            Trigger::Immediate => Some(Schedule::Immediate),
            Trigger::At(t) => {
                let here = at(&trigger_path, key("at"));
                let in_range = check_instant(*t, "at", &here, report);
                if in_range && *t < now && reset.not_after.is_none() {
                    report.warning(
                        &here,
                        format!("`at` {t} is in the past: the entry runs as soon as it is merged"),
                    );
                }
                in_range.then_some(Schedule::At(*t))
            }
            Trigger::Cron(expr) => match crons
                .entry(expr.0.clone())
                .or_insert_with(|| parse_cron(&expr.0))
                .clone()
            {
                Ok(cron) => Some(Schedule::Cron(Box::new(cron))),
                Err(message) => {
                    report.error(&at(&trigger_path, key("cron")), message);
                    None
                }
            },
            Trigger::Every(d) => parse_duration(
                &d.0,
                "every",
                types::EVERY,
                &at(&trigger_path, key("every")),
                report,
            )
            .map(Schedule::Every),
        };
        let not_after_ok = reset
            .not_after
            .is_none_or(|t| check_instant(t, "notAfter", &at(&path, key("notAfter")), report));
        if let (Some(not_after), Trigger::At(t)) = (reset.not_after, &reset.trigger)
            && not_after < *t
        {
            report.warning(
                &at(&path, key("notAfter")),
                "`notAfter` is before `at`: the entry can only ever be Expired",
            );
        }

        // Its users come last, each once.
        let mut named = HashSet::new();
        for (k, user) in reset.users.iter().enumerate() {
            if !named.insert(user.0.as_str()) {
                report.warning(
                    &[path.clone(), vec![key("users"), Seg::Index(k)]].concat(),
                    format!("user `{}` is listed twice", user.0),
                );
            }
        }
        let empty = own.len == 0
            && reset.users.is_empty()
            && !reset.groups.iter().any(|g| resolver.nonempty(&g.0));
        if empty && resolvable {
            report.error(
                &path,
                format!(
                    "reset `{}` resolves to no hashes: add `groups`, `hashes` or `users`",
                    reset.id
                ),
            );
        }
        let (Some(schedule), true) = (schedule, not_after_ok) else {
            complete = false;
            continue;
        };
        if !build {
            // `validate` keeps no entries: only the diagnostics mattered.
            continue;
        }
        let (hashes, parts) = entry_hashes(&reset, own.hashes, &mut resolver);
        let user_count = hashes
            .iter()
            .filter(|m| super::member_user(m).is_some())
            .count();
        entries.push(Entry {
            spec_digest: spec_digest(&reset, &hashes),
            id: reset.id.0,
            description: reset.description,
            users: user_count,
            hashes,
            parts,
            trigger: schedule,
            revision: reset.revision,
            not_after: reset.not_after,
            suspend: reset.suspend,
            dry_run: reset.dry_run,
        });
    }
    // One set of included names: asking each group "is anyone including
    // you?" was quadratic in the number of groups.
    let included: HashSet<&str> = groups
        .parsed
        .values()
        .flat_map(|g| g.include.iter().map(|i| i.0.as_str()))
        .collect();
    for name in groups.parsed.keys() {
        if !used_groups.contains(name) && !included.contains(name.as_str()) {
            report.warning(
                &[key("groups"), key(name)],
                format!("group `{name}` is not used by any reset"),
            );
        }
    }
    complete &= groups.tainted.is_empty();
    match (settings, notifications) {
        (Some(settings), Some(notifications)) if complete => {
            Some((settings, entries, notifications))
        }
        _ => None,
    }
}

/// `settings` with durations parsed and checked against their ranges.
fn settings_of(s: &types::Settings, report: &mut Report) -> Option<Settings> {
    // Each setting named once: its message and its path agree.
    let mut duration = |text: &str, name: &str, range| {
        parse_duration(text, name, range, &[key("settings"), key(name)], report)
    };
    let timeout = duration(
        &s.request_timeout.0,
        "requestTimeout",
        types::REQUEST_TIMEOUT,
    );
    let retry_delay = duration(&s.retry_delay.0, "retryDelay", types::RETRY_DELAY);
    let retry_failed_for = duration(
        &s.retry_failed_for.0,
        "retryFailedFor",
        types::RETRY_FAILED_FOR,
    );
    let rate = s.max_requests_per_second;
    if rate > 0.0 && rate < types::MIN_REQUESTS_PER_SECOND {
        report.error(
            &[key("settings"), key("maxRequestsPerSecond")],
            format!(
                "`maxRequestsPerSecond` must be 0 (no limit) or at least {} (one request \
                 every {} s)",
                types::MIN_REQUESTS_PER_SECOND,
                1.0 / types::MIN_REQUESTS_PER_SECOND
            ),
        );
        return None;
    }
    let (timeout, retry_delay, retry_failed_for) = (timeout?, retry_delay?, retry_failed_for?);
    Some(Settings {
        dry_run: s.dry_run,
        batch_size: usize::try_from(s.batch_size).unwrap_or(usize::MAX),
        max_attempts: s.max_attempts,
        request_timeout: timeout,
        max_requests_per_second: (s.max_requests_per_second > 0.0)
            .then_some(s.max_requests_per_second),
        retry_delay,
        retry_failed_for,
    })
}

/// The members an entry sends: its groups' lists, then its own hashes, then
/// its users (as `user_member`s), each once, in order of first appearance,
/// merged lazily (`Members`): the groups' lists are shared, not copied. And
/// those parts with their origins (`Entry::parts`), shared too.
fn entry_hashes(
    reset: &types::Reset,
    own: Vec<String>,
    resolver: &mut Resolver,
) -> (Members, Vec<Part>) {
    let mut parts: Vec<Part> = reset
        .groups
        .iter()
        .map(|g| (Origin::Group(g.0.clone()), resolver.resolve(&g.0)))
        .collect();
    parts.push((Origin::Hashes, own.into()));
    parts.push((
        Origin::Users,
        reset
            .users
            .iter()
            .map(|u| super::user_member(&u.0))
            .collect(),
    ));
    let members = Members::new(parts.iter().map(|(_, p)| Arc::clone(p)).collect());
    (members, parts)
}

/// Digest of everything that decides what an entry sends and when.
fn spec_digest(reset: &types::Reset, hashes: &Members) -> String {
    let mut hasher = Sha256::new();
    hasher.update(reset.revision.to_le_bytes());
    // Serializing these plain types cannot fail.
    hasher.update(serde_json::to_vec(&reset.trigger).unwrap_or_default());
    hasher.update(serde_json::to_vec(&reset.not_after).unwrap_or_default());
    for hash in hashes.iter() {
        hasher.update(hash.as_bytes());
        hasher.update(b"\n");
    }
    crate::digest::finish_digest(hasher)
}
