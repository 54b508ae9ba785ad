//! Settings of the `sqs` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;

/// What a message's body is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SqsEncoding {
    /// The native event JSON of a voice event, the Dialogue JSON of a dialogue record.
    #[default]
    VoiceJson,
    /// An OTLP/JSON logs request holding the one record.
    OtlpJson,
}

/// `SendMessageBatch` limits: SQS documents 10 messages a request and 256 KiB for a message
/// and for a request by default; they are settings because a queue may allow more.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqsLimits {
    /// Messages per request. Default 10.
    pub max_messages_per_request: usize,
    /// Bytes of one message body. Default 256KiB.
    pub max_message_bytes: ByteSize,
    /// Bytes of the bodies of one request. Default 256KiB.
    pub max_request_bytes: ByteSize,
}

impl Default for SqsLimits {
    fn default() -> Self {
        Self {
            max_messages_per_request: 10,
            max_message_bytes: ByteSize::kib(256),
            max_request_bytes: ByteSize::kib(256),
        }
    }
}

/// Settings of the `sqs` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqsConfig {
    /// The queue's URL (a FIFO queue's ends in `.fifo`).
    pub queue_url: String,
    /// `voice_json` (default) or `otlp_json`.
    pub encoding: SqsEncoding,
    /// FIFO queues: the attribute (of the record, else its resource) naming a message's
    /// group. Default `voice.dialogue.id`.
    pub message_group_id: String,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// Request packing limits.
    pub limits: SqsLimits,
}

impl Default for SqsConfig {
    fn default() -> Self {
        Self {
            queue_url: String::new(),
            encoding: SqsEncoding::default(),
            message_group_id: super::default_group(),
            region: None,
            endpoint: None,
            limits: SqsLimits::default(),
        }
    }
}

impl SqsConfig {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Validate for SqsConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if !(self.queue_url.starts_with("https://") || self.queue_url.starts_with("http://")) {
            errors.push(ConfigError::new(
                ConfigPath::parse("queue_url"),
                "must be the queue's URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
            ));
        }
        if self.message_group_id.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("message_group_id"),
                "must name an attribute",
            ));
        }
        let l = &self.limits;
        crate::aws::pack::check(
            &mut errors,
            [
                "max_messages_per_request",
                "max_message_bytes",
                "max_request_bytes",
            ],
            Some(10),
            (
                l.max_messages_per_request,
                l.max_message_bytes.bytes(),
                l.max_request_bytes.bytes(),
            ),
        );
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}
