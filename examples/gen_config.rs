//! Writes a large, valid config for benchmarks (never committed).
//!
//! `cargo run --release --example gen_config -- OUT.yaml [ENTRIES] [HASHES_PER_ENTRY]`
//! Defaults: 10,000 entries × 100 hashes = 1,000,000 ULID-shaped hashes (~36 MB).

use std::io::{BufWriter, Write};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 26-character Crockford base32 string, unique per `n`.
fn hash(n: u64) -> String {
    let mut out = *b"01JZ000000000000000000000";
    let mut v = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n;
    for slot in out.iter_mut().skip(4) {
        *slot = CROCKFORD[(v % 32) as usize];
        v /= 32;
    }
    // The last 4 characters carry `n` itself, so hashes never collide.
    let mut s = String::from_utf8_lossy(&out[..21]).into_owned();
    let mut m = n;
    let mut tail = [b'0'; 5];
    for slot in tail.iter_mut().rev() {
        *slot = CROCKFORD[(m % 32) as usize];
        m /= 32;
    }
    s.push_str(&String::from_utf8_lossy(&tail));
    s
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "large.yaml".into());
    let entries: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let per_entry: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut w = BufWriter::new(std::fs::File::create(&out)?);
    writeln!(
        w,
        "# yaml-language-server: $schema=../schema/resetd.schema.json"
    )?;
    writeln!(
        w,
        "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  batchSize: 100\nresets:"
    )?;
    let mut n = 0;
    for e in 0..entries {
        writeln!(w, "  - id: entry-{e:05}")?;
        writeln!(w, "    description: \"generated entry {e}\"")?;
        match e % 4 {
            0 => writeln!(w, "    trigger: immediate")?,
            1 => writeln!(w, "    trigger: {{ cron: \"{} 3 * * *\" }}", e % 60)?,
            2 => writeln!(w, "    trigger: {{ every: 6h }}")?,
            _ => writeln!(w, "    trigger: {{ at: \"2027-01-01T00:00:00Z\" }}")?,
        }
        writeln!(w, "    hashes:")?;
        for _ in 0..per_entry {
            writeln!(w, "      - {}", hash(n))?;
            n += 1;
        }
    }
    w.flush()?;
    eprintln!("wrote {out}: {entries} entries, {n} hashes");
    Ok(())
}
