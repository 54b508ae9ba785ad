//! Checking an encoded OTLP request without decoding it.
//!
//! [`validate`] walks the protobuf wire format of an `Export*ServiceRequest` against the OTLP
//! schema and refuses exactly what a full decode (prost, as the generated types use it) would
//! refuse: malformed varints and keys, lengths past the end, a known field with the wrong wire
//! type, strings that are not UTF-8, packed scalars that do not fill their length, stray group
//! ends, and nesting past prost's recursion limit. Unknown fields are skipped as prost skips
//! them. On the way it counts the items (log records, spans, metric data points) with the
//! rules of the decoded form, so a [`Batch`](crate::Batch) built from the bytes knows its size
//! without decoding. It allocates nothing on the way; an error names the field it found.
//!
//! The same walk serves processors that read only attributes ([`crate::view`]): [`index`]
//! lists where each attribute's key and value are, and [`splice`] writes new string values into
//! a copy of the request, rewriting only the length prefixes on their way.
//!
//! Tests in `tests.rs`, `view_tests.rs` and the `otlp_wire` fuzz target hold the walk to
//! prost's answer on valid, mutated and random bytes.

use crate::Signal;

mod edit;
pub use edit::{ENTRY, Splice, index, owner_kind, splice, value_kind};

/// Why bytes are not a valid OTLP request, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset} ({path})")]
pub struct WireError {
    /// What is wrong.
    pub what: &'static str,
    /// The field it was found in, dotted from the request down, e.g.
    /// `resource_logs.scope_logs.log_records.body.string_value`.
    pub path: String,
    /// The byte offset in the request where the walk stopped.
    pub offset: usize,
}

/// How a field is encoded.
#[derive(Clone, Copy)]
enum Kind {
    /// Not a field of this message: skipped.
    Unknown,
    /// `int32`, `int64`, `uint32`, `uint64`, `sint32`, `bool`, enums.
    Varint,
    /// `fixed64`, `sfixed64`, `double`.
    I64,
    /// `fixed32`, `float`.
    I32,
    /// `string`: UTF-8 checked.
    Str,
    /// `bytes`.
    Bytes,
    /// A message.
    Msg(&'static Schema),
    /// `repeated` varints: packed or one at a time.
    RepVarint,
    /// `repeated fixed64 / double`: packed or one at a time.
    RepI64,
}

/// One message type: its fields by number (index 0 is unused).
struct Schema {
    fields: &'static [(&'static str, Kind)],
    /// Each occurrence of this message is one item of the batch.
    item: bool,
    /// This is `Metric`: its data fields (5, 7, 9, 10, 11) are a oneof, so a later variant
    /// replaces an earlier one's points, and a repeat of the same variant adds to them.
    metric: bool,
}

const fn msg(fields: &'static [(&'static str, Kind)]) -> Schema {
    Schema {
        fields,
        item: false,
        metric: false,
    }
}

const fn item(fields: &'static [(&'static str, Kind)]) -> Schema {
    Schema {
        fields,
        item: true,
        metric: false,
    }
}

use Kind::{Bytes, I32, I64, Msg, RepI64, RepVarint, Str, Unknown as U, Varint};

const N: (&str, Kind) = ("", U);

