//! Batches: the unit of data that moves between components.
//!
//! A [`Batch`] holds one OTLP export request (logs, traces or metrics) behind an `Arc`, so handing
//! the same batch to several exporters copies nothing. A component that changes a batch takes
//! the payload out with [`Batch::into_payload`] (which clones only if the batch is shared) and
//! builds a new batch from it.

use std::sync::Arc;

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
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    payload: Arc<Payload>,
    items: usize,
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
            payload: Arc::new(payload),
            items,
        }
    }

    /// A logs batch.
    pub fn logs(req: ExportLogsServiceRequest) -> Self {
        Self::new(Payload::Logs(req))
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

    /// The signal.
    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }

    /// The number of items (log records, spans or data points).
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the batch has no items.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The payload, owned: moved out if this is the only handle, else cloned.
    pub fn into_payload(self) -> Payload {
        Arc::unwrap_or_clone(self.payload)
    }

    /// The logs request, if this is a logs batch.
    pub fn as_logs(&self) -> Option<&ExportLogsServiceRequest> {
        match &*self.payload {
            Payload::Logs(r) => Some(r),
            _ => None,
        }
    }

    /// The traces request, if this is a traces batch.
    pub fn as_traces(&self) -> Option<&ExportTraceServiceRequest> {
        match &*self.payload {
            Payload::Traces(r) => Some(r),
            _ => None,
        }
    }

    /// The metrics request, if this is a metrics batch.
    pub fn as_metrics(&self) -> Option<&ExportMetricsServiceRequest> {
        match &*self.payload {
            Payload::Metrics(r) => Some(r),
            _ => None,
        }
    }

    /// The size of the OTLP protobuf encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        match &*self.payload {
            Payload::Logs(r) => r.encoded_len(),
            Payload::Traces(r) => r.encoded_len(),
            Payload::Metrics(r) => r.encoded_len(),
        }
    }

    /// The OTLP protobuf encoding (an `Export*ServiceRequest`).
    pub fn encode_protobuf(&self) -> Vec<u8> {
        match &*self.payload {
            Payload::Logs(r) => r.encode_to_vec(),
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
        }
    }

    /// Decodes an OTLP protobuf `Export*ServiceRequest` of `signal`.
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
        match &*self.payload {
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
    pub fn merge(
        batches: impl IntoIterator<Item = Batch>,
    ) -> Result<Option<Batch>, SignalMismatch> {
        let mut iter = batches.into_iter();
        let Some(first) = iter.next() else {
            return Ok(None);
        };
        let expected = first.signal();
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
