//! How YAML types a plain (unquoted) scalar under its core schema: null, booleans, integers
//! (decimal, `0x`, `0o`), floats (`.inf`, `.nan` too) or a string. The config tree keeps the
//! text; typed parsing and the JSON view both read it through here.

/// How a plain (unquoted) scalar reads under YAML's core schema.
#[derive(Debug, PartialEq)]
pub(crate) enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str,
}

pub(crate) fn resolve_plain(t: &str) -> Plain {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(t) {
        return i;
    }
    let numeric_start = t
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if numeric_start
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && let Ok(f) = t.parse::<f64>()
    {
        return Plain::Float(f);
    }
    Plain::Str
}

pub(crate) fn parse_int(t: &str) -> Option<Plain> {
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(body, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some(Plain::Int((mag as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else if let Ok(i) = i64::try_from(mag) {
        Some(Plain::Int(i))
    } else {
        Some(Plain::UInt(mag))
    }
}
