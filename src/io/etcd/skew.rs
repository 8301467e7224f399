//! Config skew: the leader watches the digests its members publish and
//! warns when one has run another config for more than `GRACE` (a rolling
//! update stuck half-way, a member reading an old mount).
//!
//! # Guarantees
//! - One warning per member per digest, however long the skew lasts; a
//!   member back on the leader's digest is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::client::Client;
use super::layout::Keys;
use super::leader::MemberInfo;

/// How long a member may run another config before the leader warns: a
/// rolling update takes a little while.
pub const GRACE: Duration = Duration::from_secs(60);

/// What the leader has seen of the other members' digests.
#[derive(Debug, Default)]
pub struct Skew {
    /// member → (its digest, first seen differing at, warned).
    seen: HashMap<String, (String, Instant, bool)>,
}

impl Skew {
    /// Read the members and warn of any that has run another digest than
    /// `own` for longer than `GRACE`. Read failures are left to the next
    /// look.
    pub async fn check(
        &mut self,
        client: &Client,
        keys: &Keys,
        me: &str,
        own: Option<&str>,
        timeout: Duration,
    ) {
        let Some(own) = own else {
            return;
        };
        let Ok(kvs) = client
            .range_prefix(&keys.members(), 100, super::client::MEMBERS, timeout)
            .await
        else {
            return;
        };
        let prefix = keys.members();
        let mut members = Vec::new();
        for kv in kvs {
            let Some(name) = kv.key.strip_prefix(&prefix) else {
                continue;
            };
            if name == me {
                continue;
            }
            let Some(info) = MemberInfo::read(&kv.value) else {
                continue;
            };
            members.push((name.to_owned(), info.config_digest));
        }
        self.observe(own, members, Instant::now());
    }

    /// The pure half of `check`: which members to warn about now.
    pub fn observe(
        &mut self,
        own: &str,
        members: Vec<(String, Option<String>)>,
        now: Instant,
    ) -> Vec<String> {
        let mut warned = Vec::new();
        let mut present = std::collections::HashSet::new();
        for (name, digest) in members {
            present.insert(name.clone());
            let Some(digest) = digest.filter(|d| d != own) else {
                self.seen.remove(&name);
                continue;
            };
            let slot = self
                .seen
                .entry(name.clone())
                .or_insert_with(|| (digest.clone(), now, false));
            if slot.0 != digest {
                *slot = (digest.clone(), now, false);
            }
            if !slot.2 && now.duration_since(slot.1) > GRACE {
                slot.2 = true;
                tracing::warn!(
                    member = %name, digest = %digest, leader_digest = %own,
                    "config skew: member {name} has run another config ({digest}) than the \
                     leader ({own}) for over {GRACE:?}"
                );
                warned.push(name);
            }
        }
        self.seen.retain(|name, _| present.contains(name));
        warned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_on_another_digest_is_warned_of_once_after_the_grace() {
        let mut skew = Skew::default();
        let t0 = Instant::now();
        let other = || vec![("b".to_owned(), Some("sha256:old".to_owned()))];
        assert!(skew.observe("sha256:new", other(), t0).is_empty());
        assert!(skew.observe("sha256:new", other(), t0 + GRACE).is_empty());
        let later = t0 + GRACE + Duration::from_secs(1);
        assert_eq!(skew.observe("sha256:new", other(), later), ["b"]);
        assert!(
            skew.observe("sha256:new", other(), later + GRACE)
                .is_empty()
        );
        // Back in step, then off again: a new warning after a new grace.
        let same = vec![("b".to_owned(), Some("sha256:new".to_owned()))];
        assert!(skew.observe("sha256:new", same, later).is_empty());
        let again = later + Duration::from_secs(1);
        assert!(skew.observe("sha256:new", other(), again).is_empty());
        assert_eq!(
            skew.observe(
                "sha256:new",
                other(),
                again + GRACE + Duration::from_secs(1)
            ),
            ["b"]
        );
    }
}
