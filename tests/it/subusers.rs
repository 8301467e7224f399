//! Sub-users by name (SPEC §2a) against the fake API, which pages its
//! answers and puts a password in every record, as the real one does.

use crate::fake_api::{FakeApi, Reply, SUBUSER_PASSWORD};
use crate::support::{TOKEN, Workspace, resetd, run};

/// `n` sub-users, `user-000`… with hashes `01SUB…` (26 characters).
pub(crate) fn account(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("user-{i:03}"), format!("01SUB{i:021}")))
        .collect()
}

fn subusers(api: &FakeApi, format: &str) -> (i32, String, String) {
    let mut cmd = resetd();
    cmd.env("IPROYAL_API_TOKEN", TOKEN).args([
        "subusers",
        "--api-base",
        &api.base(),
        "--format",
        format,
    ]);
    let out = run(&mut cmd);
    for text in [&out.1, &out.2] {
        assert!(
            !text.contains(SUBUSER_PASSWORD),
            "a password was printed:\n{text}"
        );
        assert!(!text.contains(TOKEN), "the token was printed:\n{text}");
    }
    out
}

#[test]
fn subusers_lists_every_page_in_each_format_and_never_a_password() {
    let api = FakeApi::start();
    api.subusers(account(250));

    let (code, table, stderr) = subusers(&api, "table");
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["USERNAME", "HASH"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["user-000", "01SUB000000000000000000000"]
    );
    assert!(lines[250].starts_with("user-249 "), "{}", lines[250]);
    assert_eq!(lines[251], "250 sub-user(s)");
    // Three pages of 100, each asked for once, all reads.
    let asked: Vec<String> = api
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        asked,
        (1..=3)
            .map(|p| format!("GET /v1/residential-subusers?page={p}&per_page=100"))
            .collect::<Vec<_>>()
    );
    assert!(
        api.requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );

    let (code, json, _) = subusers(&api, "json");
    assert_eq!(code, 0);
    let users: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(users.len(), 250);
    assert_eq!(
        users[7],
        serde_json::json!({"username": "user-007", "hash": "01SUB000000000000000000007"})
    );

    // The yaml snippet is a config's `groups:`: with resets that name its
    // groups, `validate` accepts it.
    let (code, yaml, _) = subusers(&api, "yaml");
    assert_eq!(code, 0);
    assert!(
        yaml.starts_with("groups:\n  user-000:\n    users: [user-000]  # hash 01SUB"),
        "{yaml}"
    );
    let ws = Workspace::new(&format!(
        "{yaml}resets:\n  - id: all\n    groups: [{}]\n",
        (0..250)
            .map(|i| format!("user-{i:03}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let (code, out, err) = run(resetd().arg("validate").arg(&ws.config));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn subusers_needs_the_token_and_reports_a_refusal_naming_the_url() {
    let api = FakeApi::start();
    let (code, _, stderr) = run(resetd().args(["subusers", "--api-base", &api.base()]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("IPROYAL_API_TOKEN"), "{stderr}");
    assert!(api.requests().is_empty());

    api.script_gets([Reply::Json(401, r#"{"message":"Unauthenticated."}"#.into())]);
    let (code, _, stderr) = subusers(&api, "table");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "HTTP 401 from {}/residential-subusers?page=1",
            api.base()
        )),
        "{stderr}"
    );
}

#[test]
fn a_passing_error_on_a_page_is_retried_and_a_hostile_answer_is_refused() {
    let api = FakeApi::start();
    api.subusers(account(150));
    // Page 2 fails once with a 503: retried, and the listing is complete.
    api.script_gets([Reply::Json(200, String::new())].into_iter().take(0));
    let (code, table, stderr) = subusers(&api, "json");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&table)
            .unwrap()
            .len(),
        150
    );

    api.script_gets([Reply::Status(503)]);
    let (code, json, stderr) = subusers(&api, "json");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&json)
            .unwrap()
            .len(),
        150
    );

    // A page that is not the documented JSON, or that claims a million pages.
    api.script_gets([Reply::Json(200, r#"{"data": "nope"}"#.into())]);
    let (code, _, stderr) = subusers(&api, "table");
    assert_eq!(code, 2);
    assert!(stderr.contains("unexpected answer from"), "{stderr}");
    let endless = serde_json::json!({
        "data": [{"username": "u", "hash": "H", "password": SUBUSER_PASSWORD}],
        "meta": {"current_page": 1, "last_page": 99_999_999u64}
    })
    .to_string();
    api.default_reply(Reply::Json(200, endless.clone()));
    api.script_gets(std::iter::repeat_n(Reply::Json(200, endless), 10_000));
    let (code, _, stderr) = subusers(&api, "table");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("resetd reads at most 10000 pages"),
        "{stderr}"
    );
}

/// The status file and every output of a run, which must hold no password.
fn assert_no_password(ws: &Workspace, outputs: &[&str]) {
    let status = std::fs::read_to_string(&ws.status).unwrap_or_default();
    for text in outputs.iter().chain([&status.as_str()]) {
        assert!(
            !text.contains(SUBUSER_PASSWORD),
            "a password leaked:\n{text}"
        );
    }
}

#[test]
fn users_resolve_across_pages_in_order_and_the_history_keeps_them() {
    let api = FakeApi::start();
    api.subusers(account(250));
    // Order of first appearance: the group's hashes, its users, its
    // includes; then the entry's own hashes, then its users. user-001's
    // hash is also listed as a hash: sent once.
    let ws = Workspace::new(
        "settings:\n  batchSize: 1000\ngroups:\n  g:\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    users: [user-249, user-001]\n    include: [h]\n  h:\n    users: [user-120]\nresets:\n  - id: r1\n    groups: [g]\n    hashes: [01SUB000000000000000000001, 01HQ5K3P97DY8EX9Y90YT1K6XA]\n    users: [user-000, user-249]\n",
    );
    let (code, stdout, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_no_password(&ws, &[&stdout, &stderr]);
    let deletes: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].sent(),
        [
            "01H7YCG0R9GYY1YCPS2S4QA6WB",
            "01SUB000000000000000000249",
            "01SUB000000000000000000001",
            "01SUB000000000000000000120",
            "01HQ5K3P97DY8EX9Y90YT1K6XA",
            "01SUB000000000000000000000",
        ]
    );
    let gets = api.requests().iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 3, "every page once, once per run");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.hash_count, 6);
    let users = &st.history[0].users;
    assert_eq!(users.len(), 4);
    assert_eq!(users["user-120"], "01SUB000000000000000000120");
}

