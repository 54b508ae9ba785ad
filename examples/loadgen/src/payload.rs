//! Request payloads: generic records with N attributes and a body of B bytes, or realistic
//! voice call events. Every record carries an integer `seq` attribute; with unique sequence
//! numbers a receiver can check that it got every record exactly once.

use std::fmt;

use lumina_sdk::Signal;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
use lumina_sdk::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use lumina_sdk::voice::{EVENT_TYPES, attr};
use prost::Message;

/// What the records look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// `attrs` string attributes and a body of `body_bytes` bytes.
    Generic,
    /// Voice call events (logs only): ids, numbers, direction, region, event type and source,
    /// following Lumina's voice semantic conventions.
    Voice,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Generic => "generic",
            Shape::Voice => "voice",
        })
    }
}

/// How to build a request.
#[derive(Clone, Debug)]
pub struct PayloadSpec {
    /// Logs, traces or metrics.
    pub signal: Signal,
    /// Record shape.
    pub shape: Shape,
    /// Records (spans, data points) per request.
    pub batch_size: usize,
    /// Attributes per record (generic shape).
    pub attrs: usize,
    /// Body bytes per record (generic logs).
    pub body_bytes: usize,
}

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            s("service.name", "lumina-loadgen"),
            s("host.name", "loadgen-1"),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lumina-loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    })
}

const NOW_NANOS: u64 = 1_763_900_000_000_000_000;

fn generic_attrs(spec: &PayloadSpec, seq: u64) -> Vec<KeyValue> {
    let mut a = Vec::with_capacity(spec.attrs + 1);
    a.push(kv("seq", Value::IntValue(seq as i64)));
    for i in 0..spec.attrs {
        a.push(s(&format!("attr.{i}"), format!("value-{i}-{}", seq % 97)));
    }
    a
}

fn voice_attrs(seq: u64) -> Vec<KeyValue> {
    let call = seq / 4;
    let org = call % 50;
    let ev = EVENT_TYPES[(seq % 4) as usize];
    vec![
        kv("seq", Value::IntValue(seq as i64)),
        s(attr::ORGANIZATION_ID, format!("org-{org:03}")),
        s(attr::ACCOUNT_ID, format!("acct-{org:03}-{}", call % 7)),
        s(attr::DIALOGUE_ID, format!("dlg-{call:012}")),
        s(
            attr::CALL_GUID,
            format!("c0ffee00-0000-4000-8000-{call:012x}"),
        ),
        s(
            attr::LEG_GUID,
            format!("1e900000-0000-4000-8000-{call:012x}"),
        ),
        s(
            attr::CALLER_NUMBER,
            format!("+4420{:08}", call % 100_000_000),
        ),
        s(
            attr::CALLED_NUMBER,
            format!("+4420{:08}", (call * 7919) % 100_000_000),
        ),
        s(
            attr::DIRECTION,
            if call.is_multiple_of(3) {
                "OUTBOUND"
            } else {
                "INBOUND"
            },
        ),
        kv(attr::REGION_ID, Value::IntValue((org % 6 + 1) as i64)),
        s(attr::EVENT_ID, format!("evt-{seq:016x}")),
        s(attr::EVENT_TYPE, ev),
        s(
            attr::EVENT_SOURCE,
            if seq.is_multiple_of(2) { "GP" } else { "RT" },
        ),
    ]
}

/// A request whose records have `seq` values `first..first + batch_size`.
pub fn request(spec: &PayloadSpec, first: u64) -> Vec<u8> {
    let n = spec.batch_size as u64;
    match spec.signal {
        Signal::Logs => {
            let body = "x".repeat(spec.body_bytes);
            let log_records = (first..first + n)
                .map(|seq| {
                    let (attributes, body, event_name) = match spec.shape {
                        Shape::Generic => (generic_attrs(spec, seq), body.clone(), String::new()),
                        Shape::Voice => (
                            voice_attrs(seq),
                            String::new(),
                            "voice.call.event".to_owned(),
                        ),
                    };
                    LogRecord {
                        time_unix_nano: NOW_NANOS + seq,
                        observed_time_unix_nano: NOW_NANOS + seq,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: (!body.is_empty()).then_some(AnyValue {
                            value: Some(Value::StringValue(body)),
                        }),
                        attributes,
                        event_name,
                        trace_id: (seq as u128).to_be_bytes().to_vec(),
                        span_id: seq.to_be_bytes().to_vec(),
                        ..Default::default()
                    }
                })
                .collect();
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: resource(),
                    scope_logs: vec![ScopeLogs {
                        scope: scope(),
                        log_records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }
            .encode_to_vec()
        }
        Signal::Traces => {
            let spans = (first..first + n)
                .map(|seq| Span {
                    trace_id: ((seq / 8) as u128 + 1).to_be_bytes().to_vec(),
                    span_id: (seq + 1).to_be_bytes().to_vec(),
                    name: format!("span-{}", seq % 16),
                    kind: 2,
                    start_time_unix_nano: NOW_NANOS + seq,
                    end_time_unix_nano: NOW_NANOS + seq + 1_000_000,
                    attributes: generic_attrs(spec, seq),
                    ..Default::default()
                })
                .collect();
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: resource(),
                    scope_spans: vec![ScopeSpans {
                        scope: scope(),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }
            .encode_to_vec()
        }
        Signal::Metrics => {
            let data_points = (first..first + n)
                .map(|seq| NumberDataPoint {
                    attributes: generic_attrs(spec, seq),
                    time_unix_nano: NOW_NANOS + seq,
                    value: Some(number_data_point::Value::AsInt(seq as i64)),
                    ..Default::default()
                })
                .collect();
            ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: resource(),
                    scope_metrics: vec![ScopeMetrics {
                        scope: scope(),
                        metrics: vec![Metric {
                            name: "loadgen.value".into(),
                            unit: "1".into(),
                            data: Some(metric::Data::Gauge(Gauge { data_points })),
                            ..Default::default()
                        }],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }
            .encode_to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::Batch;

    #[test]
    fn requests_decode_with_the_right_counts_and_sequence_numbers() {
        for (signal, shape) in [
            (Signal::Logs, Shape::Generic),
            (Signal::Logs, Shape::Voice),
            (Signal::Traces, Shape::Generic),
            (Signal::Metrics, Shape::Generic),
        ] {
            let spec = PayloadSpec {
                signal,
                shape,
                batch_size: 10,
                attrs: 3,
                body_bytes: 20,
            };
            let b = Batch::decode_protobuf(signal, &request(&spec, 100)).unwrap();
            assert_eq!(b.len(), 10);
            if signal != Signal::Traces {
                let ids = lumina_sdk::testkit::item_ids(&b);
                assert_eq!(
                    ids,
                    (100..110).map(|i| i.to_string()).collect::<Vec<_>>(),
                    "{signal} {shape}"
                );
            }
        }
    }
}
