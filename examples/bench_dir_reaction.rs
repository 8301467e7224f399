//! Benchmark: a config directory in the daemon (SPEC §2b). An edit of one
//! of FILES files that together hold ENTRIES entries × HASHES hashes: how
//! long until its first DELETE, and what the reload costs, against the same
//! content as one file. Run through `bench/run.sh dirs` (needs a release
//! build of resetd at target/release/resetd, or `RESETD_BIN`).
//!
//! `bench_dir_reaction FILES ENTRIES HASHES EDITS DEBOUNCE [--one-file]`
//!
//! The generated entries are cron entries not due during the run, so the
//! start sends nothing but a seed entry; each edit appends one `immediate`
//! entry with a fresh hash to one file (a different file each time; a plain
//! append, as `git pull` writes), and the latency runs from the end of the
//! write to the fake API receiving that hash. Between edits the benchmark
//! waits until the daemon's CPU time stops moving (its pass and status write
//! are over), so each edit meets an idle daemon; the first waits until the
//! generated tree is more than a second old (see `config_files::RACY`). The reload's own cost is
//! read from the daemon's `config reloaded` log line (`parsed` files,
//! `took_ms`); the CPU per edit is the daemon's user + system time over the
//! edits (reload, pass, status write), divided by their number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: any failure is fatal

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HEAD: &str = "apiVersion: resetd/v1\nkind: SessionResets\n";

/// A 26-character ULID-shaped hash, unique per `n`.
fn hash(n: u64) -> String {
    const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = String::from("01JZ");
    let mut v = n;
    for _ in 0..22 {
        out.push(CROCKFORD[(v % 32) as usize] as char);
        v /= 32;
    }
    out
}

/// Entries `range` as a `resets:` section, cron entries not due today.
fn entries(w: &mut impl Write, range: std::ops::Range<u64>, per: u64) {
    writeln!(w, "resets:").unwrap();
    for e in range {
        writeln!(w, "  - id: entry-{e:05}").unwrap();
        writeln!(w, "    trigger: {{ cron: \"0 3 1 1 *\" }}").unwrap();
        writeln!(w, "    hashes:").unwrap();
        for h in 0..per {
            writeln!(w, "      - {}", hash(e * per + h)).unwrap();
        }
    }
}

/// The config: FILES files under `dir/resets.d`, or one file; returns the
/// path to give `--config` and the files edits go to.
fn generate(dir: &Path, files: u64, total: u64, per: u64, one: bool) -> (PathBuf, Vec<PathBuf>) {
    let settings = "settings:\n  maxRequestsPerSecond: 0\n";
    let seed = format!("  - id: seed\n    hashes: [{}]\n", hash(u64::MAX / 2));
    if one {
        let path = dir.join("resets.yaml");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        write!(w, "{HEAD}{settings}").unwrap();
        entries(&mut w, 0..total, per);
        write!(w, "{seed}").unwrap();
        w.flush().unwrap();
        return (path.clone(), vec![path]);
    }
    let root = dir.join("resets.d");
    std::fs::create_dir(&root).unwrap();
    let mut paths = Vec::new();
    for f in 0..files {
        let path = root.join(format!("team-{f:04}.yaml"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        write!(w, "{HEAD}{}", if f == 0 { settings } else { "" }).unwrap();
        entries(&mut w, total * f / files..total * (f + 1) / files, per);
        if f == 0 {
            write!(w, "{seed}").unwrap();
        }
        w.flush().unwrap();
        paths.push(path);
    }
    (root, paths)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Wait until the process's CPU time has not moved for 150 ms.
fn wait_idle(pid: u32) {
    let mut last = cpu_ticks(pid);
    let mut still = 0;
    while still < 3 {
        std::thread::sleep(Duration::from_millis(50));
        let now = cpu_ticks(pid);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (files, total, per, edits) = (
        number(0, 1_000),
        number(1, 10_000),
        number(2, 100),
        number(3, 50),
    );
    let debounce = args.get(4).cloned().unwrap_or_else(|| "200ms".into());
    let one = args.iter().any(|a| a == "--one-file");
    let bin = std::env::var("RESETD_BIN").unwrap_or_else(|_| "target/release/resetd".into());
    let api = fake_api::FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, targets) = generate(dir.path(), files, total, per, one);

    let mut child = Command::new(&bin)
        .args(["run", "--resync", "1h", "--config"])
        .arg(&config)
        .args(["--debounce", &debounce, "--api-base", &api.base()])
        .env("IPROYAL_API_TOKEN", "bench-token")
        .env("RESETD_LOG", "info")
        .env("RESETD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start resetd (build it with cargo build --release)");
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let reloads: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let sink = Arc::clone(&reloads);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.contains("config reloaded") {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let fields = &v;
            let parsed = fields["parsed"].as_u64().unwrap_or(0);
            let took = fields["took_ms"].as_u64().unwrap_or(0);
            sink.lock().unwrap().push((parsed, took));
        }
    });
    let started = Instant::now();
    api.wait_until(Duration::from_secs(120), "the seed entry", |r| r.len() == 1);
    let first_pass = started.elapsed();
    // The tree was written just before the daemon read it: files changed
    // within a second of their digest are read again at the next check
    // (the racily-clean rule), which the daemon takes off the edits' path
    // a second later. Edits meet a settled tree, as they do in service.
    std::thread::sleep(
        resetd::config_files::RACY.saturating_sub(started.elapsed()) + Duration::from_millis(500),
    );
    wait_idle(pid);

    let mut latencies = Vec::new();
    let mut busy = 0;
    for i in 0..edits as usize {
        let h = format!("01JZEDIT{i:05}000000000000");
        let target = &targets[(i * 37) % targets.len()];
        let before = cpu_ticks(pid);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(target)
            .unwrap();
        file.write_all(format!("  - id: edit-{i}\n    hashes: [{h}]\n").as_bytes())
            .unwrap();
        drop(file);
        let saved = Instant::now();
        let requests = api.wait_until(Duration::from_secs(60), &h, |r| r.len() == i + 2);
        let received = requests[i + 1].received;
        assert_eq!(requests[i + 1].sent(), [h]);
        latencies.push(received.saturating_duration_since(saved));
        wait_idle(pid);
        busy += cpu_ticks(pid) - before;
    }
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ticks = 100.0; // USER_HZ on Linux
    let reloads = reloads.lock().unwrap().clone();
    let mut took: Vec<u64> = reloads.iter().map(|r| r.1).collect();
    took.sort_unstable();
    let parsed: Vec<u64> = reloads.iter().map(|r| r.0).collect();
    let shape = if one {
        format!("one file, {total} entries x {per} hashes")
    } else {
        format!("{files} files, {total} entries x {per} hashes")
    };
    println!(
        "dir reaction ({shape}, debounce {debounce}, {edits} edits): first pass {:.2} s; save -> first DELETE p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; reload (load + merge) median {} ms, max {} ms, files parsed per reload {:?}; daemon CPU per edit (reload + pass + status) {:.0} ms",
        first_pass.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(latencies[latencies.len() - 1]),
        took.get(took.len() / 2).copied().unwrap_or(0),
        took.last().copied().unwrap_or(0),
        {
            let mut p = parsed.clone();
            p.dedup();
            p
        },
        busy as f64 / ticks / edits as f64 * 1e3
    );
}
