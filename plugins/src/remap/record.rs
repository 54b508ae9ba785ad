//! The record a VRL program sees, and what a program's changes do to the record.
//!
//! Every record is an object holding its resource's and scope's attributes beside its own:
//!
//! ```text
//! .resource.attributes      { "service.name": "gp", ... }              (writable)
//! .scope.name / .version / .attributes                                 (read only)
//! log records:  .attributes .body .event_name .severity_text .severity_number .time
//!               .observed_time (writable), .trace_id .span_id (hex, read only)
//! spans:        .attributes .name .status.code .status.message (writable), .kind,
//!               .start_time .end_time, .trace_id .span_id .parent_span_id (read only)
//! metrics:      .name .description .unit (writable), .type (read only)
//! ```
//!
//! OTLP values map to VRL's: strings to strings, bytes to bytes (back in OTLP, bytes that are
//! UTF-8 become a string), integers, doubles, booleans,
//! arrays, and key-value lists to objects; times are timestamps, ids hex strings, a span's
//! `kind` and `status.code` names (`SERVER`, `ERROR`). Back in OTLP an object is a key-value
//! list, a timestamp an RFC 3339 string, and an attribute set to `null` is removed.

use std::collections::BTreeMap;

use lumina_sdk::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use lumina_sdk::proto::logs::v1::LogRecord;
use lumina_sdk::proto::metrics::v1::{Metric, metric};
use lumina_sdk::proto::trace::v1::{Span, Status, span, status};
use vrl::value::{KeyString, ObjectMap, Value};

/// An OTLP value as VRL's.
pub(crate) fn value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.as_str()),
        Some(any_value::Value::BoolValue(b)) => Value::Boolean(*b),
        Some(any_value::Value::IntValue(i)) => Value::Integer(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            vrl::prelude::NotNan::new(*d).map_or(Value::Null, Value::Float)
        }
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b.clone().into()),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(value).collect()),
        Some(any_value::Value::KvlistValue(kv)) => attributes(&kv.values),
        // An index into a profile's string table means nothing outside the profile.
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::Null,
    }
}

