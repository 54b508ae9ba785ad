//! What a test compares: each record taken out of the graph as a JSON object, and expected
//! records matched against those as partial records.
//!
//! A log record reads as `{time, event_name, severity_text, severity_number, body, attributes,
//! resource, scope}`, a span as `{name, kind, trace_id, span_id, status, attributes, resource,
//! scope}`, a metric data point as `{name, type, unit, description, value, count, sum,
//! attributes, resource, scope}`; attributes are flat maps of their keys (`voice.dialogue.id`)
//! to JSON values.

use lumina_sdk::config::ConfigPath;
use lumina_sdk::proto::common::v1::{InstrumentationScope, KeyValue};
use lumina_sdk::proto::metrics::v1::{metric::Data, number_data_point};
use lumina_sdk::text::hex;
use lumina_sdk::voice::value::{any_to_json, kvs_to_object};
use lumina_sdk::{Batch, Payload};
use serde_json::{Value, json};

/// A difference between an expected record and an extracted one.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// The expected value's path in the tests file.
    pub path: ConfigPath,
    /// What differed.
    pub message: String,
}

fn attributes(kvs: &[KeyValue]) -> Value {
    Value::Object(kvs_to_object(kvs))
}

fn scope_name(s: Option<&InstrumentationScope>) -> Value {
    Value::String(s.map(|s| s.name.clone()).unwrap_or_default())
}

/// Every record of `batch`, as tests see it.
pub fn records(batch: &Batch) -> Vec<Value> {
    let mut out = Vec::new();
    match batch.payload() {
        Payload::Logs(req) => {
            for rl in &req.resource_logs {
                let resource = attributes(rl.resource.as_ref().map_or(&[], |r| &r.attributes));
                for sl in &rl.scope_logs {
                    for lr in &sl.log_records {
                        let time = match lr.time_unix_nano {
                            0 => Value::Null,
                            t => lumina_sdk::voice::format_time(t as i64).into(),
                        };
                        out.push(json!({
                            "time": time,
                            "event_name": lr.event_name,
                            "severity_text": lr.severity_text,
                            "severity_number": lr.severity_number,
                            "body": lr.body.as_ref().map_or(Value::Null, any_to_json),
                            "attributes": attributes(&lr.attributes),
                            "resource": resource,
                            "scope": scope_name(sl.scope.as_ref()),
                        }));
                    }
                }
            }
        }
        Payload::Traces(req) => {
            for rs in &req.resource_spans {
                let resource = attributes(rs.resource.as_ref().map_or(&[], |r| &r.attributes));
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        let kind = lumina_sdk::proto::trace::v1::span::SpanKind::try_from(s.kind)
                            .map_or("", |k| k.as_str_name());
                        out.push(json!({
                            "name": s.name,
                            "kind": kind,
                            "trace_id": hex(&s.trace_id),
                            "span_id": hex(&s.span_id),
                            "status": s.status.as_ref().map_or(Value::Null, |st| json!({
                                "code": st.code,
                                "message": st.message,
                            })),
                            "attributes": attributes(&s.attributes),
                            "resource": resource,
                            "scope": scope_name(ss.scope.as_ref()),
                        }));
                    }
                }
            }
        }
        Payload::Metrics(req) => {
            for rm in &req.resource_metrics {
                let resource = attributes(rm.resource.as_ref().map_or(&[], |r| &r.attributes));
                for sm in &rm.scope_metrics {
                    let scope = scope_name(sm.scope.as_ref());
                    for m in &sm.metrics {
                        let point = |kind: &str, attrs: &[KeyValue], fields: Value| {
                            let mut v = json!({
                                "name": m.name,
                                "type": kind,
                                "unit": m.unit,
                                "description": m.description,
                                "attributes": attributes(attrs),
                                "resource": resource,
                                "scope": scope,
                            });
                            if let (Value::Object(o), Value::Object(f)) = (&mut v, fields) {
                                o.extend(f);
                            }
                            v
                        };
                        let number = |v: &Option<number_data_point::Value>| match v {
                            Some(number_data_point::Value::AsInt(i)) => json!(i),
                            Some(number_data_point::Value::AsDouble(d)) => json!(d),
                            None => Value::Null,
                        };
                        let value = |v| json!({ "value": number(v) });
                        let spread =
                            |count: u64, sum: Option<f64>| json!({ "count": count, "sum": sum });
                        let points: Vec<(&str, &[KeyValue], Value)> = match &m.data {
                            Some(Data::Gauge(g)) => g
                                .data_points
                                .iter()
                                .map(|p| ("gauge", &p.attributes[..], value(&p.value)))
                                .collect(),
                            Some(Data::Sum(s)) => s
                                .data_points
                                .iter()
                                .map(|p| ("sum", &p.attributes[..], value(&p.value)))
                                .collect(),
                            Some(Data::Histogram(h)) => h
                                .data_points
                                .iter()
                                .map(|p| ("histogram", &p.attributes[..], spread(p.count, p.sum)))
                                .collect(),
                            Some(Data::ExponentialHistogram(h)) => h
                                .data_points
                                .iter()
                                .map(|p| {
                                    let kind = "exponential_histogram";
                                    (kind, &p.attributes[..], spread(p.count, p.sum))
                                })
                                .collect(),
                            Some(Data::Summary(s)) => s
                                .data_points
                                .iter()
                                .map(|p| {
                                    ("summary", &p.attributes[..], spread(p.count, Some(p.sum)))
                                })
                                .collect(),
                            None => Vec::new(),
                        };
                        out.extend(points.into_iter().map(|(k, a, f)| point(k, a, f)));
                    }
                }
            }
        }
    }
    out
}

