//! Batches: the unit of data that moves between components.
//!
//! A [`Batch`] holds one OTLP export request (logs, traces or metrics) behind an `Arc`, so handing
//! the same batch to several exporters copies nothing. A component that changes a batch takes
//! the payload out with [`Batch::into_payload`] (which clones only if the batch is shared) and
//! builds a new batch from it. A batch built from received bytes ([`Batch::from_protobuf`])
//! stays encoded until a component reads its records.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use prost::Message;

use crate::Signal;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::logs::v1::{ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric::Data};
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans};

/// The data of a batch: one OTLP export request.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Log records.
    Logs(ExportLogsServiceRequest),
    /// Spans.
    Traces(ExportTraceServiceRequest),
    /// Metrics.
    Metrics(ExportMetricsServiceRequest),
}

impl Payload {
    /// The signal this payload carries.
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Logs(_) => Signal::Logs,
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
        }
    }

    /// The number of items: log records, spans or metric data points.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Logs(r) => r.resource_logs.iter().map(Node::items).sum(),
            Payload::Traces(r) => r.resource_spans.iter().map(Node::items).sum(),
            Payload::Metrics(r) => r.resource_metrics.iter().map(Node::items).sum(),
        }
    }

    /// An empty payload of `signal`.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Logs => Payload::Logs(Default::default()),
            Signal::Traces => Payload::Traces(Default::default()),
            Signal::Metrics => Payload::Metrics(Default::default()),
        }
    }
}

/// A batch of telemetry of one signal, cheap to clone.
///
/// A batch holds its request decoded, encoded, or both. One built from received bytes
/// ([`Batch::from_protobuf`]) keeps them as they came, checked by a wire walk
/// ([`crate::wire`]) and counted, and decodes only when a component first reads its records
/// ([`Batch::payload`]); a pipeline whose components only count, batch and forward never
/// decodes at all, and [`Batch::encoded`] hands on the bytes as received.
#[derive(Clone)]
pub struct Batch {
    inner: Arc<Inner>,
    signal: Signal,
    items: usize,
}

/// At least one of the two is set.
struct Inner {
    decoded: OnceLock<Payload>,
    encoded: OnceLock<Bytes>,
}

impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.signal == other.signal
            && self.items == other.items
            && self.payload() == other.payload()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.decoded.get() {
            Some(p) => f.debug_struct("Batch").field("payload", p).finish(),
            None => f
                .debug_struct("Batch")
                .field("signal", &self.signal)
                .field("items", &self.items)
                .field("encoded_bytes", &self.encoded_len())
                .finish(),
        }
    }
}

/// Two batches of different signals cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot merge a {found} batch into a {expected} batch")]
pub struct SignalMismatch {
    /// The signal of the first batch.
    pub expected: Signal,
    /// The signal of the batch that did not match.
    pub found: Signal,
}

/// Bytes that are not a valid OTLP message of the expected signal.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid protobuf for the request type.
    #[error("invalid OTLP protobuf {signal} request: {source}")]
    Protobuf {
        /// The signal expected.
        signal: Signal,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// Not valid protobuf for the request type, found by the wire walk.
    #[error("invalid OTLP protobuf {signal} request: {source}")]
    Wire {
        /// The signal expected.
        signal: Signal,
        /// What the walk found, and where.
        source: crate::wire::WireError,
    },
    /// Not valid OTLP/JSON for the request type.
    #[error("invalid OTLP/JSON {signal} request: {source}")]
    Json {
        /// The signal expected.
        signal: Signal,
        /// The decoder's error, with its line and column.
        source: serde_json::Error,
    },
}

impl Batch {
    /// A batch holding `payload`.
    pub fn new(payload: Payload) -> Self {
        let items = payload.item_count();
        Self {
            signal: payload.signal(),
            inner: Arc::new(Inner {
                decoded: OnceLock::from(payload),
                encoded: OnceLock::new(),
            }),
            items,
        }
    }

    /// A logs batch.
    pub fn logs(req: ExportLogsServiceRequest) -> Self {
        Self::new(Payload::Logs(req))
    }

