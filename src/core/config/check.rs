//! Semantic checks the schema cannot express, and building the `Config`.
//!
//! Runs even when the schema found errors, so that one run reports every
//! independent problem: a part (the settings, a group, an entry) that does
//! not deserialize is read again without the fields the schema refused, and
//! its other fields are checked as usual (a duplicate `id` is reported even
//! when the entry also has a typo). What follows from a refused field is not
//! reported again: such a part is not checked for "resolves to no hashes".

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Members;
use super::groups::{GroupPart, Resolver, parse_groups};
use super::hashes::HashLists;
use super::part::{at, key, part, part_fixed};
use super::report::Report;
use super::types::{self, Trigger};
use super::{Origin, Part, Schedule, Settings};
use crate::yaml::{Pos, Seg};

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

/// What the checks of one file found, for the checks across the files of
/// a config (`merge`): every part that deserialized, with the positions
/// those checks may point at. Holds no text and no positions table, so a
/// daemon can keep it per file and merge it again when another file changes.
#[derive(Debug)]
pub(super) struct Local {
    /// The file's `settings`, if it has them: where, and what they say
    /// (`None`: refused, reported).
    pub(super) settings: Option<(Pos, Option<Settings>)>,
    /// Its receivers, each with where its `name` is; `notifications_ok`:
    /// every receiver was sound.
    pub(super) notifications: Vec<(types::Notification, Pos)>,
    pub(super) notifications_ok: bool,
    pub(super) groups: Vec<GroupPart>,
    pub(super) resets: Vec<ResetPart>,
    /// False when some part failed to deserialize (the schema said why):
    /// the file gives no config.
    pub(super) complete: bool,
}

/// One entry of one file, checked on its own.
#[derive(Debug)]
pub(super) struct ResetPart {
    pub(super) reset: types::Reset,
    /// Its index in the file's `resets`.
    pub(super) index: usize,
    /// The entry had a string `id` (an entry without one is still checked
    /// for the rest, but not for a duplicate id).
    pub(super) has_id: bool,
    /// Every field deserialized as written.
    pub(super) clean: bool,
    /// Where the entry and its `id` are, and each `groups[k]`.
    pub(super) pos: Pos,
    pub(super) id_pos: Pos,
    pub(super) group_pos: Vec<Pos>,
    /// False when its trigger or `notAfter` was refused (reported).
    pub(super) valid: bool,
    /// Its schedule, when valid and kept (`keep`: `validate` keeps none).
    pub(super) schedule: Option<Schedule>,
    /// Its own `hashes` (kept for `run` only) and how many it lists.
    pub(super) own: Arc<[String]>,
    pub(super) own_len: usize,
    /// The entry as last built (`built`), for the next merge to reuse.
    pub(super) built: Mutex<Option<Built>>,
}

/// What building an entry gives, with the group lists it was built from.
#[derive(Debug, Clone)]
pub(super) struct Built {
    /// The lists of the groups it names, in order: the build stands while
    /// each is the very same list (a group's list is shared from its file's
    /// parse, so an unchanged group gives the same list).
    groups: Vec<Arc<[String]>>,
    pub(super) hashes: Members,
    pub(super) parts: Arc<[Part]>,
    /// How many of `hashes` are users.
    pub(super) users: usize,
    pub(super) spec_digest: String,
}

/// The entry's members, their parts, its user count and its spec digest.
/// Merging and digesting a million hashes takes longer than parsing one
/// changed file, so a build is kept with the part and reused by later
/// merges while the groups it names resolve to the same lists: a daemon
/// merging 1,000 files after one changed builds only that file's entries
/// (and those naming a group that changed).
pub(super) fn built(part: &ResetPart, resolver: &mut Resolver) -> Built {
    let lists: Vec<Arc<[String]>> = part
        .reset
        .groups
        .iter()
        .map(|g| resolver.resolve(&g.0))
        .collect();
    let mut kept = part.built.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(b) = kept.as_ref()
        && b.groups.len() == lists.len()
        && b.groups.iter().zip(&lists).all(|(a, b)| Arc::ptr_eq(a, b))
    {
        return b.clone();
    }
    let (hashes, parts) = entry_hashes(&part.reset, Arc::clone(&part.own), &lists);
    let users = hashes
        .iter()
        .filter(|m| super::member_user(m).is_some())
        .count();
    let b = Built {
        spec_digest: spec_digest(&part.reset, &hashes),
        groups: lists,
        hashes,
        parts: parts.into(),
        users,
    };
    *kept = Some(b.clone());
    b
}

/// Run every check that one file can answer alone. The checks that need
/// every file of the config (ids, group and receiver names, group
/// references and cycles, one `settings`) are `merge`'s.
/// `lists`: the hash lists read beside `doc` (for `validate` they keep
/// only each list's length, which matters for files of a million hashes).
pub(super) fn local(
    doc: Value,
    lists: &mut HashLists,
    now: DateTime<Utc>,
    keep: bool,
    report: &mut Report,
) -> Local {
    let mut complete = true;
    let mut doc = match doc {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    integers_only(doc.get("settings"), &[key("settings")], report);
    let settings = doc.remove("settings").map(|v| {
        let pos = report.key_pos_of(&[], "settings");
        let parsed =
            part::<types::Settings>(v, &[key("settings")], report).and_then(|(s, clean)| {
                complete &= clean;
                settings_of(&s, report)
            });
        (pos, parsed)
    });

    let (notifications, notifications_ok) =
        super::notifications::check(doc.remove("notifications"), report);
    let groups = parse_groups(doc.remove("groups"), lists, report);
    // Generated files repeat a few expressions thousands of times.
    let mut crons: HashMap<String, Result<croner::Cron, String>> = HashMap::new();
    let mut parts = Vec::new();
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
        let Some((mut reset, clean)) = part_fixed::<types::Reset>(raw, &path, report, fix) else {
            complete = false;
            continue;
        };
        complete &= clean;

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
                Ok(cron) => Some(Schedule::Cron(std::sync::Arc::new(cron))),
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
        let group_pos = (0..reset.groups.len())
            .map(|k| report.pos_of(&[path.clone(), vec![key("groups"), Seg::Index(k)]].concat()))
            .collect();
        if !keep {
            reset.description = None;
        }
        parts.push(ResetPart {
            index: i,
            has_id,
            clean,
            pos: report.pos_of(&path),
            id_pos: report.pos_of(&at(&path, key("id"))),
            group_pos,
            valid: schedule.is_some() && not_after_ok,
            // `validate` holds every entry's part until the merge: what
            // only `run` needs (a parsed cron, a description) is not kept.
            schedule: schedule.filter(|_| not_after_ok && keep),
            own: own.hashes.into(),
            own_len: own.len,
            built: Mutex::new(None),
            reset,
        });
    }
    Local {
        settings,
        notifications,
        notifications_ok,
        groups,
        resets: parts,
        complete,
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
    own: Arc<[String]>,
    lists: &[Arc<[String]>],
) -> (Members, Vec<Part>) {
    let mut parts: Vec<Part> = reset
        .groups
        .iter()
        .zip(lists)
        .map(|(g, list)| (Origin::Group(g.0.clone()), Arc::clone(list)))
        .collect();
    parts.push((Origin::Hashes, own));
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

/// The settings of a config that has no `settings` anywhere: the
/// documented defaults, parsed the way a file's are.
pub(super) fn default_settings() -> Option<Settings> {
    let loc = crate::yaml::Loc::Scalar(Pos::default());
    let mut report = Report::new("", &loc);
    settings_of(&types::Settings::default(), &mut report)
}
