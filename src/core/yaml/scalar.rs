//! What a scalar means: the YAML 1.2 core schema for plain and tagged
//! scalars, and whether YAML 1.1 would read the same text as another type
//! or value (which a reviewed file may not hold).
//!
//! The YAML 1.1 rules are the type repository's (yaml.org/type: bool, int,
//! float, null, merge, value), which PyYAML, libyaml's users and many
//! viewers still apply. Timestamps are left out: YAML 1.1 makes
//! `2026-12-01T02:00:00Z` a timestamp where 1.2 keeps a string, but both
//! name the same instant, and resetd reads the instant.

use serde_json::{Number, Value};

/// The core schema's tags (`!!str` and so on, after `!!` is resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Core {
    Str,
    Int,
    Float,
    Bool,
    Null,
    Map,
    Seq,
}

impl Core {
    pub(super) fn from_suffix(suffix: &str) -> Option<Core> {
        Some(match suffix {
            "str" => Core::Str,
            "int" => Core::Int,
            "float" => Core::Float,
            "bool" => Core::Bool,
            "null" => Core::Null,
            "map" => Core::Map,
            "seq" => Core::Seq,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Core::Str => "!!str",
            Core::Int => "!!int",
            Core::Float => "!!float",
            Core::Bool => "!!bool",
            Core::Null => "!!null",
            Core::Map => "!!map",
            Core::Seq => "!!seq",
        }
    }
}

/// A node's tag, as the builder needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tag {
    /// No tag: a plain scalar is resolved by the core schema.
    None,
    /// `!`: a string, sequence or mapping as written, never resolved.
    NonSpecific,
    Core(Core),
    /// Outside the core schema, as written (refused).
    Foreign(String),
}

/// What a scalar resolves to in one YAML version.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Str,
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// YAML 1.1's `<<` (merge) and `=` (value) keys.
    Key(&'static str),
}

/// The value of a scalar: `Ok(None)` for a string (the caller has the
/// text), `Err` with the reason when the tag and the text disagree or the
/// value cannot be held.
pub(super) fn value(text: &str, plain: bool, tag: &Tag) -> Result<Option<Value>, String> {
    let core = match tag {
        Tag::None if plain => return plain_value(text),
        Tag::None | Tag::NonSpecific | Tag::Core(Core::Str) => return Ok(None),
        Tag::Foreign(shown) => return Err(super::quote_tag(shown)),
        Tag::Core(core) => *core,
    };
    let wrong = |what: &str| {
        Err(format!(
            "{} on {}: {what}",
            core.name(),
            crate::diagnostic::quote(text)
        ))
    };
    match (core, reading_1_2(text)) {
        (Core::Null, Reading::Null) => Ok(Some(Value::Null)),
        (Core::Bool, Reading::Bool(b)) => Ok(Some(Value::Bool(b))),
        (Core::Int, Reading::Int(n)) => int(n).map(Some),
        (Core::Float, Reading::Int(n)) => float(n as f64, text).map(Some),
        (Core::Float, Reading::Float(f)) => float(f, text).map(Some),
        (Core::Null, _) => wrong("not a null (null, Null, NULL, ~ or nothing)"),
        (Core::Bool, _) => wrong("not a boolean (true or false)"),
        (Core::Int, _) => wrong("not an integer"),
        (Core::Float, _) => wrong("not a number"),
        (Core::Map | Core::Seq, _) => wrong("a scalar, not a collection"),
        (Core::Str, _) => Ok(None),
    }
}

/// An untagged plain scalar, by the YAML 1.2 core schema.
fn plain_value(text: &str) -> Result<Option<Value>, String> {
    // Most scalars (hashes, names) hold a character no null, boolean or
    // number has: they are strings, without trying each form.
    if text.bytes().any(|c| !SPECIAL_1_2[usize::from(c)]) {
        return Ok(None);
    }
    match reading_1_2(text) {
        Reading::Str | Reading::Key(_) => Ok(None),
        Reading::Null => Ok(Some(Value::Null)),
        Reading::Bool(b) => Ok(Some(Value::Bool(b))),
        Reading::Int(n) => match int(n) {
            Ok(v) => Ok(Some(v)),
            // Past 64 bits: what serde_json holds is a float.
            Err(_) => float(n as f64, text).map(Some),
        },
        Reading::Float(f) => float(f, text).map(Some),
    }
}

