//! The wire walk against prost: the same bytes are accepted or refused by both, and what is
//! accepted has the same item count as its decoded form.

use prost::Message;

use super::*;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use crate::{Batch, testkit};

/// What a full decode says: the item count, or that it refuses.
fn prost_says(signal: Signal, bytes: &[u8]) -> Option<usize> {
    Batch::decode_protobuf(signal, bytes).ok().map(|b| b.len())
}

fn agree(signal: Signal, bytes: &[u8]) {
    let walk = validate(signal, bytes);
    assert_eq!(
        walk.as_ref().ok().copied(),
        prost_says(signal, bytes),
        "{signal}: the walk said {walk:?} for {bytes:02x?}"
    );
}

fn nested(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::StringValue("leaf".into())),
    };
    for _ in 0..depth {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    v
}

fn attrs() -> Vec<KeyValue> {
    vec![
        testkit::kv("voice.caller.number", "+442079460000"),
        testkit::kv_int("n", -5),
        KeyValue {
            key: "all".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        KeyValue {
                            key: "b".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::BoolValue(true)),
                            }),
                            key_strindex: 3,
                        },
                        KeyValue {
                            key: "d".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::DoubleValue(1.5)),
                            }),
                            ..Default::default()
                        },
                        KeyValue {
                            key: "raw".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::BytesValue(vec![0xff, 0, 1])),
                            }),
                            ..Default::default()
                        },
                        KeyValue {
                            key: "idx".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::StringValueStrindex(7)),
                            }),
                            ..Default::default()
                        },
                    ],
                })),
            }),
            ..Default::default()
        },
    ]
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attrs(),
        dropped_attributes_count: 2,
        entity_refs: vec![EntityRef {
            schema_url: "s".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into()],
            description_keys: vec!["d".into(), "é".into()],
        }],
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lumina".into(),
        version: "1".into(),
        attributes: attrs(),
        dropped_attributes_count: 1,
    })
}

/// A logs request that uses every field.
fn rich_logs() -> Vec<u8> {
    let record = |i: u64| LogRecord {
        time_unix_nano: i,
        observed_time_unix_nano: i + 1,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(nested(3)),
        attributes: attrs(),
        dropped_attributes_count: 1,
        flags: 1,
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        event_name: "call.started".into(),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![
                ScopeLogs {
                    scope: scope(),
                    log_records: (0..3).map(record).collect(),
                    schema_url: "u".into(),
                },
                ScopeLogs::default(),
            ],
            schema_url: "u".into(),
        }],
    }
    .encode_to_vec()
}

/// A traces request that uses every field.
fn rich_traces() -> Vec<u8> {
    let span = |i: u64| Span {
        trace_id: vec![1; 16],
        span_id: vec![i as u8; 8],
        trace_state: "k=v".into(),
        parent_span_id: vec![3; 8],
        flags: 257,
        name: "answer".into(),
        kind: 2,
        start_time_unix_nano: i,
        end_time_unix_nano: i + 9,
        attributes: attrs(),
        dropped_attributes_count: 1,
        events: vec![span::Event {
            time_unix_nano: 4,
            name: "ring".into(),
            attributes: attrs(),
            dropped_attributes_count: 2,
        }],
        dropped_events_count: 3,
        links: vec![span::Link {
            trace_id: vec![5; 16],
            span_id: vec![6; 8],
            trace_state: "a=b".into(),
            attributes: attrs(),
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "ok".into(),
            code: 1,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: (0..2).map(span).collect(),
                schema_url: "u".into(),
            }],
            schema_url: "u".into(),
        }],
    }
    .encode_to_vec()
}

