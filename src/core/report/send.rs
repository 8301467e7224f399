//! What a run of a plan sends, hash by hash, and where each hash came from:
//! the `send` of `plan --format json`, and the counts by source and short
//! lists of the markdown and human plans. Pure.
//!
//! # Guarantees
//! - The order is the executor's own: `RunSpec::hashes` (merged by
//!   `config::Members`, users looked up by `users::resolve`, hashes
//!   confirmed before left out by the planner), from the first batch the
//!   run still sends. Nothing here orders hashes; it only labels them.
//! - A hash is labelled with the first part of its entry
//!   (`config::Entry::parts`: each group named, the own `hashes`, the own
//!   `users`, in that order) that holds it, or holds the user it is the hash
//!   of. That is the member `Members` and `resolve` kept it for.
//! - A user that was not looked up (no directory: `plan` without
//!   `--resolve`, a dry run without a token) has no hash here: it is listed
//!   as unresolved, never given one.
//! - Memory is one run's list at a time (`Sent` is made per entry, dropped
//!   before the next), whatever the plan holds.

use std::ops::Range;

use crate::config::{Entry, Origin, member_user};
use crate::plan::RunSpec;

/// Where a sent hash came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// The part of the entry: a group it names, its `hashes` or its `users`.
    pub origin: &'a Origin,
    /// The sub-user whose hash it is, when the part named a user (an entry's
    /// `users:`, or a group's own `users:`, includes too).
    pub user: Option<&'a str>,
}

/// Hashes sent, by the field of the entry they came through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Through `groups:` (a group's users included).
    pub groups: usize,
    /// The entry's own `hashes:`.
    pub hashes: usize,
    /// The entry's own `users:`, looked up.
    pub users: usize,
    /// Users not looked up: their hashes are not known (nor counted above).
    pub unresolved_users: usize,
}

/// Where in `spec.hashes` the run starts sending: the first hash of the
/// first batch it still sends (a resumed run skips the batches it had
/// confirmed), as `reconcile::Executor::run` counts it.
pub fn first_sent(spec: &RunSpec) -> usize {
    let batch = spec.resume.as_ref().map_or(0, |r| r.next_batch);
    crate::status::batch_range(spec.hashes.len(), spec.batch_size, batch).start
}

/// One run's hashes in send order, labelled.
pub struct Sent<'a> {
    /// The hashes sent, in order.
    list: Vec<&'a String>,
    /// Consecutive hashes from one source: where each such segment ends
    /// (exclusive, an index of `list`) and its source (`None` only if the
    /// entry's parts do not hold the hash, which the planner never makes).
    segments: Vec<(usize, Option<Source<'a>>)>,
    /// Users of the entry that were not looked up, each once, in order.
    unresolved: Vec<Source<'a>>,
    counts: Counts,
    /// Hashes sent per group part, in the order of `entry.parts`.
    by_group: Vec<(&'a str, usize)>,
}

impl<'a> Sent<'a> {
    /// What `spec`, a run of `entry`, sends.
    pub fn of(entry: &'a Entry, spec: &'a RunSpec) -> Sent<'a> {
        // The list `reconcile::Executor::run` sends (`to_arc` is `iter`,
        // collected), from the same first batch.
        let list: Vec<&String> = spec.hashes.iter().skip(first_sent(spec)).collect();
        let mut labels = Labels::new(entry, spec);
        let mut segments: Vec<(usize, Option<Source<'a>>)> = Vec::new();
        let mut per_part = vec![0usize; entry.parts.len()];
        for (i, hash) in list.iter().enumerate() {
            let label = labels.label(hash);
            if let Some((part, _)) = label {
                per_part[part] += 1;
            }
            let from = label.map(|(part, user)| Source {
                origin: &entry.parts[part].0,
                user,
            });
            match segments.last_mut() {
                Some((end, last)) if *last == from => *end = i + 1,
                _ => segments.push((i + 1, from)),
            }
        }
        let unresolved = unresolved(entry, spec);
        let mut counts = Counts {
            unresolved_users: unresolved.len(),
            ..Counts::default()
        };
        let mut by_group = Vec::new();
        for ((origin, _), n) in entry.parts.iter().zip(per_part) {
            match origin {
                Origin::Group(name) => {
                    counts.groups += n;
                    by_group.push((name.as_str(), n));
                }
                Origin::Hashes => counts.hashes += n,
                Origin::Users => counts.users += n,
            }
        }
        Sent {
            list,
            segments,
            unresolved,
            counts,
            by_group,
        }
    }

    /// The hashes sent, in order.
    pub fn hashes(&self) -> &[&'a String] {
        &self.list
    }

    /// The hashes sent in segments of one source each, in order.
    pub fn segments(&self) -> impl Iterator<Item = (Option<Source<'a>>, &[&'a String])> + '_ {
        let mut begin = 0;
        self.segments.iter().map(move |&(end, from)| {
            let range: Range<usize> = begin..end;
            begin = end;
            (from, &self.list[range])
        })
    }

    /// Users not looked up: sent once looked up, their hashes unknown here.
    pub fn unresolved(&self) -> &[Source<'a>] {
        &self.unresolved
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Hashes sent through each group the entry names, in its order (a
    /// group named twice is listed twice; the second adds none).
    pub fn by_group(&self) -> &[(&'a str, usize)] {
        &self.by_group
    }
}

/// The users of `entry` that `spec` did not look up, each once, in order.
fn unresolved<'a>(entry: &'a Entry, spec: &RunSpec) -> Vec<Source<'a>> {
    if spec.unresolved == 0 {
        return Vec::new();
    }
    let mut named = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (origin, part) in entry.parts.iter() {
        for name in part.iter().filter_map(|m| member_user(m)) {
            if !spec.users.contains_key(name) && named.insert(name) {
                out.push(Source {
                    origin,
                    user: Some(name),
                });
            }
        }
    }
    out
}