    /// A logs batch of `records` under one resource and one scope, both empty.
    pub fn from_log_records(records: Vec<crate::proto::logs::v1::LogRecord>) -> Self {
        use crate::proto::logs::v1::{ResourceLogs, ScopeLogs};
        Self::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    /// A traces batch.
    pub fn traces(req: ExportTraceServiceRequest) -> Self {
        Self::new(Payload::Traces(req))
    }

    /// A metrics batch.
    pub fn metrics(req: ExportMetricsServiceRequest) -> Self {
        Self::new(Payload::Metrics(req))
    }

    /// An empty batch of `signal`.
    pub fn empty(signal: Signal) -> Self {
        Self::new(Payload::empty(signal))
    }

    /// A batch of an encoded `Export*ServiceRequest` of `signal`, kept encoded: the bytes are
    /// checked with a wire walk that refuses what a decode would refuse, and decoded only when
    /// the records are first read.
    pub fn from_protobuf(signal: Signal, bytes: Bytes) -> Result<Self, DecodeError> {
        let items = crate::wire::validate(signal, &bytes)
            .map_err(|source| DecodeError::Wire { signal, source })?;
        Ok(Self::from_checked(signal, bytes, items))
    }

    /// A batch of a request the caller encoded itself (e.g. records written straight to
    /// protobuf), holding `items` items, taken without the wire walk. The caller vouches for
    /// the bytes; debug builds walk them anyway and panic if they do not hold `items` items.
    pub fn from_protobuf_trusted(signal: Signal, bytes: Bytes, items: usize) -> Self {
        debug_assert_eq!(
            crate::wire::validate(signal, &bytes),
            Ok(items),
            "bytes given as a valid {signal} request of {items} items"
        );
        Self::from_checked(signal, bytes, items)
    }

    /// Bytes known to be a valid request of `items` items.
    fn from_checked(signal: Signal, bytes: Bytes, items: usize) -> Self {
        Self {
            signal,
            inner: Arc::new(Inner {
                decoded: OnceLock::new(),
                encoded: OnceLock::from(bytes),
            }),
            items,
        }
    }

    /// The signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The number of items (log records, spans or data points).
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the batch has no items.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Whether the records have been decoded (or the batch was built from them).
    pub fn is_decoded(&self) -> bool {
        self.inner.decoded.get().is_some()
    }

    /// The payload, decoded on first use if the batch holds only bytes.
    pub fn payload(&self) -> &Payload {
        self.inner
            .decoded
            .get_or_init(|| decode_checked(self.signal, self.inner.encoded.get()))
    }

    /// The payload, owned: moved out if this is the only handle, else cloned.
    pub fn into_payload(self) -> Payload {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => match inner.decoded.into_inner() {
                Some(p) => p,
                None => decode_checked(self.signal, inner.encoded.get()),
            },
            Err(shared) => Batch {
                inner: shared,
                signal: self.signal,
                items: self.items,
            }
            .payload()
            .clone(),
        }
    }

    /// The logs request, if this is a logs batch.
    pub fn as_logs(&self) -> Option<&ExportLogsServiceRequest> {
        match self.payload() {
            Payload::Logs(r) => Some(r),
            _ => None,
        }
    }

    /// The traces request, if this is a traces batch.
    pub fn as_traces(&self) -> Option<&ExportTraceServiceRequest> {
        match self.payload() {
            Payload::Traces(r) => Some(r),
            _ => None,
        }
    }

    /// The metrics request, if this is a metrics batch.
    pub fn as_metrics(&self) -> Option<&ExportMetricsServiceRequest> {
        match self.payload() {
            Payload::Metrics(r) => Some(r),
            _ => None,
        }
    }

