//! The line scanner against saphyr: on every document it does not bail out
//! of, it must build the same value with the same position for every node,
//! hand the same items to a sink, and refuse with the same error.

use super::build::Builder;
use super::fast::{Fast, Stop};
use super::{Item, ListSink, Parsed, Pos, Seg};
use saphyr_parser::Parser;

/// Records what a sink receives; wants every list under a `hashes` key.
#[derive(Debug, Default, PartialEq)]
struct Recorder(Vec<String>);

impl ListSink for Recorder {
    fn wants(&self, path: &[Seg]) -> bool {
        matches!(path.last(), Some(Seg::Key(k)) if k == "hashes")
    }
    fn begin(&mut self, path: &[Seg], pos: Pos) {
        self.0.push(format!("begin {path:?} {pos:?}"));
    }
    fn item(&mut self, item: Item<'_>, pos: Pos) {
        self.0.push(format!("{item:?} {pos:?}"));
    }
    fn end(&mut self) {
        self.0.push("end".into());
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The fast scanner alone: `None` when it bails.
fn fast(text: &str) -> Option<(Parsed, Recorder)> {
    let mut sink = Recorder::default();
    let mut builder = Builder::new(Some(&mut sink));
    let parsed = match Fast::scan_str(text, &mut builder) {
        Ok(()) => Ok(builder.finish()),
        Err(Stop::Error(e)) => Err(e),
        Err(Stop::Bail) => return None,
    };
    Some((parsed, sink))
}

fn saphyr(text: &str) -> (Parsed, Recorder) {
    let mut sink = Recorder::default();
    let parsed = super::saphyr(Parser::new_from_str(text), Builder::new(Some(&mut sink)));
    (parsed, sink)
}

/// Whether `text` took the fast path, after checking it agrees with saphyr.
fn agrees(text: &str) -> bool {
    let Some(got) = fast(text) else {
        return false;
    };
    let want = saphyr(text);
    assert_eq!(got, want, "fast scanner and saphyr disagree on:\n{text}");
    true
}

#[test]
fn configs_as_written_take_the_fast_path_and_agree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut fast_files = 0;
    for dir in ["examples", "fuzz/corpus"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                fast_files += usize::from(agrees(&text));
            }
        }
    }
    assert!(
        fast_files >= 8,
        "only {fast_files} files took the fast path"
    );
    for text in [
        "a: 1\nb:\n  - x\n  - 'y'\n  - \"z\"\nc: {d: [e, f], g: h}\n",
        "resets:\n  - id: r1\n    hashes: [A1, B2]\n  - id: r2\n    hashes:\n      - C3\n",
        "a:\nb:   # empty\nc:\n",
        "a:\n  b:\n    c: 1\n  d: 2\ne: 3\n",
        "k: it's\nl: 'it''s'\nm: é ü\nn: \"ü\": \n",
        "x: {\"a\":b, 'c': d}\n",
    ] {
        agrees(text);
    }
    assert!(agrees("a: 1\nb:\n  - x\n"));
}

#[test]
fn refusals_agree() {
    for text in [
        "a: 1\na: 2\n",
        "a: 1\nb:\n  a: 1\n  a: 2\n",
        "x: {a: 1, a: 2}\n",
    ] {
        let (parsed, _) = fast(text).expect("read by the fast scanner");
        assert!(parsed.is_err(), "{text}");
        agrees(text);
    }
    let deep: String = (0..80).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
    assert!(fast(&deep).is_some_and(|(p, _)| p.is_err()));
    agrees(&deep);
}

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "id",
    "hashes",
    "groups",
    "k x",
    "a:b",
    "-k",
    "1",
    "~",
    "é",
    "a#b",
    "\"q k\"",
    "'s'",
    "'it''s'",
    "\"a\\\"b\"",
    "[a]",
    "{a: b}",
    "? x",
    "&a k",
    "*a",
    "!t k",
    "a ",
    "x[0]",
    "<<",
    "null",
    "true",
    "\"\"",
    "a\tb",
    ":x",
    "%x",
    "@x",
    "`x`",
    "a\r",
    "---",
    "...",
];

const VALUES: &[&str] = &[
    "",
    "x",
    "hello world",
    "12",
    "-1",
    "1.5",
    "1e3",
    "0x1F",
    "0o7",
    "true",
    "null",
    "~",
    "on",
    "\"q\"",
    "\"q r\"",
    "\"a\\nb\"",
    "'s'",
    "'it''s'",
    "'a",
    "\"a",
    "[a, b]",
    "[]",
    "{}",
    "[ a , b ]",
    "[a,b]",
    "{a: b}",
    "{a: b, c: [d, e]}",
    "{\"a\":b}",
    "{a: }",
    "{a}",
    "[a, ]",
    "[a: b]",
    "[a",
    "{a: {b: {c: d}}}",
    "[[[[]]]]",
    "[\"x\", 'y']",
    "&x a",
    "*x",
    "!t a",
    "!!str 1",
    "|",
    ">",
    "- x",
    "a: b",
    "\"x\" y",
    "x #c",
    "x#c",
    "#c",
    "2026-12-01T02:00:00Z",
    "a, b",
    "-",
    ":x",
    "@x",
    "%x",
    "ü x",
    "x\t",
    "\ty",
    "x\r",
    "a:",
    "b[0]",
    "(x)",
    "-.5",
    "+1",
    "01H7YCG0R9GYY1YCPS2S4QA6WB",
    "[01H7YCG0R9GYY1YCPS2S4QA6WB, h2]",
    "{at: 2027-01-01T00:00:00Z}",
    "{ cron: \"0 3 * * *\" }",
    "x\u{feff}",
    "\u{85}x",
    "[a, [b, c], {d: e}]",
    "{a: [b], c: d}",
];