#[test]
fn an_unknown_user_fails_its_entry_before_any_delete_and_others_run() {
    let api = FakeApi::start();
    api.subusers(account(120));
    let ws = Workspace::new(
        "resets:\n  - id: typo\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    users: [user-001, user-9999]\n  - id: fine\n    users: [user-002]\n",
    );
    let (code, stdout, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_no_password(&ws, &[&stdout, &stderr]);
    // The summary counts the failure as one, not as waiting.
    assert!(
        stdout.contains("1 to run, 0 dry run(s), 1 failing before sending, 0 waiting"),
        "{stdout}"
    );
    let sent: Vec<Vec<String>> = api.deletes();
    assert_eq!(
        sent,
        [["01SUB000000000000000000002"]],
        "nothing of `typo` was sent"
    );
    let status = ws.status();
    let typo = &status.resets["typo"];
    assert_eq!(typo.phase, resetd::status::Phase::Failed);
    let error = typo.last_error.as_deref().unwrap();
    assert!(error.contains("unknown user(s) `user-9999`"), "{error}");
    assert_eq!(
        (typo.next_retry_at, &typo.retrying),
        (None, &None),
        "not retried on its own"
    );
    assert_eq!(typo.history[0].requests, 0);
    assert_eq!(
        status.resets["fine"].phase,
        resetd::status::Phase::Succeeded
    );

    // Not retried until changed; fixed, it runs.
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    ws.write_config(
        "resets:\n  - id: typo\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    users: [user-001, user-099]\n  - id: fine\n    users: [user-002]\n",
    );
    assert_eq!(ws.run_once(&api.base(), &[]).0, 0);
    assert_eq!(
        ws.status().resets["typo"].phase,
        resetd::status::Phase::Succeeded
    );
}

#[test]
fn a_dry_run_without_a_token_leaves_users_unresolved_and_asks_nothing() {
    let api = FakeApi::start();
    api.subusers(account(3));
    let ws = Workspace::new(
        "resets:\n  - id: r1\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n    users: [user-001, user-002]\n",
    );
    let mut cmd = resetd();
    cmd.env("RESETD_API_BASE", api.base())
        .args(["run", "--once", "--dry-run", "--config"])
        .arg(&ws.config);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("2 user(s) left unresolved"), "{stdout}");
    assert!(api.requests().is_empty());
    assert_eq!(
        ws.status().resets["r1"].phase,
        resetd::status::Phase::DryRun
    );

    // A real run without a token: exit 2 before any request.
    let mut cmd = resetd();
    cmd.env("RESETD_API_BASE", api.base())
        .args(["run", "--once", "--config"])
        .arg(&ws.config);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(api.requests().is_empty());
}

