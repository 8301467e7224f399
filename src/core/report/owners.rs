//! `plan --resolve`: who each hash of each entry belongs to (SPEC §2a), in
//! every format. Pure: the directory was fetched by the shell.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::escape_cell;
use crate::plan::Plan;

/// `plan --resolve`: who each hash of each entry belongs to. Usernames come
/// from the API: they are escaped before they reach a terminal or a PR.
pub struct Owners {
    entries: Vec<EntryOwners>,
}

pub(super) struct EntryOwners {
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

    pub(super) fn warnings(&self) -> Vec<String> {
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

    pub(super) fn entries(&self) -> impl Iterator<Item = &EntryOwners> {
        self.entries.iter()
    }

    /// How many hashes, over all entries, are neither a sub-user's nor the
    /// account's own (the JSON `unknownHashes`).
    pub(super) fn unknown_hashes(&self) -> usize {
        self.entries
            .iter()
            .flat_map(|e| &e.hashes)
            .filter(|(_, o)| matches!(o, Owner::Unknown))
            .count()
    }
}

impl EntryOwners {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn unknown_users(&self) -> &[String] {
        &self.unknown_users
    }

    /// The JSON `owners` of this entry: `[{"hash", "kind", "user"}]`.
    pub(super) fn hashes_json(&self) -> Vec<Value> {
        self.hashes
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
            .collect()
    }
}
