//! Splits what the daemon does between an edit of one file of a config
//! directory and its first request into stages (development aid, not a
//! benchmark; `bench/run.sh dirs` measures the whole):
//! `cargo run --release --example profile_reload -- DIR [EDITS]`, DIR made
//! by `gen_config --split`. Each edit appends one entry to one file; the
//! stages are the reloader's check and load, then the pass's plan and
//! settle, from a steady state (what was due has run, as dry runs). For where the time goes inside a stage, run it under
//! `perf record -g`.
#![allow(clippy::unwrap_used)]
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(&args[0]);
    let edits: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let now = chrono::Utc::now();
    let mut files = resetd::config_files::ConfigFiles::new(dir, None);
    let t = Instant::now();
    let config = files.load(now).unwrap().config.unwrap();
    eprintln!(
        "cold load      {:>8.1?}  {} entries",
        t.elapsed(),
        config.resets.len()
    );
    let inputs = resetd::plan::Inputs {
        cli_dry_run: true,
        token: None,
        retry_backoff: Duration::from_secs(30),
        users: resetd::plan::Users::NotFetched,
        source_revision: None,
    };
    let mut status = resetd::status::Status::default();
    // Steady state: what was due has run (as dry runs, which need no API).
    let first = resetd::plan::plan(&config, &status, now, &inputs);
    let _ = first.settle(&mut status);
    for entry in &first.entries {
        if let (resetd::plan::Action::Run(spec), Some(st)) =
            (&entry.action, status.resets.get_mut(&entry.id))
        {
            st.record_dry_run(&spec.facts(entry, &[]), now);
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    names.sort();
    let mut stages = [Duration::ZERO; 5];
    for i in 0..edits {
        let target = &names[(i * 37) % names.len()];
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(target)
            .unwrap();
        // Ids of this run's own: a directory profiled twice stays valid.
        let pid = std::process::id();
        writeln!(
            f,
            "  - id: profile-edit-{pid}-{i}\n    hashes: [01JZEDIT{i:05}000000000000]"
        )
        .unwrap();
        drop(f);
        let mut marks = [Instant::now(); 6];
        files.digest().unwrap();
        marks[1] = Instant::now();
        let loaded = files.load(now).unwrap();
        marks[2] = Instant::now();
        let config = loaded.config.unwrap();
        marks[3] = Instant::now();
        let plan = resetd::plan::plan(&config, &status, now, &inputs);
        marks[4] = Instant::now();
        let _ = plan.settle(&mut status);
        marks[5] = Instant::now();
        drop(config);
        for (s, w) in stages.iter_mut().zip(marks.windows(2)) {
            *s += w[1] - w[0];
        }
    }
    let per = |d: Duration| d / u32::try_from(edits.max(1)).unwrap();
    eprintln!(
        "per edit: digest {:.1?} | load {:.1?} | (take) {:.1?} | plan {:.1?} | settle {:.1?}",
        per(stages[0]),
        per(stages[1]),
        per(stages[2]),
        per(stages[3]),
        per(stages[4])
    );
}
