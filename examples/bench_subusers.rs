//! Benchmark: what resolving `users:` adds to `resetd run --once`. The fake
//! API holds N sub-users (100 a page, as resetd asks); the same one-entry
//! config is run naming one user, and naming that user's hash; the
//! difference is the lookup (every page). Prints medians of `RUNS` runs.
//! Run through `bench/run.sh subusers` (uses target/release/resetd).
//!
//! `bench_subusers [SUBUSERS] [RUNS]` (default 10,000 and 5).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::process::Command;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let subusers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let bin = std::env::var("RESETD_BIN").unwrap_or_else(|_| "target/release/resetd".into());
    let api = fake_api::FakeApi::start();
    api.subusers((0..subusers).map(|i| (format!("user-{i:06}"), format!("01SUB{i:021}"))));
    // The last sub-user: its page is the last one read.
    let last = subusers.saturating_sub(1);
    let by_user = format!("users: [user-{last:06}]");
    let by_hash = format!("hashes: [01SUB{last:021}]");
    let time_runs = |member: &str| -> f64 {
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let config = dir.path().join("resets.yaml");
                std::fs::write(
                    &config,
                    format!("apiVersion: resetd/v1\nkind: SessionResets\nresets:\n  - id: r\n    {member}\n"),
                )
                .unwrap();
                let started = Instant::now();
                let output = Command::new(&bin)
                    .args(["run", "--once", "--config"])
                    .arg(&config)
                    .args(["--api-base", &api.base()])
                    .env("IPROYAL_API_TOKEN", "bench-token")
                    .env("RESETD_LOG", "warn")
                    .output()
                    .expect("run resetd");
                let elapsed = started.elapsed().as_secs_f64();
                assert!(
                    output.status.success(),
                    "resetd failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                elapsed
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let hash_time = time_runs(&by_hash);
    let user_time = time_runs(&by_user);
    let gets = api.requests().iter().filter(|r| r.method == "GET").count();
    println!(
        "subusers: {subusers} sub-users ({} pages): run naming the hash {:.3} s, naming the user {:.3} s: the lookup adds {:.3} s (target < 1 s); {} GETs in {runs} runs",
        subusers.div_ceil(100).max(1),
        hash_time,
        user_time,
        user_time - hash_time,
        gets
    );
}