// opentelemetry/proto/common/v1
static ANY_VALUE: Schema = msg(&[
    N,
    ("string_value", Str),
    ("bool_value", Varint),
    ("int_value", Varint),
    ("double_value", I64),
    ("array_value", Msg(&ARRAY_VALUE)),
    ("kvlist_value", Msg(&KEY_VALUE_LIST)),
    ("bytes_value", Bytes),
    ("string_value_strindex", Varint),
]);
static ARRAY_VALUE: Schema = msg(&[N, ("values", Msg(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = msg(&[N, ("values", Msg(&KEY_VALUE))]);
static KEY_VALUE: Schema = msg(&[
    N,
    ("key", Str),
    ("value", Msg(&ANY_VALUE)),
    ("key_strindex", Varint),
]);
static SCOPE: Schema = msg(&[
    N,
    ("name", Str),
    ("version", Str),
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
]);
static ENTITY_REF: Schema = msg(&[
    N,
    ("schema_url", Str),
    ("type", Str),
    ("id_keys", Str),
    ("description_keys", Str),
]);
// opentelemetry/proto/resource/v1
static RESOURCE: Schema = msg(&[
    N,
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
    ("entity_refs", Msg(&ENTITY_REF)),
]);

// opentelemetry/proto/logs/v1
static LOGS_REQUEST: Schema = msg(&[N, ("resource_logs", Msg(&RESOURCE_LOGS))]);
static RESOURCE_LOGS: Schema = msg(&[
    N,
    ("resource", Msg(&RESOURCE)),
    ("scope_logs", Msg(&SCOPE_LOGS)),
    ("schema_url", Str),
]);
static SCOPE_LOGS: Schema = msg(&[
    N,
    ("scope", Msg(&SCOPE)),
    ("log_records", Msg(&LOG_RECORD)),
    ("schema_url", Str),
]);
static LOG_RECORD: Schema = item(&[
    N,
    ("time_unix_nano", I64),
    ("severity_number", Varint),
    ("severity_text", Str),
    N,
    ("body", Msg(&ANY_VALUE)),
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
    ("flags", I32),
    ("trace_id", Bytes),
    ("span_id", Bytes),
    ("observed_time_unix_nano", I64),
    ("event_name", Str),
]);

// opentelemetry/proto/trace/v1
static TRACES_REQUEST: Schema = msg(&[N, ("resource_spans", Msg(&RESOURCE_SPANS))]);
static RESOURCE_SPANS: Schema = msg(&[
    N,
    ("resource", Msg(&RESOURCE)),
    ("scope_spans", Msg(&SCOPE_SPANS)),
    ("schema_url", Str),
]);
static SCOPE_SPANS: Schema = msg(&[
    N,
    ("scope", Msg(&SCOPE)),
    ("spans", Msg(&SPAN)),
    ("schema_url", Str),
]);
static SPAN: Schema = item(&[
    N,
    ("trace_id", Bytes),
    ("span_id", Bytes),
    ("trace_state", Str),
    ("parent_span_id", Bytes),
    ("name", Str),
    ("kind", Varint),
    ("start_time_unix_nano", I64),
    ("end_time_unix_nano", I64),
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
    ("events", Msg(&SPAN_EVENT)),
    ("dropped_events_count", Varint),
    ("links", Msg(&SPAN_LINK)),
    ("dropped_links_count", Varint),
    ("status", Msg(&STATUS)),
    ("flags", I32),
]);
static SPAN_EVENT: Schema = msg(&[
    N,
    ("time_unix_nano", I64),
    ("name", Str),
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
]);
static SPAN_LINK: Schema = msg(&[
    N,
    ("trace_id", Bytes),
    ("span_id", Bytes),
    ("trace_state", Str),
    ("attributes", Msg(&KEY_VALUE)),
    ("dropped_attributes_count", Varint),
    ("flags", I32),
]);
static STATUS: Schema = msg(&[N, N, ("message", Str), ("code", Varint)]);

// opentelemetry/proto/metrics/v1
static METRICS_REQUEST: Schema = msg(&[N, ("resource_metrics", Msg(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Schema = msg(&[
    N,
    ("resource", Msg(&RESOURCE)),
    ("scope_metrics", Msg(&SCOPE_METRICS)),
    ("schema_url", Str),
]);
static SCOPE_METRICS: Schema = msg(&[
    N,
    ("scope", Msg(&SCOPE)),
    ("metrics", Msg(&METRIC)),
    ("schema_url", Str),
]);
static METRIC: Schema = Schema {
    fields: &[
        N,
        ("name", Str),
        ("description", Str),
        ("unit", Str),
        N,
        ("gauge", Msg(&GAUGE)),
        N,
        ("sum", Msg(&SUM)),
        N,
        ("histogram", Msg(&HISTOGRAM)),
        ("exponential_histogram", Msg(&EXP_HISTOGRAM)),
        ("summary", Msg(&SUMMARY)),
        ("metadata", Msg(&KEY_VALUE)),
    ],
    item: false,
    metric: true,
};
static GAUGE: Schema = msg(&[N, ("data_points", Msg(&NUMBER_POINT))]);
static SUM: Schema = msg(&[
    N,
    ("data_points", Msg(&NUMBER_POINT)),
    ("aggregation_temporality", Varint),
    ("is_monotonic", Varint),
]);
static HISTOGRAM: Schema = msg(&[
    N,
    ("data_points", Msg(&HISTOGRAM_POINT)),
    ("aggregation_temporality", Varint),
]);
static EXP_HISTOGRAM: Schema = msg(&[
    N,
    ("data_points", Msg(&EXP_HISTOGRAM_POINT)),
    ("aggregation_temporality", Varint),
]);
static SUMMARY: Schema = msg(&[N, ("data_points", Msg(&SUMMARY_POINT))]);
static NUMBER_POINT: Schema = item(&[
    N,
    N,
    ("start_time_unix_nano", I64),
    ("time_unix_nano", I64),
    ("as_double", I64),
    ("exemplars", Msg(&EXEMPLAR)),
    ("as_int", I64),
    ("attributes", Msg(&KEY_VALUE)),
    ("flags", Varint),
]);
static HISTOGRAM_POINT: Schema = item(&[
    N,
    N,
    ("start_time_unix_nano", I64),
    ("time_unix_nano", I64),
    ("count", I64),
    ("sum", I64),
    ("bucket_counts", RepI64),
    ("explicit_bounds", RepI64),
    ("exemplars", Msg(&EXEMPLAR)),
    ("attributes", Msg(&KEY_VALUE)),
    ("flags", Varint),
    ("min", I64),
    ("max", I64),
]);
static EXP_HISTOGRAM_POINT: Schema = item(&[
    N,
    ("attributes", Msg(&KEY_VALUE)),
    ("start_time_unix_nano", I64),
    ("time_unix_nano", I64),
    ("count", I64),
    ("sum", I64),
    ("scale", Varint),
    ("zero_count", I64),
    ("positive", Msg(&BUCKETS)),
    ("negative", Msg(&BUCKETS)),
    ("flags", Varint),
    ("exemplars", Msg(&EXEMPLAR)),
    ("min", I64),
    ("max", I64),
    ("zero_threshold", I64),
]);
static BUCKETS: Schema = msg(&[N, ("offset", Varint), ("bucket_counts", RepVarint)]);
static SUMMARY_POINT: Schema = item(&[
    N,
    N,
    ("start_time_unix_nano", I64),
    ("time_unix_nano", I64),
    ("count", I64),
    ("sum", I64),
    ("quantile_values", Msg(&QUANTILE)),
    ("attributes", Msg(&KEY_VALUE)),
    ("flags", Varint),
]);
static QUANTILE: Schema = msg(&[N, ("quantile", I64), ("value", I64)]);
static EXEMPLAR: Schema = msg(&[
    N,
    N,
    ("time_unix_nano", I64),
    ("as_double", I64),
    ("span_id", Bytes),
    ("trace_id", Bytes),
    ("as_int", I64),
    ("filtered_attributes", Msg(&KEY_VALUE)),
]);

/// prost's nesting limit: the request is at level 100, and a message or skipped field needs a
/// level above 0.
const RECURSION_LIMIT: u32 = 100;

/// An error on its way up: what and where, with the fields it passed through (innermost first).
struct Fault {
    what: &'static str,
    at: usize,
    fields: Vec<&'static str>,
}

type Walk<T> = Result<T, Fault>;

/// A cursor over the request's bytes; positions are offsets into the whole request.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// When indexing: the attribute entries found so far ([`ENTRY`] `u32`s each).
    index: Option<Vec<u32>>,
    /// When indexing: resources, scopes and items seen so far.
    owners: [u32; 3],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], indexing: bool) -> Self {
        Self {
            buf,
            pos: 0,
            index: indexing.then(Vec::new),
            owners: [0; 3],
        }
    }

    fn fault(&self, what: &'static str) -> Fault {
        Fault {
            what,
            at: self.pos,
            fields: Vec::new(),
        }
    }

    /// A varint as prost reads it: at most 10 bytes, the tenth at most 1.
    #[inline]
    fn varint(&mut self, end: usize) -> Walk<u64> {
        let mut v = 0u64;
        let mut i = 0;
        while i < 10 {
            let Some(&b) = self.buf.get(self.pos).filter(|_| self.pos < end) else {
                return Err(self.fault("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && b >= 0x02 {
                return Err(self.fault("invalid varint"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
            i += 1;
        }
        Err(self.fault("invalid varint"))
    }

    /// A field key: `(number, wire type)`.
    #[inline]
    fn key(&mut self, end: usize) -> Walk<(u32, u8)> {
        let key = self.varint(end)?;
        if key > u64::from(u32::MAX) {
            return Err(self.fault("invalid field key"));
        }
        let wire = (key & 7) as u8;
        if wire > 5 {
            return Err(self.fault("invalid wire type"));
        }
        let tag = (key >> 3) as u32;
        if tag == 0 {
            return Err(self.fault("invalid field number 0"));
        }
        Ok((tag, wire))
    }

    /// Skips `n` bytes.
    #[inline]
    fn skip(&mut self, n: u64, end: usize) -> Walk<()> {
        if n > (end - self.pos) as u64 {
            return Err(self.fault("length past the end of the message"));
        }
        self.pos += n as usize;
        Ok(())
    }

    /// A length prefix, and the end of what it delimits.
    #[inline]
    fn delimited(&mut self, end: usize) -> Walk<usize> {
        let len = self.varint(end)?;
        if len > (end - self.pos) as u64 {
            return Err(self.fault("length past the end of the message"));
        }
        Ok(self.pos + len as usize)
    }

    /// Skips a field of no known meaning, as prost does (groups included).
    fn skip_unknown(&mut self, tag: u32, wire: u8, end: usize, depth: u32) -> Walk<()> {
        if depth == 0 {
            return Err(self.fault("nested too deeply"));
        }
        match wire {
            0 => self.varint(end).map(drop),
            1 => self.skip(8, end),
            5 => self.skip(4, end),
            2 => {
                let len = self.varint(end)?;
                self.skip(len, end)
            }
            3 => loop {
                let (inner, w) = self.key(end)?;
                if w == 4 {
                    if inner != tag {
                        return Err(self.fault("unexpected end of group"));
                    }
                    return Ok(());
                }
                self.skip_unknown(inner, w, end, depth - 1)?;
            },
            _ => Err(self.fault("unexpected end of group")),
        }
    }

    /// Walks one message body ending at `end`; returns the items it holds.
    fn message(&mut self, schema: &'static Schema, end: usize, depth: u32) -> Walk<usize> {
        let mut items = usize::from(schema.item);
        // For `Metric`: the data variant seen last and its points.
        let (mut variant, mut points) = (0u32, 0usize);
        let owner = if self.index.is_some() {
            self.owner(schema)
        } else {
            None
        };
        while self.pos < end {
            let (tag, wire) = self.key(end)?;
            let (name, kind) = schema
                .fields
                .get(tag as usize)
                .copied()
                .unwrap_or(("", Kind::Unknown));
            let at = self.pos;
            let r = self.field(kind, tag, wire, end, depth);
            if let (Some(owner), Ok(_), Kind::Msg(child)) = (owner, &r, kind)
                && std::ptr::eq(child, &KEY_VALUE)
                && name == "attributes"
            {
                self.entry(owner, at)?;
            }
            let n = match r {
                Ok(n) => n,
                Err(mut f) => {
                    if !name.is_empty() {
                        f.fields.push(name);
                    }
                    return Err(f);
                }
            };
            if schema.metric && matches!(kind, Kind::Msg(_)) && tag != 12 {
                if tag == variant {
                    points += n;
                } else {
                    (variant, points) = (tag, n);
                }
            } else {
                items += n;
            }
        }
        Ok(items + points)
    }

    /// Walks one field's value; returns the items it holds.
    #[inline]
    fn field(&mut self, kind: Kind, tag: u32, wire: u8, end: usize, depth: u32) -> Walk<usize> {
        let expect = |want: u8, r: &Self| {
            if wire == want {
                Ok(())
            } else {
                Err(r.fault("wrong wire type for the field"))
            }
        };
        match kind {
            Kind::Unknown => self.skip_unknown(tag, wire, end, depth).map(|()| 0),
            Kind::Varint => {
                expect(0, self)?;
                self.varint(end).map(|_| 0)
            }
            Kind::I64 => {
                expect(1, self)?;
                self.skip(8, end).map(|()| 0)
            }
            Kind::I32 => {
                expect(5, self)?;
                self.skip(4, end).map(|()| 0)
            }
            Kind::Bytes => {
                expect(2, self)?;
                self.pos = self.delimited(end)?;
                Ok(0)
            }
            Kind::Str => {
                expect(2, self)?;
                let stop = self.delimited(end)?;
                if std::str::from_utf8(&self.buf[self.pos..stop]).is_err() {
                    return Err(self.fault("a string that is not UTF-8"));
                }
                self.pos = stop;
                Ok(0)
            }
            Kind::Msg(child) => {
                expect(2, self)?;
                if depth == 0 {
                    return Err(self.fault("nested too deeply"));
                }
                let stop = self.delimited(end)?;
                self.message(child, stop, depth - 1)
            }
            Kind::RepVarint => {
                if wire == 2 {
                    let stop = self.delimited(end)?;
                    while self.pos < stop {
                        self.varint(stop)?;
                    }
                    Ok(0)
                } else {
                    expect(0, self)?;
                    self.varint(end).map(|_| 0)
                }
            }
            Kind::RepI64 => {
                if wire == 2 {
                    let stop = self.delimited(end)?;
                    if !(stop - self.pos).is_multiple_of(8) {
                        return Err(self.fault("packed values that do not fill their length"));
                    }
                    self.pos = stop;
                    Ok(0)
                } else {
                    expect(1, self)?;
                    self.skip(8, end).map(|()| 0)
                }
            }
        }
    }
}

fn request(signal: Signal) -> (&'static Schema, &'static str) {
    match signal {
        Signal::Logs => (&LOGS_REQUEST, "ExportLogsServiceRequest"),
        Signal::Traces => (&TRACES_REQUEST, "ExportTraceServiceRequest"),
        Signal::Metrics => (&METRICS_REQUEST, "ExportMetricsServiceRequest"),
    }
}

/// Checks that `bytes` is an `Export*ServiceRequest` of `signal` that decodes, and returns the
/// number of items it holds (as [`Batch::len`](crate::Batch::len) would count them decoded).
pub fn validate(signal: Signal, bytes: &[u8]) -> Result<usize, WireError> {
    let (schema, name) = request(signal);
    let mut r = Reader::new(bytes, false);
    r.message(schema, bytes.len(), RECURSION_LIMIT)
        .map_err(|f| f.into_error(name))
}

impl Fault {
    fn into_error(self, request: &str) -> WireError {
        let mut path = String::from(request);
        for field in self.fields.iter().rev() {
            path.push('.');
            path.push_str(field);
        }
        WireError {
            what: self.what,
            path,
            offset: self.at,
        }
    }
}

#[cfg(test)]
mod tests;
