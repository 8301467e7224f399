//! Groups: which exist, include cycles, and resolving a group to its hashes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::check::{FastSet, at, check_hash_list, key, part};
use super::report::Report;
use super::types;
use crate::yaml::Seg;

pub(super) struct Groups {
    /// Every group name present, even when its body failed the schema.
    pub(super) names: HashSet<String>,
    pub(super) parsed: BTreeMap<String, types::Group>,
    /// Groups whose resolution is unreliable (a bad body, a cycle, an unknown
    /// include): entries using them are not checked for "no hashes".
    pub(super) tainted: HashSet<String>,
}

pub(super) fn check_groups(section: Option<Value>, report: &mut Report) -> Groups {
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
        match part::<types::Group>(body) {
            Some(g) => {
                groups.parsed.insert(name.clone(), g);
            }
            None => {
                groups.tainted.insert(name.clone());
            }
        }
    }
    for (name, group) in &groups.parsed {
        let path = vec![key("groups"), key(name)];
        check_hash_list(
            &group.hashes,
            &at(&path, key("hashes")),
            &FastSet::default(),
            report,
        );
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
fn find_cycles(groups: &BTreeMap<String, types::Group>) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        groups: &BTreeMap<String, types::Group>,
        marks: &mut HashMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<Cycle>,
    ) {
        marks.insert(name.to_owned(), Mark::Visiting);
        stack.push(name.to_owned());
        if let Some(group) = groups.get(name) {
            for (i, inc) in group.include.iter().enumerate() {
                match marks.get(&inc.0) {
                    Some(Mark::Visiting) => {
                        let start = stack.iter().position(|s| *s == inc.0).unwrap_or(0);
                        let mut names = stack[start..].to_vec();
                        names.push(inc.0.clone());
                        out.push(Cycle {
                            edge: (name.to_owned(), i),
                            names,
                        });
                    }
                    Some(Mark::Done) => {}
                    None => visit(&inc.0, groups, marks, stack, out),
                }
            }
        }
        stack.pop();
        marks.insert(name.to_owned(), Mark::Done);
    }
    let mut marks = HashMap::new();
    let mut out = Vec::new();
    for name in groups.keys() {
        if !marks.contains_key(name) {
            visit(name, groups, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out
}

/// Append a group's hashes (own first, then includes in order), skipping
/// hashes already present. Cycles were reported; `visiting` just stops them.
pub(super) fn resolve_group<'g>(
    name: &str,
    groups: &'g BTreeMap<String, types::Group>,
    visiting: &mut HashSet<String>,
    seen: &mut FastSet<'g>,
    out: &mut Vec<&'g str>,
) {
    let Some(group) = groups.get(name) else {
        return;
    };
    if !visiting.insert(name.to_owned()) {
        return;
    }
    for hash in &group.hashes {
        if seen.insert(hash.0.as_str()) {
            out.push(hash.0.as_str());
        }
    }
    for inc in &group.include {
        resolve_group(&inc.0, groups, visiting, seen, out);
    }
    visiting.remove(name);
}
