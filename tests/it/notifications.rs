//! Notifications (SPEC §6): receivers declared in the reviewed config, their
//! secrets named and never read by `validate`.

use chrono::Utc;
use resetd::config;

use crate::support::{HEAD, Workspace, resetd, run};

const RECEIVERS: &str = "notifications:
  - name: ops-slack
    type: slack
    urlFrom: { env: SLACK_WEBHOOK_URL }
  - name: audit
    type: webhook
    urlFrom: { file: /run/secrets/audit-url }
    secretFrom: { env: AUDIT_HMAC_KEY }
    on: [Succeeded, Failed, DryRun, Expired, AuthError, ConfigRejected]
  - name: commit-status
    type: github
    repository: acme/proxy-ops
    tokenFrom: { env: GITHUB_TOKEN }
    apiBase: https://api.github.com
resets:
  - id: r1
    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]
";

fn diagnostics(body: &str) -> Vec<resetd::diagnostic::Diagnostic> {
    config::parse("resets.yaml", &format!("{HEAD}{body}"), Utc::now()).diagnostics
}

#[test]
fn receivers_of_each_type_validate_without_reading_a_secret() {
    // None of the variables or files exists: validate never reads them.
    let ws = Workspace::new(RECEIVERS);
    let (code, out, err) = run(resetd().arg("validate").arg(&ws.config));
    assert_eq!(code, 0, "{out}{err}");
    let loaded = config::parse("resets.yaml", &format!("{HEAD}{RECEIVERS}"), Utc::now());
    let config = loaded.config.unwrap();
    assert_eq!(config.notifications.len(), 3);
    // `on` defaults to the failures an operator must hear about.
    let on = &config.notifications[0].on;
    assert_eq!(
        format!("{on:?}"),
        "[Failed, Expired, AuthError, ConfigRejected]"
    );
}

#[test]
fn bad_receivers_are_located_errors() {
    let cases = [
        (
            RECEIVERS.replace("name: audit", "name: ops-slack"),
            "duplicate receiver name `ops-slack` (first used on line 5)",
            8,
        ),
        (
            RECEIVERS.replace(
                "    urlFrom: { env: SLACK_WEBHOOK_URL }\n",
                "    urlFrom: { env: SLACK_WEBHOOK_URL }\n    tokenFrom: { env: X }\n",
            ),
            "`tokenFrom` is not used by a `slack` receiver",
            8,
        ),
        (
            RECEIVERS.replace("    repository: acme/proxy-ops\n", ""),
            "a `github` receiver needs `repository`",
            13,
        ),
        (
            RECEIVERS.replace("on: [Succeeded,", "on: [Succeded,"),
            "Succeded",
            12,
        ),
        (RECEIVERS.replace("type: slack", "type: teams"), "teams", 6),
    ];
    for (body, message, line) in cases {
        let found = diagnostics(&body);
        assert!(
            found
                .iter()
                .any(|d| d.is_error() && d.message.contains(message) && d.line == line),
            "{message} at line {line}: {found:#?}"
        );
    }
}
