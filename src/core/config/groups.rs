//! Groups: which exist, include cycles, and resolving a group to its hashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::hashes::HashLists;
use super::part::{at, key, part};
use super::report::Report;
use super::types;
use crate::yaml::{Pos, Seg};

/// A group as far as the semantic checks need it.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) include: Vec<types::Name>,
    /// Its own hashes (kept for `run` only; shared with the lists resolved
    /// from it) and how many it lists.
    pub(super) hashes: Arc<[String]>,
    pub(super) len: usize,
    /// Its sub-users, by username (after its hashes, before its includes).
    pub(super) users: Vec<types::Username>,
}

/// A group of one file, read on its own: its includes are checked against
/// every file's groups when the files are merged (`merge`).
#[derive(Debug)]
pub(super) struct GroupPart {
    pub(super) name: String,
    /// Where `groups.<name>` is, for errors and warnings about the group,
    /// and where its name is written (a second definition is shown there).
    pub(super) pos: Pos,
    pub(super) key_pos: Pos,
    /// `None` when its body failed the schema (reported).
    pub(super) body: Option<Group>,
    /// False when some field of the body was refused: resolving it is
    /// unreliable, so entries using it are not checked for "no hashes".
    pub(super) clean: bool,
    /// Where each `include[i]` is.
    pub(super) include_pos: Vec<Pos>,
}

/// Every group of a config, across its files, by name.
pub(super) type GroupMap<'g> = BTreeMap<&'g str, &'g Group>;

/// The groups of one file, in the order the document holds them.
pub(super) fn parse_groups(
    section: Option<Value>,
    lists: &mut HashLists,
    report: &mut Report,
) -> Vec<GroupPart> {
    let Some(Value::Object(map)) = section else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, body) in map {
        let path = [key("groups"), key(&name)];
        let pos = report.pos_of(&path);
        let key_pos = report.key_pos_of(&[key("groups")], &name);
        let own = lists.take(&at(&path, key("hashes"))).unwrap_or_default();
        let (body, clean) = match part::<types::Group>(body, &path, report) {
            Some((g, clean)) => (
                Some(Group {
                    include: g.include,
                    hashes: own.hashes.into(),
                    len: own.len,
                    users: g.users,
                }),
                clean,
            ),
            None => (None, false),
        };
        let include_pos = body.as_ref().map_or_else(Vec::new, |g| {
            (0..g.include.len())
                .map(|i| report.pos_of(&[key("groups"), key(&name), key("include"), Seg::Index(i)]))
                .collect()
        });
        out.push(GroupPart {
            name,
            pos,
            key_pos,
            body,
            clean,
            include_pos,
        });
    }
    out
}

pub(super) struct Cycle {
    /// The include that closes the cycle: (group, index in its `include`).
    pub(super) edge: (String, usize),
    pub(super) names: Vec<String>,
}

/// Each include cycle once, reported at the include that closes it.
/// Iterative: a 50,000-deep include chain must not overflow the stack.
pub(super) fn find_cycles(groups: &GroupMap<'_>) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut out = Vec::new();
    for &root in groups.keys() {
        if marks.contains_key(root) {
            continue;
        }
        // (group, index of the next include to look at)
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        marks.insert(root, Mark::Visiting);
        while let Some((name, next)) = stack.last_mut() {
            let include = groups.get(*name).and_then(|g| g.include.get(*next));
            let Some(inc) = include else {
                marks.insert(name, Mark::Done);
                stack.pop();
                continue;
            };
            let (from, index) = (*name, *next);
            *next += 1;
            match marks.get(inc.0.as_str()) {
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|(s, _)| *s == inc.0).unwrap_or(0);
                    let mut names: Vec<String> = stack[start..]
                        .iter()
                        .map(|(s, _)| (*s).to_owned())
                        .collect();
                    names.push(inc.0.clone());
                    out.push(Cycle {
                        edge: (from.to_owned(), index),
                        names,
                    });
                }
                Some(Mark::Done) => {}
                None if groups.contains_key(inc.0.as_str()) => {
                    marks.insert(&inc.0, Mark::Visiting);
                    stack.push((&inc.0, 0));
                }
                None => {}
            }
        }
    }
    out
}