const COMMENTS: &[&str] = &[
    "", "", "", "", "", "", " # c", "  #c", "#c", " #", " # a: b", "\t# c",
];

const INDENTS: &[&str] = &["", "", "  ", "  ", "    ", "      ", " ", "   ", "        "];

fn line(rng: &mut Rng) -> String {
    let indent = rng.pick(INDENTS);
    let comment = rng.pick(COMMENTS);
    match rng.next() % 12 {
        0..=3 => format!("{indent}{}: {}{comment}", rng.pick(KEYS), rng.pick(VALUES)),
        4 => format!("{indent}{}:{comment}", rng.pick(KEYS)),
        5..=6 => format!("{indent}- {}{comment}", rng.pick(VALUES)),
        7 => format!(
            "{indent}- {}: {}{comment}",
            rng.pick(KEYS),
            rng.pick(VALUES)
        ),
        8 => format!("{indent}- {}:{comment}", rng.pick(KEYS)),
        9 => format!("{indent}{}", rng.pick(VALUES)),
        10 => format!(
            "{indent}{}",
            rng.pick(&["-", "# c", "", "  ", "---", "...", "- - x"])
        ),
        _ => format!("{indent}{}:{}", rng.pick(KEYS), rng.pick(VALUES)),
    }
}

/// Values a config would hold; `VALUES` has the odd ones too.
const GOOD: &[&str] = &[
    "x",
    "hello world",
    "12",
    "true",
    "\"q\"",
    "'s'",
    "[a, b]",
    "{a: b}",
    "[]",
    "{}",
    "01H7YCG0R9GYY1YCPS2S4QA6WB",
    "2026-12-01T02:00:00Z",
    "{ cron: \"0 3 * * *\" }",
    "6h",
    "\"generated entry 5\"",
    "[\"x\", 'y']",
    "ü x",
    "a: b",
    "-1",
    "",
];

/// A document shaped like a config: nested block mappings and sequences
/// with random indentation, styles, comments and blank lines, and now and
/// then an odd value.
fn tree(rng: &mut Rng, out: &mut String, indent: usize, depth: usize, seq: bool) {
    let step = 1 + (rng.next() % 4) as usize;
    for _ in 0..1 + rng.next() % 4 {
        let pad = " ".repeat(indent);
        match rng.next() % 10 {
            0 => out.push_str(&format!("{pad}# note\n")),
            1 => out.push('\n'),
            _ => {}
        }
        let value = if rng.one_in(5) {
            rng.pick(VALUES)
        } else {
            rng.pick(GOOD)
        };
        let comment = rng.pick(COMMENTS);
        let nested = depth < 4 && rng.one_in(3);
        let key = if rng.one_in(6) {
            rng.pick(KEYS).to_owned()
        } else {
            format!("k{}", rng.next() % 6)
        };
        if seq {
            if nested && rng.one_in(2) {
                // `- key:` then the key's value below, or `- key: value`
                // and more keys of the same mapping.
                out.push_str(&format!("{pad}- {key}:{comment}\n"));
                let inner = indent + 2 + step;
                let as_seq = rng.one_in(2);
                tree(rng, out, inner, depth + 1, as_seq);
            } else if nested {
                out.push_str(&format!("{pad}- {key}: {value}{comment}\n"));
                tree(rng, out, indent + 2, depth + 1, false);
            } else {
                out.push_str(&format!("{pad}- {value}{comment}\n"));
            }
        } else if nested {
            out.push_str(&format!("{pad}{key}:{comment}\n"));
            let as_seq = rng.one_in(2);
            tree(rng, out, indent + step, depth + 1, as_seq);
        } else {
            out.push_str(&format!("{pad}{key}: {value}{comment}\n"));
        }
    }
}

#[test]
fn generated_documents_agree_with_saphyr() {
    let cases = std::env::var("FAST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000u64);
    let mut took_fast = 0;
    for seed in 1..=cases {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut text = String::new();
        if seed % 4 == 0 {
            let lines = 1 + rng.next() % 12;
            text = (0..lines).map(|_| line(&mut rng) + "\n").collect();
        } else {
            tree(&mut rng, &mut text, 0, 0, false);
            if seed % 3 == 0 {
                // One line replaced by a random one.
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                let at = (rng.next() % lines.len() as u64) as usize;
                lines[at] = line(&mut rng);
                text = lines.join("\n") + "\n";
            }
        }
        if rng.one_in(8) {
            text.pop();
        }
        let result = std::panic::catch_unwind(|| agrees(&text));
        match result {
            Ok(fast) => took_fast += u64::from(fast),
            Err(_) => panic!("seed {seed}:\n{text}"),
        }
    }
    // Enough of them are read by the fast scanner for this to mean something.
    assert!(
        took_fast * 8 > cases,
        "only {took_fast} of {cases} took the fast path"
    );
}
