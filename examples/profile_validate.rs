//! Splits `validate` time and memory into stages (development aid, not a
//! benchmark): `cargo run --release --example profile_validate -- FILE`.
#![allow(clippy::unwrap_used)]
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
    let t = Instant::now();
    let (parsed, _) =
        resetd::yaml::parse_reader(std::fs::File::open(&path).unwrap(), false).unwrap();
    let (value, loc) = parsed.unwrap();
    eprintln!("yaml    {:>8.0?}  {}", t.elapsed(), rss());
    let t = Instant::now();
    let v = resetd::schema::check(&value);
    eprintln!(
        "schema  {:>8.0?}  {} ({} violations)",
        t.elapsed(),
        rss(),
        v.len()
    );
    drop((value, loc));
    eprintln!("dropped           {}", rss());
    let t = Instant::now();
    let loaded = resetd::config::load(std::path::Path::new(&path), chrono::Utc::now()).unwrap();
    eprintln!(
        "load    {:>8.0?}  {} ({} diagnostics)",
        t.elapsed(),
        rss(),
        loaded.diagnostics.len()
    );
}
