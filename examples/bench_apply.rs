//! Benchmark: `resetd run --once` sending N hashes in batches against the
//! fake API with no rate limit; prints requests/s and CPU time per request.
//! Run through `bench/run.sh apply` (uses target/release/resetd).
//!
//! `bench_apply HASHES BATCH [ENTRIES]`: the hashes are split evenly over
//! ENTRIES entries (default 1), so 1,000 one-hash entries can be compared
//! with one 1,000-hash entry at batch size 1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::process::Command;

fn main() {
    let mut args = std::env::args().skip(1);
    let hashes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let entries: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let bin = std::env::var("RESETD_BIN").unwrap_or_else(|_| "target/release/resetd".into());
    let api = fake_api::FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.yaml");
    let list: Vec<String> = (0..hashes).map(|i| format!("01JZ{i:022}")).collect();
    let mut text = format!(
        "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  batchSize: {batch}\n  maxRequestsPerSecond: 0\nresets:\n"
    );
    for (e, chunk) in list.chunks(hashes.div_ceil(entries).max(1)).enumerate() {
        text.push_str(&format!(
            "  - id: bulk-{e}\n    hashes: [{}]\n",
            chunk.join(", ")
        ));
    }
    std::fs::write(&config, text).unwrap();
    let timed = dir.path().join("time.txt");
    let output = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&timed)
        .args(["-f", "%e %U %S %M"])
        .arg(&bin)
        .args(["run", "--once", "--config"])
        .arg(&config)
        .args(["--api-base", &api.base()])
        .env("IPROYAL_API_TOKEN", "bench-token")
        .env("RESETD_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run /usr/bin/time resetd");
    // resetd's summary goes to stderr: shown only when it failed.
    assert!(
        output.status.success(),
        "resetd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures = std::fs::read_to_string(&timed).unwrap();
    let f: Vec<f64> = figures
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (wall, user, sys, rss_kib) = (f[0], f[1], f[2], f[3]);
    let requests = api.requests().len();
    let per_entry = hashes.div_ceil(entries);
    assert_eq!(requests, entries * per_entry.div_ceil(batch));
    println!(
        "apply: {hashes} hashes in {entries} entr(y/ies), batch {batch}: {requests} requests in {wall:.2} s = {:.0} requests/s; \
         CPU {:.2} ms/request ({user:.2} s user + {sys:.2} s sys); peak RSS {:.0} MB",
        requests as f64 / wall,
        (user + sys) * 1e3 / requests as f64,
        rss_kib / 1024.0
    );
}
