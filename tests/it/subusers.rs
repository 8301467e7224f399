//! Sub-users by name (SPEC §2a) against the fake API, which pages its
//! answers and puts a password in every record, as the real one does.

use crate::fake_api::{FakeApi, Reply, SUBUSER_PASSWORD};
use crate::support::{TOKEN, resetd, run};

/// `n` sub-users, `user-000`… with hashes `01SUB…` (26 characters).
pub fn account(n: usize) -> Vec<(String, String)> {
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

    let (code, yaml, _) = subusers(&api, "yaml");
    assert_eq!(code, 0);
    assert!(
        yaml.starts_with("groups:\n  user-000:\n    users: [user-000]  # hash 01SUB"),
        "{yaml}"
    );
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