/// A value for a message: compact JSON, cut short when long.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn same_scalar(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// How `actual` differs from `expected`, a partial value: every key `expected` has must be in
/// `actual` with a matching value (`null` matches a key that is absent); lists match item by
/// item and must be as long; scalars must be equal (numbers by value).
pub fn differences(expected: &Value, actual: Option<&Value>, path: &ConfigPath) -> Vec<Diff> {
    let mut out = Vec::new();
    walk(expected, actual, path, &mut out);
    out
}

fn walk(expected: &Value, actual: Option<&Value>, path: &ConfigPath, out: &mut Vec<Diff>) {
    let diff = |message: String| Diff {
        path: path.clone(),
        message,
    };
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => {}
        (Value::Null, Some(a)) => out.push(diff(format!("expected nothing, got {}", show(a)))),
        (e, None) => out.push(diff(format!("expected {}, but it is absent", show(e)))),
        (Value::Object(e), Some(Value::Object(a))) => {
            for (k, v) in e {
                walk(v, a.get(k), &path.key(k), out);
            }
        }
        (Value::Array(e), Some(Value::Array(a))) => {
            if e.len() != a.len() {
                out.push(diff(format!(
                    "expected {} item(s), got {}: {}",
                    e.len(),
                    a.len(),
                    show(&Value::Array(a.clone()))
                )));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(ev, Some(av), &path.index(i), out);
            }
        }
        (e, Some(a)) if e.is_object() || e.is_array() || a.is_object() || a.is_array() => {
            out.push(diff(format!("expected {}, got {}", show(e), show(a))))
        }
        (e, Some(a)) => {
            if !same_scalar(e, a) {
                out.push(diff(format!("expected {}, got {}", show(e), show(a))));
            }
        }
    }
}

/// An expected record that nothing matched.
#[derive(Debug)]
pub struct Unmatched {
    /// Which of the expected records (from 0).
    pub expected: usize,
    /// The extracted record closest to it (its index from 0) and how it differs; `None` when
    /// no record was left to compare.
    pub closest: Option<(usize, Vec<Diff>)>,
}

/// Matches `expected` records, in order, against `actual`: each expected record is matched
/// by the first record after the one that matched the expected record before it.
pub fn match_in_order(expected: &[(ConfigPath, Value)], actual: &[Value]) -> Result<(), Unmatched> {
    let mut next = 0;
    for (i, (path, e)) in expected.iter().enumerate() {
        let mut closest: Option<(usize, Vec<Diff>)> = None;
        let mut found = None;
        for (j, a) in actual.iter().enumerate().skip(next) {
            let d = differences(e, Some(a), path);
            if d.is_empty() {
                found = Some(j);
                break;
            }
            if closest.as_ref().is_none_or(|(_, c)| d.len() < c.len()) {
                closest = Some((j, d));
            }
        }
        match found {
            Some(j) => next = j + 1,
            None => {
                return Err(Unmatched {
                    expected: i,
                    closest,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> ConfigPath {
        ConfigPath::parse("r")
    }

    #[test]
    fn a_partial_record_matches_what_it_names_and_reports_each_difference_at_its_path() {
        let actual = json!({
            "attributes": {"voice.dialogue.status": "COMPLETED", "n": 3},
            "body": {"events": [{"type": "a"}, {"type": "b"}]},
        });
        let ok = json!({"attributes": {"n": 3.0}, "body": {"events": [{}, {"type": "b"}]}});
        assert_eq!(differences(&ok, Some(&actual), &p()), []);
        let absent = json!({"attributes": {"missing": null}});
        assert_eq!(differences(&absent, Some(&actual), &p()), []);

        let bad = json!({
            "attributes": {"voice.dialogue.status": "FAILED", "other": 1},
            "body": {"events": [{}]},
        });
        let d = differences(&bad, Some(&actual), &p());
        let shown: Vec<(String, &str)> = d
            .iter()
            .map(|d| (d.path.to_string(), d.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "r.attributes.voice.dialogue.status".to_owned(),
                    "expected \"FAILED\", got \"COMPLETED\""
                ),
                (
                    "r.attributes.other".to_owned(),
                    "expected 1, but it is absent"
                ),
                (
                    "r.body.events".to_owned(),
                    "expected 1 item(s), got 2: [{\"type\":\"a\"},{\"type\":\"b\"}]"
                ),
            ]
        );
    }

    #[test]
    fn expected_records_match_in_order_and_a_miss_names_the_closest_record() {
        let actual = [json!({"k": 1, "s": "x"}), json!({"k": 2, "s": "y"})];
        let exp = |vals: &[Value]| -> Vec<(ConfigPath, Value)> {
            vals.iter().map(|v| (p(), v.clone())).collect()
        };
        assert!(match_in_order(&exp(&[json!({"k": 1}), json!({"k": 2})]), &actual).is_ok());
        // Out of order: the second expected record has nothing left after the match of the first.
        let e = match_in_order(&exp(&[json!({"k": 2}), json!({"k": 1})]), &actual)
            .err()
            .unwrap_or_else(|| panic!("matched out of order"));
        assert_eq!(e.expected, 1);
        assert!(e.closest.is_none());
        let e = match_in_order(&exp(&[json!({"k": 2, "s": "x"})]), &actual)
            .err()
            .unwrap_or_else(|| panic!("matched"));
        let (at, diffs) = e.closest.unwrap_or_else(|| panic!("no closest"));
        assert_eq!(diffs.len(), 1);
        assert!(at == 0 || at == 1);
    }
}
