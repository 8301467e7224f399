//! Reading a part of the document (the settings, a group, an entry) into
//! its type, and the paths diagnostics name: shared by the checks of every
//! part (`check`, `groups`, `notifications`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::report::Report;
use crate::yaml::Seg;

pub(super) fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

pub(super) fn at(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

/// Deserialize a part (at `path`) that the schema has already checked, and
/// whether it was clean. When it does not deserialize, the fields with an
/// error at or below them are left out (their defaults stand in) and it is
/// tried again; `None` when even that fails (the schema reported why).
pub(super) fn part<T: DeserializeOwned>(
    v: Value,
    path: &[Seg],
    report: &Report,
) -> Option<(T, bool)> {
    part_fixed(v, path, report, |_| {})
}

/// [`part`], with `fix` putting back what the part cannot do without once
/// its refused fields are left out.
pub(super) fn part_fixed<T: DeserializeOwned>(
    mut v: Value,
    path: &[Seg],
    report: &Report,
    fix: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Option<(T, bool)> {
    if let Ok(t) = T::deserialize(&v) {
        return Some((t, true));
    }
    if let Value::Object(map) = &mut v {
        map.retain(|k, _| !report.has_error_under(&at(path, key(k))));
        fix(map);
    }
    T::deserialize(&v).ok().map(|t| (t, false))
}
