//! The `sqs` exporter: one SQS message per log record, sent with `SendMessageBatch`.
//!
//! ```yaml
//! exporters:
//!   sqs/dialogue-end:
//!     queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/dialogue-end.fifo
//!     encoding: voice_json             # voice_json (default) | otlp_json
//!     message_group_id: voice.dialogue.id   # FIFO queues: the attribute naming the group
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:5000  # optional
//!     limits: { max_messages_per_request: 10, max_message_bytes: 256KiB, max_request_bytes: 256KiB }
//! ```
//!
//! Each log record becomes one message: with `voice_json` its native event JSON or Dialogue
//! JSON (what the platform's end-of-dialogue consumers read), with `otlp_json` an OTLP/JSON
//! logs request holding only it. Messages are packed ten to a request (SQS's limit) within
//! the byte limits (256 KiB for a message and for a request, SQS's documented defaults;
//! settings because queues may allow more).
//!
//! **FIFO queues** (the URL ends in `.fifo`): a message's group is the `message_group_id`
//! attribute of its record (default the dialogue id, so one call's messages stay in order),
//! and its deduplication id names what it is: `dialogueId:revision:kind` for a dialogue
//! record, the event id for an event, else a hash of the body. A retried message is so
//! dropped by SQS as a duplicate within its five-minute window, not delivered twice. SQS
//! keeps a group in the order messages were sent; the host sends batches from
//! `sending_queue.num_consumers` workers at once, and requests that reach a receiver at once
//! are applied and emitted in either order, so a consumer takes a dialogue's highest
//! `revision` as its newest (set `num_consumers: 1` for sends in queue order).
//!
//! **Failures.** Only the entries a reply lists as failed are retried, and only when SQS
//! does not blame the sender (`SenderFault: false`); an entry the sender is at fault for (an
//! invalid body, say) is refused for good and dead-lettered with SQS's code and message. A
//! request-level error retries the whole request (a missing queue or a denied permission can
//! be fixed meanwhile), except an invalid request, whose messages are refused.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::voice::attr;
use lumina_sdk::{Batch, Signal};
use sha2::Digest;

use crate::aws::pack::{Limits, Reply, requests, send_all};
use crate::aws::voice_json::{Record, VoiceRecord, records};

pub use config::{SqsConfig, SqsEncoding, SqsLimits};

/// An `sqs` exporter.
pub struct SqsExporter {
    client: aws_sdk_sqs::Client,
    cfg: SqsConfig,
    fifo: bool,
}

/// One message's body and ids.
struct Body {
    body: String,
    group: Option<String>,
    dedup: Option<String>,
}

/// A message and the record it carries.
type Message = (Body, Batch);

/// The most characters of a group or deduplication id.
const MAX_ID_CHARS: usize = 128;

/// Keeps the characters SQS allows in a group or deduplication id (alphanumerics and ASCII
/// punctuation), at most 128 of them.
fn fifo_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation())
        .take(MAX_ID_CHARS)
        .collect()
}

/// Whether a request-level error code means the request itself is invalid.
fn invalid_request(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
                | "AWS.SimpleQueueService.BatchRequestTooLong"
                | "AWS.SimpleQueueService.EmptyBatchRequest"
                | "AWS.SimpleQueueService.InvalidBatchEntryId"
                | "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
                | "BatchEntryIdsNotDistinct"
                | "BatchRequestTooLong"
                | "EmptyBatchRequest"
                | "InvalidBatchEntryId"
                | "TooManyEntriesInBatchRequest"
                | "InvalidParameterValue"
                | "MissingParameter"
                | "ValidationError"
        )
    )
}

impl SqsExporter {
    /// An exporter over `client`.
    pub fn new(client: aws_sdk_sqs::Client, cfg: SqsConfig) -> Self {
        let fifo = cfg.queue_url.ends_with(".fifo");
        Self { client, cfg, fifo }
    }