    /// The size of the OTLP protobuf encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        if let Some(b) = self.inner.encoded.get() {
            return b.len();
        }
        match self.payload() {
            Payload::Logs(r) => r.encoded_len(),
            Payload::Traces(r) => r.encoded_len(),
            Payload::Metrics(r) => r.encoded_len(),
        }
    }

    /// The OTLP protobuf encoding (an `Export*ServiceRequest`), shared: the bytes as received
    /// for a batch built from them, else encoded once and kept for the next caller.
    pub fn encoded(&self) -> Bytes {
        self.inner
            .encoded
            .get_or_init(|| Bytes::from(encode(self.payload())))
            .clone()
    }

    /// The OTLP protobuf encoding (an `Export*ServiceRequest`), as a vector of its own.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        match self.inner.encoded.get() {
            Some(b) => b.to_vec(),
            None => encode(self.payload()),
        }
    }

    /// Decodes an OTLP protobuf `Export*ServiceRequest` of `signal` at once (for a component
    /// that reads every record anyway; [`Batch::from_protobuf`] keeps the bytes instead).
    pub fn decode_protobuf(signal: Signal, bytes: &[u8]) -> Result<Self, DecodeError> {
        let err = |source| DecodeError::Protobuf { signal, source };
        Ok(Self::new(match signal {
            Signal::Logs => Payload::Logs(ExportLogsServiceRequest::decode(bytes).map_err(err)?),
            Signal::Traces => {
                Payload::Traces(ExportTraceServiceRequest::decode(bytes).map_err(err)?)
            }
            Signal::Metrics => {
                Payload::Metrics(ExportMetricsServiceRequest::decode(bytes).map_err(err)?)
            }
        }))
    }

    /// The OTLP/JSON encoding, as the OpenTelemetry Collector's file exporter writes it.
    pub fn encode_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self.payload() {
            Payload::Logs(r) => serde_json::to_vec(r),
            Payload::Traces(r) => serde_json::to_vec(r),
            Payload::Metrics(r) => serde_json::to_vec(r),
        }
    }

    /// Decodes an OTLP/JSON `Export*ServiceRequest` of `signal`.
    pub fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Self, DecodeError> {
        let err = |source| DecodeError::Json { signal, source };
        Ok(Self::new(match signal {
            Signal::Logs => Payload::Logs(serde_json::from_slice(bytes).map_err(err)?),
            Signal::Traces => Payload::Traces(serde_json::from_slice(bytes).map_err(err)?),
            Signal::Metrics => Payload::Metrics(serde_json::from_slice(bytes).map_err(err)?),
        }))
    }

    /// Concatenates batches of one signal into one. Returns `None` for no batches.
    ///
    /// Batches that all hold their encoding are merged by concatenating the encoded requests
    /// (protobuf's repeated fields concatenate), so nothing is decoded; otherwise the decoded
    /// requests are joined.
    pub fn merge(
        batches: impl IntoIterator<Item = Batch>,
    ) -> Result<Option<Batch>, SignalMismatch> {
        let batches: Vec<Batch> = batches.into_iter().collect();
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let expected = first.signal;
        if let Some(b) = batches.iter().find(|b| b.signal != expected) {
            return Err(SignalMismatch {
                expected,
                found: b.signal,
            });
        }
        if batches.len() == 1 {
            return Ok(batches.into_iter().next());
        }
        if batches.iter().all(|b| b.inner.encoded.get().is_some()) {
            let len = batches.iter().map(Batch::encoded_len).sum();
            let mut out = bytes::BytesMut::with_capacity(len);
            for b in &batches {
                out.extend_from_slice(&b.encoded());
            }
            let items = batches.iter().map(Batch::len).sum();
            return Ok(Some(Batch::from_checked(expected, out.freeze(), items)));
        }
        let mut iter = batches.into_iter();
        let Some(first) = iter.next() else {
            return Ok(None);
        };
        let mut acc = first.into_payload();
        for b in iter {
            let found = b.signal();
            match (&mut acc, b.into_payload()) {
                (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
                (Payload::Traces(a), Payload::Traces(b)) => {
                    a.resource_spans.extend(b.resource_spans)
                }
                (Payload::Metrics(a), Payload::Metrics(b)) => {
                    a.resource_metrics.extend(b.resource_metrics)
                }
                _ => return Err(SignalMismatch { expected, found }),
            }
        }
        Ok(Some(Batch::new(acc)))
    }

    /// Splits the batch into batches of at most `max_items` items each, in order. Resource and
    /// scope information is repeated in every part. `max_items == 0` means no limit.
    pub fn split(self, max_items: usize) -> Vec<Batch> {
        if max_items == 0 || self.items <= max_items {
            return vec![self];
        }
        let mut out = Vec::with_capacity(self.items.div_ceil(max_items));
        let mut remaining = self.items;
        match self.into_payload() {
            Payload::Logs(mut r) => {
                while remaining > max_items {
                    let part = split_front(&mut r.resource_logs, max_items);
                    out.push(Batch::logs(ExportLogsServiceRequest {
                        resource_logs: part,
                    }));
                    remaining -= max_items;
                }
                out.push(Batch::logs(r));
            }
            Payload::Traces(mut r) => {
                while remaining > max_items {
                    let part = split_front(&mut r.resource_spans, max_items);
                    out.push(Batch::traces(ExportTraceServiceRequest {
                        resource_spans: part,
                    }));
                    remaining -= max_items;
                }
                out.push(Batch::traces(r));
            }
            Payload::Metrics(mut r) => {
                while remaining > max_items {
                    let part = split_front(&mut r.resource_metrics, max_items);
                    out.push(Batch::metrics(ExportMetricsServiceRequest {
                        resource_metrics: part,
                    }));
                    remaining -= max_items;
                }
                out.push(Batch::metrics(r));
            }
        }
        out
    }
}

