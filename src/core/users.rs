//! Sub-users by name (SPEC §2a): the directory `users:` entries resolve
//! through, and who a hash belongs to.
//!
//! Pure: `api` fetches the records, this module only keeps and answers.
//!
//! # Guarantees
//! - A sub-user is only ever its `username` and `hash`. The API's records
//!   also carry a password and traffic figures; `SubUser` has no field for
//!   them, so serde skips them while reading and nothing can keep, log or
//!   print them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Members, member_user};

/// One sub-user, as resetd keeps it. Deserialised leniently: every other
/// field of the API's record (password, traffic, the deprecated `id`) is
/// skipped unread.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SubUser {
    pub username: String,
    pub hash: String,
}

/// Whose a hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    SubUser(&'a str),
    /// The account's own `residential_user_hash`.
    Account,
    /// Neither: most likely a typo, or a sub-user that was deleted.
    Unknown,
}

/// The account's sub-users, by name and by hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    users: Vec<SubUser>,
    by_name: HashMap<String, usize>,
    by_hash: HashMap<String, usize>,
    /// The account's own hash, when it was asked for (`plan --resolve`).
    own_hash: Option<String>,
}

impl Directory {
    pub fn new(users: Vec<SubUser>, own_hash: Option<String>) -> Self {
        let mut by_name = HashMap::with_capacity(users.len());
        let mut by_hash = HashMap::with_capacity(users.len());
        for (i, user) in users.iter().enumerate() {
            // The API lists each username once; should it not, the first wins,
            // as it would for a reviewer reading the list top down.
            by_name.entry(user.username.clone()).or_insert(i);
            by_hash.entry(user.hash.clone()).or_insert(i);
        }
        Directory {
            users,
            by_name,
            by_hash,
            own_hash,
        }
    }

    /// The hash of the sub-user called `username`.
    pub fn hash_of(&self, username: &str) -> Option<&str> {
        self.by_name
            .get(username)
            .map(|&i| self.users[i].hash.as_str())
    }

    pub fn owner_of(&self, hash: &str) -> Owner<'_> {
        if let Some(&i) = self.by_hash.get(hash) {
            Owner::SubUser(&self.users[i].username)
        } else if self.own_hash.as_deref() == Some(hash) {
            Owner::Account
        } else {
            Owner::Unknown
        }
    }

    pub fn users(&self) -> &[SubUser] {
        &self.users
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// An entry's member list (`config::Entry::hashes`) with its users looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Every user was found: the hashes to send, each once, in order of
    /// first appearance, and which user each looked-up hash came from.
    Hashes {
        hashes: Members,
        users: Arc<BTreeMap<String, String>>,
    },
    /// No directory to look users up in: the entry's own hashes, and how
    /// many users are left out.
    Unresolved { hashes: Members, users: usize },
    /// These usernames match no sub-user.
    Unknown(Vec<String>),
}

/// Look the users among `members` (`users` of them) up in `directory`.
pub fn resolve(members: &Members, users: usize, directory: Option<&Directory>) -> Resolved {
    if users == 0 {
        return Resolved::Hashes {
            hashes: members.clone(),
            users: Arc::default(),
        };
    }
    let Some(directory) = directory else {
        let hashes = members
            .iter()
            .filter(|m| member_user(m).is_none())
            .cloned()
            .collect();
        return Resolved::Unresolved {
            hashes: Members::one(hashes),
            users,
        };
    };
    let mut unknown = Vec::new();
    let mut found = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
    let mut hashes = Vec::with_capacity(members.len());
    for member in members.iter() {
        let hash = match member_user(member) {
            Some(name) => match directory.hash_of(name) {
                Some(hash) => {
                    found.insert(name.to_owned(), hash.to_owned());
                    hash
                }
                None => {
                    unknown.push(name.to_owned());
                    continue;
                }
            },
            None => member.as_str(),
        };
        // A user's hash may also be listed as a hash: sent once.
        if seen.insert(hash) {
            hashes.push(hash.to_owned());
        }
    }
    if unknown.is_empty() {
        Resolved::Hashes {
            hashes: Members::one(hashes.into()),
            users: Arc::new(found),
        }
    } else {
        Resolved::Unknown(unknown)
    }
}

/// The longest username a config may name.
pub const MAX_USERNAME_CHARS: usize = 128;

/// Whether a config can name this sub-user in `users:` (SPEC §2a: non-empty,
/// at most 128 characters, no whitespace or control characters).
pub fn nameable(username: &str) -> bool {
    !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && !username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
}

