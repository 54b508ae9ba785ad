//! Text renderings of batches, as the OpenTelemetry Collector's `debug` exporter prints them:
//! the `debug` exporter writes them, `lumina tap` shows them.

use std::fmt::Write;

use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
use crate::proto::metrics::v1::{metric, number_data_point};
use crate::{Batch, Payload};

/// Bytes (a trace or span id) in lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// An attribute value as the OpenTelemetry Collector prints it: `Str(x)`, `Int(3)`, ...
pub fn value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => "Empty()".into(),
        Some(any_value::Value::StringValue(s)) => format!("Str({s})"),
        Some(any_value::Value::BoolValue(b)) => format!("Bool({b})"),
        Some(any_value::Value::IntValue(i)) => format!("Int({i})"),
        Some(any_value::Value::DoubleValue(d)) => format!("Double({d})"),
        Some(any_value::Value::BytesValue(b)) => format!("Bytes({})", hex(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            format!(
                "Slice([{}])",
                a.values
                    .iter()
                    .map(|v| value(Some(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Some(any_value::Value::KvlistValue(kv)) => format!("Map({{{}}})", attrs_inline(&kv.values)),
        Some(any_value::Value::StringValueStrindex(i)) => format!("StrIndex({i})"),
    }
}

fn attrs_inline(attrs: &[KeyValue]) -> String {
    attrs
        .iter()
        .map(|a| format!("{}: {}", a.key, value(a.value.as_ref())))
        .collect::<Vec<_>>()
        .join(", ")
}

fn attrs_block(out: &mut String, title: &str, attrs: &[KeyValue]) {
    if attrs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for a in attrs {
        let _ = writeln!(out, "     -> {}: {}", a.key, value(a.value.as_ref()));
    }
}

/// One line with counts.
pub fn summary(batch: &Batch) -> String {
    match batch.payload() {
        Payload::Logs(r) => format!(
            "Logs: {} resource logs, {} log records",
            r.resource_logs.len(),
            batch.len()
        ),
        Payload::Traces(r) => format!(
            "Traces: {} resource spans, {} spans",
            r.resource_spans.len(),
            batch.len()
        ),
        Payload::Metrics(r) => {
            let metrics: usize = r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .map(|sm| sm.metrics.len())
                .sum();
            format!(
                "Metrics: {} resource metrics, {metrics} metrics, {} data points",
                r.resource_metrics.len(),
                batch.len()
            )
        }
    }
}

/// One line per item.
pub fn normal(batch: &Batch) -> String {
    let mut out = String::new();
    match batch.payload() {
        Payload::Logs(r) => {
            for lr in r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
            {
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    lr.severity_text,
                    value(lr.body.as_ref()),
                    attrs_inline(&lr.attributes)
                );
            }
        }
        Payload::Traces(r) => {
            for s in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                let _ = writeln!(
                    out,
                    "{} {} {} {}",
                    s.name,
                    hex(&s.trace_id),
                    hex(&s.span_id),
                    attrs_inline(&s.attributes)
                );
            }
        }
        Payload::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    m.name,
                    kind(m.data.as_ref()),
                    points(m.data.as_ref())
                );
            }
        }
    }
    out.truncate(out.trim_end().len());
    out
}

fn kind(d: Option<&metric::Data>) -> &'static str {
    match d {
        Some(metric::Data::Gauge(_)) => "Gauge",
        Some(metric::Data::Sum(_)) => "Sum",
        Some(metric::Data::Histogram(_)) => "Histogram",
        Some(metric::Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(metric::Data::Summary(_)) => "Summary",
        None => "Empty",
    }
}

fn number(v: Option<&number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => d.to_string(),
        None => "-".into(),
    }
}

fn points(d: Option<&metric::Data>) -> String {
    let list: Vec<String> = match d {
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| {
                format!(
                    "{{{}}} {}",
                    attrs_inline(&p.attributes),
                    number(p.value.as_ref())
                )
            })
            .collect(),
        Some(metric::Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| {
                format!(
                    "{{{}}} {}",
                    attrs_inline(&p.attributes),
                    number(p.value.as_ref())
                )
            })
            .collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                format!(
                    "{{{}}} count={} sum={}",
                    attrs_inline(&p.attributes),
                    p.count,
                    p.sum.unwrap_or_default()
                )
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| format!("{{{}}} count={}", attrs_inline(&p.attributes), p.count))
            .collect(),
        Some(metric::Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| {
                format!(
                    "{{{}}} count={} sum={}",
                    attrs_inline(&p.attributes),
                    p.count,
                    p.sum
                )
            })
            .collect(),
        None => Vec::new(),
    };
    list.join(" ")
}

