//! Benchmark: config save → first DELETE latency of the daemon, over 100
//! edits. Run through `bench/run.sh reaction` (needs a release build of
//! resetd at target/release/resetd).
//!
//! Each edit appends a new `immediate` entry with a fresh hash (a plain write,
//! as `git pull` would do); the latency is from the end of the write to the
//! fake API receiving that hash.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEAD: &str =
    "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  maxRequestsPerSecond: 0\nresets:\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let edits: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let debounce = args.next().unwrap_or_else(|| "200ms".into());
    let bin = std::env::var("RESETD_BIN").unwrap_or_else(|_| "target/release/resetd".into());
    let api = fake_api::FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.yaml");
    std::fs::write(
        &config,
        format!("{HEAD}  - id: seed\n    hashes: [SEED0]\n"),
    )
    .unwrap();

    let mut child = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--debounce", &debounce, "--api-base", &api.base()])
        .env("IPROYAL_API_TOKEN", "bench-token")
        .env("RESETD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start resetd (build it with cargo build --release)");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    api.wait_until(Duration::from_secs(20), "the seed entry", |r| r.len() == 1);

    let mut latencies = Vec::with_capacity(edits);
    for i in 0..edits {
        let hash = format!("EDIT{i:05}");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .unwrap();
        file.write_all(format!("  - id: edit-{i}\n    hashes: [{hash}]\n").as_bytes())
            .unwrap();
        drop(file);
        let saved = Instant::now();
        let requests = api.wait_until(Duration::from_secs(20), &hash, |r| r.len() == i + 2);
        let received = requests[i + 1].received;
        assert_eq!(requests[i + 1].sent(), [hash]);
        latencies.push(received.saturating_duration_since(saved));
    }
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "reaction (debounce {debounce}, {edits} edits): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
}
