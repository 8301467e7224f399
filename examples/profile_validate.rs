//! Splits `validate` time into its stages (development aid; not a benchmark).
#![allow(clippy::unwrap_used)]
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let t = Instant::now();
    let text = std::fs::read_to_string(&path).unwrap();
    eprintln!("read      {:?}", t.elapsed());
    let t = Instant::now();
    let mut parser = saphyr_parser::Parser::new_from_str(&text);
    let mut n = 0;
    while let Some(Ok(_)) = parser.next_event() {
        n += 1;
    }
    eprintln!("events    {:?} ({n})", t.elapsed());
    let t = Instant::now();
    let (value, _loc) = resetd::yaml::parse(&text).unwrap();
    eprintln!("yaml      {:?}", t.elapsed());
    let t = Instant::now();
    let v = resetd::schema::check(&value);
    eprintln!("schema    {:?} ({} violations)", t.elapsed(), v.len());
    drop(value);
    let t = Instant::now();
    let loaded = resetd::config::parse("x", &text, chrono::Utc::now());
    eprintln!(
        "full      {:?} ({} diags)",
        t.elapsed(),
        loaded.diagnostics.len()
    );
}
