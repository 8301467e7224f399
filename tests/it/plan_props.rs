//! Properties of the planner over generated configs, statuses and clocks: no
//! config `validate` accepts makes it panic, and after a pass at `now` nothing
//! is due again at `now`. Case counts come from `PROPTEST_CASES` (default
//! 256, the CI smoke run).
//!
//! A pass is simulated with the same pure status transitions the executor
//! (`reconcile::Executor::run`) applies, with no API: each batch is confirmed
//! or fails as the generated outcome says.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use resetd::config::{self, Config, Schedule, types};
use resetd::plan::{self, Action, Inputs, Plan};
use resetd::status::Status;

const HASHES: &[&str] = &[
    "01H7YCG0R9GYY1YCPS2S4QA6WB",
    "01HQ5K3P97DY8EX9Y90YT1K6XA",
    "01JY9XKHHPZ984254W236K94PC",
    "02JVRQ5BF83PTW19G1SRD955J0",
];

/// Unix seconds of the ends of the accepted instant range.
const MIN_UNIX: i64 = types::INSTANTS.min_unix;
const MAX_UNIX: i64 = types::INSTANTS.max_unix;

/// Mostly valid values, with the invalid ones just past the bounds (and far
/// past them) often enough that `validate` must refuse them.
fn every() -> impl Strategy<Value = String> {
    let max = types::EVERY.max.as_secs();
    prop_oneof![
        3 => prop::sample::select(vec!["1s", "366d", "31622400s", "1h 30m", "6h"])
            .prop_map(str::to_owned),
        3 => (1..=max).prop_map(|s| format!("{s}s")),
        1 => (max - 3..=max.saturating_add(3)).prop_map(|s| format!("{s}s")),
        1 => prop::sample::select(vec![
            "999ms",
            "0s",
            "366d 1s",
            "367d",
            "31622401s",
            "300000y",
            "18446744073709551615s",
            "18446744073709551616s",
        ])
        .prop_map(str::to_owned),
    ]
}

fn cron() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "* * * * *",
        "0 3 * * *",
        "*/15 2-4 * * MON-FRI",
        "59 23 31 12 *",
        "0 0 29 2 *",
        "0 12 1 1 SUN",
    ])
}

/// An instant as Unix seconds, near the accepted range's ends or anywhere in it.
fn unix() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => MIN_UNIX - 2..=MIN_UNIX + 2,
        1 => MAX_UNIX - 2..=MAX_UNIX + 2,
        3 => MIN_UNIX..=MAX_UNIX,
        3 => 1_790_000_000i64..=1_800_000_000,
    ]
}

/// An RFC 3339 text for `unix`, written with `offset_min` minutes of offset.
fn rfc3339(unix: i64, offset_min: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
    match DateTime::from_timestamp(unix, 0) {
        Some(t) => t
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => "2026-01-01T00:00:00Z".into(),
    }
}

fn instant() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec!["2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
            .prop_map(str::to_owned),
        6 => (unix(), prop_oneof![Just(0), -1439..=1439i32]).prop_map(|(u, o)| rfc3339(u, o)),
        1 => prop::sample::select(vec![
            "1999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-00:01",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+23:59",
        ])
        .prop_map(str::to_owned),
    ]
}

fn trigger() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("    trigger: immediate\n".to_owned()),
        instant().prop_map(|t| format!("    trigger: {{at: \"{t}\"}}\n")),
        every().prop_map(|d| format!("    trigger: {{every: \"{d}\"}}\n")),
        cron().prop_map(|c| format!("    trigger: {{cron: \"{c}\"}}\n")),
    ]
}

fn revision() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u64..4).prop_map(|r| r.to_string()),
        2 => (0..=types::MAX_REVISION).prop_map(|r| r.to_string()),
        1 => prop::sample::select(vec![
            "9007199254740991",
            "9007199254740992",
            "18446744073709551616",
            "1.0",
            "1e1",
            "-1",
        ])
        .prop_map(str::to_owned),
    ]
}

