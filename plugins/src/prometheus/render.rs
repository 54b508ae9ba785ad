//! OTLP metrics into Prometheus series, named as the OpenTelemetry ↔ Prometheus
//! compatibility specification says, and the text exposition format (0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// The kinds of family the text format knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// The value of one series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A counter's or gauge's value.
    Number(f64),
    /// Cumulative bucket counts by upper bound (the last is +Inf), count and sum.
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
    /// Quantiles, count and sum.
    Summary {
        quantiles: Vec<(f64, f64)>,
        count: u64,
        sum: f64,
    },
}

/// Labels, sorted by name.
pub(crate) type Labels = Vec<(String, String)>;

pub(crate) struct Series {
    pub(crate) value: Value,
    pub(crate) updated: Instant,
}

pub(crate) struct Family {
    pub(crate) kind: Kind,
    pub(crate) help: String,
    pub(crate) series: BTreeMap<Labels, Series>,
}

/// Replaces what a metric name may not hold (`[a-zA-Z0-9_:]`, no leading digit) with `_`,
/// one `_` for a run of them.
pub(crate) fn metric_name(name: &str) -> String {
    sanitise(name, true)
}

/// The same for label names (`[a-zA-Z0-9_]`; a leading digit gets `key_` before it).
pub(crate) fn label_name(name: &str) -> String {
    let s = sanitise(name, false);
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{s}")
    } else {
        s
    }
}

fn sanitise(name: &str, colon: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
        if ok {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    if colon && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The unit's word, as the specification maps UCUM units (`s` → `seconds`), with
/// `{annotations}` dropped and `x/y` as `x_per_y`. Empty when there is none to add.
fn unit_word(unit: &str, kind: Kind) -> String {
    let word = |u: &str| -> String {
        match u {
            "d" => "days",
            "h" => "hours",
            "min" => "minutes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "us" => "microseconds",
            "ns" => "nanoseconds",
            "By" => "bytes",
            "KiBy" => "kibibytes",
            "MiBy" => "mebibytes",
            "GiBy" => "gibibytes",
            "KBy" => "kilobytes",
            "MBy" => "megabytes",
            "GBy" => "gigabytes",
            "m" => "meters",
            "V" => "volts",
            "A" => "amperes",
            "J" => "joules",
            "W" => "watts",
            "g" => "grams",
            "Cel" => "celsius",
            "Hz" => "hertz",
            "%" => "percent",
            other => other,
        }
        .to_owned()
    };
    // Annotations in braces say what is counted; they are no unit.
    let mut plain = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = 0,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.trim();
    if plain == "1" {
        return if kind == Kind::Gauge {
            "ratio".to_owned()
        } else {
            String::new()
        };
    }
    if plain.is_empty() {
        return String::new();
    }
    let w = match plain.split_once('/') {
        Some((a, b)) if !b.is_empty() => {
            let per = match b {
                "s" => "second",
                "m" => "minute",
                "h" => "hour",
                "d" => "day",
                other => other,
            };
            if a.is_empty() || a == "1" {
                format!("per_{per}")
            } else {
                format!("{}_per_{per}", word(a))
            }
        }
        _ => word(plain),
    };
    sanitise(&w, false).trim_matches('_').to_owned()
}

/// The family name of an OTLP metric: namespace, the name, then (with `suffixes`) the unit and,
/// for a counter, `_total`; each suffix only when the name does not end in it already.
pub(crate) fn family_name(
    namespace: &str,
    name: &str,
    unit: &str,
    kind: Kind,
    suffixes: bool,
) -> String {
    let mut n = if namespace.is_empty() {
        metric_name(name)
    } else {
        metric_name(&format!("{namespace}_{name}"))
    };
    if suffixes {
        let u = unit_word(unit, kind);
        if !u.is_empty() && !n.ends_with(&format!("_{u}")) {
            n = format!("{n}_{u}");
        }
        if kind == Kind::Counter && !n.ends_with("_total") {
            n.push_str("_total");
        }
    }
    n
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(out: &mut String, labels: &Labels, extra: Option<(&str, String)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .chain(extra)
    {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_value(&v));
    }
    out.push('}');
}

/// The `_sum` and `_count` lines of a histogram or summary.
fn sum_and_count(out: &mut String, name: &str, ls: &Labels, sum: f64, count: u64) {
    let _ = write!(out, "{name}_sum");
    labels(out, ls, None);
    let _ = writeln!(out, " {}", number(sum));
    let _ = write!(out, "{name}_count");
    labels(out, ls, None);
    let _ = writeln!(out, " {count}");
}

/// The text exposition of every family.
pub(crate) fn text(families: &BTreeMap<String, Family>) -> String {
    let mut out = String::new();
    for (name, f) in families {
        if f.series.is_empty() {
            continue;
        }
        if !f.help.is_empty() {
            let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(out, "# HELP {name} {help}");
        }
        let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
        for (ls, s) in &f.series {
            match &s.value {
                Value::Number(v) => {
                    out.push_str(name);
                    labels(&mut out, ls, None);
                    let _ = writeln!(out, " {}", number(*v));
                }
                Value::Histogram {
                    bounds,
                    counts,
                    count,
                    sum,
                } => {
                    let mut cumulative = 0;
                    for (i, c) in counts.iter().enumerate() {
                        cumulative += c;
                        let le = bounds.get(i).map_or("+Inf".to_owned(), |b| number(*b));
                        let _ = write!(out, "{name}_bucket");
                        labels(&mut out, ls, Some(("le", le)));
                        let _ = writeln!(out, " {cumulative}");
                    }
                    sum_and_count(&mut out, name, ls, *sum, *count);
                }
                Value::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    for (q, v) in quantiles {
                        out.push_str(name);
                        labels(&mut out, ls, Some(("quantile", number(*q))));
                        let _ = writeln!(out, " {}", number(*v));
                    }
                    sum_and_count(&mut out, name, ls, *sum, *count);
                }
            }
        }
    }
    out
}
