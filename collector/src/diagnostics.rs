//! Renders config errors for operators, with the offending line and a caret.

use std::fmt::Write;

use lumina_sdk::config::{ConfigError, ConfigErrors};

use crate::config::ConfigSource;

/// Every error, each with its location, the source line, its path and a hint, followed by a
/// count.
pub fn render(errors: &ConfigErrors, sources: &[ConfigSource]) -> String {
    let mut out = render_each(errors, sources);
    let n = errors.len();
    let _ = writeln!(
        out,
        "{n} error{} found; the configuration is not valid.",
        if n == 1 { "" } else { "s" }
    );
    out
}

/// Every error, each with its location, the source line, its path and a hint.
pub fn render_each(errors: &ConfigErrors, sources: &[ConfigSource]) -> String {
    let mut out = String::new();
    for e in errors.iter() {
        render_one(&mut out, e, sources);
    }
    out
}

fn render_one(out: &mut String, e: &ConfigError, sources: &[ConfigSource]) {
    let _ = writeln!(out, "error: {}", e.message);
    let line_no = e.location.as_ref().map_or(0, |l| l.line);
    let pad = " ".repeat(line_no.to_string().len());
    if let Some(loc) = &e.location {
        let _ = writeln!(out, "{pad}--> {loc}");
        let line = sources
            .iter()
            .find(|s| s.name == *loc.source)
            .and_then(|s| s.text.lines().nth(loc.line.saturating_sub(1)));
        if let Some(text) = line {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{} | {}", loc.line, text);
            let _ = writeln!(out, "{pad} | {}^", " ".repeat(loc.column.saturating_sub(1)));
        }
    }
    if !e.path.is_root() {
        let _ = writeln!(out, "{pad} = at: {}", e.path);
    }
    if let Some(h) = &e.hint {
        let _ = writeln!(out, "{pad} = help: {h}");
    }
    out.push('\n');
}
