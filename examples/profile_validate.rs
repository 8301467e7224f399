//! Splits `validate` time and memory into stages (development aid, not a
//! benchmark): `cargo run --release --example profile_validate -- FILE`.
//! For where the time goes inside a stage, run `resetd validate FILE` under
//! `perf record -e cpu-clock -g` or `valgrind --tool=callgrind`.
#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::time::Instant;

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
            .unwrap_or_default()
    };
    format!("rss {} KiB, peak {} KiB", field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let path = Path::new(&path);
    let now = chrono::Utc::now();
    let t = Instant::now();
    let diagnostics = resetd::config::check_file(path, now).unwrap();
    eprintln!(
        "validate       {:>8.0?}  {} ({} diagnostics)",
        t.elapsed(),
        rss(),
        diagnostics.len()
    );
    let t = Instant::now();
    let loaded = resetd::config::load(path, now).unwrap();
    eprintln!(
        "load (for run) {:>8.0?}  {} ({} diagnostics)",
        t.elapsed(),
        rss(),
        loaded.diagnostics.len()
    );
    drop(loaded);
    // The whole document as a value, no list streamed past it: what the
    // status file loader does, and what validation did before streaming.
    let t = Instant::now();
    let (parsed, _) = resetd::yaml::parse_file(
        || resetd::config::open(path),
        None,
        resetd::config::reviewed(),
    )
    .unwrap();
    let (value, _) = parsed.unwrap();
    eprintln!("whole value    {:>8.0?}  {}", t.elapsed(), rss());
    let t = Instant::now();
    let violations = resetd::schema::check(&value);
    eprintln!(
        "schema on it   {:>8.0?}  {} ({} violations)",
        t.elapsed(),
        rss(),
        violations.len()
    );
}
