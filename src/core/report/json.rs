//! `plan --format json`, written out as it is made.
//!
//! # Shape
//! `{"now", "statusSource", "notice", "entries": [...], "orphans": [...]}`
//! (with `--resolve` also `"unknownHashes"` and `"ownerWarnings"`). Each
//! entry: `"id", "action", "phase", "why", "hashCount", "hashesToSend",
//! "batches", "nextRunAt", "nextRetryAt", "warnings"`, and what this plan
//! sends for it (`null` when it sends nothing: `wait`, `fail`, `expire`):
//!
//! - `"sendCounts"`: `{"groups", "hashes", "users", "unresolvedUsers"}`,
//!   the hashes sent by the field of the entry they came through (a group's
//!   `users:` count as the group's), and the users not looked up.
//! - `"send"`: the hashes in the order the requests send them (batch `i` of
//!   `batchSize` is the `i`-th slice of the concatenation), from the first
//!   batch the run still sends, in segments of one source each:
//!   `{"from": "groups", "group": G, "hashes": [...]}` (through the group
//!   `G` the entry names, its includes merged in),
//!   `{"from": "hashes", "hashes": [...]}` (the entry's own `hashes:`),
//!   `{"from": "users", "user": U, "hashes": [H]}` (sub-user `U` of the
//!   entry's `users:`, looked up); a group's user is
//!   `{"from": "groups", "group": G, "user": U, "hashes": [H]}`. All hashes:
//!   `jq '[.send[].hashes[]]'`.
//! - `"unresolvedUsers"`: users not looked up (`plan` without `--resolve`,
//!   or a dry run without a token), `{"from", "group"?, "user"}` each: their
//!   hashes are not known, so they are in no segment.
//!
//! A dry run's `send` is what it would send (it records them, sends none).
//!
//! # Guarantees
//! - Memory stays proportional to the largest entry, not to the plan: the
//!   document is serialized straight to the writer, and one run's labelled
//!   list (`send::Sent`) exists at a time.

use std::collections::HashMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::owners::{EntryOwners, Owners};
use super::send::{Sent, Source};
use super::{StatusSource, action_summary};
use crate::config::{Config, Origin};
use crate::plan::{EntryPlan, Plan};

/// Write the plan as pretty-printed JSON (no final newline).
pub fn write_plan(
    out: impl std::io::Write,
    config: &Config,
    plan: &Plan,
    source: StatusSource,
    owners: Option<&Owners>,
) -> serde_json::Result<()> {
    let doc = Document {
        config,
        plan,
        source,
        owners,
    };
    doc.serialize(&mut serde_json::Serializer::pretty(out))
}

struct Document<'a> {
    config: &'a Config,
    plan: &'a Plan,
    source: StatusSource,
    owners: Option<&'a Owners>,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("now", &self.plan.now)?;
        map.serialize_entry("statusSource", &self.source.json_name())?;
        map.serialize_entry("notice", &self.source.notice())?;
        map.serialize_entry("entries", &Entries(self))?;
        map.serialize_entry("orphans", &self.plan.orphans)?;
        if let Some(owners) = self.owners {
            map.serialize_entry("unknownHashes", &owners.unknown_hashes())?;
            map.serialize_entry("ownerWarnings", &owners.warnings())?;
        }
        map.end()
    }
}

struct Entries<'a>(&'a Document<'a>);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.0;
        let owners: HashMap<&str, &EntryOwners> = doc
            .owners
            .map(|o| o.entries().map(|e| (e.id(), e)).collect())
            .unwrap_or_default();
        let mut seq = s.serialize_seq(Some(doc.plan.entries.len()))?;
        // Each run's labelled list is made here and dropped before the next.
        for (planned, sent) in super::with_sent(doc.config, doc.plan) {
            seq.serialize_element(&EntryJson {
                planned,
                sent,
                owners: owners.get(planned.id.as_str()).copied(),
            })?;
        }
        seq.end()
    }
}

struct EntryJson<'a> {
    planned: &'a EntryPlan,
    /// What this plan sends for it, if it runs it.
    sent: Option<Sent<'a>>,
    owners: Option<&'a EntryOwners>,
}

impl Serialize for EntryJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.planned;
        let (action, send, batches) = action_summary(&e.action);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &e.id)?;
        // Only for a config directory: a single file's plan is as it was.
        if let Some(source) = &e.source {
            map.serialize_entry("source", &**source)?;
        }
        map.serialize_entry("action", action)?;
        map.serialize_entry("phase", &e.phase)?;
        map.serialize_entry("why", &e.why)?;
        map.serialize_entry("hashCount", &e.hash_count)?;
        map.serialize_entry("hashesToSend", &send)?;
        map.serialize_entry("batches", &batches)?;
        map.serialize_entry("nextRunAt", &e.next_run_at)?;
        map.serialize_entry("nextRetryAt", &e.next_retry_at)?;
        map.serialize_entry("warnings", &e.warnings)?;
        let sent = self.sent.as_ref();
        map.serialize_entry("sendCounts", &sent.map(CountsJson))?;
        map.serialize_entry("send", &sent.map(Segments))?;
        map.serialize_entry(
            "unresolvedUsers",
            &sent.map(|s| s.unresolved().iter().map(SourceJson).collect::<Vec<_>>()),
        )?;
        if let Some(owners) = self.owners {
            map.serialize_entry("owners", &owners.hashes_json())?;
            map.serialize_entry("unknownUsers", owners.unknown_users())?;
        }
        map.end()
    }
}

struct CountsJson<'a>(&'a Sent<'a>);

impl Serialize for CountsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let counts = self.0.counts();
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("groups", &counts.groups)?;
        map.serialize_entry("hashes", &counts.hashes)?;
        map.serialize_entry("users", &counts.users)?;
        map.serialize_entry("unresolvedUsers", &counts.unresolved_users)?;
        map.end()
    }
}

struct Segments<'a>(&'a Sent<'a>);

impl Serialize for Segments<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for (from, hashes) in self.0.segments() {
            seq.serialize_element(&Segment { from, hashes })?;
        }
        seq.end()
    }
}

struct Segment<'a> {
    from: Option<Source<'a>>,
    hashes: &'a [&'a String],
}

impl Serialize for Segment<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        source_fields(&mut map, self.from)?;
        map.serialize_entry("hashes", self.hashes)?;
        map.end()
    }
}

/// An unresolved user: where it was named, and its name.
struct SourceJson<'a>(&'a Source<'a>);

impl Serialize for SourceJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        source_fields(&mut map, Some(*self.0))?;
        map.end()
    }
}

/// `"from"`, and `"group"` and `"user"` when they apply.
fn source_fields<M: SerializeMap>(map: &mut M, from: Option<Source<'_>>) -> Result<(), M::Error> {
    let Some(from) = from else {
        // The planner sends nothing its entry does not hold; should it,
        // the hash is shown without a source rather than a made-up one.
        return map.serialize_entry("from", &None::<&str>);
    };
    match from.origin {
        Origin::Group(name) => {
            map.serialize_entry("from", "groups")?;
            map.serialize_entry("group", name)?;
        }
        Origin::Hashes => map.serialize_entry("from", "hashes")?,
        Origin::Users => map.serialize_entry("from", "users")?,
    }
    if let Some(user) = from.user {
        map.serialize_entry("user", user)?;
    }
    Ok(())
}