fn encode(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Logs(r) => r.encode_to_vec(),
        Payload::Traces(r) => r.encode_to_vec(),
        Payload::Metrics(r) => r.encode_to_vec(),
    }
}

/// Decodes bytes the wire walk accepted. The walk refuses whatever prost would (its tests and
/// fuzz target hold it to that), so this cannot fail; if it ever did, the batch would read as
/// empty and the failure is logged as the bug it is.
fn decode_checked(signal: Signal, bytes: Option<&Bytes>) -> Payload {
    let bytes: &[u8] = bytes.map_or(&[], |b| b);
    let decoded = match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(bytes).map(Payload::Logs),
        Signal::Traces => ExportTraceServiceRequest::decode(bytes).map(Payload::Traces),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes).map(Payload::Metrics),
    };
    decoded.unwrap_or_else(|_e| {
        #[cfg(feature = "host")]
        tracing::error!(%signal, error = %_e, "A request the wire walk accepted did not decode; this is a bug in lumina_sdk::wire.");
        Payload::empty(signal)
    })
}

/// A level of the OTLP tree that holds items and can give up its first `n` of them.
trait Node {
    fn items(&self) -> usize;
    /// Moves the first `n` items (`0 < n < self.items()`) into a new node with the same header.
    fn split_off_front(&mut self, n: usize) -> Self;
}

/// Moves the first `n` items of `children` into a new vector, splitting one child if needed.
fn split_front<C: Node>(children: &mut Vec<C>, n: usize) -> Vec<C> {
    let mut need = n;
    let mut whole = 0;
    for c in children.iter() {
        let k = c.items();
        if k > need {
            break;
        }
        need -= k;
        whole += 1;
    }
    let mut out: Vec<C> = children.drain(..whole).collect();
    if need > 0
        && let Some(first) = children.first_mut()
    {
        out.push(first.split_off_front(need));
    }
    out
}

impl Node for ResourceLogs {
    fn items(&self) -> usize {
        self.scope_logs.iter().map(Node::items).sum()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            resource: self.resource.clone(),
            schema_url: self.schema_url.clone(),
            scope_logs: split_front(&mut self.scope_logs, n),
        }
    }
}

impl Node for ScopeLogs {
    fn items(&self) -> usize {
        self.log_records.len()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            scope: self.scope.clone(),
            schema_url: self.schema_url.clone(),
            log_records: self.log_records.drain(..n).collect(),
        }
    }
}

impl Node for ResourceSpans {
    fn items(&self) -> usize {
        self.scope_spans.iter().map(Node::items).sum()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            resource: self.resource.clone(),
            schema_url: self.schema_url.clone(),
            scope_spans: split_front(&mut self.scope_spans, n),
        }
    }
}