/// Attributes as an object.
pub(crate) fn attributes(kvs: &[KeyValue]) -> Value {
    let map: ObjectMap = kvs
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

/// A VRL value as OTLP's; `None` for `null`.
pub(crate) fn any(v: Value) -> Option<AnyValue> {
    let value = match v {
        Value::Bytes(b) => match String::from_utf8(b.to_vec()) {
            Ok(s) => any_value::Value::StringValue(s),
            Err(e) => any_value::Value::BytesValue(e.into_bytes()),
        },
        Value::String(s) => any_value::Value::StringValue(s.to_string()),
        Value::Regex(r) => any_value::Value::StringValue(r.as_str().to_owned()),
        Value::Integer(i) => any_value::Value::IntValue(i),
        Value::Float(f) => any_value::Value::DoubleValue(f.into_inner()),
        Value::Boolean(b) => any_value::Value::BoolValue(b),
        Value::Timestamp(t) => {
            any_value::Value::StringValue(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        Value::Object(m) => any_value::Value::KvlistValue(KeyValueList {
            values: key_values(m),
        }),
        Value::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a.into_iter().map(|v| any(v).unwrap_or_default()).collect(),
        }),
        Value::Null => return None,
    };
    Some(AnyValue { value: Some(value) })
}

fn key_values(m: ObjectMap) -> Vec<KeyValue> {
    m.into_iter()
        .filter_map(|(k, v)| {
            any(v).map(|value| KeyValue {
                key: k.into(),
                value: Some(value),
                ..Default::default()
            })
        })
        .collect()
}

/// A field the program left in a shape the record cannot hold.
fn wrong(field: &str, want: &str, got: &Value) -> String {
    format!("`.{field}` must be {want}, not {}", got.kind_str())
}

/// The program's record, as fields by name.
pub(crate) struct Fields(ObjectMap);

impl Fields {
    /// The record left by a program; it must still be an object.
    pub(crate) fn new(v: Value) -> Result<Self, String> {
        match v {
            Value::Object(m) => Ok(Self(m)),
            other => Err(format!(
                "the record must stay an object, not become {}",
                other.kind_str()
            )),
        }
    }

    fn take(&mut self, k: &str) -> Value {
        self.0.remove(k).unwrap_or(Value::Null)
    }

    /// An object field as attributes (`null` or absent: none).
    fn attributes(&mut self, k: &str) -> Result<Vec<KeyValue>, String> {
        match self.take(k) {
            Value::Object(m) => Ok(key_values(m)),
            Value::Null => Ok(Vec::new()),
            other => Err(wrong(k, "an object", &other)),
        }
    }

    fn string(&mut self, k: &str) -> Result<String, String> {
        match self.take(k) {
            Value::String(s) => Ok(s.to_string()),
            Value::Bytes(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Value::Null => Ok(String::new()),
            other => Err(wrong(k, "a string", &other)),
        }
    }

    fn integer(&mut self, k: &str) -> Result<i64, String> {
        match self.take(k) {
            Value::Integer(i) => Ok(i),
            Value::Null => Ok(0),
            other => Err(wrong(k, "an integer", &other)),
        }
    }

    fn time(&mut self, k: &str) -> Result<u64, String> {
        match self.take(k) {
            Value::Timestamp(t) => t
                .timestamp_nanos_opt()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| format!("`.{k}` is out of range")),
            Value::Null => Ok(0),
            other => Err(wrong(k, "a timestamp", &other)),
        }
    }

    /// `.resource.attributes`, the resource the record now belongs to.
    pub(crate) fn resource(&mut self) -> Result<Vec<KeyValue>, String> {
        match self.take("resource") {
            Value::Object(mut m) => match m.remove("attributes").unwrap_or(Value::Null) {
                Value::Object(a) => Ok(key_values(a)),
                Value::Null => Ok(Vec::new()),
                other => Err(wrong("resource.attributes", "an object", &other)),
            },
            Value::Null => Ok(Vec::new()),
            other => Err(wrong("resource", "an object", &other)),
        }
    }
}

fn timestamp(nanos: u64) -> Value {
    match i64::try_from(nanos) {
        Ok(0) | Err(_) => Value::Null,
        Ok(n) => Value::Timestamp(chrono::DateTime::from_timestamp_nanos(n)),
    }
}

fn hex(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    Value::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Which top-level fields of a record a program reads: only those are built.
#[derive(Clone, Debug, Default)]
pub(crate) struct Need(Option<Vec<String>>);

impl Need {
    /// Every field (a program that writes the record back, or reads `.` whole).
    pub(crate) fn all() -> Self {
        Self(None)
    }

    /// Only these fields.
    pub(crate) fn only(fields: Vec<String>) -> Self {
        Self(Some(fields))
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.as_ref().is_none_or(|f| f.iter().any(|x| x == field))
    }
}

/// A record's object, holding only the fields its program needs.
struct Obj<'n> {
    m: ObjectMap,
    need: &'n Need,
}

impl<'n> Obj<'n> {
    /// The fields every record has: its resource's attributes and its scope.
    fn new(need: &'n Need, resource: &Value, scope: Option<&InstrumentationScope>) -> Self {
        let mut o = Self {
            m: ObjectMap::new(),
            need,
        };
        o.put("resource", || {
            let mut res = BTreeMap::new();
            res.insert(KeyString::from("attributes"), resource.clone());
            Value::Object(res)
        });
        o.put("scope", || {
            let mut sc = BTreeMap::new();
            if let Some(s) = scope {
                sc.insert(KeyString::from("name"), Value::from(s.name.as_str()));
                sc.insert(KeyString::from("version"), Value::from(s.version.as_str()));
                sc.insert(KeyString::from("attributes"), attributes(&s.attributes));
            }
            Value::Object(sc)
        });
        o
    }

    fn put(&mut self, k: &str, v: impl FnOnce() -> Value) {
        if self.need.has(k) {
            self.m.insert(k.into(), v());
        }
    }

    fn done(self) -> Value {
        Value::Object(self.m)
    }
}

/// A log record; `resource` is [`attributes`] of its resource's.
pub(crate) fn log(
    need: &Need,
    resource: &Value,
    scope: Option<&InstrumentationScope>,
    r: &LogRecord,
) -> Value {
    let mut o = Obj::new(need, resource, scope);
    o.put("attributes", || attributes(&r.attributes));
    o.put("body", || r.body.as_ref().map_or(Value::Null, value));
    o.put("event_name", || Value::from(r.event_name.as_str()));
    o.put("severity_text", || Value::from(r.severity_text.as_str()));
    o.put("severity_number", || {
        Value::Integer(i64::from(r.severity_number))
    });
    o.put("time", || timestamp(r.time_unix_nano));
    o.put("observed_time", || timestamp(r.observed_time_unix_nano));
    o.put("trace_id", || hex(&r.trace_id));
    o.put("span_id", || hex(&r.span_id));
    o.done()
}

/// Writes a program's log record back; returns the resource attributes it now has.
pub(crate) fn apply_log(v: Value, r: &mut LogRecord) -> Result<Vec<KeyValue>, String> {
    // Every field is read before any is written: a record the program left in a wrong shape
    // stays as it was.
    let mut f = Fields::new(v)?;
    let resource = f.resource()?;
    let attributes = f.attributes("attributes")?;
    let event_name = f.string("event_name")?;
    let severity_text = f.string("severity_text")?;
    let severity_number = i32::try_from(f.integer("severity_number")?)
        .map_err(|_| "`.severity_number` is out of range".to_owned())?;
    let time = f.time("time")?;
    let observed = f.time("observed_time")?;
    r.attributes = attributes;
    r.body = any(f.take("body"));
    r.event_name = event_name;
    r.severity_text = severity_text;
    r.severity_number = severity_number;
    r.time_unix_nano = time;
    r.observed_time_unix_nano = observed;
    Ok(resource)
}

fn span_kind(k: i32) -> &'static str {
    span::SpanKind::try_from(k).map_or("SPAN_KIND_UNSPECIFIED", |k| k.as_str_name())
}

