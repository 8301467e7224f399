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

/// The dialect both scanners are compared in: a reviewed file's, whose
/// refusals (YAML 1.1 readings, tags) come from the builder either way.
fn reviewed() -> super::Dialect<'static> {
    super::Dialect::Reviewed {
        field: &|k: &str| k == "on",
    }
}

/// The fast scanner alone: `None` when it bails.
fn fast(text: &str) -> Option<(Parsed, Recorder)> {
    let mut sink = Recorder::default();
    let mut builder = Builder::new(Some(&mut sink)).with_dialect(reviewed());
    let parsed = match Fast::scan_str(text, &mut builder) {
        Ok(()) => Ok(builder.finish()),
        Err(Stop::Error(e)) => Err(e),
        Err(Stop::Bail) => return None,
    };
    Some((parsed, sink))
}

fn saphyr(text: &str) -> (Parsed, Recorder) {
    let mut sink = Recorder::default();
    let parsed = super::saphyr(
        Parser::new_from_str(text),
        Builder::new(Some(&mut sink)).with_dialect(reviewed()),
    );
    (parsed, sink)
}

/// Whether `text` took the fast path, after checking it agrees with saphyr.
fn agrees(text: &str) -> bool {
    compare(text)
        .unwrap_or_else(|diff| panic!("fast scanner and saphyr disagree on:\n{text}\n{diff}"))
}

