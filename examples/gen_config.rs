//! Writes a large, valid config for benchmarks (never committed).
//!
//! `cargo run --release --example gen_config -- OUT.yaml [ENTRIES] [HASHES_PER_ENTRY]`
//! Defaults: 10,000 entries × 100 hashes = 1,000,000 ULID-shaped hashes (~36 MB).
//!
//! `cargo run --release --example gen_config -- --groups OUT.yaml [GROUPS] [HASHES_PER_GROUP] [ENTRIES]`
//! The groups-heavy shape: the hashes live in groups, and every entry lists
//! two groups; every tenth lists its first group twice, so the file has
//! warnings (which must not cost a second pass). Defaults: 1,000 groups ×
//! 1,000 hashes and 10,000 entries (~36 MB).
//!
//! `--aliases` instead of `--groups`: the same, with every tenth group
//! anchored and copied by an alias (`group-00010-copy: *g00010`, 1 MB of
//! aliased text at the defaults: the bound is 16 MiB), and entries whose
//! second group is one of those naming its copy: the aliased shape.
//!
//! `cargo run --release --example gen_config -- --split FILES OUT_DIR [ENTRIES] [HASHES_PER_ENTRY]`
//! The entries shape as a config directory (SPEC §2b): the same entries and
//! hashes, in FILES files of about ENTRIES / FILES entries each
//! (`team-0000.yaml`...), `settings` in the first only. Together they hold
//! what the one file holds, so the two validate the same content.

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

fn trigger(w: &mut impl Write, e: u64) -> std::io::Result<()> {
    match e % 4 {
        0 => writeln!(w, "    trigger: immediate"),
        1 => writeln!(w, "    trigger: {{ cron: \"{} 3 * * *\" }}", e % 60),
        2 => writeln!(w, "    trigger: {{ every: 6h }}"),
        _ => writeln!(w, "    trigger: {{ at: \"2027-01-01T00:00:00Z\" }}"),
    }
}

fn header(w: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        w,
        "# yaml-language-server: $schema=../schema/resetd.schema.json"
    )?;
    writeln!(
        w,
        "apiVersion: resetd/v1\nkind: SessionResets\nsettings:\n  batchSize: 100"
    )
}

/// Entries that carry their own hashes (the original shape).
fn entries_shape(w: &mut impl Write, entries: u64, per_entry: u64) -> std::io::Result<u64> {
    header(w)?;
    entries_from(w, 0..entries, per_entry, 0)
}

/// `resets:` with entries `range`, their hashes numbered from `n`; returns
/// the next number.
fn entries_from(
    w: &mut impl Write,
    range: std::ops::Range<u64>,
    per_entry: u64,
    mut n: u64,
) -> std::io::Result<u64> {
    writeln!(w, "resets:")?;
    for e in range {
        writeln!(w, "  - id: entry-{e:05}")?;
        writeln!(w, "    description: \"generated entry {e}\"")?;
        trigger(w, e)?;
        writeln!(w, "    hashes:")?;
        for _ in 0..per_entry {
            writeln!(w, "      - {}", hash(n))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Hashes in groups, entries naming groups (some twice: warnings); with
/// `aliased`, each group anchored and copied by an alias.
fn groups_shape(
    w: &mut impl Write,
    groups: u64,
    per_group: u64,
    entries: u64,
    aliased: bool,
) -> std::io::Result<u64> {
    header(w)?;
    writeln!(w, "groups:")?;
    let mut n = 0;
    let copied = |g: u64| aliased && g.is_multiple_of(10);
    for g in 0..groups {
        if copied(g) {
            writeln!(w, "  group-{g:05}: &g{g:05}")?;
        } else {
            writeln!(w, "  group-{g:05}:")?;
        }
        writeln!(w, "    description: \"generated group {g}\"")?;
        writeln!(w, "    hashes:")?;
        for _ in 0..per_group {
            writeln!(w, "      - {}", hash(n))?;
            n += 1;
        }
        if copied(g) {
            writeln!(w, "  group-{g:05}-copy: *g{g:05}")?;
        }
    }
    writeln!(w, "resets:")?;
    for e in 0..entries {
        let first = e % groups.max(1);
        let second = (e * 7 + 1) % groups.max(1);
        let copy = if copied(second) { "-copy" } else { "" };
        writeln!(w, "  - id: entry-{e:05}")?;
        writeln!(w, "    description: \"generated entry {e}\"")?;
        trigger(w, e)?;
        if e % 10 == 0 {
            writeln!(
                w,
                "    groups: [group-{first:05}, group-{second:05}{copy}, group-{first:05}]"
            )?;
        } else {
            writeln!(w, "    groups: [group-{first:05}, group-{second:05}{copy}]")?;
        }
    }
    Ok(n)
}

/// The entries shape in `files` files under `dir`.
fn split(dir: &str, files: u64, entries: u64, per_entry: u64) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let files = files.max(1);
    let mut n = 0;
    for f in 0..files {
        let path = std::path::Path::new(dir).join(format!("team-{f:04}.yaml"));
        let mut w = BufWriter::new(std::fs::File::create(path)?);
        if f == 0 {
            header(&mut w)?;
        } else {
            writeln!(w, "apiVersion: resetd/v1\nkind: SessionResets")?;
        }
        let range = entries * f / files..entries * (f + 1) / files;
        n = entries_from(&mut w, range, per_entry, n)?;
        w.flush()?;
    }
    Ok(n)
}

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--split") {
        let files: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000);
        let out = args.get(2).cloned().unwrap_or_else(|| "large.d".into());
        let number =
            |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
        let (entries, per_entry) = (number(3, 10_000), number(4, 100));
        let n = split(&out, files, entries, per_entry)?;
        eprintln!("wrote {out}/: {files} files, {entries} entries, {n} hashes");
        return Ok(());
    }
    let grouped = args
        .first()
        .is_some_and(|a| a == "--groups" || a == "--aliases");
    let aliased = args.first().is_some_and(|a| a == "--aliases");
    if grouped {
        args.remove(0);
    }
    let mut args = args.into_iter();
    let out = args.next().unwrap_or_else(|| "large.yaml".into());
    let mut number = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let mut w = BufWriter::new(std::fs::File::create(&out)?);
    if grouped {
        let (groups, per_group, entries) = (number(1_000), number(1_000), number(10_000));
        let n = groups_shape(&mut w, groups, per_group, entries, aliased)?;
        eprintln!("wrote {out}: {groups} groups, {n} hashes, {entries} entries");
    } else {
        let (entries, per_entry) = (number(10_000), number(100));
        let n = entries_shape(&mut w, entries, per_entry)?;
        eprintln!("wrote {out}: {entries} entries, {n} hashes");
    }
    w.flush()
}