fn status_code(c: i32) -> &'static str {
    match status::StatusCode::try_from(c) {
        Ok(status::StatusCode::Ok) => "OK",
        Ok(status::StatusCode::Error) => "ERROR",
        _ => "UNSET",
    }
}

/// A span; `resource` is [`attributes`] of its resource's.
pub(crate) fn span(
    need: &Need,
    resource: &Value,
    scope: Option<&InstrumentationScope>,
    s: &Span,
) -> Value {
    let mut o = Obj::new(need, resource, scope);
    o.put("attributes", || attributes(&s.attributes));
    o.put("name", || Value::from(s.name.as_str()));
    o.put("kind", || {
        Value::from(span_kind(s.kind).trim_start_matches("SPAN_KIND_"))
    });
    o.put("start_time", || timestamp(s.start_time_unix_nano));
    o.put("end_time", || timestamp(s.end_time_unix_nano));
    o.put("trace_id", || hex(&s.trace_id));
    o.put("span_id", || hex(&s.span_id));
    o.put("parent_span_id", || hex(&s.parent_span_id));
    o.put("status", || {
        let (code, message) = s
            .status
            .as_ref()
            .map_or((0, ""), |st| (st.code, st.message.as_str()));
        let mut st = ObjectMap::new();
        st.insert("code".into(), Value::from(status_code(code)));
        st.insert("message".into(), Value::from(message));
        Value::Object(st)
    });
    o.done()
}

/// Writes a program's span back; returns the resource attributes it now has.
pub(crate) fn apply_span(v: Value, s: &mut Span) -> Result<Vec<KeyValue>, String> {
    let mut f = Fields::new(v)?;
    let resource = f.resource()?;
    let attributes = f.attributes("attributes")?;
    let name = f.string("name")?;
    let mut st = match f.take("status") {
        Value::Object(m) => Fields(m),
        Value::Null => Fields(ObjectMap::new()),
        other => return Err(wrong("status", "an object", &other)),
    };
    let code = match st.string("code")?.as_str() {
        "" | "UNSET" => status::StatusCode::Unset,
        "OK" => status::StatusCode::Ok,
        "ERROR" => status::StatusCode::Error,
        other => {
            return Err(format!(
                "`.status.code` must be UNSET, OK or ERROR, not {other:?}"
            ));
        }
    };
    let message = st.string("message")?;
    s.attributes = attributes;
    s.name = name;
    s.status = (code != status::StatusCode::Unset || !message.is_empty()).then_some(Status {
        code: code as i32,
        message,
    });
    Ok(resource)
}

fn metric_type(m: &Metric) -> &'static str {
    match &m.data {
        Some(metric::Data::Gauge(_)) => "gauge",
        Some(metric::Data::Sum(_)) => "sum",
        Some(metric::Data::Histogram(_)) => "histogram",
        Some(metric::Data::ExponentialHistogram(_)) => "exponential_histogram",
        Some(metric::Data::Summary(_)) => "summary",
        None => "empty",
    }
}

/// A metric (its data points are not part of it); `resource` is [`attributes`] of its
/// resource's.
pub(crate) fn metric(
    need: &Need,
    resource: &Value,
    scope: Option<&InstrumentationScope>,
    m: &Metric,
) -> Value {
    let mut o = Obj::new(need, resource, scope);
    o.put("name", || Value::from(m.name.as_str()));
    o.put("description", || Value::from(m.description.as_str()));
    o.put("unit", || Value::from(m.unit.as_str()));
    o.put("type", || Value::from(metric_type(m)));
    o.done()
}

/// Writes a program's metric back; returns the resource attributes it now has.
pub(crate) fn apply_metric(v: Value, m: &mut Metric) -> Result<Vec<KeyValue>, String> {
    let mut f = Fields::new(v)?;
    let resource = f.resource()?;
    let name = f.string("name")?;
    if name.is_empty() {
        return Err("`.name` must not be empty".into());
    }
    let description = f.string("description")?;
    let unit = f.string("unit")?;
    (m.name, m.description, m.unit) = (name, description, unit);
    Ok(resource)
}