fn entry(i: usize) -> impl Strategy<Value = String> {
    (
        prop::sample::subsequence(HASHES, 0..=HASHES.len()),
        any::<bool>(),
        trigger(),
        prop::option::weighted(0.5, revision()),
        prop::option::weighted(0.3, instant()),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            move |(hashes, in_group, trigger, revision, not_after, suspend, dry_run)| {
                let mut text = format!("  - id: e{i}\n");
                if in_group {
                    text.push_str("    groups: [fleet]\n");
                }
                if !hashes.is_empty() || !in_group {
                    text.push_str(&format!("    hashes: [{}]\n", hashes.join(", ")));
                }
                text.push_str(&trigger);
                if let Some(r) = revision {
                    text.push_str(&format!("    revision: {r}\n"));
                }
                if let Some(t) = not_after {
                    text.push_str(&format!("    notAfter: \"{t}\"\n"));
                }
                if suspend {
                    text.push_str("    suspend: true\n");
                }
                if dry_run {
                    text.push_str("    dryRun: true\n");
                }
                text
            },
        )
}

fn config_text() -> impl Strategy<Value = String> {
    let one_of = |valid: Vec<&'static str>, invalid: Vec<&'static str>| {
        prop_oneof![
            19 => prop::sample::select(valid),
            1 => prop::sample::select(invalid),
        ]
    };
    let settings = (
        any::<bool>(),
        one_of(vec!["1", "2", "100", "10000"], vec!["10001", "2.0", "0"]),
        one_of(vec!["100ms", "30s", "10m"], vec!["10m 1s", "99ms"]),
        one_of(vec!["1ms", "200ms", "30s"], vec!["31s", "999us"]),
    );
    let entries = (0usize..5).prop_flat_map(|n| (0..n).map(entry).collect::<Vec<_>>());
    (settings, entries).prop_map(|((dry, batch, timeout, delay), entries)| {
        format!(
            "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  dryRun: {dry}\n  \
             batchSize: {batch}\n  requestTimeout: {timeout}\n  retryDelay: {delay}\n\
             groups:\n  fleet:\n    hashes: [{}]\nresets:\n{}",
            HASHES[0],
            if entries.is_empty() {
                "  []\n".to_owned()
            } else {
                entries.concat()
            }
        )
    })
}

/// A clock reading: chrono's ends, the accepted instants' ends, or anywhere.
fn now() -> impl Strategy<Value = DateTime<Utc>> {
    let (lo, hi) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    prop_oneof![
        prop::sample::select(vec![
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::UNIX_EPOCH,
            Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(),
        ]),
        unix().prop_map(|u| DateTime::from_timestamp(u, 0).unwrap()),
        (lo..=hi).prop_map(|u| DateTime::from_timestamp(u, 0).unwrap()),
        (hi - 400 * 86_400..=hi).prop_map(|u| DateTime::from_timestamp(u, 0).unwrap()),
    ]
}

/// How the API treats a run's batches.
#[derive(Debug, Clone, Copy)]
enum Api {
    ConfirmAll,
    /// Batches whose index has this bit set fail for good.
    FailMask(u8),
    /// The token is refused after the first batch (the run ends Failed).
    Abort,
}

fn api() -> impl Strategy<Value = Api> {
    prop_oneof![
        Just(Api::ConfirmAll),
        any::<u8>().prop_map(Api::FailMask),
        Just(Api::Abort),
    ]
}

/// The API of these tests, as the executor sees it.
struct FakeSessions {
    api: Api,
    /// First hash of each planned batch → its index (a hash shared by two
    /// entries may map to either; any answer is a valid one).
    batches: std::collections::HashMap<String, usize>,
}