fn resource_header(
    out: &mut String,
    title: &str,
    i: usize,
    resource: Option<&crate::proto::resource::v1::Resource>,
) {
    let _ = writeln!(out, "{title} #{i}");
    attrs_block(
        out,
        "Resource attributes",
        resource.map_or(&[][..], |r| &r.attributes),
    );
}

fn scope_header(
    out: &mut String,
    title: &str,
    j: usize,
    scope: Option<&crate::proto::common::v1::InstrumentationScope>,
) {
    let _ = writeln!(
        out,
        "{title} #{j}\nInstrumentationScope {} {}",
        scope.map_or("", |s| &s.name),
        scope.map_or("", |s| &s.version)
    );
}

/// Everything, in the OpenTelemetry Collector's layout.
pub fn detailed(batch: &Batch) -> String {
    let mut out = String::new();
    match batch.payload() {
        Payload::Logs(r) => {
            for (i, rl) in r.resource_logs.iter().enumerate() {
                resource_header(&mut out, "ResourceLog", i, rl.resource.as_ref());
                for (j, sl) in rl.scope_logs.iter().enumerate() {
                    scope_header(&mut out, "ScopeLogs", j, sl.scope.as_ref());
                    for (k, lr) in sl.log_records.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "LogRecord #{k}\nObservedTimestamp: {}\nTimestamp: {}\nSeverityText: {}\nSeverityNumber: {}\nEventName: {}\nBody: {}",
                            lr.observed_time_unix_nano,
                            lr.time_unix_nano,
                            lr.severity_text,
                            lr.severity_number,
                            lr.event_name,
                            value(lr.body.as_ref())
                        );
                        attrs_block(&mut out, "Attributes", &lr.attributes);
                        let _ = writeln!(
                            out,
                            "Trace ID: {}\nSpan ID: {}\nFlags: {}",
                            hex(&lr.trace_id),
                            hex(&lr.span_id),
                            lr.flags
                        );
                    }
                }
            }
        }
        Payload::Traces(r) => {
            for (i, rs) in r.resource_spans.iter().enumerate() {
                resource_header(&mut out, "ResourceSpans", i, rs.resource.as_ref());
                for (j, ss) in rs.scope_spans.iter().enumerate() {
                    scope_header(&mut out, "ScopeSpans", j, ss.scope.as_ref());
                    for (k, s) in ss.spans.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "Span #{k}\n    Trace ID       : {}\n    Parent ID      : {}\n    ID             : {}\n    Name           : {}\n    Kind           : {}\n    Start time     : {}\n    End time       : {}\n    Status code    : {}\n    Status message : {}",
                            hex(&s.trace_id),
                            hex(&s.parent_span_id),
                            hex(&s.span_id),
                            s.name,
                            s.kind,
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            s.status.as_ref().map_or(0, |st| st.code),
                            s.status.as_ref().map_or("", |st| &st.message)
                        );
                        attrs_block(&mut out, "Attributes", &s.attributes);
                    }
                }
            }
        }
        Payload::Metrics(r) => {
            for (i, rm) in r.resource_metrics.iter().enumerate() {
                resource_header(&mut out, "ResourceMetrics", i, rm.resource.as_ref());
                for (j, sm) in rm.scope_metrics.iter().enumerate() {
                    scope_header(&mut out, "ScopeMetrics", j, sm.scope.as_ref());
                    for (k, m) in sm.metrics.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "Metric #{k}\nDescriptor:\n     -> Name: {}\n     -> Description: {}\n     -> Unit: {}\n     -> DataType: {}\nDataPoints: {}",
                            m.name,
                            m.description,
                            m.unit,
                            kind(m.data.as_ref()),
                            points(m.data.as_ref())
                        );
                    }
                }
            }
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn renders_each_level() {
        let b = testkit::logs(1, 2);
        assert_eq!(summary(&b), "Logs: 1 resource logs, 2 log records");
        assert_eq!(normal(&b).lines().count(), 2);
        assert!(
            normal(&b).starts_with("INFO Str(record 0) seq: Int(0), kind: Str(test)"),
            "{}",
            normal(&b)
        );
        let d = detailed(&b);
        assert!(d.contains("-> service.name: Str(svc-0)"), "{d}");
        assert!(
            d.contains("Trace ID: 07070707070707070707070707070707"),
            "{d}"
        );
        let m = testkit::metrics(1, 3);
        assert_eq!(
            summary(&m),
            "Metrics: 1 resource metrics, 3 metrics, 6 data points"
        );
        assert!(detailed(&m).contains("DataType: Histogram"));
        assert!(detailed(&testkit::traces(1, 1)).contains("ID             : 0000000000000001"));
    }
}
