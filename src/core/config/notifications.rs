//! `notifications:`: receivers declared in the reviewed file, their secrets
//! named, never read here (`validate` must not need them).

use serde_json::Value;

use super::part::{at, key, part};
use super::report::Report;
use super::types::{Notification, ReceiverType, SecretFrom};
use crate::yaml::{Pos, Seg};

/// The receivers of one file, each with where its `name` is, and whether
/// every one is sound: with the fields its type needs and none it does not
/// use. Names are unique across the files of a config: `merge` checks that.
pub(super) fn check(
    section: Option<Value>,
    report: &mut Report,
) -> (Vec<(Notification, Pos)>, bool) {
    let Some(Value::Array(items)) = section else {
        return (Vec::new(), true);
    };
    let mut complete = true;
    let mut receivers = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = vec![key("notifications"), Seg::Index(i)];
        // A receiver the schema refused is not started; its other fields
        // are still checked, so every problem shows in one run.
        let Some((receiver, clean)) = part::<Notification>(item, &path, report) else {
            complete = false;
            continue;
        };
        complete &= clean;
        let name_pos = report.pos_of(&at(&path, key("name")));
        let kind = match receiver.kind {
            ReceiverType::Slack => "slack",
            ReceiverType::Webhook => "webhook",
            ReceiverType::Github => "github",
        };
        // A receiver's secret is sent to where the receiver says: the API
        // token must never be one (any file of a config directory may
        // declare receivers, reviewed by its own team only).
        for (field, source) in [
            ("urlFrom", &receiver.url_from),
            ("secretFrom", &receiver.secret_from),
            ("tokenFrom", &receiver.token_from),
        ] {
            if let Some(SecretFrom::Env(name)) = source
                && name == super::API_TOKEN_ENV
            {
                report.error(
                    &at(&path, key(field)),
                    format!(
                        "`{field}` names the IPRoyal API token (`{}`): a receiver may never \
                         be given it",
                        super::API_TOKEN_ENV
                    ),
                );
                complete = false;
            }
        }
        let fields = [
            ("urlFrom", receiver.url_from.is_some()),
            ("secretFrom", receiver.secret_from.is_some()),
            ("tokenFrom", receiver.token_from.is_some()),
            ("repository", receiver.repository.is_some()),
            ("apiBase", receiver.api_base.is_some()),
        ];
        let (needed, allowed): (&[&str], &[&str]) = match receiver.kind {
            ReceiverType::Slack => (&["urlFrom"], &["urlFrom"]),
            ReceiverType::Webhook => (&["urlFrom"], &["urlFrom", "secretFrom"]),
            ReceiverType::Github => (
                &["repository", "tokenFrom"],
                &["repository", "tokenFrom", "apiBase"],
            ),
        };
        for (field, present) in fields {
            if present && !allowed.contains(&field) {
                report.error(
                    &at(&path, key(field)),
                    format!("`{field}` is not used by a `{kind}` receiver"),
                );
                complete = false;
            } else if !present && needed.contains(&field) {
                report.error(&path, format!("a `{kind}` receiver needs `{field}`"));
                complete = false;
            }
        }
        if receiver.on.is_empty() {
            report.warning(
                &at(&path, key("on")),
                format!(
                    "receiver `{}` is sent no event (`on` is empty)",
                    receiver.name
                ),
            );
        }
        receivers.push((receiver, name_pos));
    }
    (receivers, complete)
}
