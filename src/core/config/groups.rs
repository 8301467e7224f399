//! Groups: which exist, include cycles, and resolving a group to its hashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::hashes::HashLists;
use super::part::{at, key, part};
use super::report::Report;
use super::types;
use crate::yaml::Seg;

/// A group as far as the semantic checks need it.
pub(super) struct Group {
    pub(super) include: Vec<types::Name>,
    /// Its own hashes (kept for `run` only) and how many it lists.
    pub(super) hashes: Vec<String>,
    pub(super) len: usize,
    /// Its sub-users, by username (after its hashes, before its includes).
    pub(super) users: Vec<types::Username>,
}

pub(super) struct Groups {
    /// Every group name present, even when its body failed the schema.
    pub(super) names: HashSet<String>,
    pub(super) parsed: BTreeMap<String, Group>,
    /// Groups whose resolution is unreliable (a bad body, a cycle, an unknown
    /// include): entries using them are not checked for "no hashes".
    pub(super) tainted: HashSet<String>,
}

pub(super) fn check_groups(
    section: Option<Value>,
    lists: &mut HashLists,
    report: &mut Report,
) -> Groups {
    let mut groups = Groups {
        names: HashSet::new(),
        parsed: BTreeMap::new(),
        tainted: HashSet::new(),
    };
    let Some(Value::Object(map)) = section else {
        return groups;
    };
    for (name, body) in map {
        groups.names.insert(name.clone());
        let path = [key("groups"), key(&name)];
        let own = lists.take(&at(&path, key("hashes"))).unwrap_or_default();
        match part::<types::Group>(body, &path, report) {
            Some((g, clean)) => {
                if !clean {
                    groups.tainted.insert(name.clone());
                }
                let group = Group {
                    include: g.include,
                    hashes: own.hashes,
                    len: own.len,
                    users: g.users,
                };
                groups.parsed.insert(name, group);
            }
            None => {
                groups.tainted.insert(name);
            }
        }
    }
    for (name, group) in &groups.parsed {
        let path = vec![key("groups"), key(name)];
        for (i, inc) in group.include.iter().enumerate() {
            if !groups.names.contains(&inc.0) {
                report.error(
                    &[path.clone(), vec![key("include"), Seg::Index(i)]].concat(),
                    format!("unknown group `{inc}` in include of group `{name}`"),
                );
                groups.tainted.insert(name.clone());
            }
        }
    }
    for cycle in find_cycles(&groups.parsed) {
        let (from, index) = cycle.edge;
        report.error(
            &[key("groups"), key(&from), key("include"), Seg::Index(index)],
            format!("include cycle: {}", cycle.names.join(" → ")),
        );
        groups.tainted.extend(cycle.names);
    }
    groups
}

struct Cycle {
    /// The include that closes the cycle: (group, index in its `include`).
    edge: (String, usize),
    names: Vec<String>,
}

/// Each include cycle once, reported at the include that closes it.
/// Iterative: a 50,000-deep include chain must not overflow the stack.
fn find_cycles(groups: &BTreeMap<String, Group>) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut out = Vec::new();
    for root in groups.keys() {
        if marks.contains_key(root.as_str()) {
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
                None if groups.contains_key(&inc.0) => {
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
fn post_order<'g>(
    groups: &'g BTreeMap<String, Group>,
    root: &str,
    done: impl Fn(&str) -> bool,
) -> Vec<&'g str> {
    let mut order = Vec::new();
    let Some((root, _)) = groups.get_key_value(root) else {
        return order;
    };
    if done(root) {
        return order;
    }
    let mut visiting: HashSet<&str> = HashSet::from([root.as_str()]);
    // Finished in this walk: a diamond of includes visits each group once.
    let mut finished: HashSet<&str> = HashSet::new();
    let mut stack: Vec<(&'g str, usize)> = vec![(root.as_str(), 0)];
    while let Some((group, next)) = stack.last_mut() {
        if let Some(inc) = groups[*group].include.get(*next) {
            *next += 1;
            let inc = inc.0.as_str();
            if !done(inc)
                && !visiting.contains(inc)
                && !finished.contains(inc)
                && let Some((inc, _)) = groups.get_key_value(inc)
            {
                visiting.insert(inc.as_str());
                stack.push((inc.as_str(), 0));
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
    groups: &'g BTreeMap<String, Group>,
    memo: HashMap<&'g str, Arc<[String]>>,
    /// Whether a group resolves to any hash, for `nonempty`.
    nonempty: HashMap<&'g str, bool>,
}

impl<'g> Resolver<'g> {
    pub(super) fn new(groups: &'g BTreeMap<String, Group>) -> Self {
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
            let mut parts = vec![Arc::from(body.hashes.as_slice()), users];
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
