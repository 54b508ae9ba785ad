//! Settings of the `firehose` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;

/// How records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirehoseEncoding {
    /// An OTLP/JSON request per Firehose record, ending in a newline.
    #[default]
    OtlpJson,
    /// The voice JSON of each log record, a line each (logs only).
    VoiceJson,
    /// An OTLP protobuf request per Firehose record.
    OtlpProto,
}

/// `PutRecordBatch` limits. AWS documents 500 records, 1,000 KiB a record and 4 MiB a
/// request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirehoseLimits {
    /// Records per request. Default 500.
    pub max_records_per_request: usize,
    /// Bytes of one record. Default 1000KiB.
    pub max_record_bytes: ByteSize,
    /// Bytes of one request. Default 4MiB.
    pub max_request_bytes: ByteSize,
}

impl Default for FirehoseLimits {
    fn default() -> Self {
        Self {
            max_records_per_request: 500,
            max_record_bytes: ByteSize::kib(1000),
            max_request_bytes: ByteSize::mib(4),
        }
    }
}

/// Settings of the `firehose` exporter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirehoseConfig {
    /// The delivery stream's name.
    pub delivery_stream: String,
    /// `otlp_json` (default), `voice_json` or `otlp_proto`.
    pub encoding: FirehoseEncoding,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// Request packing limits.
    pub limits: FirehoseLimits,
}

impl FirehoseConfig {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Validate for FirehoseConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.delivery_stream.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("delivery_stream"),
                "must name a delivery stream",
            ));
        }
        let l = &self.limits;
        let lp = ConfigPath::parse("limits");
        if !(1..=500).contains(&l.max_records_per_request) {
            errors.push(ConfigError::new(
                lp.key("max_records_per_request"),
                "must be from 1 to 500 (PutRecordBatch takes at most 500 records)",
            ));
        }
        if l.max_record_bytes.bytes() == 0 {
            errors.push(ConfigError::new(
                lp.key("max_record_bytes"),
                "must be more than 0",
            ));
        }
        if l.max_request_bytes.bytes() < l.max_record_bytes.bytes() {
            errors.push(ConfigError::new(
                lp.key("max_request_bytes"),
                "must be at least `max_record_bytes`",
            ));
        }
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}