impl resetd::reconcile::Sessions for FakeSessions {
    async fn delete_sessions(
        &self,
        hashes: &[String],
        _timeout: std::time::Duration,
    ) -> Result<resetd::api::Answered, resetd::api::ApiError> {
        let batch = self.batches.get(&hashes[0]).copied().unwrap_or(0);
        let refuse = |code: u16| {
            Err(resetd::api::ApiError::Status {
                url: "http://127.0.0.1/v1/sessions".into(),
                code,
                retry_after: None,
                message: format!("HTTP {code}"),
            })
        };
        match self.api {
            Api::ConfirmAll => Ok(resetd::api::Answered { code: 204 }),
            Api::FailMask(mask) if mask & (1 << (batch % 8)) != 0 => refuse(422),
            Api::FailMask(_) => Ok(resetd::api::Answered { code: 204 }),
            Api::Abort => refuse(401),
        }
    }
}

/// One pass of the daemon at `now`: plan, then the real executor (in
/// memory, on paused time) carries it out.
fn pass(config: &Config, status: &mut Status, now: DateTime<Utc>, dry: bool, api: Api) -> Plan {
    let p = plan::plan(config, status, now, &Inputs::new(dry));
    let mut batches = std::collections::HashMap::new();
    for (_, spec) in p.runs() {
        for b in 0..spec.batches() {
            let range = resetd::status::batch_range(spec.hashes.len(), spec.batch_size, b);
            batches
                .entry(spec.hashes.to_arc()[range.start].clone())
                .or_insert(b);
        }
    }
    let sessions = FakeSessions { api, batches };
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let clock = resetd::reconcile::TokioClock::starting_at(now);
            resetd::reconcile::execute_in_memory(&p, status, &sessions, &clock).await
        })
        .unwrap();
    p
}

fn check_plan(p: &Plan, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    for e in &p.entries {
        prop_assert!(
            e.next_run_at.is_none_or(|t| t > now),
            "{}: next run {:?} is not after now {now}",
            e.id,
            e.next_run_at
        );
    }
    Ok(())
}

fn check_config(config: &Config) -> Result<(), TestCaseError> {
    for e in &config.resets {
        match &e.trigger {
            Schedule::Every(d) => prop_assert!(types::EVERY.contains(*d), "{}: {d:?}", e.id),
            Schedule::At(t) => prop_assert!(types::INSTANTS.contains(*t), "{}: {t}", e.id),
            Schedule::Immediate | Schedule::Cron(_) => {}
        }
        if let Some(t) = e.not_after {
            prop_assert!(types::INSTANTS.contains(t), "{}: notAfter {t}", e.id);
        }
        prop_assert!(e.revision <= types::MAX_REVISION);
    }
    Ok(())
}

proptest! {
    #[test]
    fn nothing_is_due_again_right_after_a_pass(
        texts in prop::collection::vec(config_text(), 1..=2),
        passes in prop::collection::vec((any::<prop::sample::Index>(), now(), any::<bool>(), api()), 1..=4),
    ) {
        let parse_at = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let mut configs = Vec::new();
        for text in &texts {
            // Invalid files must not panic either; that is all they owe.
            let loaded = config::parse("props.yaml", text, parse_at);
            prop_assert_eq!(
                loaded.config.is_some(),
                loaded.errors().next().is_none(),
                "validate and run disagree on:\n{}\n{:#?}", text, loaded.diagnostics
            );
            if let Some(config) = loaded.config {
                check_config(&config)?;
                configs.push(config);
            }
        }
        if configs.is_empty() {
            return Ok(());
        }
        let mut status = Status::default();
        for (which, now, dry, api) in passes {
            let config = which.get(&configs);
            let first = pass(config, &mut status, now, dry, api);
            check_plan(&first, now)?;
            let again = plan::plan(config, &status, now, &Inputs::new(dry));
            check_plan(&again, now)?;
            for e in &again.entries {
                prop_assert!(
                    matches!(e.action, Action::Wait),
                    "{} is due again at {now}: {:?} ({})",
                    e.id,
                    e.action,
                    e.why
                );
            }
            let _ = again.settle(&mut status);
        }
    }
}
