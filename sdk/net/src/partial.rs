//! OTLP partial success, as an exporter reads it: the destination took the request but refused
//! some of its items, saying how many (not which) and why. Those items are not retried (the
//! OTLP specification makes a partial refusal permanent); the batch is handed to the
//! exporter's dead-letter sink with the count, so nothing refused is lost.

use lumina_sdk::component::{ExportError, Rejected};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceResponse;
use lumina_sdk::{Batch, Signal};
use prost::Message;

/// What a destination's partial-success answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Items it refused.
    pub rejected: i64,
    /// Its message (a warning when nothing was refused).
    pub message: String,
}

impl PartialSuccess {
    /// The outcome of exporting `batch`: `Ok` when nothing was refused, else a per-item error
    /// whose refused part is the whole batch with the count.
    pub fn outcome(&self, batch: &Batch, destination: &str) -> Result<(), ExportError> {
        if self.rejected <= 0 {
            return Ok(());
        }
        let refused = usize::try_from(self.rejected).unwrap_or(usize::MAX);
        let reason = format!(
            "{destination} refused {} of the {} {} in the batch (it did not say which): {}",
            refused.min(batch.len()),
            batch.len(),
            batch.signal().item_name(),
            if self.message.is_empty() {
                "no reason given"
            } else {
                &self.message
            }
        );
        Err(ExportError::per_item(
            reason.clone(),
            Batch::empty(batch.signal()),
            vec![Rejected::some_of(batch.clone(), refused, reason)],
        ))
    }

    /// From an OTLP/HTTP or OTLP/gRPC response body in protobuf; `None` if it does not decode.
    pub fn from_protobuf(signal: Signal, body: &[u8]) -> Option<Self> {
        let p = match signal {
            Signal::Logs => ExportLogsServiceResponse::decode(body)
                .ok()?
                .partial_success
                .map(|p| (p.rejected_log_records, p.error_message)),
            Signal::Traces => ExportTraceServiceResponse::decode(body)
                .ok()?
                .partial_success
                .map(|p| (p.rejected_spans, p.error_message)),
            Signal::Metrics => ExportMetricsServiceResponse::decode(body)
                .ok()?
                .partial_success
                .map(|p| (p.rejected_data_points, p.error_message)),
        };
        Some(p.map_or_else(Self::default, |(rejected, message)| Self {
            rejected,
            message,
        }))
    }

    /// From an OTLP/HTTP response body in JSON (`{"partialSuccess": {"rejectedLogRecords":
    /// "2", "errorMessage": "..."}}`; the count may be a number or, as proto3 JSON writes
    /// 64-bit integers, a string); `None` if it is not JSON.
    pub fn from_json(signal: Signal, body: &[u8]) -> Option<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Some(Self::default());
        }
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let Some(p) = v.get("partialSuccess") else {
            return Some(Self::default());
        };
        let key = match signal {
            Signal::Logs => "rejectedLogRecords",
            Signal::Traces => "rejectedSpans",
            Signal::Metrics => "rejectedDataPoints",
        };
        let rejected = match p.get(key) {
            Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let message = p
            .get("errorMessage")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned();
        Some(Self { rejected, message })
    }
}

#[cfg(test)]
mod tests {
    use lumina_sdk::proto::collector::logs::v1::ExportLogsPartialSuccess;
    use lumina_sdk::testkit;

    use super::*;

    #[test]
    fn reads_both_encodings_and_refuses_the_count_it_was_told() {
        let body = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 2,
                error_message: "bad ids".into(),
            }),
        }
        .encode_to_vec();
        let want = PartialSuccess {
            rejected: 2,
            message: "bad ids".into(),
        };
        assert_eq!(
            PartialSuccess::from_protobuf(Signal::Logs, &body),
            Some(want.clone())
        );
        for json in [
            r#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad ids"}}"#,
            r#"{"partialSuccess":{"rejectedLogRecords":2,"errorMessage":"bad ids"}}"#,
        ] {
            assert_eq!(
                PartialSuccess::from_json(Signal::Logs, json.as_bytes()),
                Some(want.clone())
            );
        }
        assert_eq!(
            PartialSuccess::from_json(Signal::Logs, b"{}"),
            Some(PartialSuccess::default())
        );
        let batch = testkit::logs(1, 5);
        let e = want.outcome(&batch, "the destination").unwrap_err();
        assert!(!e.retryable, "nothing is retried");
        assert_eq!(e.rejected.len(), 1);
        assert_eq!(e.rejected[0].items(), 2);
        assert_eq!(e.rejected[0].batch, batch, "the whole batch is kept");
        assert!(
            e.rejected[0].reason.contains("refused 2 of the 5"),
            "{}",
            e.message
        );
        assert!(PartialSuccess::default().outcome(&batch, "d").is_ok());
    }
}
