//! The checks across the files of a config, and building the `Config` from
//! them (SPEC §2b). A single file is a set of one, merged the same way.
//!
//! Entry ids, group names and receiver names share one namespace across
//! the files; a file may use a group another file defines; `settings` may
//! appear in one file at most. Each file was checked on its own first
//! (`check::local`), so this pass sees only parts that deserialized, with
//! the positions its errors point at: it reads no file, and it is linear in
//! the size of the set (one map per namespace, the group graph walked once),
//! so a daemon that re-parsed one changed file merges every file again
//! cheaply.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

type Fast = foldhash::fast::RandomState;

use super::check::{Local, built, default_settings};
use super::groups::{GroupMap, Resolver, find_cycles};
use super::part::key;
use super::{Entry, Settings, format_path, types};
use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{Pos, Seg};

/// One file of the set.
pub(super) struct Input<'a> {
    /// The file as diagnostics name it.
    pub(super) file: &'a str,
    /// Its path relative to the config directory, recorded as each of its
    /// entries' `source`; `None` for a config that is one file.
    pub(super) source: Option<Arc<str>>,
    pub(super) local: &'a Local,
}

/// What the merge found: the config's parts when every file's were
/// complete, and the diagnostics of the checks across files, per input.
pub(super) struct Merged {
    pub(super) parts: Option<(Settings, Vec<Entry>, Vec<types::Notification>)>,
    pub(super) diagnostics: Vec<Vec<Diagnostic>>,
}

/// Diagnostics per input file.
struct Out<'a> {
    inputs: &'a [Input<'a>],
    diagnostics: Vec<Vec<Diagnostic>>,
}

impl Out<'_> {
    fn push(&mut self, file: usize, path: &[Seg], pos: Pos, message: String, severity: Severity) {
        if let (Some(list), Some(input)) = (self.diagnostics.get_mut(file), self.inputs.get(file)) {
            list.push(Diagnostic {
                file: input.file.to_owned(),
                line: pos.line,
                column: pos.column,
                path: format_path(path),
                message,
                severity,
            });
        }
    }

    fn error(&mut self, file: usize, path: &[Seg], pos: Pos, message: String) {
        self.push(file, path, pos, message, Severity::Error);
    }

    /// Where a name was first used, said from `here`: `on line 3` in the
    /// same file, `in teams/a.yaml, line 3` in another. A duplicate is
    /// reported at the second place and names the first.
    fn first(&self, (file, pos): (usize, Pos), here: usize) -> String {
        match self.inputs.get(file) {
            Some(input) if file != here => format!("in {}, line {}", input.file, pos.line),
            _ => format!("on line {}", pos.line),
        }
    }

    /// A duplicate across two files is also reported at its first place,
    /// naming the second: resetd cannot tell which file a pull request
    /// changed, and an annotation on a file outside the PR's diff is not
    /// seen. (Within one file, the second place alone, as always.)
    fn also(&mut self, first: (usize, Pos), first_path: &[Seg], what: &str, here: (usize, Pos)) {
        let (file, pos) = first;
        if file == here.0 {
            return;
        }
        let second = self.inputs.get(here.0).map_or("", |i| i.file).to_owned();
        let message = format!("{what} (also in {second}, line {})", here.1.line);
        self.error(file, first_path, pos, message);
    }
}

fn resets_path(index: usize) -> Vec<Seg> {
    vec![key("resets"), Seg::Index(index)]
}

