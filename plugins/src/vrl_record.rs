//! The record a VRL program sees (`filter`, `transform`): an object with the record's
//! fields, its attributes, its resource's and its scope's.
//!
//! ```text
//! .resource.attributes      the resource's attributes: { "service.name": "gp", ... }
//! .scope.name / .version / .attributes
//! .attributes               the record's attributes: { "voice.organization.id": "org-1", ... }
//! .body                     the body (string, number, boolean, array, object, or null)
//! .event_name, .severity_text, .severity_number, .time, .observed_time, .trace_id, .span_id
//! ```
//!
//! OTLP values map to VRL's: strings, integers, doubles, booleans, bytes, arrays and
//! key-value lists (objects); times are timestamps, trace and span ids hex strings.

use std::collections::BTreeMap;

use lumina_sdk::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use lumina_sdk::proto::logs::v1::LogRecord;
use vrl::value::{KeyString, Value};

/// An OTLP value as VRL's.
pub(crate) fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => Value::Boolean(*b),
        Some(any_value::Value::IntValue(i)) => Value::Integer(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            ordered_float(*d).map_or(Value::Null, Value::Float)
        }
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b.clone().into()),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(kv)) => attributes(&kv.values),
        // An index into a profile's string table means nothing outside the profile.
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::Null,
    }
}

fn ordered_float(d: f64) -> Option<vrl::prelude::NotNan<f64>> {
    vrl::prelude::NotNan::new(d).ok()
}

/// Attributes as an object.
pub(crate) fn attributes(kvs: &[KeyValue]) -> Value {
    let map: BTreeMap<KeyString, Value> = kvs
        .iter()
        .map(|kv| {
            (
                KeyString::from(kv.key.as_str()),
                kv.value.as_ref().map_or(Value::Null, value),
            )
        })
        .collect();
    Value::Object(map)
}

fn timestamp(nanos: u64) -> Value {
    match i64::try_from(nanos) {
        Ok(0) | Err(_) => Value::Null,
        Ok(n) => Value::Timestamp(chrono_utc(n)),
    }
}

fn chrono_utc(nanos: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

fn hex(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    Value::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A log record with its resource's and scope's attributes.
pub(crate) fn log(
    resource: &[KeyValue],
    scope: Option<&InstrumentationScope>,
    r: &LogRecord,
) -> Value {
    let mut m: BTreeMap<KeyString, Value> = BTreeMap::new();
    let mut res = BTreeMap::new();
    res.insert(KeyString::from("attributes"), attributes(resource));
    m.insert("resource".into(), Value::Object(res));
    let mut sc = BTreeMap::new();
    if let Some(s) = scope {
        sc.insert(KeyString::from("name"), Value::from(s.name.as_str()));
        sc.insert(KeyString::from("version"), Value::from(s.version.as_str()));
        sc.insert(KeyString::from("attributes"), attributes(&s.attributes));
    }
    m.insert("scope".into(), Value::Object(sc));
    m.insert("attributes".into(), attributes(&r.attributes));
    m.insert("body".into(), r.body.as_ref().map_or(Value::Null, value));
    m.insert("event_name".into(), Value::from(r.event_name.as_str()));
    m.insert(
        "severity_text".into(),
        Value::from(r.severity_text.as_str()),
    );
    m.insert(
        "severity_number".into(),
        Value::Integer(i64::from(r.severity_number)),
    );
    m.insert("time".into(), timestamp(r.time_unix_nano));
    m.insert("observed_time".into(), timestamp(r.observed_time_unix_nano));
    m.insert("trace_id".into(), hex(&r.trace_id));
    m.insert("span_id".into(), hex(&r.span_id));
    Value::Object(m)
}