impl Node for ScopeSpans {
    fn items(&self) -> usize {
        self.spans.len()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            scope: self.scope.clone(),
            schema_url: self.schema_url.clone(),
            spans: self.spans.drain(..n).collect(),
        }
    }
}

impl Node for ResourceMetrics {
    fn items(&self) -> usize {
        self.scope_metrics.iter().map(Node::items).sum()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            resource: self.resource.clone(),
            schema_url: self.schema_url.clone(),
            scope_metrics: split_front(&mut self.scope_metrics, n),
        }
    }
}

impl Node for ScopeMetrics {
    fn items(&self) -> usize {
        self.metrics.iter().map(Node::items).sum()
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        Self {
            scope: self.scope.clone(),
            schema_url: self.schema_url.clone(),
            metrics: split_front(&mut self.metrics, n),
        }
    }
}

impl Node for Metric {
    fn items(&self) -> usize {
        match &self.data {
            Some(Data::Gauge(d)) => d.data_points.len(),
            Some(Data::Sum(d)) => d.data_points.len(),
            Some(Data::Histogram(d)) => d.data_points.len(),
            Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
            Some(Data::Summary(d)) => d.data_points.len(),
            None => 0,
        }
    }
    fn split_off_front(&mut self, n: usize) -> Self {
        let data = match &mut self.data {
            Some(Data::Gauge(d)) => Some(Data::Gauge(crate::proto::metrics::v1::Gauge {
                data_points: d.data_points.drain(..n).collect(),
            })),
            Some(Data::Sum(d)) => Some(Data::Sum(crate::proto::metrics::v1::Sum {
                data_points: d.data_points.drain(..n).collect(),
                aggregation_temporality: d.aggregation_temporality,
                is_monotonic: d.is_monotonic,
            })),
            Some(Data::Histogram(d)) => {
                Some(Data::Histogram(crate::proto::metrics::v1::Histogram {
                    data_points: d.data_points.drain(..n).collect(),
                    aggregation_temporality: d.aggregation_temporality,
                }))
            }
            Some(Data::ExponentialHistogram(d)) => Some(Data::ExponentialHistogram(
                crate::proto::metrics::v1::ExponentialHistogram {
                    data_points: d.data_points.drain(..n).collect(),
                    aggregation_temporality: d.aggregation_temporality,
                },
            )),
            Some(Data::Summary(d)) => Some(Data::Summary(crate::proto::metrics::v1::Summary {
                data_points: d.data_points.drain(..n).collect(),
            })),
            None => None,
        };
        Self {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            metadata: self.metadata.clone(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn counts_items_of_every_signal() {
        assert_eq!(testkit::logs(3, 4).len(), 12);
        assert_eq!(testkit::traces(2, 5).len(), 10);
        assert_eq!(testkit::metrics(2, 3).len(), 6 * testkit::POINTS_PER_METRIC);
    }

    #[test]
    fn split_keeps_order_and_headers() {
        for (batch, max) in [
            (testkit::logs(3, 4), 5),
            (testkit::traces(2, 5), 3),
            (testkit::metrics(2, 3), 4),
            (testkit::logs(1, 10), 1),
        ] {
            let total = batch.len();
            let original = batch.clone();
            let parts = batch.split(max);
            assert_eq!(parts.len(), total.div_ceil(max));
            assert!(parts.iter().all(|p| p.len() <= max && !p.is_empty()));
            assert_eq!(parts.iter().map(Batch::len).sum::<usize>(), total);
            let rejoined = Batch::merge(parts).unwrap().unwrap();
            assert_eq!(testkit::item_ids(&rejoined), testkit::item_ids(&original));
        }
    }

    #[test]
    fn merge_refuses_mixed_signals() {
        let err = Batch::merge([testkit::logs(1, 1), testkit::traces(1, 1)]).unwrap_err();
        assert_eq!(
            err,
            SignalMismatch {
                expected: Signal::Logs,
                found: Signal::Traces
            }
        );
        assert_eq!(Batch::merge(Vec::new()).unwrap(), None);
    }

    #[test]
    fn protobuf_and_json_round_trip() {
        for b in [
            testkit::logs(2, 3),
            testkit::traces(2, 2),
            testkit::metrics(1, 2),
        ] {
            let pb = Batch::decode_protobuf(b.signal(), &b.encode_protobuf()).unwrap();
            assert_eq!(pb, b);
            let js = Batch::decode_json(b.signal(), &b.encode_json().unwrap()).unwrap();
            assert_eq!(js, b);
        }
    }

    #[test]
    fn json_uses_hex_ids_and_camel_case() {
        let b = testkit::traces(1, 1);
        let text = String::from_utf8(b.encode_json().unwrap()).unwrap();
        assert!(text.contains("\"resourceSpans\""), "{text}");
        let span = &b.as_traces().unwrap().resource_spans[0].scope_spans[0].spans[0];
        let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
        assert!(text.contains(&format!("\"traceId\":\"{hex}\"")), "{text}");
    }

    #[test]
    fn a_batch_from_bytes_decodes_only_when_read_and_forwards_the_bytes_it_got() {
        for b in [
            testkit::logs(2, 3),
            testkit::traces(2, 2),
            testkit::metrics(1, 2),
        ] {
            let bytes = Bytes::from(b.encode_protobuf());
            let lazy = Batch::from_protobuf(b.signal(), bytes.clone()).unwrap();
            assert_eq!(lazy.len(), b.len());
            assert_eq!(lazy.encoded_len(), bytes.len());
            assert_eq!(
                lazy.encoded().as_ptr(),
                bytes.as_ptr(),
                "the same bytes, not a copy"
            );
            assert!(!lazy.is_decoded());
            let shared = lazy.clone();
            assert_eq!(shared.payload(), b.payload());
            assert!(lazy.is_decoded(), "clones share the decode");
            assert_eq!(lazy.into_payload(), b.clone().into_payload());
        }
    }

    #[test]
    fn encoded_batches_merge_by_concatenation_into_what_a_decoded_merge_gives() {
        let parts = [testkit::logs_from(0, 2, 3), testkit::logs_from(6, 1, 4)];
        let decoded = Batch::merge(parts.clone()).unwrap().unwrap();
        let lazy = parts
            .iter()
            .map(|b| Batch::from_protobuf(Signal::Logs, Bytes::from(b.encode_protobuf())).unwrap());
        let merged = Batch::merge(lazy).unwrap().unwrap();
        assert!(!merged.is_decoded(), "merged without decoding");
        assert_eq!(merged.len(), 10);
        assert_eq!(merged.encoded(), Bytes::from(decoded.encode_protobuf()));
        assert_eq!(testkit::item_ids(&merged), testkit::item_ids(&decoded));
        // One decoded part among encoded ones is encoded for the concatenation.
        let mixed = Batch::merge([
            Batch::from_protobuf(Signal::Logs, Bytes::from(parts[0].encode_protobuf())).unwrap(),
            parts[1].clone(),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(testkit::item_ids(&mixed), testkit::item_ids(&decoded));
        let err = Batch::merge([
            merged,
            Batch::from_protobuf(Signal::Traces, Bytes::new()).unwrap(),
        ])
        .unwrap_err();
        assert_eq!(err.found, Signal::Traces);
    }

    #[test]
    fn bad_bytes_from_the_wire_are_refused_with_the_field() {
        let b = testkit::logs(1, 1).encode_protobuf();
        let e =
            Batch::from_protobuf(Signal::Logs, Bytes::from(b[..b.len() - 1].to_vec())).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("invalid OTLP protobuf logs request"),
            "{text}"
        );
        assert!(
            text.contains("ExportLogsServiceRequest.resource_logs"),
            "{text}"
        );
    }

    #[test]
    fn bad_bytes_name_the_signal() {
        let e = Batch::decode_protobuf(Signal::Logs, &[0xff, 0xff]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid OTLP protobuf logs request"),
            "{e}"
        );
        let e = Batch::decode_json(Signal::Traces, b"{\"resourceSpans\": 5}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid OTLP/JSON traces request"),
            "{e}"
        );
    }
}
