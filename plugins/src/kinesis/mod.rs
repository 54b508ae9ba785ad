//! The `kinesis` exporter: log records to a Kinesis data stream with `PutRecords`.
//!
//! ```yaml
//! exporters:
//!   kinesis/eu-west-1:
//!     stream_name: lumina-eu          # or stream_arn
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:4567 # optional: a local stand-in or VPC endpoint
//!     partition_key: voice.dialogue.id  # the attribute whose value is the partition key
//!     encoding: voice_json            # voice_json (default) | otlp_json | otlp_proto
//!     limits: { max_records_per_request: 500, max_record_bytes: 1MiB, max_request_bytes: 5MiB }
//! ```
//!
//! Encodings: `voice_json` writes one Kinesis record per log record — the native event JSON
//! for a voice event, the Dialogue JSON for a dialogue record; a record that is neither is
//! refused (dead-lettered). `otlp_json` and `otlp_proto` write one OTLP logs request per
//! partition key (the records of one call stay together), split when over the record limit.
//!
//! The partition key is the `partition_key` attribute of the record (or of its resource); the
//! default, the dialogue id, keeps every event of a call on one shard, in order. A record
//! without it gets a random key (spreading load). Keys longer than Kinesis' 256 characters are
//! cut to 256.
//!
//! Requests are packed within the limits (records per request; bytes per record and per
//! request, partition keys counted). Only the records a reply marks as failed (whatever their
//! error code: `ProvisionedThroughputExceededException`, `InternalFailure`, the KMS codes) are
//! retried, by the host's `retry_on_failure`; a record too large for `max_record_bytes` is
//! refused for good and dead-lettered. A request-level error retries the whole request, except
//! an invalid request (`InvalidArgumentException`, `ValidationException`,
//! `SerializationException`), whose records are refused.

mod config;
pub mod receiver;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::{Batch, Signal};

use crate::aws::pack::{Limits, Reply, per_entry, requests, send_all};
use crate::aws::voice_json::{Record, merge, records};

pub use config::{KinesisConfig, KinesisEncoding, KinesisLimits};

/// A `kinesis` exporter.
pub struct KinesisExporter {
    client: aws_sdk_kinesis::Client,
    cfg: KinesisConfig,
}

/// One Kinesis record and the log records it carries.
struct Item {
    key: String,
    data: Vec<u8>,
    batch: Batch,
}

impl Item {
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

/// The most characters a partition key may have.
const MAX_KEY_CHARS: usize = 256;

fn partition_key(r: &Record, attribute: &str) -> String {
    match r.attr(attribute).filter(|k| !k.is_empty()) {
        Some(k) => k.chars().take(MAX_KEY_CHARS).collect(),
        None => format!("{:032x}", fastrand::u128(..)),
    }
}

/// Whether a request-level error code is worth another attempt. Everything is, except the
/// request being invalid: throttling, a missing stream or a denied permission can all be
/// fixed while the host retries (and what is still failing then is dead-lettered).
fn retryable_code(code: Option<&str>) -> bool {
    !matches!(
        code,
        Some("InvalidArgumentException" | "ValidationException" | "SerializationException")
    )
}

impl KinesisExporter {
    /// An exporter over `client`.
    pub fn new(client: aws_sdk_kinesis::Client, cfg: KinesisConfig) -> Self {
        Self { client, cfg }
    }

    /// Turns a batch into Kinesis records, and the records that cannot be sent.
    fn items(&self, batch: &Batch) -> (Vec<Item>, Vec<Rejected>) {
        let mut items = Vec::new();
        let mut rejected = Vec::new();
        let key_attr = self.cfg.partition_key.as_str();
        match self.cfg.encoding {
            KinesisEncoding::VoiceJson => {
                for r in records(batch) {
                    match r.voice() {
                        Ok(v) => items.push(Item {
                            key: partition_key(&r, key_attr),
                            data: v.to_json().to_string().into_bytes(),
                            batch: r.batch,
                        }),
                        Err(why) => rejected.push(Rejected::new(r.batch, why)),
                    }
                }
            }
            KinesisEncoding::OtlpJson | KinesisEncoding::OtlpProto => {
                let mut groups: BTreeMap<String, Vec<Batch>> = BTreeMap::new();
                for r in records(batch) {
                    groups
                        .entry(partition_key(&r, key_attr))
                        .or_default()
                        .push(r.batch);
                }
                for (key, parts) in groups {
                    self.pack_otlp(key, parts, &mut items, &mut rejected);
                }
            }
        }
        (items, rejected)
    }

    fn encode(&self, batch: &Batch) -> Result<Vec<u8>, String> {
        match self.cfg.encoding {
            KinesisEncoding::OtlpProto => Ok(batch.encode_protobuf()),
            _ => batch.encode_json().map_err(|e| e.to_string()),
        }
    }

