//! The OpenTelemetry Collector's names for the collector's own metrics.
//!
//! At each scrape the series Lumina records are also shown under the names and labels the
//! OpenTelemetry Collector uses (`otelcol_receiver_accepted_log_records_total{receiver,transport}`,
//! `otelcol_exporter_queue_size{exporter}`, ...), so dashboards and alerts written for it work
//! on Lumina unchanged. The translation runs on the rendered text, so recording costs nothing
//! more; `service.telemetry.metrics.otelcol_names: false` turns it off.

use std::collections::BTreeMap;
use std::fmt::Write;

/// How a Lumina series maps to an OpenTelemetry Collector one.
struct Rule {
    from: &'static str,
    /// The name; `{unit}` stands for the signal's item (`log_records`, `spans`,
    /// `metric_points`).
    to: &'static str,
    /// The label `component` becomes (`receiver`, `processor`, `exporter`), if any.
    role: Option<&'static str>,
    /// Labels kept as they are; `signal` may be renamed (to `otel_signal`).
    keep: &'static [(&'static str, &'static str)],
    counter: bool,
    help: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        from: "lumina_receiver_accepted_items_total",
        to: "otelcol_receiver_accepted_{unit}_total",
        role: Some("receiver"),
        keep: &[("transport", "transport")],
        counter: true,
        help: "Items a receiver pushed into the pipeline.",
    },
    Rule {
        from: "lumina_receiver_refused_items_total",
        to: "otelcol_receiver_refused_{unit}_total",
        role: Some("receiver"),
        keep: &[("transport", "transport")],
        counter: true,
        help: "Items a receiver could not push into the pipeline.",
    },
    Rule {
        from: "lumina_processor_incoming_items_total",
        to: "otelcol_processor_incoming_items_total",
        role: Some("processor"),
        keep: &[("signal", "otel_signal")],
        counter: true,
        help: "Items passed to a processor.",
    },
    Rule {
        from: "lumina_processor_outgoing_items_total",
        to: "otelcol_processor_outgoing_items_total",
        role: Some("processor"),
        keep: &[("signal", "otel_signal")],
        counter: true,
        help: "Items a processor passed on.",
    },
    Rule {
        from: "lumina_exporter_sent_items_total",
        to: "otelcol_exporter_sent_{unit}_total",
        role: Some("exporter"),
        keep: &[],
        counter: true,
        help: "Items an exporter sent to its destination.",
    },
    Rule {
        from: "lumina_exporter_failed_items_total",
        to: "otelcol_exporter_send_failed_{unit}_total",
        role: Some("exporter"),
        keep: &[],
        counter: true,
        help: "Items an exporter failed to send to its destination.",
    },
    Rule {
        from: "lumina_exporter_refused_items_total",
        to: "otelcol_exporter_enqueue_failed_{unit}_total",
        role: Some("exporter"),
        keep: &[],
        counter: true,
        help: "Items that could not be added to an exporter's sending queue.",
    },
    Rule {
        from: "lumina_exporter_queue_size",
        to: "otelcol_exporter_queue_size",
        role: Some("exporter"),
        keep: &[],
        counter: false,
        help: "What an exporter's sending queue holds now.",
    },
    Rule {
        from: "lumina_exporter_queue_capacity",
        to: "otelcol_exporter_queue_capacity",
        role: Some("exporter"),
        keep: &[],
        counter: false,
        help: "What an exporter's sending queue can hold.",
    },
    Rule {
        from: "lumina_process_uptime_seconds",
        to: "otelcol_process_uptime_seconds_total",
        role: None,
        keep: &[],
        counter: true,
        help: "Seconds since the process started.",
    },
    Rule {
        from: "lumina_process_resident_memory_bytes",
        to: "otelcol_process_memory_rss_bytes",
        role: None,
        keep: &[],
        counter: false,
        help: "Resident memory of the process.",
    },
    Rule {
        from: "lumina_process_cpu_seconds",
        to: "otelcol_process_cpu_seconds_total",
        role: None,
        keep: &[],
        counter: true,
        help: "CPU time the process has used, user and system.",
    },
];

/// The OpenTelemetry Collector's name of each metric Lumina also shows under it (names with
/// `{unit}` expanded for each signal), whether it is a counter, and its help.
pub fn docs() -> Vec<(String, bool, &'static str)> {
    let mut v = Vec::new();
    for r in RULES {
        if r.to.contains("{unit}") {
            for u in ["log_records", "spans", "metric_points"] {
                v.push((r.to.replace("{unit}", u), r.counter, r.help));
            }
        } else {
            v.push((r.to.to_owned(), r.counter, r.help));
        }
    }
    v
}

/// A series' labels, as name and value.
type Labels = Vec<(String, String)>;