/// A hash sent, with the part (its index in `entry.parts`) that holds it
/// first and the user it is the hash of, if that part named it by user.
type Label<'a> = (usize, Option<&'a str>);

/// Finds each sent hash's label, asked in send order.
///
/// A run's hashes are in order of first appearance in its entry's parts
/// (`Members`, `users::resolve`), some perhaps left out (confirmed before,
/// or batches already sent): each is found by reading on through the parts
/// from where the one before it was found, comparing strings, no table
/// needed. Should a hash not be found that way, a table of every member's
/// first part answers from then on.
struct Labels<'a> {
    parts: &'a [crate::config::Part],
    users: &'a std::collections::BTreeMap<String, String>,
    /// Where reading stopped: a part, and a member in it.
    part: usize,
    at: usize,
    table: Option<std::collections::HashMap<&'a str, Label<'a>, foldhash::fast::RandomState>>,
}

impl<'a> Labels<'a> {
    fn new(entry: &'a Entry, spec: &'a RunSpec) -> Labels<'a> {
        Labels {
            parts: &entry.parts,
            users: &spec.users,
            part: 0,
            at: 0,
            table: None,
        }
    }

    /// The hash `member` stands for (a user's, when looked up), and the
    /// user.
    fn hash_of(&self, member: &'a str) -> Option<(&'a str, Option<&'a str>)> {
        match member_user(member) {
            None => Some((member, None)),
            Some(name) => self.users.get(name).map(|h| (h.as_str(), Some(name))),
        }
    }

    fn label(&mut self, hash: &str) -> Option<Label<'a>> {
        if let Some(table) = &self.table {
            return table.get(hash).copied();
        }
        while let Some((_, members)) = self.parts.get(self.part) {
            while let Some(member) = members.get(self.at) {
                self.at += 1;
                if let Some((found, user)) = self.hash_of(member)
                    && found == hash
                {
                    return Some((self.part, user));
                }
            }
            self.part += 1;
            self.at = 0;
        }
        let mut table =
            std::collections::HashMap::with_hasher(foldhash::fast::RandomState::default());
        for (index, (_, members)) in self.parts.iter().enumerate() {
            for member in members.iter() {
                if let Some((found, user)) = self.hash_of(member) {
                    table.entry(found).or_insert((index, user));
                }
            }
        }
        self.table.insert(table).get(hash).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Inputs, Users, plan};
    use crate::status::Status;
    use crate::users::{Directory, SubUser};

    const CONFIG: &str = "apiVersion: resetd/v1\nkind: SessionResets\nsettings: {batchSize: 2}
groups:
  g: {hashes: [h1, h2], users: [gu], include: [inner]}
  inner: {hashes: [h3, h1]}
