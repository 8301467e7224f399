//! Benchmark: config save → first DELETE latency of the daemon, over 100
//! edits. Run through `bench/run.sh reaction` (needs a release build of
//! resetd at target/release/resetd).
//!
//! Each edit appends a new `immediate` entry with a fresh hash (a plain write,
//! as `git pull` would do); the latency is from the end of the write to the
//! fake API receiving that hash.
//!
//! `bench_reaction EDITS DEBOUNCE [READ_EVERY]`: with READ_EVERY (e.g. `10ms`),
//! a foreign reader thread reads the config and another file in its directory
//! at that interval for the whole run, as a backup agent or editor would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HEAD: &str =
    "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  maxRequestsPerSecond: 0\nresets:\n";

fn main() {
    let mut args = std::env::args().skip(1);
    let edits: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let debounce = args.next().unwrap_or_else(|| "200ms".into());
    let read_every = args
        .next()
        .map(|a| humantime::parse_duration(&a).expect("READ_EVERY: a duration such as 10ms"));
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

    let stop = Arc::new(AtomicBool::new(false));
    let reader = read_every.map(|every| {
        let (config, stop) = (config.clone(), Arc::clone(&stop));
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "not the config\n").unwrap();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Errors are ignored: only the access matters.
                let _ = std::fs::read(&config);
                let _ = std::fs::read(&other);
                reads += 1;
                std::thread::sleep(every);
            }
            reads
        })
    });

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
    stop.store(true, Ordering::Relaxed);
    let reads = reader.map(|r| r.join().unwrap());
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let foreign = match (read_every, reads) {
        (Some(every), Some(reads)) => format!(
            ", foreign reader every {} ({reads} reads of 2 files)",
            humantime::format_duration(every)
        ),
        _ => String::new(),
    };
    println!(
        "reaction (debounce {debounce}, {edits} edits{foreign}): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
}
