//! What each receiver type is sent (SPEC §6): the webhook JSON body and its
//! signature, the Slack text, the GitHub commit status. Pure: no I/O, so
//! every format is tested from values.

use hmac::Mac as _;

use super::{Event, EventKind};

/// The signature header of a signed webhook.
pub const SIGNATURE_HEADER: &str = "X-Resetd-Signature";

/// GitHub refuses a longer status description.
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// The webhook body: the event as JSON (field names in SPEC §6).
pub fn webhook_body(event: &Event) -> Vec<u8> {
    // Serializing plain fields and chrono instants cannot fail.
    serde_json::to_vec(event).unwrap_or_default()
}

/// `sha256=<lowercase hex HMAC-SHA256 of body under key>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so `new_from_slice` cannot fail; a
    // failure would send no signature, which a receiver refuses.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The Slack body: `{"text": ...}`.
pub fn slack_body(event: &Event) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "text": slack_text(event) })).unwrap_or_default()
}

/// One message naming the event, the entry and the outcome, then the
/// message and the revision. `&`, `<` and `>` are escaped as Slack asks, so
/// a message cannot turn into a link or a mention.
pub fn slack_text(event: &Event) -> String {
    let mut text = format!("resetd *{}*", event.kind);
    match (&event.entry, event.kind) {
        (_, EventKind::ConfigRejected) => {
            text.push_str(" · the new config was refused; the last good config still runs");
        }
        (Some(entry), _) => {
            text.push_str(&format!(" · entry `{}`", escape(entry)));
            if let Some(revision) = event.revision {
                text.push_str(&format!(" (revision {revision})"));
            }
            text.push_str(&format!(" · {}", outcome(event)));
        }
        (None, _) => text.push_str(&format!(" · {}", outcome(event))),
    }
    if !event.message.is_empty() {
        text.push_str(&format!("\n> {}", escape(&event.message)));
    }
    if let Some(source) = &event.source_revision {
        text.push_str(&format!("\nsource revision `{}`", escape(source)));
    }
    text
}

/// What happened to the hashes, in words.
fn outcome(event: &Event) -> String {
    let requests = match event.requests {
        1 => "1 request".to_owned(),
        n => format!("{n} requests"),
    };
    match event.kind {
        EventKind::DryRun => format!(
            "dry run: {} hashes would be reset, nothing sent",
            event.hashes
        ),
        EventKind::AuthError => format!(
            "the API refused the token; {}/{} hashes confirmed, {requests}",
            event.confirmed, event.hashes
        ),
        _ => format!(
            "{}/{} hashes confirmed, {requests}",
            event.confirmed, event.hashes
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A GitHub commit status (`POST /repos/{repository}/statuses/{sha}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitStatus {
    pub state: &'static str,
    pub context: String,
    pub description: String,
}

impl CommitStatus {
    pub fn of(event: &Event) -> CommitStatus {
        let state = match event.kind {
            EventKind::Succeeded | EventKind::DryRun => "success",
            EventKind::Failed | EventKind::Expired | EventKind::AuthError => "failure",
            EventKind::ConfigRejected => "error",
        };
        // A status about no entry (a refused token before any entry ran)
        // still needs a context that a branch protection rule can name.
        let context = match (event.kind, &event.entry) {
            (EventKind::ConfigRejected, _) => "resetd/config".to_owned(),
            (_, Some(entry)) => format!("resetd/{entry}"),
            (_, None) => "resetd".to_owned(),
        };
        let summary = match event.kind {
            EventKind::ConfigRejected => "config rejected".to_owned(),
            _ => outcome(event),
        };
        let description = if event.message.is_empty() {
            summary
        } else {
            format!("{summary}: {}", event.message)
        };
        CommitStatus {
            state,
            context,
            description: truncate(&description, MAX_DESCRIPTION_CHARS),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// At most `max` characters, the last one `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            kind,
            entry: Some("nightly-eu".into()),
            revision: Some(3),
            phase: Some(format!("{kind}")),
            hashes: 10,
            confirmed: 4,
            requests: 2,
            message: "HTTP 500 from the API <b>".into(),
            started_at: None,
            completed_at: None,
            config_digest: None,
            source_revision: Some("0123abc".into()),
        }
    }

    #[test]
    fn commit_status_state_and_context_per_event() {
        for (kind, state) in [
            (EventKind::Succeeded, "success"),
            (EventKind::DryRun, "success"),
            (EventKind::Failed, "failure"),
            (EventKind::Expired, "failure"),
            (EventKind::AuthError, "failure"),
            (EventKind::ConfigRejected, "error"),
        ] {
            let status = CommitStatus::of(&event(kind));
            assert_eq!(status.state, state, "{kind}");
            let context = if kind == EventKind::ConfigRejected {
                "resetd/config"
            } else {
                "resetd/nightly-eu"
            };
            assert_eq!(status.context, context);
        }
    }

    #[test]
    fn a_long_description_is_cut_to_githubs_limit() {
        let mut e = event(EventKind::Failed);
        e.message = "é".repeat(500);
        let d = CommitStatus::of(&e).description;
        assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(d.ends_with('…'));
        assert_eq!(truncate("short", 140), "short");
        assert_eq!(truncate(&"x".repeat(140), 140), "x".repeat(140));
    }

    #[test]
    fn slack_text_names_event_entry_outcome_and_escapes() {
        let text = slack_text(&event(EventKind::Failed));
        assert_eq!(
            text,
            "resetd *Failed* · entry `nightly-eu` (revision 3) · 4/10 hashes confirmed, \
             2 requests\n> HTTP 500 from the API &lt;b&gt;\nsource revision `0123abc`"
        );
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