/// [`agrees`] without the panic: whether `text` took the fast path, or
/// what each scanner made of it.
fn compare(text: &str) -> Result<bool, String> {
    let Some(got) = fast(text) else {
        return Ok(false);
    };
    let want = saphyr(text);
    if got == want {
        Ok(true)
    } else {
        Err(format!("fast:   {got:?}\nsaphyr: {want:?}"))
    }
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
    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
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

// Config-shaped documents over YAML's syntax variants: a random tree of a
// config's fields (groups, users, resets with their `hashes`) rendered
// with random choices of style, then now and then damaged. Most variants
// make the line scanner bail; those documents check that it does, the
// rest that it reads what saphyr reads.

/// What a document holds, before it is written out.
enum Node {
    /// A scalar's content, written in a style the renderer picks.
    Scalar(String),
    /// Text written as it is (odd values and keys: flows, indicators).
    Raw(&'static str),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

enum Key {
    Text(String),
    Raw(&'static str),
}

/// Which syntax variants one document uses.
#[derive(Clone, Copy)]
struct Knobs {
    /// Indentation of a nested block collection (varied now and then).
    step: usize,
    /// Percent of collections written in flow style.
    flow: usize,
    comments: bool,
    quoted: bool,
    escapes: bool,
    anchors: bool,
    tags: bool,
    /// Multi-line plain and quoted scalars, block scalars, multi-line flows.
    multiline: bool,
    explicit: bool,
    unicode: bool,
    /// Characters that read two ways, or that YAML forbids.
    hostile: bool,
    long: bool,
    /// `key:value` with no space in flow mappings.
    adjacent: bool,
    duplicates: bool,
    /// `- key: value` rather than `-` and the mapping below.
    compact: bool,
    /// A sequence under a key at the key's own indentation.
    zero_seq: bool,
    /// Odd keys and values from `KEYS` and `VALUES`, and plain scalars
    /// written plain where they should be quoted.
    odd: bool,
}

impl Knobs {
    /// Half the documents use only what the line scanner reads, so that
    /// enough of them are compared at all.
    fn random(rng: &mut Rng) -> Self {
        let all = !rng.one_in(2);
        let mut on = |n| all && rng.one_in(n);
        Knobs {
            anchors: on(3),
            tags: on(4),
            multiline: on(3),
            explicit: on(5),
            escapes: on(3),
            hostile: on(4),
            step: [2, 2, 2, 4, 4, 1, 3][rng.below(7)],
            flow: [0, 10, 30, 60, 100][rng.below(5)],
            comments: !rng.one_in(3),
            quoted: !rng.one_in(3),
            unicode: rng.one_in(3),
            long: rng.one_in(10),
            adjacent: rng.one_in(5),
            duplicates: rng.one_in(6),
            compact: !rng.one_in(3),
            zero_seq: rng.one_in(6),
            odd: rng.one_in(4),
        }
    }
}

const WORDS: &[&str] = &[
    "eu",
    "us",
    "main",
    "rotate",
    "weekly",
    "x",
    "a-b",
    "v1.2",
    "night_shift",
    "ops",
    "1h",
    "30m",
    "on",
    "off",
    "yes",
    "010",
    "0x1F",
    "1e3",
    "1_000",
    "1:20",
    "null",
    "true",
    "~",
    "-",
    ".inf",
    "http://a.b/c?d=e",
    "a#b",
    "a:b",
    "50%",
    "@home",
    "it's",
    "say \"hi\"",
    "back\\slash",
    "a,b",
    "[x]",
    "{y}",
    "*",
    "&",
    "!",
    "|",
    ">",
    "?",
    "%",
];

const UNICODE: &[&str] = &[
    "é",
    "Zürich",
    "日本語",
    "😀",
    "e\u{301}",
    "\u{a0}",
    "x\u{a0}y",
    "\u{3000}",
    "\u{200b}",
    "ß",
    "Ω",
    "\u{10FFFF}",
    "\u{e9}t\u{e9}",
];

/// Characters that read two ways, or that YAML forbids.
const HOSTILE: &[&str] = &[
    "\u{2028}", "\u{2029}", "\u{85}", "\u{202e}", "\u{feff}", "\u{7f}", "\u{9b}", "\u{fffe}",
    "x\u{7}",
];

const TAGS: &[&str] = &[
    "!",
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!map",
    "!!seq",
    "!!binary",
    "!foo",
    "!<tag:yaml.org,2002:str>",
    "!!set",
];

/// A hash as configs hold them: a ULID, now and then something shorter.
fn hash(rng: &mut Rng) -> String {
    const ULID: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    match rng.below(8) {
        0 => format!("H{}", rng.below(100)),
        1 => rng
            .pick(&["01H7YCG0R9GYY1YCPS2S4QA6WB", "02JVRQ5BF83PTW19G1SRD955J0"])
            .to_owned(),
        _ => (0..26)
            .map(|_| char::from(ULID[rng.below(ULID.len())]))
            .collect(),
    }
}

struct Gen {
    rng: Rng,
    k: Knobs,
    /// Anchors defined so far (`a0`, `a1`, …).
    anchors: usize,
}

impl Gen {
    fn word(&mut self) -> String {
        if self.k.unicode && self.rng.one_in(3) {
            if self.k.hostile {
                return self.rng.pick(HOSTILE).to_owned();
            }
            return self.rng.pick(UNICODE).to_owned();
        }
        self.rng.pick(WORDS).to_owned()
    }

    fn text(&mut self) -> String {
        if self.k.long && self.rng.one_in(6) {
            let n = 50 + self.rng.below(250);
            return (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ");
        }
        let n = 1 + self.rng.below(4);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    fn key(&mut self, name: &str) -> Key {
        if self.k.odd && self.rng.one_in(12) {
            return Key::Raw(self.rng.pick(KEYS));
        }
        if self.k.long && self.rng.one_in(8) {
            // Around the line scanner's 512 bytes and saphyr's 1024 characters.
            let n = [500, 512, 513, 1023, 1024, 1025, 1100][self.rng.below(7)];
            let c = if self.k.unicode { "é" } else { "k" };
            return Key::Text(c.repeat(n));
        }
        Key::Text(name.to_owned())
    }

    fn scalar(&mut self) -> Node {
        if self.k.odd && self.rng.one_in(8) {
            return Node::Raw(self.rng.pick(VALUES));
        }
        Node::Scalar(self.text())
    }

    fn hashes(&mut self) -> Node {
        let n = if self.k.long && self.rng.one_in(4) {
            100
        } else {
            self.rng.below(5)
        };
        Node::Seq((0..n).map(|_| Node::Scalar(hash(&mut self.rng))).collect())
    }

    fn names(&mut self) -> Node {
        let n = self.rng.below(4);
        Node::Seq((0..n).map(|_| Node::Scalar(self.word())).collect())
    }

    /// A mapping of some of `fields` (in a random order, now and then a
    /// field twice or an extra one).
    fn map(&mut self, fields: &[&str], value: &mut dyn FnMut(&mut Gen, &str) -> Node) -> Node {
        let mut entries = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for name in fields {
            if self.rng.one_in(4) {
                continue;
            }
            let at = self.rng.below(names.len() + 1);
            names.insert(at, name);
        }
        if self.rng.one_in(5) {
            names.push(["note", "extra", "x-y", "k"][self.rng.below(4)]);
        }
        if self.k.duplicates && !names.is_empty() && self.rng.one_in(3) {
            let again = names[self.rng.below(names.len())];
            names.push(again);
        }
        for name in names {
            let node = value(self, name);
            entries.push((self.key(name), node));
        }
        Node::Map(entries)
    }

    fn entry(&mut self) -> Node {
        self.map(
            &[
                "id",
                "description",
                "hashes",
                "groups",
                "users",
                "trigger",
                "dryRun",
            ],
            &mut |g, name| match name {
                "hashes" => g.hashes(),
                "groups" | "users" => g.names(),
                "trigger" => {
                    let (k, v) = match g.rng.below(3) {
                        0 => ("every", "6h"),
                        1 => ("at", "2027-01-01T00:00:00Z"),
                        _ => ("cron", "0 3 * * *"),
                    };
                    Node::Map(vec![(Key::Text(k.into()), Node::Scalar(v.into()))])
                }
                "id" => Node::Scalar(format!("r{}", g.rng.below(9))),
                _ => g.scalar(),
            },
        )
    }

    fn groups(&mut self) -> Node {
        let n = self.rng.below(4);
        let names: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
        let fields: Vec<&str> = names.iter().map(String::as_str).collect();
        self.map(&fields, &mut |g, _| {
            g.map(
                &["hashes", "groups", "description"],
                &mut |g, name| match name {
                    "hashes" => g.hashes(),
                    "groups" => g.names(),
                    _ => g.scalar(),
                },
            )
        })
    }

    fn config(&mut self) -> Node {
        self.map(
            &[
                "apiVersion",
                "kind",
                "defaults",
                "groups",
                "users",
                "resets",
            ],
            &mut |g, name| match name {
                "apiVersion" => Node::Scalar("resetd/v1".into()),
                "kind" => Node::Scalar("SessionResets".into()),
                "defaults" => g.map(&["dryRun", "batchSize", "timeout"], &mut |g, _| g.scalar()),
                "groups" | "users" => g.groups(),
                "resets" => {
                    let n = g.rng.below(5);
                    Node::Seq((0..n).map(|_| g.entry()).collect())
                }
                _ => g.scalar(),
            },
        )
    }

    // Writing out.

    fn step(&mut self) -> usize {
        if self.rng.one_in(10) {
            1 + self.rng.below(5)
        } else {
            self.k.step
        }
    }

    fn comment(&mut self) -> &'static str {
        if self.k.comments && self.rng.one_in(4) {
            self.rng
                .pick(&[" # c", "  #c", " #", " # a: b", " # - x", " #[x]"])
        } else {
            ""
        }
    }

    /// Comment and blank lines before an entry.
    fn between(&mut self, indent: usize, out: &mut String) {
        if self.k.comments && self.rng.one_in(6) {
            let pad = match self.rng.below(4) {
                0 => 0,
                1 => indent + 1,
                _ => indent,
            };
            out.push_str(&format!("{}# note\n", " ".repeat(pad)));
        }
        if self.rng.one_in(12) {
            out.push_str(["\n", "  \n"][self.rng.below(2)]);
        }
    }

    /// An anchor or tag before a node, with its trailing space.
    fn props(&mut self) -> String {
        let mut p = String::new();
        if self.k.tags && self.rng.one_in(5) {
            p.push_str(self.rng.pick(TAGS));
            p.push(' ');
        }
        if self.k.anchors && self.rng.one_in(4) {
            let anchor = format!("&a{} ", self.anchors);
            self.anchors += 1;
            if self.rng.one_in(2) {
                p.insert_str(0, &anchor);
            } else {
                p.push_str(&anchor);
            }
        }
        p
    }

    fn alias(&mut self) -> Option<String> {
        if !self.k.anchors || !self.rng.one_in(6) {
            return None;
        }
        if self.anchors == 0 || self.rng.one_in(10) {
            return Some("*nowhere".into());
        }
        Some(format!("*a{}", self.rng.below(self.anchors)))
    }

    /// A scalar's content in some style; `owner` is the indentation its
    /// continuation lines must exceed. The flag: a comment may follow.
    fn write_scalar(&mut self, s: &str, owner: usize, flow: bool) -> (String, bool) {
        let pad = |rng: &mut Rng| format!("\n{}", " ".repeat(owner + 1 + rng.below(3)));
        let multiline = self.k.multiline && self.rng.one_in(4);
        if !flow && multiline && self.rng.one_in(3) {
            // A block scalar: its lines below, more indented.
            let header = self
                .rng
                .pick(&["|", "|-", "|+", ">", ">-", ">+", "|2", ">1", "|-1"]);
            let inner = " ".repeat(owner + self.step().max(1));
            let mut text = format!("{header}{}\n", self.comment());
            for (i, word) in s.split(' ').enumerate() {
                if i > 0 && self.rng.one_in(4) {
                    text.push('\n');
                }
                let extra = if self.rng.one_in(6) { "  " } else { "" };
                text.push_str(&format!("{inner}{extra}{word}\n"));
            }
            if self.rng.one_in(3) {
                text.push('\n');
            }
            text.pop();
            return (text, false);
        }
        // Plain where that is safe (or, for odd documents, now and then
        // where it is not); quoted otherwise, in double quotes only where
        // escapes are on or none is needed.
        let plain = if plain_safe(s, flow) {
            !self.k.quoted || self.rng.one_in(2)
        } else {
            self.k.odd && self.rng.one_in(3)
        };
        let double =
            self.k.escapes || !s.contains(['"', '\\']) && s.chars().all(|c| !c.is_control());
        let style = match () {
            _ if plain => 0,
            _ if double && self.rng.one_in(2) => 2,
            _ => 1,
        };
        let fold = |g: &mut Gen, text: String| -> String {
            if !multiline {
                return text;
            }
            let mut out = String::new();
            for (i, part) in text.split(' ').enumerate() {
                if i > 0 {
                    if g.rng.one_in(2) {
                        out.push_str(&pad(&mut g.rng));
                        if g.rng.one_in(5) {
                            out.push_str(&pad(&mut g.rng));
                        }
                    } else {
                        out.push(' ');
                    }
                }
                out.push_str(part);
            }
            out
        };
        let text = match style {
            0 => fold(self, s.to_owned()),
            1 => format!("'{}'", fold(self, s.replace('\'', "''"))),
            _ => {
                let mut q = String::new();
                for c in s.chars() {
                    match c {
                        '"' => q.push_str("\\\""),
                        '\\' => q.push_str("\\\\"),
                        '\t' => q.push_str("\\t"),
                        c if c.is_control() || (self.k.escapes && self.rng.one_in(8)) => q
                            .push_str(&match self.rng.below(3) {
                                0 if (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
                                1 if (c as u32) < 0x10000 => format!("\\u{:04X}", c as u32),
                                _ => format!("\\U{:08x}", c as u32),
                            }),
                        c => q.push(c),
                    }
                }
                if self.k.escapes && self.rng.one_in(4) {
                    let odd = self.rng.pick(&[
                        "\\n", "\\/", "\\ ", "\\0", "\\e", "\\N", "\\_", "\\L", "\\P", "\\q",
                    ]);
                    q.push_str(odd);
                }
                format!("\"{}\"", fold(self, q))
            }
        };
        (text, true)
    }

    fn write_key(&mut self, key: &Key, flow: bool) -> String {
        match key {
            Key::Raw(raw) => (*raw).to_owned(),
            Key::Text(s) => {
                if !self.k.quoted || (plain_safe(s, flow) && !self.rng.one_in(4)) {
                    return s.clone();
                }
                if self.rng.one_in(2) {
                    format!("'{}'", s.replace('\'', "''"))
                } else {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
        }
    }

    /// `node` in flow style, its continuation lines deeper than `owner`.
    fn write_flow(&mut self, node: &Node, owner: usize, out: &mut String) {
        if let Some(alias) = self.alias() {
            out.push_str(&alias);
            return;
        }
        out.push_str(&self.props());
        let (open, close, len) = match node {
            Node::Scalar(s) => {
                let (text, _) = self.write_scalar(s, owner, true);
                out.push_str(&text);
                return;
            }
            Node::Raw(raw) => {
                out.push_str(raw);
                return;
            }
            Node::Seq(items) => ('[', ']', items.len()),
            Node::Map(entries) => ('{', '}', entries.len()),
        };
        let spaced = self.rng.one_in(4);
        out.push(open);
        if spaced {
            out.push(' ');
        }
        for i in 0..len {
            if i > 0 {
                out.push(',');
                if self.k.multiline && self.rng.one_in(4) {
                    out.push_str(self.comment());
                    out.push('\n');
                    out.push_str(&" ".repeat(owner + 1 + self.rng.below(3)));
                } else if !(self.k.adjacent && self.rng.one_in(3)) {
                    out.push(' ');
                }
            }
            match node {
                Node::Seq(items) => self.write_flow(&items[i], owner, out),
                Node::Map(entries) => {
                    let (key, value) = &entries[i];
                    if self.k.explicit && self.rng.one_in(6) {
                        out.push_str("? ");
                    }
                    let key = self.write_key(key, true);
                    out.push_str(&key);
                    out.push(':');
                    if !(self.k.adjacent && self.rng.one_in(2)) {
                        out.push(' ');
                    }
                    self.write_flow(value, owner, out);
                }
                _ => {}
            }
        }
        if len > 0 && self.rng.one_in(12) {
            out.push(',');
        }
        if spaced {
            out.push(' ');
        }
        out.push(close);
    }

    /// What follows a `key:` or `-` (already written) on its line, and the
    /// lines of a block collection below. `owner` is the key's or dash's
    /// column.
    fn write_value(&mut self, node: &Node, owner: usize, in_seq: bool, out: &mut String) {
        if let Some(alias) = self.alias() {
            out.push_str(&format!(" {alias}{}\n", self.comment()));
            return;
        }
        let empty = matches!(node, Node::Seq(v) if v.is_empty())
            || matches!(node, Node::Map(v) if v.is_empty());
        match node {
            Node::Scalar(s) => {
                let props = self.props();
                let (text, comment) = self.write_scalar(s, owner, false);
                let comment = if comment { self.comment() } else { "" };
                out.push_str(&format!(" {props}{text}{comment}\n"));
            }
            Node::Raw(raw) => {
                let props = self.props();
                out.push_str(&format!(" {props}{raw}{}\n", self.comment()));
            }
            _ if empty || self.rng.below(100) < self.k.flow => {
                out.push(' ');
                self.write_flow(node, owner, out);
                out.push_str(self.comment());
                out.push('\n');
            }
            Node::Map(entries) if in_seq && self.k.compact => {
                let extra = if self.rng.one_in(8) { 2 } else { 0 };
                out.push_str(&" ".repeat(1 + extra));
                self.write_map(entries, owner + 2 + extra, true, out);
            }
            Node::Seq(items) if in_seq && self.k.compact && self.rng.one_in(3) => {
                out.push(' ');
                self.write_seq(items, owner + 2, true, out);
            }
            Node::Map(entries) => {
                let props = self.props();
                out.push_str(&format!(" {}{}\n", props.trim_end(), self.comment()));
                let indent = owner + self.step();
                self.write_map(entries, indent, false, out);
            }
            Node::Seq(items) => {
                let props = self.props();
                out.push_str(&format!(" {}{}\n", props.trim_end(), self.comment()));
                let indent = if !in_seq && self.k.zero_seq {
                    owner
                } else {
                    owner + self.step()
                };
                self.write_seq(items, indent, false, out);
            }
        }
    }

    /// A block mapping at `indent`; `inline`: its first key goes where
    /// `out` stands (after a `- `).
    fn write_map(
        &mut self,
        entries: &[(Key, Node)],
        indent: usize,
        inline: bool,
        out: &mut String,
    ) {
        let pad = " ".repeat(indent);
        for (i, (key, value)) in entries.iter().enumerate() {
            let first = i == 0 && inline;
            if !first {
                self.between(indent, out);
                out.push_str(&pad);
            }
            let key = self.write_key(key, false);
            if self.k.explicit && self.rng.one_in(6) {
                out.push_str(&format!("? {key}{}\n", self.comment()));
                if self.rng.one_in(5) {
                    continue;
                }
                out.push_str(&pad);
                out.push(':');
            } else {
                out.push_str(&key);
                out.push(':');
            }
            self.write_value(value, indent, false, out);
        }
    }

    fn write_seq(&mut self, items: &[Node], indent: usize, inline: bool, out: &mut String) {
        let pad = " ".repeat(indent);
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.between(indent, out);
                out.push_str(&pad);
            }
            out.push('-');
            self.write_value(item, indent, true, out);
        }
    }

    /// A whole document: the config, its markers, BOM, line ends.
    fn document(&mut self) -> String {
        let root = self.config();
        let mut out = String::new();
        let all = self.k.multiline || self.k.anchors || self.k.tags;
        if all && self.rng.one_in(10) {
            out.push('\u{feff}');
        }
        if all && self.rng.one_in(10) {
            out.push_str(self.rng.pick(&[
                "%YAML 1.2\n",
                "%YAML 1.1\n",
                "%TAG !e! tag:e.com,2000:\n",
            ]));
            out.push_str("---\n");
        } else if all && self.rng.one_in(5) {
            out.push_str(self.rng.pick(&["---\n", "--- # c\n", "---  \n"]));
        }
        if self.k.comments && self.rng.one_in(4) {
            out.push_str("# A config\n\n");
        }
        match &root {
            Node::Map(entries) if !entries.is_empty() && self.rng.below(100) >= self.k.flow / 4 => {
                self.write_map(entries, 0, false, &mut out)
            }
            _ => {
                self.write_flow(&root, 0, &mut out);
                out.push('\n');
            }
        }
        if all && self.rng.one_in(8) {
            out.push_str(
                self.rng
                    .pick(&["...\n", "...\n# after\n", "---\na: 1\n", "--- x\n"]),
            );
        }
        if all && self.rng.one_in(8) {
            out = out.replace('\n', "\r\n");
        }
        out
    }
}

/// Whether `s` can be written as a plain scalar as it is (a stricter rule
/// than YAML's; anything else is quoted).
fn plain_safe(s: &str, flow: bool) -> bool {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    if b"-?:,[]{}#&*!|>'\"%@` ".contains(first)
        || matches!(last, b' ' | b':')
        || s.starts_with(['\u{a0}', '\u{3000}'])
    {
        return false;
    }
    let mut prev = 0;
    for &c in b {
        let bad = match c {
            b' ' => prev == b':',
            b'#' => prev == b' ',
            b'\'' | b'"' => true,
            b',' | b'[' | b']' | b'{' | b'}' => flow,
            _ => c < 0x20 || c == 0x7f,
        };
        if bad {
            return false;
        }
        prev = c;
    }
    s.is_ascii()
        || !s
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}'))
}

/// Damage a document: a character inserted or deleted, a line repeated,
/// moved or re-indented, or the text cut short.
fn damage(rng: &mut Rng, text: &str) -> String {
    let boundary = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let at = boundary(rng.below(text.len() + 1));
    let mut lines: Vec<&str> = text.split('\n').collect();
    let line = rng.below(lines.len());
    match rng.below(7) {
        0 | 1 => {
            let snippet = rng.pick(&[
                ":", ": ", "- ", "#", " #", ",", "[", "]", "{", "}", "'", "\"", "&a ", "*a", "!",
                "? ", "|", ">", "\t", " ", "\n", "\r\n", "%", "@", "`", "\\", "\u{feff}", "---",
                "...", "\n---\n", "\u{2028}",
            ]);
            format!("{}{snippet}{}", &text[..at], &text[at..])
        }
        2 => {
            let end = text[at..]
                .chars()
                .next()
                .map_or(text.len(), |c| at + c.len_utf8());
            format!("{}{}", &text[..at], &text[end..])
        }
        3 => {
            let copy = lines[line];
            lines.insert(line, copy);
            lines.join("\n")
        }
        4 => {
            if line + 1 < lines.len() {
                lines.swap(line, line + 1);
            }
            lines.join("\n")
        }
        5 => {
            let moved = lines[line];
            let shifted = match rng.below(3) {
                0 => format!(" {moved}"),
                1 => format!("   {moved}"),
                _ => moved.strip_prefix(' ').unwrap_or(moved).to_owned(),
            };
            let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            out[line] = shifted;
            out.join("\n")
        }
        _ => text[..at].to_owned(),
    }
}

/// The document for one seed.
fn config_document(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let k = Knobs::random(&mut rng);
    let mut g = Gen { rng, k, anchors: 0 };
    let mut text = g.document();
    if g.rng.one_in(4) {
        text = damage(&mut g.rng, &text);
    }
    if g.rng.one_in(10) {
        text.pop();
    }
    text
}

/// Whether a document's text shows something.
type Shows = fn(&str) -> bool;

/// Disagreements already known, each recognised by the text it shows up
/// in (and being fixed): a document that disagrees and matches one is
/// counted instead of failing. Take an entry off once it is fixed (the
/// test says so when none of a full run's documents hits it).
const KNOWN_DISAGREEMENTS: &[(&str, Shows)] = &[];

/// Config-shaped documents over the syntax variants, damaged now and then:
/// wherever the line scanner does not bail it must give saphyr's answer.
/// `FAST_CASES` sets the count (also of the test above); a failure names
/// the seed and the document.
#[test]
fn generated_configs_agree_with_saphyr() {
    const DEFAULT: u64 = 25_000;
    let cases = std::env::var("FAST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT);
    let started = std::time::Instant::now();
    let mut took_fast = 0;
    let mut known = vec![0u64; KNOWN_DISAGREEMENTS.len()];
    // How many documents show each variant, to keep the generator honest.
    let mut seen = [0u64; VARIANTS.len()];
    for seed in 1..=cases {
        let text = config_document(seed);
        if seed % 8 == 0 {
            for (n, (_, shows)) in seen.iter_mut().zip(VARIANTS) {
                *n += u64::from(shows(&text));
            }
        }
        let result = std::panic::catch_unwind(|| compare(&text));
        match result {
            Ok(Ok(fast)) => took_fast += u64::from(fast),
            Ok(Err(diff)) => match KNOWN_DISAGREEMENTS.iter().position(|(_, hit)| hit(&text)) {
                Some(i) => known[i] += 1,
                None => panic!(
                    "seed {seed}: fast scanner and saphyr disagree on:\n{text:?}\n{text}\n{diff}"
                ),
            },
            Err(_) => panic!("seed {seed}: panicked on:\n{text:?}"),
        }
    }
    eprintln!(
        "{cases} generated configs in {:.2?}: {took_fast} read by the line scanner and compared; \
         known disagreements {known:?}",
        started.elapsed()
    );
    assert!(
        took_fast * 8 > cases,
        "only {took_fast} of {cases} took the fast path"
    );
    for ((name, _), n) in VARIANTS.iter().zip(seen) {
        assert!(
            n * 8 * 200 > cases,
            "only {n} of {} sampled documents have {name}",
            cases / 8
        );
    }
    if cases >= DEFAULT {
        for ((name, _), n) in KNOWN_DISAGREEMENTS.iter().zip(known) {
            assert!(
                n > 0,
                "no document disagrees on {name:?} any more: take it off KNOWN_DISAGREEMENTS"
            );
        }
    }
}

/// Syntax variants the generator is meant to cover, each recognised in
/// a document's text.
const VARIANTS: &[(&str, Shows)] = &[
    ("single quotes", |t| t.contains(": '")),
    ("double quotes", |t| t.contains(": \"")),
    ("escapes", |t| t.contains("\\u") || t.contains("\\x")),
    ("flow mappings", |t| t.contains(": {")),
    ("flow sequences", |t| t.contains(": [")),
    ("nested flows", |t| {
        t.contains("[{") || t.contains(": {") && t.contains(": [")
    }),
    ("comments", |t| t.contains(" #")),
    ("anchors", |t| t.contains("&a")),
    ("aliases", |t| t.contains("*a")),
    ("aliased hashes", |t| t.contains("hashes: *a")),
    ("anchored hashes", |t| t.contains("hashes: &a")),
    ("document start", |t| t.contains("---")),
    ("document end", |t| t.contains("...\n")),
    ("byte order mark", |t| t.starts_with('\u{feff}')),
    ("CRLF", |t| t.contains("\r\n")),
    ("compact `- key:`", |t| t.contains("- id:")),
    ("4-space indentation", |t| t.contains("\n    ")),
    ("block scalars", |t| t.contains(": |") || t.contains(": >")),
    ("chomping", |t| t.contains("|-") || t.contains(">+")),
    ("multi-line scalars", |t| {
        t.lines().any(|l| {
            l.trim_start().starts_with(|c: char| c.is_ascii_lowercase())
                && !l.contains(':')
                && !l.contains('-')
        })
    }),
    ("explicit keys", |t| {
        t.lines()
            .any(|l| l.trim_start().starts_with("? ") || l.contains("{? "))
    }),
    ("duplicate keys", |t| {
        let mut keys: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
            .filter_map(|l| l.split(':').next())
            .collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        keys.len() < n
    }),
    ("tags", |t| t.contains("!!")),
    ("the non-specific tag", |t| {
        t.contains(": ! ") || t.contains("- ! ")
    }),
    ("long lines", |t| t.lines().any(|l| l.len() > 1000)),
    ("non-ASCII", |t| !t.is_ascii()),
    ("`key:value` in a flow mapping", |t| {
        t.contains(":[") || t.contains(":\"") || t.contains(":'")
    }),
    ("hashes in flow", |t| {
        t.contains("hashes:[") || t.contains("hashes: [")
    }),
];

/// Edges of what the line scanner reads, each compared with saphyr.
#[test]
fn syntax_edges_agree() {
    for text in [
        "a: x\u{2028}y\n",
        "a: x # c\u{2028}b: y\n",
        "a: x\u{85}y\n",
        "a: \u{a0}x\n",
        "\u{a0}a: x\n",
        "a: [x\u{2028}]\n",
        "a: {\"b\":c}\n",
        "a: {'b':[c]}\n",
        "a:: b\n",
        "a: b:c\n",
        "a: ...\n",
        "'a''b': ''''\n",
        "a: [a:b]\n",
        "a: {a: b:c}\n",
        "a:\n# c\n  b: 1\n",
        "a: b\n'a': c\n",
        "a: {b: 1, \"b\": 2}\n",
        "1: a\n\"1\": b\n",
        "a: [=, ;, ^]\n",
        "a: {<<: b}\n",
        "a: 'x'  #c\n",
        "a: b\u{3000}\n",
        "a: [b\u{a0}, c]\n",
        "a: [x - ]\n",
        "a: [x -y]\n",
        "a: [x - y]\n",
        "a: x -\n",
        "resets:\n  - {id: r1, hashes: [H1]}\n",
        "resets:\n  - {id: r1, \"hashes\":[H1]}\n",
    ] {
        assert!(agrees(text), "{text:?} left to saphyr");
    }
}

/// Disagreements this test found once, one document each: now the line
/// scanner leaves each to saphyr (or agrees with it). A plain scalar the
/// builder refuses at a line's end may be continued on the next line, so
/// its refusal waits for that line.
#[test]
fn former_disagreements_agree() {
    for text in [
        "resets:\n  - {id: r1, hashes:[H1]}\n",
        "a: {b:{c: d}}\n",
        "a: [x -]\n",
        "a: {b: x -}\n",
        "a: [x -, y]\n",
        "a:\n  - .inf\n   - night_shift\n",
        "a:\n  - off\n  - b\n",
        "a: off\nb: c\n",
        "a: off\n  more\n",
        "a:\n  - k: 010\n    j: 1\n",
    ] {
        agrees(text);
    }
}

/// The official YAML test suite's inputs (where they are: see
/// `tests/yaml-suite/README.md`), through both scanners.
#[test]
fn suite_cases_agree_with_saphyr() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("RESETD_YAML_SUITE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain([
            root.join("tests/yaml-suite/cases"),
            root.join("../shared/yaml-test-suite"),
        ])
        .find(|d| d.is_dir());
    let Some(dir) = dir else {
        assert!(
            std::env::var_os("RESETD_REQUIRE_YAML_SUITE").is_none(),
            "yaml-test-suite: no cases found, and RESETD_REQUIRE_YAML_SUITE is set"
        );
        eprintln!("yaml-test-suite: SKIPPED, no cases found");
        return;
    };
    let (mut cases, mut took_fast) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let Ok(text) = std::fs::read_to_string(entry.unwrap().path().join("in.yaml")) else {
            continue;
        };
        cases += 1;
        took_fast += usize::from(agrees(&text));
    }
    eprintln!("yaml-test-suite: {cases} cases, {took_fast} read by the line scanner and compared");
    assert!(cases >= 380, "only {cases} cases in {}", dir.display());
    assert!(took_fast >= 10, "only {took_fast} cases took the fast path");
}

/// Anchors and aliases as configs write them take the fast path, and agree
/// with saphyr (ids, positions, what the sink receives).
#[test]
fn anchors_and_aliases_take_the_fast_path_and_agree() {
    for text in [
        "groups:\n  eu: &g {hashes: [A1, B2]}\n  eu-copy: *g\n",
        "groups:\n  eu: &g\n    hashes:\n      - A1\n      - B2\n  eu-copy: *g\nresets:\n  - id: r1\n    groups: [eu-copy]\n",
        "a: &x [1, 2]\nb: *x\nc: [*x, &y z, *y]\n",
        "hashes: &h [A1, B2]\nresets:\n  - {id: r1, hashes: *h}\n  - id: r2\n    hashes: *h\n",
        "a: &a\nb: *a\n",
        "a: &a 1\na2: &a 2\nb: *a\n",
        "a: &m\n  k: v\nb: *m\n",
    ] {
        assert!(agrees(text), "took saphyr's path:\n{text}");
    }
    // Left to saphyr (or read alike): whichever way, the same answer.
    for other in [
        "a: *nope\n",
        "a: &a &b x\n",
        "a: [&a]\n",
        "a: {*x : 1}\n",
        "- &a k: v\n",
        "a:\n  - &e\n    id: x\n",
        "a: &x 1\nb: [*x, *x]\nc: *x\n",
        "key1: &a value\nkey2: &b *a\n",
        "a: [&b *a]\n",
    ] {
        agrees(other);
    }
}