/// Merge the files' parts: every check across files, then (with `build`)
/// the entries, their groups resolved across files.
/// `whole`: every file of the set could be read; when one could not, a
/// group it may define is not reported unknown elsewhere.
pub(super) fn merge(inputs: &[Input<'_>], whole: bool, build: bool) -> Merged {
    let mut out = Out {
        inputs,
        diagnostics: inputs.iter().map(|_| Vec::new()).collect(),
    };
    let mut complete = inputs.iter().all(|i| i.local.complete);

    // `settings`: one file at most.
    let mut settings_at: Option<(usize, Pos)> = None;
    let mut settings: Option<Settings> = None;
    for (f, input) in inputs.iter().enumerate() {
        let Some((pos, parsed)) = &input.local.settings else {
            continue;
        };
        match settings_at {
            Some(first) => {
                let message = format!(
                    "`settings` may appear in one file of a config directory only (first {})",
                    out.first(first, f)
                );
                out.error(f, &[key("settings")], *pos, message);
                out.also(
                    first,
                    &[key("settings")],
                    "`settings` may appear in one file of a config directory only",
                    (f, *pos),
                );
                complete = false;
            }
            None => {
                settings_at = Some((f, *pos));
                settings.clone_from(parsed);
            }
        }
    }
    if settings_at.is_none() {
        settings = default_settings();
    }

    // Receivers: names unique across the files.
    let mut receivers: HashMap<&str, (usize, Pos)> = HashMap::new();
    let mut receiver_index: HashMap<&str, usize> = HashMap::new();
    let mut notifications = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        complete &= input.local.notifications_ok;
        for (i, (receiver, pos)) in input.local.notifications.iter().enumerate() {
            match receivers.get(receiver.name.0.as_str()) {
                Some(&first) => {
                    let message = format!(
                        "duplicate receiver name `{}` (first used {})",
                        receiver.name,
                        out.first(first, f)
                    );
                    let path = [key("notifications"), Seg::Index(i), key("name")];
                    out.error(f, &path, *pos, message);
                    let what = format!("duplicate receiver name `{}`", receiver.name);
                    let index = receiver_index.get(receiver.name.0.as_str()).copied();
                    let there = [
                        key("notifications"),
                        Seg::Index(index.unwrap_or(0)),
                        key("name"),
                    ];
                    out.also(first, &there, &what, (f, *pos));
                    complete = false;
                }
                None => {
                    receivers.insert(&receiver.name.0, (f, *pos));
                    receiver_index.insert(&receiver.name.0, i);
                    notifications.push(receiver.clone());
                }
            }
        }
    }

    // Groups: one map over every file; the first definition of a name is
    // the group, a second is an error.
    let mut names: HashMap<&str, (usize, Pos)> = HashMap::new();
    // Where each group's body is, for warnings about the group.
    let mut body_pos: HashMap<&str, (usize, Pos)> = HashMap::new();
    let mut map: GroupMap<'_> = GroupMap::new();
    // Where each group's includes are, for errors about them.
    let mut where_: HashMap<&str, (usize, &[Pos])> = HashMap::new();
    let mut tainted: HashSet<&str> = HashSet::new();
    for (f, input) in inputs.iter().enumerate() {
        for g in &input.local.groups {
            if let Some(&first) = names.get(g.name.as_str()) {
                let message = format!(
                    "duplicate group `{}` (first defined {})",
                    g.name,
                    out.first(first, f)
                );
                out.error(f, &[key("groups"), key(&g.name)], g.key_pos, message);
                let what = format!("duplicate group `{}`", g.name);
                out.also(first, &[key("groups"), key(&g.name)], &what, (f, g.key_pos));
                complete = false;
                continue;
            }
            names.insert(&g.name, (f, g.key_pos));
            body_pos.insert(&g.name, (f, g.pos));
            if !g.clean {
                tainted.insert(&g.name);
            }
            if let Some(body) = &g.body {
                map.insert(&g.name, body);
                where_.insert(&g.name, (f, &g.include_pos));
            }
        }
    }
    for (&name, group) in &map {
        let Some(&(f, positions)) = where_.get(name) else {
            continue;
        };
        for (i, inc) in group.include.iter().enumerate() {
            if !names.contains_key(inc.0.as_str()) {
                tainted.insert(name);
                if !whole {
                    continue;
                }
                let path = [key("groups"), key(name), key("include"), Seg::Index(i)];
                let pos = positions.get(i).copied().unwrap_or_default();
                out.error(
                    f,
                    &path,
                    pos,
                    format!("unknown group `{inc}` in include of group `{name}`"),
                );
                tainted.insert(name);
            }
        }
    }
    for cycle in find_cycles(&map) {
        let (from, index) = cycle.edge;
        if let Some(&(f, positions)) = where_.get(from.as_str()) {
            let path = [key("groups"), key(&from), key("include"), Seg::Index(index)];
            let pos = positions.get(index).copied().unwrap_or_default();
            out.error(
                f,
                &path,
                pos,
                format!("include cycle: {}", cycle.names.join(" → ")),
            );
        }
        for name in cycle.names {
            if let Some((&name, _)) = map.get_key_value(name.as_str()) {
                tainted.insert(name);
            }
        }
    }

    // Entries: ids unique across the files, groups from any file.
    let mut resolver = Resolver::new(&map);
    let mut used_groups: HashSet<&str> = HashSet::new();
    // Seeded, and one per entry: the merge runs at every reload.
    let mut ids: HashMap<&str, (usize, Pos), Fast> = HashMap::default();
    // Each id's index in its file's `resets`, for the path of its first place.
    let mut id_index: HashMap<&str, usize, Fast> = HashMap::default();
    let mut entries = Vec::new();
    for (f, input) in inputs.iter().enumerate() {
        for part in &input.local.resets {
            let reset = &part.reset;
            // Only an error needs it: most entries have none.
            let path = || resets_path(part.index);
            if part.has_id {
                match ids.get(reset.id.0.as_str()) {
                    Some(&first) => {
                        let message = format!(
                            "duplicate id `{}` (first used {})",
                            reset.id,
                            out.first(first, f)
                        );
                        let mut here = path();
                        here.push(key("id"));
                        out.error(f, &here, part.id_pos, message);
                        let what = format!("duplicate id `{}`", reset.id);
                        let index = id_index.get(reset.id.0.as_str()).copied().unwrap_or(0);
                        let there = [key("resets"), Seg::Index(index), key("id")];
                        out.also(first, &there, &what, (f, part.id_pos));
                    }
                    None => {
                        ids.insert(&reset.id.0, (f, part.id_pos));
                        id_index.insert(&reset.id.0, part.index);
                    }
                }
            }
            let mut resolvable = part.clean;
            let mut listed = HashSet::new();
            for (k, g) in reset.groups.iter().enumerate() {
                let here = || [path(), vec![key("groups"), Seg::Index(k)]].concat();
                let pos = part.group_pos.get(k).copied().unwrap_or_default();
                if !names.contains_key(g.0.as_str()) {
                    // With a file of the set unreadable, the group may be
                    // that file's: its error is the one to fix.
                    if whole {
                        out.error(f, &here(), pos, format!("unknown group `{g}`"));
                    }
                    resolvable = false;
                } else if !listed.insert(g.0.as_str()) {
                    let message = format!("group `{g}` is listed twice");
                    out.push(f, &here(), pos, message, Severity::Warning);
                }
                resolvable &= !tainted.contains(g.0.as_str());
                used_groups.insert(&g.0);
            }
            let empty = part.own_len == 0
                && reset.users.is_empty()
                && !reset.groups.iter().any(|g| resolver.nonempty(&g.0));
            if empty && resolvable {
                out.error(
                    f,
                    &path(),
                    part.pos,
                    format!(
                        "reset `{}` resolves to no hashes: add `groups`, `hashes` or `users`",
                        reset.id
                    ),
                );
            }
            if !part.valid {
                complete = false;
                continue;
            }
            // `validate` keeps no entries: only the diagnostics mattered.
            let (true, Some(schedule)) = (build, &part.schedule) else {
                continue;
            };
            let built = built(part, &mut resolver);
            entries.push(Entry {
                spec_digest: built.spec_digest,
                id: reset.id.0.clone(),
                description: reset.description.clone(),
                source: input.source.clone(),
                users: built.users,
                hashes: built.hashes,
                parts: built.parts,
                trigger: schedule.clone(),
                revision: reset.revision,
                not_after: reset.not_after,
                suspend: reset.suspend,
                dry_run: reset.dry_run,
            });
        }
    }
    // One set of included names: asking each group "is anyone including
    // you?" was quadratic in the number of groups.
    let included: HashSet<&str> = map
        .values()
        .flat_map(|g| g.include.iter().map(|i| i.0.as_str()))
        .collect();
    for &name in map.keys() {
        if !used_groups.contains(name)
            && !included.contains(name)
            && let Some(&(f, pos)) = body_pos.get(name)
        {
            out.push(
                f,
                &[key("groups"), key(name)],
                pos,
                format!("group `{name}` is not used by any reset"),
                Severity::Warning,
            );
        }
    }
    complete &= tainted.is_empty();
    let parts = match settings {
        Some(settings) if complete => Some((settings, entries, notifications)),
        _ => None,
    };
    Merged {
        parts,
        diagnostics: out.diagnostics,
    }
}
