//! Planner tests: every phase transition and trigger kind, on a fixed clock.
//! Plans are carried out by the real executor, in memory on paused time.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::config::{Config, parse};
use crate::status::{Outcome, Phase, Status};

const HEAD: &str = "apiVersion: resetd/v1\nkind: SessionResets\n";

fn cfg(body: &str) -> Config {
    let loaded = parse("t.yaml", &format!("{HEAD}{body}"), t(0, 0));
    loaded
        .config
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
}

fn hashes(n: usize) -> String {
    (0..n)
        .map(|i| format!("h{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plan and apply the non-run parts, as the executor does first.
fn step(config: &Config, status: &mut Status, now: DateTime<Utc>, dry: bool) -> Plan {
    let p = plan(config, status, now, &Inputs::new(dry));
    let _ = config;
    let _ = p.settle(status);
    p
}

/// The API for these tests: `ok(batch)` says whether it confirms a batch;
/// a refused batch gets `refusal` (422 unless a test says otherwise: a
/// permanent error, no retry).
struct FakeApi<F> {
    ok: F,
    /// First hash of each planned batch → its index.
    batches: std::collections::HashMap<String, usize>,
    refusal: u16,
}

impl<F: Fn(usize) -> bool> crate::reconcile::Sessions for FakeApi<F> {
    async fn delete_sessions(
        &self,
        hashes: &[String],
        _timeout: std::time::Duration,
    ) -> Result<crate::api::Answered, crate::api::ApiError> {
        if (self.ok)(self.batches[&hashes[0]]) {
            Ok(crate::api::Answered { code: 204 })
        } else {
            Err(crate::api::ApiError::Status {
                url: "http://127.0.0.1/v1/sessions".into(),
                code: self.refusal,
                retry_after: None,
                message: format!("HTTP {}", self.refusal),
            })
        }
    }

    fn token_fingerprint(&self) -> Option<String> {
        Some("token-a".into())
    }
}

/// Carry out a plan with the real executor (in memory, on paused time);
/// `ok(batch)` says whether the API confirms a batch. Returns the store.
fn execute(
    config: &Config,
    status: &mut Status,
    p: &Plan,
    ok: impl Fn(usize) -> bool,
) -> crate::store::MemStore {
    execute_refusing(config, status, p, ok, 422)
}

/// `execute`, with refused batches answered `refusal`.
fn execute_refusing(
    _config: &Config,
    status: &mut Status,
    p: &Plan,
    ok: impl Fn(usize) -> bool,
    refusal: u16,
) -> crate::store::MemStore {
    let mut batches = std::collections::HashMap::new();
    for (_, spec) in p.runs() {
        for b in 0..spec.batches() {
            let range = crate::status::batch_range(spec.hashes.len(), spec.batch_size, b);
            batches.insert(spec.hashes.to_arc()[range.start].clone(), b);
        }
    }
    let api = FakeApi {
        ok,
        batches,
        refusal,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let clock = crate::reconcile::TokioClock::starting_at(p.now);
            crate::reconcile::execute_in_memory(p, status, &api, &clock).await
        })
        .unwrap()
        .1
}

fn only(p: &Plan) -> &EntryPlan {
    assert_eq!(p.entries.len(), 1);
    &p.entries[0]
}

fn run_of(p: &Plan) -> &RunSpec {
    match &only(p).action {
        Action::Run(spec) => spec,
        other => panic!("expected a run, got {other:?}: {}", only(p).why),
    }
}

fn phase(status: &Status, id: &str) -> Phase {
    status.resets[id].phase
}

#[test]
fn immediate_runs_once_then_is_done() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1, h2]\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1", "h2"]);
    assert_eq!(phase(&s, "a"), Phase::Pending);
    execute(&c, &mut s, &p, |_| true);
    assert_eq!(phase(&s, "a"), Phase::Succeeded);
    assert_eq!(s.resets["a"].history.len(), 1);

    let p = step(&c, &mut s, t(2, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(only(&p).phase, Phase::Succeeded);
}

/// `n` entries at a future instant, then `more`.
fn waiting(n: usize, more: &str) -> Config {
    let mut body = String::from("resets:\n");
    for i in 0..n {
        body.push_str(&format!(
            "  - id: w{i}\n    trigger: {{ at: \"2027-01-01T00:00:00Z\" }}\n    hashes: [h{i}]\n"
        ));
    }
    cfg(&format!("{body}{more}"))
}

#[test]
fn an_edit_reaches_its_request_through_the_journal_not_a_whole_write() {
    let mut s = Status::default();
    let c = waiting(12, "");
    let p = plan(&c, &s, t(1, 0), &Inputs::new(false));
    execute(&c, &mut s, &p, |_| true);
    // One entry added among twelve: its record before the request, the
    // batch's, and one whole write at the end; none before the request.
    let c = waiting(12, "  - id: new\n    hashes: [n1]\n");
    let p = plan(&c, &s, t(1, 1), &Inputs::new(false));
    let store = execute(&c, &mut s, &p, |_| true);
    assert_eq!(phase(&s, "new"), Phase::Succeeded);
    assert_eq!(store.saves, 1, "only the fold at the end");
    // The new entry's, then the batch's (durable) and the run's end.
    assert_eq!((store.records, store.durable_records), (3, 1));
    // Most entries changed: one whole write is cheaper than their records.
    let mut s = Status::default();
    let c = waiting(3, "  - id: new\n    hashes: [n1]\n");
    let p = plan(&c, &s, t(1, 0), &Inputs::new(false));
    let store = execute(&c, &mut s, &p, |_| true);
    assert_eq!(store.saves, 2, "one whole write first, the fold at the end");
    // Nothing changed: nothing written.
    let p = plan(&c, &s, t(1, 1), &Inputs::new(false));
    let store = execute(&c, &mut s, &p, |_| true);
    assert_eq!((store.saves, store.records), (0, 0));
}

#[test]
fn running_phase_is_recorded_while_batches_are_sent() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    let entry = &p.entries[0];
    let spec = run_of(&p);
    let st = s.resets.get_mut("a").unwrap();
    st.begin_run(&spec.facts(entry, &spec.hashes.to_arc()), None, t(1, 0));
    st.batch_sending(0);
    assert_eq!(st.phase, Phase::Running);
    assert_eq!(st.run.as_ref().unwrap().in_flight, Some(0));
}

#[test]
fn editing_a_succeeded_entry_without_revision_bump_only_warns() {
    let mut s = Status::default();
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| true);

    let edited = cfg("resets:\n  - id: a\n    hashes: [h1, h2]\n");
    let p = step(&edited, &mut s, t(2, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(only(&p).warnings.len(), 1, "{:?}", only(&p).warnings);
    assert!(only(&p).warnings[0].contains("bump `revision`"));
}

#[test]
fn revision_bump_runs_again() {
    let mut s = Status::default();
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| true);
    let bumped = cfg("resets:\n  - id: a\n    hashes: [h1]\n    revision: 1\n");
    let p = step(&bumped, &mut s, t(2, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1"]);
    assert!(
        only(&p).why.contains("revision bumped to 1"),
        "{}",
        only(&p).why
    );
}

#[test]
fn failed_entry_is_not_retried_until_its_content_changes() {
    let mut s = Status::default();
    let c = cfg(&format!(
        "settings:\n  batchSize: 2\nresets:\n  - id: a\n    hashes: [{}]\n",
        hashes(5)
    ));
    let p = step(&c, &mut s, t(1, 0), false);
    // Batch 1 (h2, h3) is rejected; batches 0 and 2 are confirmed.
    execute(&c, &mut s, &p, |b| b != 1);
    assert_eq!(phase(&s, "a"), Phase::Failed);
    assert_eq!(
        s.resets["a"].confirmed.as_ref().unwrap().hashes,
        ["h0", "h1", "h4"]
    );

    let p = step(&c, &mut s, t(2, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(only(&p).phase, Phase::Failed);

    // The fix removes the bad hash h3: only h2 is still owed.
    let fixed =
        cfg("settings:\n  batchSize: 2\nresets:\n  - id: a\n    hashes: [h0, h1, h2, h4]\n");
    let p = step(&fixed, &mut s, t(3, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h2"]);
    execute(&fixed, &mut s, &p, |_| true);
    assert_eq!(phase(&s, "a"), Phase::Succeeded);
    assert!(s.resets["a"].confirmed.is_none());
}

#[test]
fn at_waits_for_its_instant() {
    let c =
        cfg("resets:\n  - id: a\n    hashes: [h1]\n    trigger: {at: \"2026-11-22T05:00:00Z\"}\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(4, 59), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Scheduled);
    assert_eq!(s.resets["a"].next_run_at, Some(t(5, 0)));
    let p = step(&c, &mut s, t(5, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1"]);
}

#[test]
fn first_seen_due_after_not_after_is_expired_and_never_runs() {
    let c = cfg(
        "resets:\n  - id: a\n    hashes: [h1]\n    trigger: {at: \"2026-11-22T02:00:00Z\"}\n    notAfter: \"2026-11-22T03:00:00Z\"\n",
    );
    let mut s = Status::default();
    let p = step(&c, &mut s, t(4, 0), false);
    assert_eq!(only(&p).action, Action::Expire);
    assert_eq!(phase(&s, "a"), Phase::Expired);
    assert_eq!(s.resets["a"].history[0].outcome, Outcome::Expired);
    let p = step(&c, &mut s, t(5, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Expired);

    // Extending notAfter is new content: the entry is evaluated again.
    let extended = cfg(
        "resets:\n  - id: a\n    hashes: [h1]\n    trigger: {at: \"2026-11-22T02:00:00Z\"}\n    notAfter: \"2026-11-22T09:00:00Z\"\n",
    );
    let p = step(&extended, &mut s, t(5, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1"]);
}

#[test]
fn immediate_before_not_after_runs() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n    notAfter: \"2026-11-22T03:00:00Z\"\n");
    let p = plan(&c, &Status::default(), t(2, 0), &Inputs::new(false));
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1"]);
}

#[test]
fn suspended_entries_do_not_run_and_keep_their_history() {
    let mut s = Status::default();
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| true);
    let suspended = cfg("resets:\n  - id: a\n    hashes: [h1]\n    suspend: true\n");
    let p = step(&suspended, &mut s, t(2, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Suspended);
    // Unsuspending does not replay a one-shot that already succeeded.
    let p = step(&c, &mut s, t(3, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Succeeded);

    let new_suspended = cfg("resets:\n  - id: b\n    hashes: [h1]\n    suspend: true\n");
    let p = plan(
        &new_suspended,
        &Status::default(),
        t(1, 0),
        &Inputs::new(false),
    );
    assert_eq!(only(&p).phase, Phase::Suspended);
}

#[test]
fn dry_run_from_entry_file_or_cli_records_and_then_runs_for_real_when_off() {
    let entry_dry = cfg("resets:\n  - id: a\n    hashes: [h1]\n    dryRun: true\n");
    let file_dry = cfg("settings:\n  dryRun: true\nresets:\n  - id: a\n    hashes: [h1]\n");
    let real = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    assert!(
        run_of(&plan(
            &entry_dry,
            &Status::default(),
            t(1, 0),
            &Inputs::new(false)
        ))
        .dry_run
    );
    assert!(
        run_of(&plan(
            &file_dry,
            &Status::default(),
            t(1, 0),
            &Inputs::new(false)
        ))
        .dry_run
    );
    assert!(
        run_of(&plan(
            &real,
            &Status::default(),
            t(1, 0),
            &Inputs::new(true)
        ))
        .dry_run
    );
    assert!(!plan(&real, &Status::default(), t(1, 0), &Inputs::new(true)).needs_api());

    let mut s = Status::default();
    let p = step(&real, &mut s, t(1, 0), true);
    execute(&real, &mut s, &p, |_| panic!("a dry run sends nothing"));
    assert_eq!(phase(&s, "a"), Phase::DryRun);
    // Still dry and unchanged: nothing new to show.
    let p = step(&real, &mut s, t(2, 0), true);
    assert_eq!(only(&p).action, Action::Wait);
    // Dry run off: it runs for real.
    let p = step(&real, &mut s, t(3, 0), false);
    let spec = run_of(&p);
    assert!(!spec.dry_run);
    assert!(
        only(&p).why.contains("dry run is now off"),
        "{}",
        only(&p).why
    );
}

#[test]
fn every_runs_when_first_seen_and_after_each_interval() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n    trigger: {every: 2h}\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    assert_eq!(run_of(&p).slot, Some(t(1, 0)));
    execute(&c, &mut s, &p, |_| true);
    let p = step(&c, &mut s, t(2, 59), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Succeeded);
    assert_eq!(s.resets["a"].next_run_at, Some(t(3, 0)));
    let p = step(&c, &mut s, t(3, 0), false);
    assert_eq!(run_of(&p).slot, Some(t(3, 0)));
}

#[test]
fn cron_runs_at_matching_minutes_and_once_after_downtime() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n    trigger: {cron: \"0 * * * *\"}\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 30), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Scheduled);
    assert_eq!(s.resets["a"].next_run_at, Some(t(2, 0)));
    let p = step(&c, &mut s, t(2, 0), false);
    assert_eq!(run_of(&p).slot, Some(t(2, 0)));
    execute(&c, &mut s, &p, |_| true);
    // Down from 02:00 to 06:10: one run, for the 06:00 slot.
    let p = step(&c, &mut s, t(6, 10), false);
    assert_eq!(run_of(&p).slot, Some(t(6, 0)));
    execute(&c, &mut s, &p, |_| true);
    let p = step(&c, &mut s, t(6, 11), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(s.resets["a"].next_run_at, Some(t(7, 0)));
}

#[test]
fn a_failed_recurring_slot_does_not_stop_the_next_one() {
    let c = cfg("resets:\n  - id: a\n    hashes: [h1]\n    trigger: {every: 1h}\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| false);
    assert_eq!(phase(&s, "a"), Phase::Failed);
    let p = step(&c, &mut s, t(1, 30), false);
    assert_eq!(only(&p).action, Action::Wait);
    let p = step(&c, &mut s, t(2, 0), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1"]);
}

#[test]
fn recurring_entry_past_not_after_expires() {
    let c = cfg(
        "resets:\n  - id: a\n    hashes: [h1]\n    trigger: {every: 1h}\n    notAfter: \"2026-11-22T02:00:00Z\"\n",
    );
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| true);
    let p = step(&c, &mut s, t(3, 0), false);
    assert_eq!(only(&p).action, Action::Expire);
    let p = step(&c, &mut s, t(9, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(phase(&s, "a"), Phase::Expired);
}

#[test]
fn batches_split_at_batch_size() {
    let c = cfg(&format!(
        "settings:\n  batchSize: 100\nresets:\n  - id: a\n    hashes: [{}]\n",
        hashes(250)
    ));
    let p = plan(&c, &Status::default(), t(1, 0), &Inputs::new(false));
    assert_eq!(run_of(&p).batches(), 3);
}

#[test]
fn interrupted_run_resumes_at_the_first_unconfirmed_batch() {
    let c = cfg(&format!(
        "settings:\n  batchSize: 2\nresets:\n  - id: a\n    hashes: [{}]\n",
        hashes(6)
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    let spec = run_of(&p).clone();
    let st = s.resets.get_mut("a").unwrap();
    st.begin_run(
        &spec.facts(&p.entries[0], &spec.hashes.to_arc()),
        None,
        t(1, 0),
    );
    st.batch_sending(0);
    st.batch_confirmed(0);
    st.batch_sending(1); // crash here: the answer to batch 1 is lost

    let p = step(&c, &mut s, t(1, 5), false);
    let resumed = run_of(&p);
    assert_eq!(resumed.resume.as_ref().unwrap().next_batch, 1);
    assert_eq!(resumed.remaining_batches(), 2);
    assert!(only(&p).why.contains("resume"), "{}", only(&p).why);
    execute(&c, &mut s, &p, |b| b != 0);
    assert_eq!(phase(&s, "a"), Phase::Succeeded);
    assert_eq!(s.resets["a"].history[0].confirmed, 6);
}

#[test]
fn interrupted_run_restarts_when_its_hashes_changed() {
    let c = cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h1, h2]\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    let st = s.resets.get_mut("a").unwrap();
    st.begin_run(
        &run_of(&p).facts(&p.entries[0], &run_of(&p).hashes.to_arc()),
        None,
        t(1, 0),
    );
    st.batch_sending(0);
    let changed = cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h1, h3]\n");
    let p = step(&changed, &mut s, t(1, 5), false);
    assert!(run_of(&p).resume.is_none());
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1", "h3"]);
    // With dry run on, an interrupted run is left alone.
    let p = plan(&c, &s, t(1, 6), &Inputs::new(true));
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(only(&p).phase, Phase::Running);
}

#[test]
fn an_interrupted_run_edited_by_appending_skips_what_it_had_confirmed() {
    let c = cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h1, h2, h3]\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    let st = s.resets.get_mut("a").unwrap();
    st.begin_run(
        &run_of(&p).facts(&p.entries[0], &run_of(&p).hashes.to_arc()),
        None,
        t(1, 0),
    );
    st.batch_sending(0);
    st.batch_confirmed(0);
    st.batch_sending(1); // crash: h2 in flight, its answer lost
    let edited =
        cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h1, h2, h3, h4]\n");
    let p = step(&edited, &mut s, t(1, 5), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h2", "h3", "h4"]);
    assert!(
        only(&p)
            .why
            .contains("1 hash(es) it had confirmed are skipped"),
        "{}",
        only(&p).why
    );
    // Without the run's recorded list (a status from an older resetd), a
    // list that is not an extension of the old one is sent whole...
    let reordered =
        cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h3, h2, h1]\n");
    let p = plan(&reordered, &s, t(1, 6), &Inputs::new(false));
    assert_eq!(run_of(&p).hashes.to_vec(), ["h3", "h2", "h1"]);
    // ...with it (what the executor records), any edit skips exactly them.
    let started_at = s.resets["a"].run.as_ref().unwrap().started_at;
    s.run_hashes.insert(
        "a".into(),
        crate::status::RunHashes {
            started_at,
            hashes: vec!["h1".into(), "h2".into(), "h3".into()],
        },
    );
    let p = plan(&reordered, &s, t(1, 6), &Inputs::new(false));
    assert_eq!(run_of(&p).hashes.to_vec(), ["h3", "h2"]);
}

#[test]
fn the_executor_records_each_runs_list_and_drops_it_when_the_run_ends() {
    let c = cfg("settings:\n  batchSize: 1\nresets:\n  - id: a\n    hashes: [h1, h2]\n");
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute(&c, &mut s, &p, |_| true);
    assert!(s.run_hashes.is_empty(), "a finished run keeps no list");
}

#[test]
fn removed_entries_are_orphaned_and_never_run() {
    let both = cfg("resets:\n  - id: a\n    hashes: [h1]\n  - id: b\n    hashes: [h2]\n");
    let mut s = Status::default();
    let p = step(&both, &mut s, t(1, 0), false);
    execute(&both, &mut s, &p, |_| true);
    let only_a = cfg("resets:\n  - id: a\n    hashes: [h1]\n");
    let p = step(&only_a, &mut s, t(2, 0), false);
    assert_eq!(p.orphans, ["b"]);
    assert!(s.resets["b"].orphaned);
    assert_eq!(s.resets["b"].history.len(), 1);
    assert!(!s.resets["a"].orphaned);
}

// Automatic retries of runs that failed for a passing reason (SPEC §2).
// `maxAttempts: 1` keeps in-run retries out of the way: each run is one
// request per batch.

const ONE_ATTEMPT: &str = "settings:\n  maxAttempts: 1\n  batchSize: 1\n";

fn secs(t: DateTime<Utc>, s: i64) -> DateTime<Utc> {
    t + chrono::Duration::seconds(s)
}

#[test]
fn a_passing_failure_is_retried_on_its_own_sending_only_unconfirmed_hashes() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0, h1, h2]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |b| b == 0, 503);
    let st = &s.resets["a"];
    assert_eq!(st.phase, Phase::Failed);
    let failed_at = st.completed_at.unwrap();
    assert_eq!(st.next_retry_at, Some(secs(failed_at, 60)));
    assert!(st.last_error.as_deref().unwrap().contains("503"));

    // Before the back-off: it waits, and the daemon wakes for it.
    let p = step(&c, &mut s, secs(failed_at, 59), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(only(&p).phase, Phase::Failed);
    assert!(
        only(&p).why.contains("retried on its own at"),
        "{}",
        only(&p).why
    );
    assert_eq!(s.next_due(), Some(secs(failed_at, 60)));
    assert_eq!(s.resets["a"].next_retry_at, Some(secs(failed_at, 60)));

    // At it: a retry of what the API did not confirm.
    let p = step(&c, &mut s, secs(failed_at, 60), false);
    assert_eq!(run_of(&p).hashes.to_vec(), ["h1", "h2"]);
    assert!(only(&p).why.starts_with("retry 1:"), "{}", only(&p).why);
    execute(&c, &mut s, &p, |_| true);
    let st = &s.resets["a"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!((st.next_retry_at, &st.retrying), (None, &None));
    assert_eq!(only(&step(&c, &mut s, t(5, 0), false)).action, Action::Wait);
}

#[test]
fn retries_back_off_doubling_from_the_first_wait() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let mut now = t(1, 0);
    let mut waits = Vec::new();
    for _ in 0..9 {
        let p = step(&c, &mut s, now, false);
        assert!(
            matches!(only(&p).action, Action::Run(_)),
            "{}",
            only(&p).why
        );
        execute_refusing(&c, &mut s, &p, |_| false, 500);
        let st = &s.resets["a"];
        let next = st.next_retry_at.unwrap();
        waits.push((next - st.completed_at.unwrap()).num_seconds());
        now = next;
    }
    assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    assert_eq!(s.resets["a"].retrying.as_ref().unwrap().retries, 8);
}

#[test]
fn a_refused_request_is_not_retried_on_its_own() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 422);
    assert_eq!(
        (s.resets["a"].next_retry_at, &s.resets["a"].retrying),
        (None, &None)
    );
    let p = step(&c, &mut s, t(9, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert!(
        only(&p).why.contains("request itself was refused"),
        "{}",
        only(&p).why
    );
    let _ = p;
    assert_eq!(s.next_due(), None);
}

#[test]
fn a_mix_of_refused_and_passing_batches_counts_as_refused() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0, h1]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    // Batch 0 fails for a passing reason, batch 1 because the request was
    // refused: sending it again cannot help, so the entry waits for a change.
    let list = run_of(&p).hashes.to_arc();
    let facts = run_of(&p).facts(&p.entries[0], &list);
    let st = s.resets.get_mut("a").unwrap();
    st.begin_run(&facts, None, t(1, 0));
    st.batch_failed(0, "HTTP 503".into(), crate::policy::Cause::Passing);
    st.batch_failed(1, "HTTP 422".into(), crate::policy::Cause::Request);
    st.end_run(&facts, None, t(1, 1));
    assert_eq!((st.next_retry_at, &st.retrying), (None, &None));
    st.begin_run(&facts, None, t(1, 2));
    st.batch_failed(0, "HTTP 503".into(), crate::policy::Cause::Passing);
    st.end_run(&facts, None, t(1, 3));
    assert_eq!(st.next_retry_at, Some(secs(t(1, 3), 60)));
}

#[test]
fn retries_stop_after_retry_failed_for_and_at_not_after() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}  retryFailedFor: 2m\nresets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 503);
    let first = s.resets["a"].next_retry_at.unwrap();
    let p = step(&c, &mut s, first, false);
    execute_refusing(&c, &mut s, &p, |_| false, 503);
    // The next wait (2 min) would end past the 2-minute window.
    assert_eq!(s.resets["a"].next_retry_at, None);
    let p = step(&c, &mut s, t(9, 0), false);
    assert_eq!(only(&p).action, Action::Wait);
    assert!(only(&p).why.contains("retries stopped"), "{}", only(&p).why);

    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n    notAfter: 2026-11-22T01:00:30Z\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 503);
    assert_eq!(
        s.resets["a"].next_retry_at, None,
        "a retry at 01:01 is past notAfter"
    );
    assert_eq!(only(&step(&c, &mut s, t(1, 2), false)).action, Action::Wait);

    // A longer window set by a later commit re-opens nothing past notAfter,
    // but does give an entry still inside it its retry back.
    let narrow = cfg(&format!(
        "{ONE_ATTEMPT}  retryFailedFor: 30s\nresets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let wide = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let p = step(&narrow, &mut s, t(1, 0), false);
    execute_refusing(&narrow, &mut s, &p, |_| false, 503);
    assert_eq!(s.resets["a"].next_retry_at, None);
    let p = step(
        &wide,
        &mut s,
        t(1, 0) + chrono::Duration::seconds(61),
        false,
    );
    assert!(
        matches!(only(&p).action, Action::Run(_)),
        "{}",
        only(&p).why
    );
}

#[test]
fn a_refused_token_waits_for_its_back_off_or_a_different_token() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 401);
    let st = &s.resets["a"];
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(
        st.retrying.as_ref().unwrap().refused_token.as_deref(),
        Some("token-a")
    );
    assert!(st.next_retry_at.is_some());
    assert!(s.awaits_new_token());

    let with = |token: Option<&str>| Inputs {
        token: token.map(str::to_owned),
        ..Inputs::new(false)
    };
    let soon = secs(t(1, 0), 10);
    for same in [None, Some("token-a")] {
        let p = plan(&c, &s, soon, &with(same));
        assert_eq!(only(&p).action, Action::Wait, "{same:?}");
    }
    let p = plan(&c, &s, soon, &with(Some("token-b")));
    assert!(matches!(only(&p).action, Action::Run(_)));
    assert!(
        only(&p).why.contains("token has changed"),
        "{}",
        only(&p).why
    );
}

#[test]
fn a_failed_recurring_slot_is_retried_before_the_next_slot() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0, h1]\n    trigger: {{every: 1h}}\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |b| b == 0, 503);
    let st = &s.resets["a"];
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(st.next_run_at, Some(t(2, 0)));
    let retry_at = st.next_retry_at.unwrap();
    let p = step(&c, &mut s, retry_at, false);
    let spec = run_of(&p);
    assert_eq!(
        spec.hashes.to_vec(),
        ["h1"],
        "only the unconfirmed hash of the slot"
    );
    assert_eq!(spec.slot, Some(t(1, 0)));
    execute(&c, &mut s, &p, |_| true);
    let st = &s.resets["a"];
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(
        st.next_run_at,
        Some(t(2, 0)),
        "the retry keeps the schedule"
    );
    // The next slot sends everything.
    assert_eq!(
        run_of(&step(&c, &mut s, t(2, 0), false)).hashes.to_vec(),
        ["h0", "h1"]
    );
}

#[test]
fn under_dry_run_a_retry_waits_and_a_changed_entry_starts_afresh() {
    let c = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0]\n"
    ));
    let mut s = Status::default();
    let p = step(&c, &mut s, t(1, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 503);
    let p = step(&c, &mut s, t(2, 0), true);
    assert_eq!(only(&p).action, Action::Wait);
    assert_eq!(s.resets["a"].phase, Phase::Failed);

    let p = step(&c, &mut s, t(2, 0), false);
    execute_refusing(&c, &mut s, &p, |_| false, 503);
    assert_eq!(s.resets["a"].retrying.as_ref().unwrap().retries, 1);
    let edited = cfg(&format!(
        "{ONE_ATTEMPT}resets:\n  - id: a\n    hashes: [h0, h9]\n"
    ));
    let p = step(&edited, &mut s, t(2, 1), false);
    assert!(
        only(&p).why.contains("changed since it failed"),
        "{}",
        only(&p).why
    );
    execute_refusing(&edited, &mut s, &p, |_| false, 503);
    let streak = s.resets["a"].retrying.as_ref().unwrap();
    assert_eq!(
        (streak.retries, streak.since),
        (0, s.resets["a"].completed_at.unwrap())
    );
}