/// A metrics request with every kind of metric and every field.
fn rich_metrics() -> Vec<u8> {
    let exemplars = || {
        vec![crate::proto::metrics::v1::Exemplar {
            filtered_attributes: attrs(),
            time_unix_nano: 1,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsInt(3)),
        }]
    };
    let number = |v: f64| NumberDataPoint {
        attributes: attrs(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        exemplars: exemplars(),
        flags: 1,
        value: Some(number_data_point::Value::AsDouble(v)),
    };
    let metric = |name: &str, data| Metric {
        name: name.into(),
        description: "d".into(),
        unit: "s".into(),
        metadata: attrs(),
        data: Some(data),
    };
    let metrics = vec![
        metric(
            "g",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(1.0), number(2.0)],
            }),
        ),
        metric(
            "s",
            metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsInt(-4)),
                    ..number(0.0)
                }],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "h",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attrs(),
                    start_time_unix_nano: 1,
                    time_unix_nano: 2,
                    count: 3,
                    sum: Some(4.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![0.5, 1.5],
                    exemplars: exemplars(),
                    flags: 0,
                    min: Some(0.1),
                    max: Some(9.0),
                }],
                aggregation_temporality: 1,
            }),
        ),
        metric(
            "e",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: attrs(),
                    start_time_unix_nano: 1,
                    time_unix_nano: 2,
                    count: 3,
                    sum: Some(4.0),
                    scale: -3,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: -2,
                        bucket_counts: vec![1, 300, 70_000],
                    }),
                    negative: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![5],
                    }),
                    flags: 1,
                    exemplars: exemplars(),
                    min: Some(0.0),
                    max: Some(3.0),
                    zero_threshold: 0.01,
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "q",
            metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attrs(),
                    start_time_unix_nano: 1,
                    time_unix_nano: 2,
                    count: 3,
                    sum: 4.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: 1.0,
                    }],
                    flags: 0,
                }],
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                schema_url: "u".into(),
            }],
            schema_url: "u".into(),
        }],
    }
    .encode_to_vec()
}

fn samples() -> Vec<(Signal, Vec<u8>)> {
    vec![
        (Signal::Logs, rich_logs()),
        (Signal::Traces, rich_traces()),
        (Signal::Metrics, rich_metrics()),
        (Signal::Logs, testkit::logs(2, 3).encode_protobuf()),
        (Signal::Traces, testkit::traces(2, 2).encode_protobuf()),
        (Signal::Metrics, testkit::metrics(2, 2).encode_protobuf()),
        (Signal::Logs, Vec::new()),
    ]
}

#[test]
fn valid_requests_validate_with_the_decoded_item_count() {
    for (signal, bytes) in samples() {
        let n = validate(signal, &bytes).unwrap();
        assert_eq!(Some(n), prost_says(signal, &bytes), "{signal}");
    }
    assert_eq!(validate(Signal::Metrics, &rich_metrics()), Ok(6));
    assert_eq!(validate(Signal::Logs, &rich_logs()), Ok(3));
}

/// xorshift64*: a deterministic stream for the mutations, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every kind of damage a request can take: a byte changed (to a random value, a high bit, a
/// non-UTF-8 byte or a wire type), removed, inserted, the end cut off; each applied to every
/// sample thousands of times, read as every signal.
#[test]
fn mutated_requests_get_the_same_answer_as_a_full_decode() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0;
    for (_, original) in samples().into_iter().filter(|(_, b)| !b.is_empty()) {
        for _ in 0..4_000 {
            let mut b = original.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below(b.len());
                match rng.below(6) {
                    0 => b[at] = rng.next() as u8,
                    1 => b[at] ^= 0x80,
                    2 => b[at] = 0xff,
                    3 => b[at] = (b[at] & !7) | rng.below(8) as u8,
                    4 if b.len() > 1 => {
                        b.remove(at);
                    }
                    _ => b.truncate(at),
                }
                if b.is_empty() {
                    break;
                }
            }
            for signal in Signal::ALL {
                agree(signal, &b);
                refused += usize::from(validate(signal, &b).is_err());
            }
        }
    }
    assert!(
        refused > 10_000,
        "the mutations mostly break requests: {refused}"
    );
}

#[test]
fn random_bytes_get_the_same_answer_as_a_full_decode() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let b: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
        for signal in Signal::ALL {
            agree(signal, &b);
        }
    }
}

/// Encodes a field key.
fn key(tag: u32, wire: u8) -> Vec<u8> {
    let mut v = Vec::new();
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wire)), &mut v);
    v
}

fn delimited(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut v = key(tag, 2);
    prost::encoding::encode_varint(body.len() as u64, &mut v);
    v.extend_from_slice(body);
    v
}

/// A logs request of one record whose body is `body` (an encoded AnyValue).
fn with_body(body: &[u8]) -> Vec<u8> {
    with_field(5, body)
}

/// A logs request of one record with field `tag` set to `value` (encoded).
fn with_field(tag: u32, value: &[u8]) -> Vec<u8> {
    let record = delimited(tag, value);
    let scope = delimited(2, &record);
    let resource = delimited(2, &scope);
    delimited(1, &resource)
}

