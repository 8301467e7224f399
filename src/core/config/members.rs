//! An entry's members, merged lazily: the lists of its groups, then its own
//! hashes and users, each member once, in order of first appearance.
//!
//! An entry naming several groups used to hold its own merged copy of their
//! hashes: 10,000 entries naming two 1,000-hash groups held 20,000,000
//! strings (1.6 GB). Here it holds the groups' shared lists; the merged list
//! exists only while that entry's run needs it.

use std::sync::Arc;

/// A set of strings with a fast, randomly seeded hash (lists can hold a
/// million hashes; the seed keeps crafted collisions from slowing CI down).
type FastSet<'a> = std::collections::HashSet<&'a str, foldhash::fast::RandomState>;

/// Cheap to clone: the parts are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Invariant: when there is one part, it holds no repeats.
    parts: Arc<[Arc<[String]>]>,
    len: usize,
}

impl Default for Members {
    fn default() -> Self {
        Members::one(Arc::from(Vec::new()))
    }
}

impl Members {
    /// `list`, which holds no repeats, shared as it is.
    pub fn one(list: Arc<[String]>) -> Members {
        Members {
            len: list.len(),
            parts: Arc::from(vec![list]),
        }
    }

    /// `parts` in order, each member at its first appearance.
    pub fn new(mut parts: Vec<Arc<[String]>>) -> Members {
        parts.retain(|p| !p.is_empty());
        let mut seen = FastSet::default();
        let len = parts
            .iter()
            .flat_map(|p| p.iter())
            .filter(|m| seen.insert(m.as_str()))
            .count();
        drop(seen);
        match parts.as_slice() {
            [] => Members::default(),
            [one] if one.len() == len => Members::one(Arc::clone(one)),
            [one] => {
                let mut seen = FastSet::default();
                Members::one(
                    one.iter()
                        .filter(|m| seen.insert(m.as_str()))
                        .cloned()
                        .collect(),
                )
            }
            _ => Members {
                parts: parts.into(),
                len,
            },
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members, each once, in order.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        let single = self.parts.len() == 1;
        let mut seen = FastSet::default();
        self.parts
            .iter()
            .flat_map(|p| p.iter())
            .filter(move |m| single || seen.insert(m.as_str()))
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().cloned().collect()
    }

    /// The merged list: the one part itself, shared, or a new list.
    pub fn to_arc(&self) -> Arc<[String]> {
        match &*self.parts {
            [one] => Arc::clone(one),
            _ => self.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Arc<[String]> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parts_merge_in_order_each_member_once() {
        let a = list(&["h1", "h2"]);
        let m = Members::new(vec![a.clone(), list(&["h2", "h3"]), list(&["h1", "@u"])]);
        assert_eq!(m.len(), 4);
        assert_eq!(*m.to_arc(), ["h1", "h2", "h3", "@u"]);
        assert_eq!(m.iter().count(), 4);
        // One part without repeats is shared, not copied.
        assert!(Arc::ptr_eq(&Members::new(vec![a.clone()]).to_arc(), &a));
        // One part with repeats is merged.
        let m = Members::new(vec![list(&["h1", "h1"])]);
        assert_eq!((m.len(), m.iter().count()), (1, 1));
        assert!(Members::new(vec![list(&[]), list(&[])]).is_empty());
    }
}