/// A `groups:` snippet ready to paste into a config: one group per sub-user,
/// named after it (lower-cased, other characters as `-`, to fit the group
/// name pattern), naming it by `users:` with its hash in a comment; a
/// username a config cannot name (it has spaces, say) is listed by hash.
pub fn groups_snippet(users: &[SubUser]) -> String {
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut out = String::from("groups:\n");
    for user in users {
        let base = group_name(&user.username);
        let count = taken.entry(base.clone()).or_insert(0);
        *count += 1;
        let name = if *count == 1 {
            base
        } else {
            format!("{}-{count}", base.chars().take(58).collect::<String>())
        };
        let line = if nameable(&user.username) {
            format!(
                "users: [{}]  # hash {}",
                yaml_scalar(&user.username),
                yaml_scalar(&user.hash)
            )
        } else {
            format!(
                "hashes: [{}]  # sub-user {}",
                yaml_scalar(&user.hash),
                serde_json::to_string(&user.username).unwrap_or_default()
            )
        };
        out.push_str(&format!("  {name}:\n    {line}\n"));
    }
    out
}

/// `username` as a group name (`^[a-z0-9][a-z0-9._-]{0,62}$`).
fn group_name(username: &str) -> String {
    let mut name: String = username
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .take(63)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name = format!("u{}", name.chars().take(62).collect::<String>());
    }
    name
}

/// A flow-sequence item: plain when YAML reads it back as the same string,
/// else double-quoted (JSON escaping is valid YAML).
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric());
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, hash: &str) -> SubUser {
        SubUser {
            username: name.into(),
            hash: hash.into(),
        }
    }

    #[test]
    fn records_keep_only_username_and_hash() {
        let record = r#"{"id": 5, "hash": "01HQ5K3P97DY8EX9Y90YT1K6XA", "username": "subuser_231",
            "password": "asffqwv2f3w4214v", "traffic_available": 0.25, "traffic_used": 0}"#;
        let user: SubUser = serde_json::from_str(record).unwrap();
        assert_eq!(
            user,
            self::user("subuser_231", "01HQ5K3P97DY8EX9Y90YT1K6XA")
        );
        let shown = format!("{user:?} {}", serde_json::to_string(&user).unwrap());
        assert!(!shown.contains("asffqwv2f3w4214v"), "{shown}");
    }

    #[test]
    fn only_names_without_spaces_or_controls_can_be_written_in_a_config() {
        assert!(nameable("scraper-eu-07") && nameable("ünïcode@x") && nameable(&"x".repeat(128)));
        for bad in ["", "a b", "a\tb", "a\u{7}", &"x".repeat(129), "a\u{2003}b"] {
            assert!(!nameable(bad), "{bad:?}");
        }
    }

    fn members(items: &[&str]) -> Members {
        Members::new(vec![items.iter().map(|s| (*s).to_owned()).collect()])
    }

    #[test]
    fn members_resolve_in_order_each_hash_once() {
        let dir = Directory::new(vec![user("a", "HA"), user("b", "H1")], None);
        let list = members(&["H1", "@a", "H2", "@b"]);
        match resolve(&list, 2, Some(&dir)) {
            Resolved::Hashes { hashes, users } => {
                assert_eq!(*hashes.to_arc(), ["H1", "HA", "H2"]);
                assert_eq!(users.get("a").map(String::as_str), Some("HA"));
                assert_eq!(users.get("b").map(String::as_str), Some("H1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            resolve(&members(&["H1", "@x", "@a", "@y"]), 3, Some(&dir)),
            Resolved::Unknown(vec!["x".into(), "y".into()])
        );
        assert_eq!(
            resolve(&list, 2, None),
            Resolved::Unresolved {
                hashes: members(&["H1", "H2"]),
                users: 2
            }
        );
        // No users: the list itself, shared.
        let plain = members(&["H1"]);
        match resolve(&plain, 0, None) {
            Resolved::Hashes { hashes, .. } => {
                assert!(Arc::ptr_eq(&hashes.to_arc(), &plain.to_arc()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_and_hashes_resolve_both_ways() {
        let dir = Directory::new(
            vec![user("a", "H1"), user("b", "H2"), user("a", "H3")],
            Some("OWN".into()),
        );
        assert_eq!(dir.hash_of("a"), Some("H1"));
        assert_eq!(dir.hash_of("c"), None);
        assert_eq!(dir.owner_of("H2"), Owner::SubUser("b"));
        assert_eq!(dir.owner_of("OWN"), Owner::Account);
        assert_eq!(dir.owner_of("H9"), Owner::Unknown);
    }

    #[test]
    fn the_snippet_is_a_config_groups_section() {
        let snippet = groups_snippet(&[
            user("Scraper EU 07", "H1"),
            user("scraper-eu-07", "H2"),
            user("_x", "H3"),
            user("ok.name", "H4"),
        ]);
        assert_eq!(
            snippet,
            "groups:\n  scraper-eu-07:\n    hashes: [H1]  # sub-user \"Scraper EU 07\"\n  \
             scraper-eu-07-2:\n    users: [scraper-eu-07]  # hash H2\n  u_x:\n    \
             users: [\"_x\"]  # hash H3\n  ok.name:\n    users: [ok.name]  # hash H4\n"
        );
    }
}
