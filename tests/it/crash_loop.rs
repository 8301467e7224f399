//! Crash loop: 20 × (start `run --once`, SIGKILL at a random moment), then a
//! run to completion. Afterwards every hash is confirmed; no batch that the
//! status file had recorded as confirmed is ever sent again; and re-sent
//! batches (answer lost in a kill: at-least-once) number at most the kills.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use resetd::status::Phase;

use crate::fake_api::{FakeApi, Reply};
use crate::support::Workspace;

const KILLS: usize = 20;
const HASHES: usize = 600;
const BATCH: usize = 2;

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

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash loop seed {seed}");
    let mut rng = seed;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };

    // (requests seen before the kill, batches confirmed in the status file at the kill)
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        let mut cmd = ws.command(&api.base());
        cmd.args(["run", "--once", "--config"]).arg(&ws.config);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        // The kill point is random on purpose: this wait is the experiment,
        // not synchronisation.
        std::thread::sleep(Duration::from_millis(random() % 400));
        child.kill().unwrap();
        child.wait().unwrap();
        kills.push((api.requests().len(), confirmed_batches(&ws)));
    }
    let (code, _, stderr) = ws.run_once(&api.base(), &[]);
    assert_eq!(code, 0, "{stderr}");

    let requests = api.requests();
    for (seen, confirmed) in &kills {
        for r in &requests[*seen..] {
            let batch = batch_of(r.sent()).unwrap();
            assert!(
                !confirmed.contains(&batch),
                "batch {batch} was recorded as confirmed and sent again"
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
    assert!(resent <= KILLS, "{resent} re-sends for {KILLS} kills");
    let confirmed: HashSet<&String> = requests
        .iter()
        .filter(|r| matches!(r.answered, Some(200..=299)))
        .flat_map(|r| r.sent())
        .collect();
    assert_eq!(
        confirmed.len(),
        HASHES,
        "every hash confirmed at least once"
    );
    assert_eq!(ws.status().resets["loop"].phase, Phase::Succeeded);
}
