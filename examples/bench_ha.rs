//! Benchmark: the HA leader with its status in etcd (SPEC §7). Prints
//! - requests/s of a daemon, sole member of a group, sending ENTRIES
//!   one-hash entries against the fake API with no rate limit, with etcd
//!   fsyncing as in production and with `--unsafe-no-fsync` (the
//!   difference is etcd's fsync cost: one per transaction, one transaction
//!   per request);
//! - the time to persist one batch (a durable record: one fenced etcd
//!   transaction) with 10 and with 10,000 entries in the status.
//!
//! `bench_ha [ENTRIES] [RECORDS]` (defaults 1000 and 200). Run through
//! `bench/run.sh ha` (uses target/release/resetd and etcd on PATH or in
//! /usr/bin; says so and does nothing without it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;
// The tests' etcd harness; the benchmark needs only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/etcd.rs"]
mod etcd;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resetd::etcd::{Client, EtcdStore, Keys, Leadership, TlsFiles};
use resetd::status::{EntryStatus, Status};
use resetd::store::StatusStore as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    for no_fsync in [false, true] {
        let Some(etcd) = etcd::Etcd::start_cluster("bench_ha", 1, no_fsync) else {
            return;
        };
        let label = if no_fsync {
            "etcd --unsafe-no-fsync"
        } else {
            "etcd fsync on"
        };
        let rate = daemon_rate(&etcd.endpoints(), entries);
        println!(
            "ha ({label}): {entries} one-hash entries, no rate limit: {:.0} requests/s",
            rate
        );
        let small = record_cost(&etcd.endpoints(), 10, records);
        let large = record_cost(&etcd.endpoints(), 10_000, records);
        println!(
            "ha ({label}): persisting a batch (one durable record, median of {records}): \
             {:.2} ms with 10 entries, {:.2} ms with 10000 entries (ratio {:.2})",
            small.as_secs_f64() * 1e3,
            large.as_secs_f64() * 1e3,
            large.as_secs_f64() / small.as_secs_f64()
        );
    }
}

/// Requests/s of a one-member group sending `entries` one-hash entries,
/// from its first request to its last.
fn daemon_rate(endpoints: &str, entries: usize) -> f64 {
    let bin = std::env::var("RESETD_BIN").unwrap_or_else(|_| "target/release/resetd".into());
    let api = fake_api::FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resets.yaml");
    let mut text = String::from(
        "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  batchSize: 1\n  maxRequestsPerSecond: 0\nresets:\n",
    );
    for e in 0..entries {
        text.push_str(&format!("  - id: e{e}\n    hashes: [01JZ{e:022}]\n"));
    }
    std::fs::write(&config, text).unwrap();
    let group = format!("bench{}", std::process::id());
    let mut child = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--api-base",
            &api.base(),
            "--etcd",
            endpoints,
            "--ha-group",
            &group,
        ])
        .env("IPROYAL_API_TOKEN", "bench-token")
        .env("RESETD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let requests = api.wait_until(Duration::from_secs(600), "every request", |r| {
        r.len() >= entries
    });
    let _ = child.kill();
    let _ = child.wait();
    let first = requests.first().unwrap().received;
    let last = requests[entries - 1].received;
    (entries - 1) as f64 / (last - first).as_secs_f64()
}

/// The median time of a durable record of one entry, leading a group whose
/// status holds `entries` entries.
fn record_cost(endpoints: &str, entries: usize, records: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let endpoints = endpoints.to_owned();
    runtime.block_on(async move {
        tokio::spawn(async move { measure(&endpoints, entries, records).await })
            .await
            .unwrap()
    })
}

async fn measure(endpoints: &str, entries: usize, records: usize) -> Duration {
    let client = Arc::new(Client::new(endpoints, &TlsFiles::default(), None).unwrap());
    let keys = Keys::new(&format!("bench-{entries}-{}", std::process::id()));
    let leadership = Leadership::new(resetd::etcd::leader::Options {
        member: "bench".into(),
        ttl: Duration::from_secs(10),
    });
    let (info_tx, info_rx) = tokio::sync::watch::channel(Default::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(resetd::etcd::leader::drive(
        Arc::clone(&leadership),
        Arc::clone(&client),
        keys.clone(),
        info_rx,
        stop_rx,
    ));
    let mut terms = leadership.terms();
    let term = loop {
        if let Some(term) = *terms.borrow_and_update() {
            break term;
        }
        terms.changed().await.unwrap();
    };
    let loaded = resetd::etcd::layout::load(&client, &keys, Duration::from_secs(10))
        .await
        .unwrap();
    let mut store = EtcdStore::new(client, keys, leadership, term, &loaded).unwrap();
    let mut status = Status::default();
    let now = chrono::Utc::now();
    for e in 0..entries {
        let entry: EntryStatus = serde_json::from_value(serde_json::json!({
            "phase": "Succeeded", "revision": 1, "specDigest": format!("sha256:{e:064}"),
            "hashCount": 1, "firstSeenAt": now, "lastRunAt": now, "completedAt": now,
        }))
        .unwrap();
        status.resets.insert(format!("e{e:05}"), entry);
    }
    status.updated_at = Some(now);
    store.save(&mut status).unwrap();
    let mut times = Vec::with_capacity(records);
    for i in 0..records {
        let id = format!("e{:05}", i % entries);
        if let Some(st) = status.resets.get_mut(&id) {
            st.attempts = st.attempts.wrapping_add(1);
        }
        let start = Instant::now();
        store.record(&status, &id, true).unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let _ = stop_tx.send(true);
    let _ = driver.await;
    drop(info_tx);
    times[times.len() / 2]
}