resets:
  - {id: r, groups: [g], hashes: [h2, h4], users: [eu, gu]}
";

    fn config() -> crate::config::Config {
        let loaded = crate::config::parse("t.yaml", CONFIG, chrono::Utc::now());
        loaded
            .config
            .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
    }

    fn spec(config: &crate::config::Config, users: Users) -> RunSpec {
        let inputs = Inputs {
            users,
            ..Inputs::new(false)
        };
        let p = plan(config, &Status::default(), chrono::Utc::now(), &inputs);
        match &p.entries[0].action {
            Action::Run(spec) => (**spec).clone(),
            other => panic!("{other:?}"),
        }
    }

    /// `(hashes, part index, user)` per segment.
    fn shown<'a>(entry: &Entry, sent: &'a Sent<'_>) -> Vec<(Vec<&'a str>, usize, Option<String>)> {
        sent.segments()
            .map(|(from, hashes)| {
                let from = from.unwrap();
                let part = entry
                    .parts
                    .iter()
                    .position(|(o, _)| std::ptr::eq(o, from.origin))
                    .unwrap();
                (
                    hashes.iter().map(|h| h.as_str()).collect(),
                    part,
                    from.user.map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn each_hash_is_labelled_with_the_part_that_made_it_be_sent() {
        let config = config();
        let entry = &config.resets[0];
        let directory = Directory::new(
            vec![
                SubUser {
                    username: "gu".into(),
                    hash: "hg".into(),
                },
                // A user whose hash a group sends already: sent once, as the group's.
                SubUser {
                    username: "eu".into(),
                    hash: "h3".into(),
                },
            ],
            None,
        );
        let spec = spec(&config, Users::Fetched(std::sync::Arc::new(directory)));
        let sent = Sent::of(entry, &spec);
        // Parts: 0 = group g, 1 = own hashes, 2 = own users.
        assert_eq!(
            shown(entry, &sent),
            [
                (vec!["h1", "h2"], 0, None),
                (vec!["hg"], 0, Some("gu".into())),
                (vec!["h3"], 0, None),
                (vec!["h4"], 1, None),
            ]
        );
        assert!(sent.hashes().iter().copied().eq(spec.hashes.iter()));
        assert_eq!(
            *sent.counts(),
            Counts {
                groups: 4,
                hashes: 1,
                users: 0,
                unresolved_users: 0
            }
        );
        assert_eq!(sent.by_group(), [("g", 4)]);
        assert!(sent.unresolved().is_empty());
    }

    #[test]
    fn users_not_looked_up_are_named_once_and_given_no_hash() {
        let config = config();
        let entry = &config.resets[0];
        let spec = spec(&config, Users::NotFetched);
        let sent = Sent::of(entry, &spec);
        assert_eq!(
            sent.hashes(),
            ["h1", "h2", "h3", "h4"].map(String::from).each_ref()
        );
        let unresolved: Vec<(&Origin, Option<&str>)> = sent
            .unresolved()
            .iter()
            .map(|s| (s.origin, s.user))
            .collect();
        assert_eq!(
            unresolved,
            [
                (&Origin::Group("g".into()), Some("gu")),
                (&Origin::Users, Some("eu"))
            ]
        );
        assert_eq!(sent.counts().unresolved_users, 2);
    }

    #[test]
    fn a_resumed_run_shows_the_batches_it_still_sends() {
        let config = config();
        let entry = &config.resets[0];
        let mut spec = spec(&config, Users::NotFetched);
        let progress = crate::status::RunProgress {
            started_at: chrono::Utc::now(),
            slot: None,
            revision: 0,
            spec_digest: entry.spec_digest.clone(),
            hashes_digest: spec.hashes_digest.clone(),
            hash_count: spec.hashes.len(),
            batch_size: 2,
            batches: 2,
            next_batch: 1,
            in_flight: None,
            failed_batches: Vec::new(),
            requests: 1,
            last_error: None,
            cause: None,
        };
        spec.resume = Some(progress);
        let sent = Sent::of(entry, &spec);
        assert_eq!(first_sent(&spec), 2);
        assert_eq!(sent.hashes(), ["h3", "h4"].map(String::from).each_ref());
        assert_eq!((sent.counts().groups, sent.counts().hashes), (1, 1));
    }
}