/// `root` and the groups it includes that `done` does not know yet, each
/// after its includes (post-order), so a caller can fold them in order. An
/// include back into the walk (a cycle, reported already) is skipped.
/// Iterative: a 50,000-deep chain must not overflow the stack.
fn post_order<'g>(groups: &GroupMap<'g>, root: &str, done: impl Fn(&str) -> bool) -> Vec<&'g str> {
    let mut order = Vec::new();
    let Some((&root, _)) = groups.get_key_value(root) else {
        return order;
    };
    if done(root) {
        return order;
    }
    let mut visiting: HashSet<&str> = HashSet::from([root]);
    // Finished in this walk: a diamond of includes visits each group once.
    let mut finished: HashSet<&str> = HashSet::new();
    let mut stack: Vec<(&'g str, usize)> = vec![(root, 0)];
    while let Some((group, next)) = stack.last_mut() {
        if let Some(inc) = groups[*group].include.get(*next) {
            *next += 1;
            let inc = inc.0.as_str();
            if !done(inc)
                && !visiting.contains(inc)
                && !finished.contains(inc)
                && let Some((&inc, _)) = groups.get_key_value(inc)
            {
                visiting.insert(inc);
                stack.push((inc, 0));
            }
            continue;
        }
        let group = *group;
        stack.pop();
        visiting.remove(group);
        finished.insert(group);
        order.push(group);
    }
    order
}

/// Resolves groups to their member lists, each group once: a group's list
/// is its own hashes, then its users (as `user_member`s), then each
/// include's list in order, every member kept at its first appearance. Lists are shared (`Arc`), so entries naming one group
/// hold no copy. Iterative and memoised: deep chains cannot overflow the
/// stack, and a diamond of includes is not expanded once per path.
pub(super) struct Resolver<'g> {
    groups: &'g GroupMap<'g>,
    memo: HashMap<&'g str, Arc<[String]>>,
    /// Whether a group resolves to any hash, for `nonempty`.
    nonempty: HashMap<&'g str, bool>,
}

impl<'g> Resolver<'g> {
    pub(super) fn new(groups: &'g GroupMap<'g>) -> Self {
        Resolver {
            groups,
            memo: HashMap::new(),
            nonempty: HashMap::new(),
        }
    }

    /// Whether group `name` resolves to at least one hash, without building
    /// its list (`validate` keeps no hashes): the same walk as `resolve`.
    pub(super) fn nonempty(&mut self, name: &str) -> bool {
        let order = post_order(self.groups, name, |g| self.nonempty.contains_key(g));
        for group in order {
            let body = &self.groups[group];
            let any = body.len > 0
                || !body.users.is_empty()
                || body
                    .include
                    .iter()
                    .any(|inc| self.nonempty.get(inc.0.as_str()) == Some(&true));
            self.nonempty.insert(group, any);
        }
        self.nonempty.get(name) == Some(&true)
    }

    /// The hashes of group `name` (empty for an unknown group). Include
    /// cycles were reported already; here an include back into a group
    /// being resolved is skipped.
    pub(super) fn resolve(&mut self, name: &str) -> Arc<[String]> {
        let order = post_order(self.groups, name, |g| self.memo.contains_key(g));
        for group in order {
            let body = &self.groups[group];
            let includes: Vec<Arc<[String]>> = body
                .include
                .iter()
                .filter_map(|inc| self.memo.get(inc.0.as_str()).cloned())
                .collect();
            // Its hashes, then its users, then its includes; one include
            // and nothing else shares that include's list.
            let users: Arc<[String]> = body
                .users
                .iter()
                .map(|u| super::user_member(&u.0))
                .collect();
            let mut parts = vec![Arc::clone(&body.hashes), users];
            parts.extend(includes);
            let list = super::Members::new(parts).to_arc();
            self.memo.insert(group, list);
        }
        self.memo
            .get(name)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }
}