    /// One record for the group if it fits, else halves until each part fits.
    fn pack_otlp(
        &self,
        key: String,
        parts: Vec<Batch>,
        items: &mut Vec<Item>,
        rejected: &mut Vec<Rejected>,
    ) {
        let limit = self.cfg.limits.max_record_bytes.as_usize();
        let batch = merge(parts.iter().cloned());
        match self.encode(&batch) {
            Ok(data) if data.len() + key.len() <= limit => items.push(Item { key, data, batch }),
            Ok(data) if parts.len() == 1 => rejected.push(Rejected::new(
                batch,
                format!(
                    "the record is {} bytes with its partition key, over the {limit}-byte limit",
                    data.len() + key.len()
                ),
            )),
            Ok(_) => {
                let mut parts = parts;
                let second = parts.split_off(parts.len() / 2);
                self.pack_otlp(key.clone(), parts, items, rejected);
                self.pack_otlp(key, second, items, rejected);
            }
            Err(e) => rejected.push(Rejected::new(batch, format!("cannot encode: {e}"))),
        }
    }

    /// Packs items into requests within the limits.
    fn requests(&self, items: Vec<Item>, rejected: &mut Vec<Rejected>) -> Vec<Vec<Item>> {
        let l = &self.cfg.limits;
        let limits = Limits {
            max_entries: l.max_records_per_request,
            max_entry: l.max_record_bytes.as_usize(),
            max_request: l.max_request_bytes.as_usize(),
        };
        requests(items, Item::size, limits, |item, size| {
            rejected.push(Rejected::new(
                item.batch,
                format!(
                    "the record is {size} bytes with its partition key, over the {}-byte limit",
                    limits.max_entry
                ),
            ));
        })
    }

    /// Sends one request of `(partition key, data)` records; returns the positions of the
    /// records to try again, and why.
    async fn put(&self, request: Vec<(String, Vec<u8>)>) -> Result<Reply, ExportError> {
        let n = request.len();
        let mut entries = Vec::with_capacity(n);
        for (key, data) in request {
            let e = PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data))
                .build()
                .map_err(|e| ExportError::permanent(format!("cannot build the request: {e}")))?;
            entries.push(e);
        }
        let mut call = self.client.put_records().set_records(Some(entries));
        call = match (&self.cfg.stream_name, &self.cfg.stream_arn) {
            (Some(n), _) => call.stream_name(n),
            (None, Some(a)) => call.stream_arn(a),
            (None, None) => call,
        };
        let out = match call.send().await {
            Ok(o) => o,
            Err(e) => {
                let (code, msg) = crate::aws::sdk_error("PutRecords failed", &e);
                return Err(if retryable_code(code.as_deref()) {
                    ExportError::retryable(msg)
                } else {
                    ExportError::permanent(msg)
                });
            }
        };
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(Reply::default());
        }
        let results = out.records().iter().map(|r| {
            r.error_code()
                .map(|code| format!("{code}: {}", r.error_message().unwrap_or_default()))
        });
        Ok(per_entry(n, results.collect()))
    }
}

#[async_trait]
impl Exporter for KinesisExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let (items, mut rejected) = self.items(batch);
        let requests = self
            .requests(items, &mut rejected)
            .into_iter()
            .map(|r| r.into_iter().map(|i| ((i.key, i.data), i.batch)).collect())
            .collect();
        send_all("record", Signal::Logs, requests, rejected, |records| {
            self.put(records)
        })
        .await
    }
}

#[async_trait]
impl ExporterConfig for KinesisConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "kinesis",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Writes log records to a Kinesis data stream (PutRecords, per-record retry).",
        )
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let sdk = self.aws().load().await;
        let client = aws_sdk_kinesis::Client::new(&sdk);
        let req = client
            .describe_stream_summary()
            .set_stream_arn(self.stream_arn.clone())
            .set_stream_name(self.stream_name.clone());
        let label = self
            .stream_arn
            .clone()
            .or_else(|| self.stream_name.clone())
            .unwrap_or_default();
        Some(match req.send().await {
            Ok(out) => {
                let status = out
                    .stream_description_summary()
                    .map(|d| d.stream_status().as_str().to_owned())
                    .unwrap_or_default();
                Ok(format!("stream `{label}` is {status}"))
            }
            Err(e) => {
                Err(crate::aws::sdk_error(&format!("cannot describe stream `{label}`"), &e).1)
            }
        })
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
        let sdk = cfg.aws().load().await;
        Ok(Arc::new(KinesisExporter::new(
            aws_sdk_kinesis::Client::new(&sdk),
            cfg,
        )))
    }
}
