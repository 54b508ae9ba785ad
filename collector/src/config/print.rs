//! `lumina print-config`: the resolved config as YAML, with secrets redacted.

use std::fmt::Write;

use lumina_sdk::config::{ConfigValue, ValueKind};

/// What secrets are replaced with.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Whether a key names a secret. Matching is by name because configs are free-form; it errs on
/// the side of hiding (`partition_key` is not a secret, `api_key` is).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    const WORDS: [&str; 12] = [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "credential",
        "bearer",
        "cookie",
        "private_key",
        "access_key",
    ];
    WORDS.iter().any(|w| k.contains(w)) && !k.ends_with("_file") && !k.ends_with("_path")
}

/// A copy of `v` with every secret value replaced.
pub(crate) fn redact(v: &ConfigValue) -> ConfigValue {
    let mut out = v.clone();
    walk(&mut out);
    out
}

fn walk(v: &mut ConfigValue) {
    match &mut v.kind {
        ValueKind::Mapping(entries) => {
            for e in entries {
                if is_secret_key(&e.key)
                    && !matches!(e.value.kind, ValueKind::Mapping(_) | ValueKind::Null)
                {
                    e.value = ConfigValue::string(REDACTED);
                } else {
                    walk(&mut e.value);
                }
            }
        }
        ValueKind::Sequence(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// YAML for `v` with secrets redacted.
pub fn redacted_yaml(v: &ConfigValue) -> String {
    to_yaml(&redact(v))
}

/// Block-style YAML for `v`.
pub fn to_yaml(v: &ConfigValue) -> String {
    let mut out = String::new();
    match &v.kind {
        ValueKind::Mapping(m) if m.is_empty() => out.push_str("{}\n"),
        ValueKind::Mapping(_) | ValueKind::Sequence(_) => emit(&mut out, v, 0),
        _ => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
    out
}

fn scalar(v: &ConfigValue) -> String {
    match &v.kind {
        ValueKind::Null => "null".into(),
        ValueKind::Scalar(s) => {
            let plain_ok = !s.quoted
                && !s.text.is_empty()
                && s.text.trim() == s.text
                && !s.text.starts_with([
                    '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'',
                    '"', '%', '@', '`',
                ])
                && !s.text.contains(": ")
                && !s.text.contains(" #")
                && !s.text.contains('\n');
            if plain_ok {
                s.text.clone()
            } else {
                serde_json::Value::String(s.text.clone()).to_string()
            }
        }
        ValueKind::Sequence(s) if s.is_empty() => "[]".into(),
        ValueKind::Mapping(m) if m.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

fn is_block(v: &ConfigValue) -> bool {
    match &v.kind {
        ValueKind::Mapping(m) => !m.is_empty(),
        ValueKind::Sequence(s) => !s.is_empty(),
        _ => false,
    }
}

fn emit(out: &mut String, v: &ConfigValue, indent: usize) {
    let pad = " ".repeat(indent);
    match &v.kind {
        ValueKind::Mapping(entries) => {
            for e in entries {
                let key = scalar(&ConfigValue::plain(e.key.clone()));
                if is_block(&e.value) {
                    let _ = writeln!(out, "{pad}{key}:");
                    let child = if matches!(e.value.kind, ValueKind::Sequence(_)) {
                        indent
                    } else {
                        indent + 2
                    };
                    emit(out, &e.value, child);
                } else {
                    let _ = writeln!(out, "{pad}{key}: {}", scalar(&e.value));
                }
            }
        }
        ValueKind::Sequence(items) => {
            for item in items {
                if is_block(item) {
                    let mut inner = String::new();
                    emit(&mut inner, item, indent + 2);
                    let trimmed = inner.trim_start_matches(' ');
                    let _ = write!(out, "{pad}- {trimmed}");
                } else {
                    let _ = writeln!(out, "{pad}- {}", scalar(item));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::config::parse_yaml;

    #[test]
    fn redacts_secrets_but_not_look_alikes() {
        let v = parse_yaml(
            "exporters:\n  appsync:\n    auth: {api_key: abc}\n    headers: {Authorization: Bearer x, X-Api-Key: k, x-tenant: t}\n  kinesis:\n    partition_key: dialogue_id\n    tls: {key_file: /k.pem}\n",
            "s.yaml",
        )
        .unwrap();
        let y = redacted_yaml(&v);
        assert!(
            !y.contains("abc") && !y.contains("Bearer x") && !y.contains(": k\n"),
            "{y}"
        );
        assert!(
            y.contains("x-tenant: t")
                && y.contains("partition_key: dialogue_id")
                && y.contains("key_file: /k.pem"),
            "{y}"
        );
    }

    #[test]
    fn yaml_output_reads_back_the_same() {
        let src = "a:\n  b: [1, two, 'three', '']\n  c: {d: \"x: y\", e: null, f: []}\nlist:\n  - {k: v, n: 2}\n  - plain\n";
        let v = parse_yaml(src, "r.yaml").unwrap();
        let again = parse_yaml(&to_yaml(&v), "again.yaml").unwrap();
        assert_eq!(again.to_json(), v.to_json(), "{}", to_yaml(&v));
    }
}
