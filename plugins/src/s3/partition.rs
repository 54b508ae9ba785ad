//! Splitting a batch by the UTC hour (or minute) of its records' time, and the object keys
//! of a partition.

use std::collections::BTreeMap;

use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
use lumina_sdk::proto::logs::v1::{ResourceLogs, ScopeLogs};
use lumina_sdk::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric::Data};
use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans};
use lumina_sdk::{Batch, Payload, Signal};

const MINUTE: i64 = 60 * 1_000_000_000;
const HOUR: i64 = 60 * MINUTE;

/// How finely objects are partitioned in time: by minute when the key uses `{mm}`, else by
/// hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    Hour,
    Minute,
}

impl Grain {
    pub(crate) fn of(template: &str) -> Self {
        if template.contains("{mm}") {
            Grain::Minute
        } else {
            Grain::Hour
        }
    }

    /// The start of the partition holding `nanos` (Unix time).
    pub(crate) fn start(self, nanos: i64) -> i64 {
        let unit = match self {
            Grain::Hour => HOUR,
            Grain::Minute => MINUTE,
        };
        nanos.div_euclid(unit) * unit
    }
}

/// A record's time, or `now` when it has none (0).
fn or_now(t: u64, now: i64) -> i64 {
    match i64::try_from(t) {
        Ok(0) | Err(_) => now,
        Ok(t) => t,
    }
}

/// The time of a metric: that of its first data point.
fn metric_time(m: &Metric) -> u64 {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.first().map(|p| p.time_unix_nano),
        Some(Data::Sum(s)) => s.data_points.first().map(|p| p.time_unix_nano),
        Some(Data::Histogram(h)) => h.data_points.first().map(|p| p.time_unix_nano),
        Some(Data::ExponentialHistogram(h)) => h.data_points.first().map(|p| p.time_unix_nano),
        Some(Data::Summary(s)) => s.data_points.first().map(|p| p.time_unix_nano),
        None => None,
    }
    .unwrap_or(0)
}

/// Splits `batch` by partition: each part holds the items whose time (a log record's time,
/// else its observed time; a span's start; a metric's first data point) falls in it, with
/// their resource and scope. Items without a time go to the partition of `now`.
pub(crate) fn split(batch: &Batch, grain: Grain, now: i64) -> Vec<(i64, Batch)> {
    let part = |t: i64| grain.start(t);
    match batch.payload() {
        Payload::Logs(req) => {
            let mut out: BTreeMap<i64, ExportLogsServiceRequest> = BTreeMap::new();
            for rl in &req.resource_logs {
                for sl in &rl.scope_logs {
                    let mut by: BTreeMap<i64, ScopeLogs> = BTreeMap::new();
                    for r in &sl.log_records {
                        let t = match r.time_unix_nano {
                            0 => r.observed_time_unix_nano,
                            t => t,
                        };
                        by.entry(part(or_now(t, now)))
                            .or_insert_with(|| ScopeLogs {
                                scope: sl.scope.clone(),
                                schema_url: sl.schema_url.clone(),
                                log_records: Vec::new(),
                            })
                            .log_records
                            .push(r.clone());
                    }
                    for (p, scope) in by {
                        out.entry(p).or_default().resource_logs.push(ResourceLogs {
                            resource: rl.resource.clone(),
                            schema_url: rl.schema_url.clone(),
                            scope_logs: vec![scope],
                        });
                    }
                }
            }
            out.into_iter().map(|(p, r)| (p, Batch::logs(r))).collect()
        }
        Payload::Traces(req) => {
            let mut out: BTreeMap<i64, ExportTraceServiceRequest> = BTreeMap::new();
            for rs in &req.resource_spans {
                for ss in &rs.scope_spans {
                    let mut by: BTreeMap<i64, ScopeSpans> = BTreeMap::new();
                    for s in &ss.spans {
                        by.entry(part(or_now(s.start_time_unix_nano, now)))
                            .or_insert_with(|| ScopeSpans {
                                scope: ss.scope.clone(),
                                schema_url: ss.schema_url.clone(),
                                spans: Vec::new(),
                            })
                            .spans
                            .push(s.clone());
                    }
                    for (p, scope) in by {
                        out.entry(p)
                            .or_default()
                            .resource_spans
                            .push(ResourceSpans {
                                resource: rs.resource.clone(),
                                schema_url: rs.schema_url.clone(),
                                scope_spans: vec![scope],
                            });
                    }
                }
            }
            out.into_iter()
                .map(|(p, r)| (p, Batch::traces(r)))
                .collect()
        }
        Payload::Metrics(req) => {
            let mut out: BTreeMap<i64, ExportMetricsServiceRequest> = BTreeMap::new();
            for rm in &req.resource_metrics {
                for sm in &rm.scope_metrics {
                    let mut by: BTreeMap<i64, ScopeMetrics> = BTreeMap::new();
                    for m in &sm.metrics {
                        by.entry(part(or_now(metric_time(m), now)))
                            .or_insert_with(|| ScopeMetrics {
                                scope: sm.scope.clone(),
                                schema_url: sm.schema_url.clone(),
                                metrics: Vec::new(),
                            })
                            .metrics
                            .push(m.clone());
                    }
                    for (p, scope) in by {
                        out.entry(p)
                            .or_default()
                            .resource_metrics
                            .push(ResourceMetrics {
                                resource: rm.resource.clone(),
                                schema_url: rm.schema_url.clone(),
                                scope_metrics: vec![scope],
                            });
                    }
                }
            }
            out.into_iter()
                .map(|(p, r)| (p, Batch::metrics(r)))
                .collect()
        }
    }
}

/// The key of a new object of `signal` in the partition starting at `start`.
pub(crate) fn render(
    template: &str,
    prefix: &str,
    signal: Signal,
    start: i64,
    uuid: &str,
    ext: &str,
) -> String {
    let t = jiff::Timestamp::from_nanosecond(i128::from(start))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC);
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        match &after[..close] {
            "prefix" => out.push_str(prefix.trim_matches('/')),
            "signal" => out.push_str(signal.as_str()),
            "YYYY" => out.push_str(&format!("{:04}", t.year())),
            "MM" => out.push_str(&format!("{:02}", t.month())),
            "DD" => out.push_str(&format!("{:02}", t.day())),
            "HH" => out.push_str(&format!("{:02}", t.hour())),
            "mm" => out.push_str(&format!("{:02}", t.minute())),
            "uuid" => out.push_str(uuid),
            "ext" => out.push_str(ext),
            // `validate` refused any other name.
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    // An empty placeholder (no prefix) leaves no empty path segment and no leading `/`.
    out.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}
