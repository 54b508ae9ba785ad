//! The `firehose` exporter: records into an Amazon Data Firehose stream with
//! `PutRecordBatch`, the path the platform's analytics take to S3.
//!
//! ```yaml
//! exporters:
//!   firehose/metrics:
//!     delivery_stream: lumina-call-metrics
//!     encoding: otlp_json            # otlp_json (default) | voice_json | otlp_proto
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:5000   # optional
//!     limits: { max_records_per_request: 500, max_record_bytes: 1000KiB, max_request_bytes: 4MiB }
//! ```
//!
//! Firehose joins records into its S3 objects without a separator, so each text record ends
//! in a newline: `voice_json` writes one record per log record (its native event JSON or
//! Dialogue JSON, a line each); `otlp_json` one OTLP/JSON request per Firehose record, a line
//! each, split by items where a batch is over the record limit; `otlp_proto` the same as
//! protobuf (for a destination that reads one request per record; Firehose adds no framing).
//! Requests are packed within `PutRecordBatch`'s documented limits (500 records, 1,000 KiB a
//! record, 4 MiB a request). Only the records a reply marks failed (`ErrorCode` set) are
//! retried; a record over the limit is refused and dead-lettered. A request-level error
//! retries the whole request (throttling, a stream not yet active, a denied permission),
//! except an invalid request, whose records are refused.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::{Batch, Signal};

use crate::aws::pack::{Limits, Reply, fit, per_entry, requests, send_all};
use crate::aws::voice_json::records;

pub use config::{FirehoseConfig, FirehoseEncoding, FirehoseLimits};

/// A `firehose` exporter.
pub struct FirehoseExporter {
    client: aws_sdk_firehose::Client,
    cfg: FirehoseConfig,
}

fn invalid_request(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidArgumentException" | "ValidationException" | "SerializationException")
    )
}

impl FirehoseExporter {
    /// An exporter over `client`.
    pub fn new(client: aws_sdk_firehose::Client, cfg: FirehoseConfig) -> Self {
        Self { client, cfg }
    }

    /// The batch as Firehose records, and what cannot be sent.
    fn records(&self, batch: &Batch) -> (Vec<(Vec<u8>, Batch)>, Vec<Rejected>) {
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        let limit = self.cfg.limits.max_record_bytes.as_usize();
        match self.cfg.encoding {
            FirehoseEncoding::VoiceJson if batch.signal() != Signal::Logs => {
                rejected.push(crate::aws::voice_json::logs_only(batch));
            }
            FirehoseEncoding::VoiceJson => {
                for r in records(batch) {
                    match r.voice() {
                        Ok(v) => {
                            let mut line = v.to_json().to_string().into_bytes();
                            line.push(b'\n');
                            out.push((line, r.batch));
                        }
                        Err(why) => rejected.push(Rejected::new(r.batch, why)),
                    }
                }
            }
            FirehoseEncoding::OtlpJson => fit(
                batch.clone(),
                limit,
                &|b: &Batch| {
                    let mut line = b.encode_json().map_err(|e| e.to_string())?;
                    line.push(b'\n');
                    Ok(line)
                },
                &mut out,
                &mut rejected,
            ),
            FirehoseEncoding::OtlpProto => fit(
                batch.clone(),
                limit,
                &|b: &Batch| Ok(b.encode_protobuf()),
                &mut out,
                &mut rejected,
            ),
        }
        (out, rejected)
    }

    /// Sends one request; says which records to try again, and why.
    async fn put(&self, request: Vec<Vec<u8>>) -> Result<Reply, ExportError> {
        let n = request.len();
        let mut entries = Vec::with_capacity(n);
        for data in request {
            let r = FirehoseRecord::builder()
                .data(Blob::new(data))
                .build()
                .map_err(|e| ExportError::permanent(format!("cannot build the request: {e}")))?;
            entries.push(r);
        }
        let out = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.cfg.delivery_stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| {
                let (code, msg) = crate::aws::sdk_error("PutRecordBatch failed", &e);
                if invalid_request(code.as_deref()) {
                    ExportError::permanent(msg)
                } else {
                    ExportError::retryable(msg)
                }
            })?;
        if out.failed_put_count() == 0 {
            return Ok(Reply::default());
        }
        let results = out.request_responses().iter().map(|r| {
            r.error_code()
                .map(|code| format!("{code}: {}", r.error_message().unwrap_or_default()))
        });
        Ok(per_entry(n, results.collect()))
    }
}

#[async_trait]
impl Exporter for FirehoseExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let (items, mut rejected) = self.records(batch);
        let l = &self.cfg.limits;
        let limits = Limits {
            max_entries: l.max_records_per_request,
            max_entry: l.max_record_bytes.as_usize(),
            max_request: l.max_request_bytes.as_usize(),
        };
        let packed = requests(
            items,
            |(d, _)| d.len(),
            limits,
            |(_, b), n| {
                rejected.push(Rejected::new(
                    b,
                    format!(
                        "the record is {n} bytes, over the {}-byte limit",
                        limits.max_entry
                    ),
                ));
            },
        );
        send_all("record", batch.signal(), packed, rejected, |r| self.put(r)).await
    }
}

#[async_trait]
impl ExporterConfig for FirehoseConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "firehose",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs, Signal::Metrics, Signal::Traces],
            "Writes records to an Amazon Data Firehose stream (PutRecordBatch, per-record retry).",
        )
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let sdk = self.aws().load().await;
        let client = aws_sdk_firehose::Client::new(&sdk);
        let name = self.delivery_stream.clone();
        Some(
            match client
                .describe_delivery_stream()
                .delivery_stream_name(&name)
                .send()
                .await
            {
                Ok(out) => Ok(format!(
                    "delivery stream `{name}` is {}",
                    out.delivery_stream_description()
                        .map(|d| d.delivery_stream_status().as_str().to_owned())
                        .unwrap_or_default()
                )),
                Err(e) => Err(crate::aws::sdk_error(
                    &format!("cannot describe delivery stream `{name}`"),
                    &e,
                )
                .1),
            },
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let sdk = self.aws().load().await;
        Ok(Arc::new(FirehoseExporter::new(
            aws_sdk_firehose::Client::new(&sdk),
            self,
        )))
    }
}