fn int(n: i128) -> Result<Value, String> {
    if let Ok(i) = i64::try_from(n) {
        return Ok(Value::Number(Number::from(i)));
    }
    match u64::try_from(n) {
        Ok(u) => Ok(Value::Number(Number::from(u))),
        Err(_) => Err(format!("the integer {n} is out of range")),
    }
}

fn float(f: f64, text: &str) -> Result<Value, String> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        format!(
            "{} is a float YAML reads as infinity or NaN, which resetd cannot hold; \
             quote it for a string",
            crate::diagnostic::quote(text)
        )
    })
}

/// The untagged plain scalar as the core schema reads it (the non-string
/// forms only; anything else is a string), as a value, or `None` for a
/// string: what the status file writer asks to know whether a string can
/// stay plain.
pub(super) fn resolve_special(text: &str) -> Option<Value> {
    plain_value(text).ok().flatten()
}

/// Why `text`, a plain scalar of a reviewed file, cannot stay as written:
/// YAML 1.1 reads it as another type or value than YAML 1.2 does, so
/// reviewers' tools and resetd would disagree.
pub(super) fn two_readings(text: &str) -> Option<String> {
    // Hashes, names and words hold a character none of YAML 1.1's
    // non-strings has.
    if text.bytes().any(|c| !SPECIAL_1_1[usize::from(c)]) {
        return None;
    }
    let (old, new) = (reading_1_1(text), reading_1_2(text));
    let truthy = is_truthy_word(text);
    let same = match (&old, &new) {
        (Reading::Int(a), Reading::Int(b)) => a == b,
        (Reading::Float(a), Reading::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        (a, b) => a == b,
    };
    let shown = crate::diagnostic::quote(text);
    if same {
        return truthy.then(|| {
            format!(
                "{shown} is spelled like a YAML 1.1 boolean (yes/no/on/off/y/n), which \
                 reviewers' tools may show as one; quote it (\"{}\")",
                text.escape_debug()
            )
        });
    }
    let alternative = match (&new, &old) {
        (Reading::Str, Reading::Key(_)) | (Reading::Str, Reading::Str) => None,
        (Reading::Str, other) => Some(canonical(other)),
        (other, _) => Some(canonical(other)),
    };
    let advice = match alternative {
        Some(alt) => format!(
            "quote it (\"{}\") for a string or write {alt}",
            text.escape_debug()
        ),
        None => format!("quote it (\"{}\")", text.escape_debug()),
    };
    Some(format!(
        "{shown} reads as {} in YAML 1.2 but as {} in YAML 1.1, so reviewers' tools \
         disagree about it; {advice}",
        describe(&new),
        describe(&old)
    ))
}

/// yes/no/on/off/y/n in any case: booleans to YAML 1.1 in three of their
/// spellings, and to a reader of any other spelling too (yamllint's truthy
/// rule).
fn is_truthy_word(text: &str) -> bool {
    ["yes", "no", "on", "off", "y", "n"]
        .iter()
        .any(|w| text.eq_ignore_ascii_case(w))
}

fn describe(reading: &Reading) -> String {
    match reading {
        Reading::Str => "a string".into(),
        Reading::Null => "null".into(),
        Reading::Bool(b) => format!("the boolean {b}"),
        Reading::Int(n) => format!("the integer {n}"),
        Reading::Float(f) => format!("the float {f:?}"),
        Reading::Key(k) => format!("a {k} key"),
    }
}

/// The same value written so that both versions read it alike.
fn canonical(reading: &Reading) -> String {
    match reading {
        Reading::Str | Reading::Key(_) => "a string".into(),
        Reading::Null => "null".into(),
        Reading::Bool(b) => b.to_string(),
        Reading::Int(n) => n.to_string(),
        Reading::Float(f) if f.is_finite() => format!("{f:?}"),
        Reading::Float(_) => "a quoted string".into(),
    }
}

/// The characters of the core schema's nulls, booleans and numbers
/// (`.inf`, `.nan` included).
static SPECIAL_1_2: [bool; 256] =
    crate::core::byte_set(b"0123456789abcdefABCDEFxo.+-~nNuUlLtTrRsSiI");

/// The characters of YAML 1.1's nulls, booleans, numbers and special keys.
static SPECIAL_1_1: [bool; 256] =
    crate::core::byte_set(b"0123456789+-._:~<=aAbBcCdDeEfFiIlLnNoOrRsStTuUxXyY");

/// The YAML 1.2 core schema's reading of an untagged plain scalar.
fn reading_1_2(text: &str) -> Reading {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Reading::Null,
        "true" | "True" | "TRUE" => return Reading::Bool(true),
        "false" | "False" | "FALSE" => return Reading::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Reading::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Reading::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Reading::Float(f64::NAN),
        _ => {}
    }
    if let Some(n) = int_1_2(text) {
        return Reading::Int(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Reading::Float(f);
    }
    Reading::Str
}

/// `[-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+`; `None` for anything else or
/// past i128.
fn int_1_2(text: &str) -> Option<i128> {
    let (digits, radix) = if let Some(oct) = text.strip_prefix("0o") {
        (oct, 8)
    } else if let Some(hex) = text.strip_prefix("0x") {
        (hex, 16)
    } else {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return text.parse::<i128>().ok();
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i128::from_str_radix(digits, radix).ok()
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` — Rust's
/// float parser alone would also accept `inf`, `NaN` and `1e5x`-like surprises.
fn looks_like_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// YAML 1.1's reading of an untagged plain scalar (yaml.org/type).
fn reading_1_1(text: &str) -> Reading {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Reading::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Reading::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Reading::Bool(false);
        }
        "<<" => return Reading::Key("merge"),
        "=" => return Reading::Key("value"),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Reading::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Reading::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Reading::Float(f64::NAN),
        _ => {}
    }
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = |n: i128| if negative { -n } else { n };
    let clean = |s: &str| s.replace('_', "");
    let all = |s: &str, ok: fn(u8) -> bool| !s.is_empty() && s.bytes().all(ok);
    if let Some(bin) = body.strip_prefix("0b") {
        if all(bin, |c| matches!(c, b'0' | b'1' | b'_'))
            && let Ok(n) = i128::from_str_radix(&clean(bin), 2)
        {
            return Reading::Int(sign(n));
        }
        return Reading::Str;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        if all(hex, |c| c.is_ascii_hexdigit() || c == b'_')
            && let Ok(n) = i128::from_str_radix(&clean(hex), 16)
        {
            return Reading::Int(sign(n));
        }
        return Reading::Str;
    }
    if body == "0" {
        return Reading::Int(0);
    }
    if let Some(oct) = body.strip_prefix('0')
        && all(oct, |c| matches!(c, b'0'..=b'7' | b'_'))
    {
        return i128::from_str_radix(&clean(oct), 8)
            .map(|n| Reading::Int(sign(n)))
            .unwrap_or(Reading::Str);
    }
    if body.starts_with(|c: char| c.is_ascii_digit() && c != '0')
        && all(body, |c| c.is_ascii_digit() || c == b'_')
    {
        return clean(body)
            .parse::<i128>()
            .map(|n| Reading::Int(sign(n)))
            .unwrap_or(Reading::Str);
    }
    if let Some(n) = sexagesimal(body) {
        return n;
    }
    // [-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        e.len() > 1 && e.starts_with(['-', '+']) && e[1..].bytes().all(|c| c.is_ascii_digit())
    });
    if let Some((int, frac)) = mantissa.split_once('.')
        && (int.is_empty()
            || (int.starts_with(|c: char| c.is_ascii_digit())
                && int.bytes().all(|c| c.is_ascii_digit() || c == b'_')))
        && frac.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && exponent_ok
    {
        // `1.2.3` matches the pattern but is no number: PyYAML fails on
        // it, a string is the closest of readings.
        let cleaned = format!("{}.{}", clean(int), frac);
        let number = match exponent {
            Some(e) => format!("{cleaned}e{e}"),
            None => cleaned,
        };
        return match number.parse::<f64>() {
            Ok(f) => Reading::Float(if negative { -f } else { f }),
            Err(_) => Reading::Str,
        };
    }
    Reading::Str
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+` (an int) and the same with `\.[0-9_]*`
/// after it (a float): base 60.
fn sexagesimal(body: &str) -> Option<Reading> {
    if !body.contains(':') {
        return None;
    }
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    let mut parts = whole.split(':');
    let first = parts.next()?;
    let first_ok = !first.is_empty()
        && first.bytes().all(|c| c.is_ascii_digit() || c == b'_')
        && first.starts_with(|c: char| c.is_ascii_digit())
        && (frac.is_some() || !first.starts_with('0'));
    if !first_ok {
        return None;
    }
    let mut n: i128 = first.replace('_', "").parse().ok()?;
    for part in parts {
        let ok = (1..=2).contains(&part.len())
            && part.bytes().all(|c| c.is_ascii_digit())
            && (part.len() == 1 || part.as_bytes()[0] <= b'5');
        if !ok {
            return None;
        }
        n = n.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)?;
    }
    match frac {
        None => Some(Reading::Int(n)),
        Some(f) if f.bytes().all(|c| c.is_ascii_digit() || c == b'_') => {
            let f: f64 = format!("0.{}", f.replace('_', "")).parse().ok()?;
            Some(Reading::Float(n as f64 + f))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_by_the_core_schema() {
        for (text, want) in [
            ("on", None),
            ("12", Some(json!(12))),
            ("-12", Some(json!(-12))),
            ("1.5", Some(json!(1.5))),
            ("~", Some(Value::Null)),
            ("0x1F", Some(json!(31))),
            ("0o17", Some(json!(15))),
            ("1e3", Some(json!(1000.0))),
            ("0b1010", None),
            ("1_000", None),
            ("01H7YCG0R9GYY1YCPS2S4QA6WB", None),
            ("18446744073709551615", Some(json!(18446744073709551615u64))),
        ] {
            assert_eq!(plain_value(text), Ok(want), "{text}");
        }
        assert!(plain_value(".inf").unwrap_err().contains("infinity"));
        assert!(plain_value(".nan").is_err());
    }

    #[test]
    fn tags_mean_what_they_say_or_are_refused() {
        let t = |c| Tag::Core(c);
        assert_eq!(value("true", true, &Tag::NonSpecific), Ok(None));
        assert_eq!(value("5", true, &Tag::NonSpecific), Ok(None));
        assert_eq!(value("3", true, &t(Core::Float)), Ok(Some(json!(3.0))));
        assert_eq!(value("3", false, &t(Core::Int)), Ok(Some(json!(3))));
        assert_eq!(value("12", true, &t(Core::Str)), Ok(None));
        assert_eq!(value("~", true, &t(Core::Null)), Ok(Some(Value::Null)));
        for (text, core, why) in [
            ("true", Core::Null, "not a null"),
            ("yes", Core::Bool, "not a boolean"),
            ("3.5", Core::Int, "not an integer"),
            ("x", Core::Float, "not a number"),
            ("x", Core::Map, "not a collection"),
            ("x", Core::Seq, "not a collection"),
        ] {
            let e = value(text, true, &t(core)).unwrap_err();
            assert!(e.contains(core.name()) && e.contains(why), "{e}");
        }
    }

    #[test]
    fn what_yaml_1_1_reads_another_way_is_named() {
        for (text, fragment) in [
            ("off", "the boolean false in YAML 1.1"),
            ("Yes", "the boolean true"),
            ("yES", "spelled like a YAML 1.1 boolean"),
            ("y", "the boolean true"),
            ("N", "the boolean false"),
            ("010", "the integer 10 in YAML 1.2 but as the integer 8"),
            ("010000", "the integer 4096"),
            ("09", "the integer 9 in YAML 1.2 but as a string"),
            ("0b1010", "a string in YAML 1.2 but as the integer 10"),
            ("1_000", "the integer 1000 in YAML 1.1"),
            ("1:20", "the integer 80"),
            ("1:20:30.5", "the float"),
            ("0o17", "the integer 15 in YAML 1.2 but as a string"),
            ("1e3", "the float 1000.0 in YAML 1.2 but as a string"),
            ("-0x1F", "the integer -31 in YAML 1.1"),
            ("<<", "a merge key"),
            ("=", "a value key"),
        ] {
            let why = two_readings(text).unwrap_or_else(|| panic!("{text} passed"));
            assert!(why.contains(fragment), "{text}: {why}");
            assert!(why.contains("quote it"), "{text}: {why}");
        }
        for same in [
            "12",
            "0",
            "-3",
            "1.5",
            "1.0e+3",
            "0x1F",
            "true",
            "False",
            "null",
            "~",
            "",
            ".inf",
            "on-call",
            "offline",
            "01H7YCG0R9GYY1YCPS2S4QA6WB",
            "01ABCDEF",
            "2026-12-01T02:00:00Z",
            "1.2.3",
            "a:b",
        ] {
            assert_eq!(two_readings(same), None, "{same}");
        }
    }
}