/// One series of Prometheus text: name, labels, value.
pub(crate) fn parse_series(line: &str) -> Option<(&str, Labels, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(other) => val.push(other),
                    None => return None,
                },
                '"' => break,
                c => val.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name, labels, value))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unit(signal: &str) -> Option<&'static str> {
    match signal {
        "logs" => Some("log_records"),
        "traces" => Some("spans"),
        "metrics" => Some("metric_points"),
        _ => None,
    }
}

/// The series of `rendered` (Prometheus text from the collector's recorder) under the
/// OpenTelemetry Collector's names, with `# HELP` and `# TYPE`. Series that differ only in
/// labels the other collector does not have (a refusal's reason, a processor's pipeline) are
/// summed.
pub fn translate(rendered: &str) -> String {
    // name -> (rule, labels -> value)
    let mut out: BTreeMap<String, (&Rule, BTreeMap<Labels, f64>)> = BTreeMap::new();
    for line in rendered.lines() {
        let Some((name, labels, value)) = parse_series(line) else {
            continue;
        };
        let Some(rule) = RULES.iter().find(|r| r.from == name) else {
            continue;
        };
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let to = if rule.to.contains("{unit}") {
            let Some(u) = get("signal").and_then(unit) else {
                continue;
            };
            rule.to.replace("{unit}", u)
        } else {
            rule.to.to_owned()
        };
        let mut new = Vec::new();
        if let Some(role) = rule.role {
            let Some(c) = get("component") else {
                continue;
            };
            new.push((role.to_owned(), c.to_owned()));
        }
        for (from, to) in rule.keep {
            if let Some(v) = get(from) {
                new.push(((*to).to_owned(), v.to_owned()));
            }
        }
        new.sort();
        *out.entry(to)
            .or_insert_with(|| (rule, BTreeMap::new()))
            .1
            .entry(new)
            .or_insert(0.0) += value;
    }
    let mut text = String::new();
    for (name, (rule, series)) in out {
        let kind = if rule.counter { "counter" } else { "gauge" };
        let _ = writeln!(text, "# HELP {name} {}", rule.help);
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for (labels, value) in series {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if body.is_empty() {
                let _ = writeln!(text, "{name} {value}");
            } else {
                let _ = writeln!(text, "{name}{{{}}} {value}", body.join(","));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_renamed_relabelled_and_summed_over_labels_the_other_collector_lacks() {
        let rendered = r#"# HELP lumina_receiver_accepted_items_total Items.
# TYPE lumina_receiver_accepted_items_total counter
lumina_receiver_accepted_items_total{component="otlp",kind="receiver",signal="logs",transport="grpc"} 7
lumina_receiver_accepted_items_total{component="otlp",kind="receiver",signal="traces",transport="http"} 2
lumina_receiver_refused_items_total{component="otlp",kind="receiver",signal="logs",reason="backpressure",transport="grpc"} 3
lumina_receiver_refused_items_total{component="otlp",kind="receiver",signal="logs",reason="invalid",transport="grpc"} 4
lumina_processor_incoming_items_total{component="batch",kind="processor",pipeline="logs/a",signal="logs"} 5
lumina_processor_incoming_items_total{component="batch",kind="processor",pipeline="logs/b",signal="logs"} 6
lumina_exporter_queue_size{component="kinesis/eu",kind="exporter"} 9
lumina_exporter_sent_items_total{component="a\"b",kind="exporter",signal="metrics"} 1
lumina_process_uptime_seconds 12.5
lumina_exporter_send_duration_seconds_bucket{component="x",kind="exporter",le="0.1"} 1
"#;
        let t = translate(rendered);
        for want in [
            "otelcol_receiver_accepted_log_records_total{receiver=\"otlp\",transport=\"grpc\"} 7",
            "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"http\"} 2",
            "otelcol_receiver_refused_log_records_total{receiver=\"otlp\",transport=\"grpc\"} 7",
            "otelcol_processor_incoming_items_total{otel_signal=\"logs\",processor=\"batch\"} 11",
            "otelcol_exporter_queue_size{exporter=\"kinesis/eu\"} 9",
            "otelcol_exporter_sent_metric_points_total{exporter=\"a\\\"b\"} 1",
            "otelcol_process_uptime_seconds_total 12.5",
            "# TYPE otelcol_exporter_queue_size gauge",
            "# TYPE otelcol_receiver_accepted_log_records_total counter",
        ] {
            assert!(t.contains(want), "{want}\n{t}");
        }
        assert!(
            !t.contains("duration"),
            "histograms are not translated:\n{t}"
        );
        // Every name shown is one `docs` lists.
        let docs = docs();
        for l in t.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let n = l.split(['{', ' ']).next().unwrap_or_default();
            assert!(docs.iter().any(|x| x.0 == n), "{n}");
        }
    }
}