    fn message(&self, r: Record) -> Result<Message, Rejected> {
        let (body, voice) = match self.cfg.encoding {
            SqsEncoding::VoiceJson => match r.voice() {
                Ok(v) => (v.to_json().to_string(), Some(v)),
                Err(why) => return Err(Rejected::new(r.batch, why)),
            },
            SqsEncoding::OtlpJson => match r.batch.encode_json() {
                Ok(b) => (String::from_utf8_lossy(&b).into_owned(), r.voice().ok()),
                Err(e) => return Err(Rejected::new(r.batch, format!("cannot encode: {e}"))),
            },
        };
        let (group, dedup) = if self.fifo {
            let group = r
                .attr(&self.cfg.message_group_id)
                .map(|g| fifo_id(&g))
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "lumina".to_owned());
            let dedup = match &voice {
                Some(VoiceRecord::Dialogue(kind, d)) => {
                    format!("{}:{}:{}", d.dialogue_id, d.revision, kind.event_name())
                }
                Some(VoiceRecord::Event(e)) => e.event_id.clone(),
                None => format!("{:x}", sha2::Sha256::digest(body.as_bytes())),
            };
            (Some(group), Some(fifo_id(&dedup)))
        } else {
            (None, None)
        };
        Ok((Body { body, group, dedup }, r.batch))
    }

    fn limits(&self) -> Limits {
        let l = &self.cfg.limits;
        Limits {
            max_entries: l.max_messages_per_request,
            max_entry: l.max_message_bytes.as_usize(),
            max_request: l.max_request_bytes.as_usize(),
        }
    }

    /// Sends one request; says which messages to retry and which SQS refused, and why.
    async fn send(&self, messages: Vec<Body>) -> Result<Reply, ExportError> {
        let n = messages.len();
        let mut entries = Vec::with_capacity(n);
        for (i, m) in messages.into_iter().enumerate() {
            let e = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.body)
                .set_message_group_id(m.group)
                .set_message_deduplication_id(m.dedup)
                .build()
                .map_err(|e| ExportError::permanent(format!("cannot build the request: {e}")))?;
            entries.push(e);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.cfg.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                let (code, msg) = crate::aws::sdk_error("SendMessageBatch failed", &e);
                if invalid_request(code.as_deref()) {
                    ExportError::permanent(msg)
                } else {
                    ExportError::retryable(msg)
                }
            })?;
        let mut reply = Reply::default();
        let mut answered = vec![false; n];
        for s in out.successful() {
            if let Some(a) = s
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| answered.get_mut(i))
            {
                *a = true;
            }
        }
        for f in out.failed() {
            let Some(i) = f.id().parse::<usize>().ok().filter(|i| *i < n) else {
                continue;
            };
            answered[i] = true;
            let why = format!("{}: {}", f.code(), f.message().unwrap_or_default());
            if f.sender_fault() {
                reply.refused.push((i, why));
            } else {
                reply.retry.push((i, why));
            }
        }
        // An entry the reply names neither as sent nor as failed is sent again.
        for (i, _) in answered.iter().enumerate().filter(|(_, a)| !**a) {
            reply
                .retry
                .push((i, "the reply did not mention the message".to_owned()));
        }
        Ok(reply)
    }
}

#[async_trait]
impl Exporter for SqsExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let mut rejected = Vec::new();
        let mut messages = Vec::new();
        for r in records(batch) {
            match self.message(r) {
                Ok(m) => messages.push(m),
                Err(r) => rejected.push(r),
            }
        }
        let limit = self.cfg.limits.max_message_bytes.bytes();
        let packed = requests(
            messages,
            |(m, _)| m.body.len(),
            self.limits(),
            |(_, b), n| {
                rejected.push(Rejected::new(
                    b,
                    format!("the message is {n} bytes, over the {limit}-byte limit"),
                ));
            },
        );
        send_all("message", Signal::Logs, packed, rejected, |m| self.send(m)).await
    }
}

#[async_trait]
impl ExporterConfig for SqsConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "sqs",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Sends each log record as an SQS message (SendMessageBatch, per-message retry, FIFO groups and deduplication).",
        )
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let sdk = self.aws().load().await;
        let client = aws_sdk_sqs::Client::new(&sdk);
        Some(
            match client
                .get_queue_attributes()
                .queue_url(&self.queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
            {
                Ok(_) => Ok(format!("queue `{}` exists", self.queue_url)),
                Err(e) => Err(crate::aws::sdk_error(
                    &format!("cannot reach queue `{}`", self.queue_url),
                    &e,
                )
                .1),
            },
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let sdk = self.aws().load().await;
        Ok(Arc::new(SqsExporter::new(
            aws_sdk_sqs::Client::new(&sdk),
            self,
        )))
    }
}

/// The default group attribute.
pub(crate) fn default_group() -> String {
    attr::DIALOGUE_ID.to_owned()
}
