//! Crash loop: 20 × (start `run --once`, SIGKILL at a random moment), then a
//! run to completion. Afterwards every hash is confirmed; no batch that the
//! status file had recorded as confirmed is ever sent again; and re-sent
//! batches (answer lost in a kill: at-least-once) number at most the kills.
//! Most kills land mid-run (after the run's first request, before its last
//! batch), and the test counts that they did. The seed is printed; set
//! `CRASH_SEED` to replay a run's kill moments.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use resetd::status::Phase;

use crate::fake_api::{FakeApi, Reply};
use crate::support::Workspace;

const KILLS: usize = 20;
/// Enough batches that the kills cannot finish the run between them: each
/// kill cuts a run off after at most ~15 batches (200 ms at 15 ms each).
const HASHES: usize = 800;
const BATCH: usize = 2;
/// One kill in this many comes at a random moment from the start (during
/// start-up, the journal's fold, or sending); the others a random moment
/// after the run's first request, so they land mid-run.
const START_UP_KILL_EVERY: usize = 5;

/// Batches the status file records as confirmed, by index.
fn confirmed_batches(ws: &Workspace) -> HashSet<usize> {
    let Ok(status) = resetd::store::read(&ws.status) else {
        return HashSet::new();
    };
    match status.resets.get("loop") {
        Some(st) if st.phase == Phase::Succeeded => (0..HASHES.div_ceil(BATCH)).collect(),
        Some(st) => st
            .run
            .as_ref()
            .map(|r| r.confirmed_batches().collect())
            .unwrap_or_default(),
        None => HashSet::new(),
    }
}

#[test]
fn twenty_random_kills_lose_nothing_and_never_resend_a_recorded_batch() {
    let api = FakeApi::start();
    // A little latency per request, so kills land mid-request too.
    api.default_reply(Reply::Delay(
        Duration::from_millis(15),
        Box::new(Reply::Status(204)),
    ));
    let all: Vec<String> = (0..HASHES).map(|i| format!("K{i:04}")).collect();
    let ws = Workspace::new(&format!(
        "settings:\n  batchSize: {BATCH}\n  maxRequestsPerSecond: 0\nresets:\n  - id: loop\n    hashes: [{}]\n",
        all.join(", ")
    ));
    let batch_of = |hashes: &[String]| all.iter().position(|h| *h == hashes[0]).map(|i| i / BATCH);

    let seed = match std::env::var("CRASH_SEED") {
        Ok(seed) => seed.parse::<u64>().expect("CRASH_SEED is a number") | 1,
        Err(_) => {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    // Shown with a failure (libtest prints a failed test's output), and in
    // every assertion's message.
    println!(
        "crash loop seed {seed}: replay with CRASH_SEED={seed} cargo test --test it crash_loop"
    );
    let replay = format!("(replay: CRASH_SEED={seed})");
    let mut rng = seed;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };

    // (requests seen before the kill, batches confirmed in the status file at the kill)
    let mut kills = Vec::new();
    // Per kill: did it land mid-run, and where.
    let mut landed = Vec::new();
    let mut landed_mid_run = 0;
    let batches = HASHES.div_ceil(BATCH);
    for n in 0..KILLS {
        let before = api.requests().len();
        let mut cmd = ws.command(&api.base());
        cmd.args(["run", "--once", "--config"]).arg(&ws.config);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let wait = if n % START_UP_KILL_EVERY == 0 {
            Duration::from_millis(random() % 400)
        } else {
            // The run's first request is waited for (not slept for), then
            // the kill comes at a random moment of its sending.
            api.wait_until(Duration::from_secs(30), "the run's first request", |r| {
                r.len() > before
            });
            Duration::from_millis(random() % 200)
        };
        // The kill point is random on purpose: this wait is the experiment,
        // not synchronisation.
        std::thread::sleep(wait);
        let exited = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        let requests = api.requests();
        let answered: HashSet<usize> = requests
            .iter()
            .filter(|r| matches!(r.answered, Some(200..=299)))
            .filter_map(|r| batch_of(r.sent()))
            .collect();
        let sent = requests.len() - before;
        // Mid-run: this run had sent its first batch, was still running,
        // and the entry's last batch had not been answered yet.
        let mid_run = sent > 0 && !exited && answered.len() < batches;
        landed.push(format!(
            "kill {n}: after {wait:?}{}, {sent} request(s) of this run, {}/{batches} batches answered{}",
            if n % START_UP_KILL_EVERY == 0 { " from the start" } else { " after the first request" },
            answered.len(),
            if mid_run { ", mid-run" } else if exited { ", after it exited" } else { "" },
        ));
        if mid_run {
            landed_mid_run += 1;
        }
        kills.push((requests.len(), confirmed_batches(&ws)));
    }
    println!("{}", landed.join("\n"));
    assert!(
        landed_mid_run * 2 > KILLS,
        "only {landed_mid_run} of {KILLS} kills landed between the first and the last batch \
         {replay}:\n{}",
        landed.join("\n")
    );
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{replay} {stderr}");

    let requests = api.requests();
    for (seen, confirmed) in &kills {
        for r in &requests[*seen..] {
            let batch = batch_of(r.sent()).unwrap();
            assert!(
                !confirmed.contains(&batch),
                "batch {batch} was recorded as confirmed and sent again {replay}"
            );
        }
    }
    let mut answered: HashMap<usize, usize> = HashMap::new();
    let mut resent = 0;
    for r in &requests {
        let batch = batch_of(r.sent()).unwrap();
        if answered.get(&batch).copied().unwrap_or(0) > 0 {
            resent += 1;
        }
        if matches!(r.answered, Some(200..=299)) {
            *answered.entry(batch).or_default() += 1;
        }
    }
    println!(
        "{} requests for {} batches over {KILLS} kills; {resent} batch(es) re-sent after a lost answer",
        requests.len(),
        HASHES.div_ceil(BATCH)
    );
    assert!(
        resent <= KILLS,
        "{resent} re-sends for {KILLS} kills {replay}"
    );
    let confirmed: HashSet<&String> = requests
        .iter()
        .filter(|r| matches!(r.answered, Some(200..=299)))
        .flat_map(|r| r.sent())
        .collect();
    assert_eq!(
        confirmed.len(),
        HASHES,
        "every hash confirmed at least once {replay}"
    );
    assert_eq!(ws.status().resets["loop"].phase, Phase::Succeeded);
}