#[test]
fn the_edges_of_the_format_are_judged_as_prost_judges_them() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a string that is not UTF-8",
            with_body(&delimited(1, &[0xc3, 0x28])),
        ),
        (
            "bytes need not be UTF-8",
            with_body(&delimited(7, &[0xc3, 0x28])),
        ),
        ("a string sent as a varint", with_body(&[8, 1])),
        ("an unknown varint field", with_body(&[0x78, 1])),
        ("an unknown group", with_body(&[0x7b, 0x08, 0x01, 0x7c])),
        (
            "a group closed by the wrong tag",
            with_body(&[0x7b, 0x08, 0x01, 0x84, 0x01]),
        ),
        ("a stray end of group", with_body(&[0x7c])),
        ("wire type 6", with_body(&[0x7e])),
        ("field number 0", with_body(&[0x00, 0x01])),
        (
            "an 11-byte varint",
            with_body(&[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
        ),
        (
            "a 10-byte varint at u64::MAX",
            with_body(&[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
        ),
        (
            "a 10-byte varint past u64::MAX",
            with_body(&[
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ]),
        ),
        (
            "a key past u32::MAX",
            with_body(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x01]),
        ),
    ];
    for (what, bytes) in &cases {
        let walk = validate(Signal::Logs, bytes);
        assert_eq!(
            walk.is_ok(),
            prost_says(Signal::Logs, bytes).is_some(),
            "{what}: {walk:?}"
        );
    }
    let e = validate(Signal::Logs, &cases[0].1).unwrap_err();
    assert_eq!(
        e.path,
        "ExportLogsServiceRequest.resource_logs.scope_logs.log_records.body.string_value"
    );
    assert_eq!(e.what, "a string that is not UTF-8");
}

#[test]
fn packed_and_unpacked_repeated_scalars_are_both_read() {
    // HistogramDataPoint.bucket_counts (fixed64, field 6) one at a time and packed short.
    let mut one = key(6, 1);
    one.extend_from_slice(&[0; 8]);
    let packed_short = delimited(6, &[0; 7]);
    // Buckets.bucket_counts (uint64, field 2) packed, with a varint cut off inside it.
    let buckets_cut = delimited(8, &delimited(2, &[0x81]));
    for (point, tag) in [(one, 9), (packed_short, 9), (buckets_cut, 10)] {
        let data = delimited(1, &point);
        let m = delimited(tag, &data);
        let sm = delimited(2, &m);
        let rm = delimited(2, &sm);
        let req = delimited(1, &rm);
        agree(Signal::Metrics, &req);
    }
}

#[test]
fn a_later_metric_variant_replaces_the_points_of_an_earlier_one() {
    let point = delimited(1, &[]);
    let gauge_two = [point.clone(), point.clone()].concat();
    let sum_one = point.clone();
    for data in [
        [delimited(5, &gauge_two), delimited(7, &sum_one)].concat(),
        [delimited(5, &gauge_two), delimited(5, &sum_one)].concat(),
        [
            delimited(5, &gauge_two),
            delimited(7, &sum_one),
            delimited(5, &point),
        ]
        .concat(),
    ] {
        let sm = delimited(2, &data);
        let rm = delimited(2, &sm);
        let req = delimited(1, &rm);
        let n = validate(Signal::Metrics, &req).unwrap();
        assert_eq!(Some(n), prost_says(Signal::Metrics, &req));
    }
}

#[test]
fn nesting_is_refused_exactly_where_prost_refuses_it() {
    // Each level of `nested` is two messages (AnyValue, ArrayValue): 100 levels of messages
    // fall between 40 and 60 of these.
    let verdicts: Vec<(bool, bool)> = (40..60)
        .map(|depth| -> (bool, bool) {
            let value = nested(depth);
            // As a body, and one message deeper as an attribute's value.
            let body = with_body(&value.encode_to_vec());
            let attribute = KeyValue {
                key: "k".into(),
                value: Some(value),
                key_strindex: 0,
            };
            let attr = with_field(6, &attribute.encode_to_vec());
            agree(Signal::Logs, &body);
            agree(Signal::Logs, &attr);
            (
                validate(Signal::Logs, &body).is_ok(),
                validate(Signal::Logs, &attr).is_ok(),
            )
        })
        .collect();
    assert!(
        verdicts[0].1 && !verdicts[verdicts.len() - 1].0,
        "{verdicts:?}"
    );
}