#[test]
fn a_failed_lookup_fails_the_entry_passingly_and_sends_nothing_of_it() {
    let api = FakeApi::start();
    api.subusers(account(3));
    api.script_gets(std::iter::repeat_n(Reply::Status(503), 5));
    let ws = Workspace::new(
        "resets:\n  - id: r1\n    users: [user-001]\n  - id: plain\n    hashes: [01H7YCG0R9GYY1YCPS2S4QA6WB]\n",
    );
    let (code, stdout, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let st = &ws.status().resets["r1"];
    assert_eq!(st.phase, resetd::status::Phase::Failed);
    assert!(
        st.last_error
            .as_deref()
            .unwrap()
            .contains("cannot look up its users")
    );
    assert!(
        st.next_retry_at.is_some(),
        "a passing failure: retried on its own"
    );
    let deletes = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "only `plain` was sent");
}

/// `plan --resolve` with the token against the fake API.
fn plan_resolve(ws: &Workspace, api: &FakeApi, format: &str) -> (i32, String, String) {
    let mut cmd = ws.command(&api.base());
    cmd.args(["plan", "--resolve", "--format", format, "--config"])
        .arg(&ws.config);
    let out = ws.run_checked(&mut cmd);
    assert_no_password(ws, &[&out.1, &out.2]);
    out
}

#[test]
fn plan_resolve_names_every_hash_and_flags_an_unknown_one_in_every_format() {
    let api = FakeApi::start();
    api.subusers(account(150))
        .own_hash("01OWN00000000000000000000A");
    let ws = Workspace::new(
        "resets:\n  - id: r1\n    hashes: [01SUB000000000000000000140, 01OWN00000000000000000000A, 01TYPO0000000000000000000Z]\n    users: [user-007]\n",
    );

    let (code, human, stderr) = plan_resolve(&ws, &api, "human");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        human.contains("01SUB000000000000000000140  user-140"),
        "{human}"
    );
    assert!(
        human.contains("01OWN00000000000000000000A  the account itself"),
        "{human}"
    );
    assert!(
        human.contains("01SUB000000000000000000007  user-007"),
        "{human}"
    );
    assert!(
        human.contains("01TYPO0000000000000000000Z  UNKNOWN")
            && human.contains("warning: `r1`: hash `01TYPO0000000000000000000Z` is neither"),
        "{human}"
    );

    let (code, json, _) = plan_resolve(&ws, &api, "json");
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["unknownHashes"], 1);
    let owners = &value["entries"][0]["owners"];
    assert_eq!(
        owners[0],
        serde_json::json!({"hash": "01SUB000000000000000000140", "kind": "subuser", "user": "user-140"})
    );
    assert_eq!(owners[1]["kind"], "account");
    assert_eq!(
        owners[2],
        serde_json::json!({"hash": "01TYPO0000000000000000000Z", "kind": "unknown", "user": null})
    );
    assert_eq!(owners[3]["user"], "user-007");
    assert_eq!(value["entries"][0]["hashCount"], 4, "the user resolved");

    let (code, markdown, _) = plan_resolve(&ws, &api, "markdown");
    assert_eq!(code, 0);
    assert!(
        markdown.contains("> **Warning:** `r1`: hash `01TYPO0000000000000000000Z` is neither"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `01SUB000000000000000000140` | user-140 |"),
        "{markdown}"
    );

    // Only reads, and nothing was sent or written.
    assert!(api.requests().iter().all(|r| r.method == "GET"));
    assert!(api.requests().iter().any(|r| r.path == "/v1/me"));
    assert!(!ws.status.exists());
}

#[test]
fn plan_resolve_flags_an_unknown_user_and_plain_plan_needs_no_token() {
    let api = FakeApi::start();
    api.subusers(account(2));
    let ws = Workspace::new("resets:\n  - id: r1\n    users: [user-001, nobody-here]\n");
    let (code, json, _) = plan_resolve(&ws, &api, "json");
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["entries"][0]["unknownUsers"],
        serde_json::json!(["nobody-here"])
    );
    assert_eq!(value["entries"][0]["action"], "fail");

    // Without --resolve: no token read, no request.
    let (code, out, err) = run(resetd().args(["plan", "--config"]).arg(&ws.config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("r1"));
    assert_eq!(api.requests().len(), 2, "only the two reads of --resolve");
}
