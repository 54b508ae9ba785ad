//! Settings of the `firehose` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;

/// How records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
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
        crate::aws::pack::check(
            &mut errors,
            [
                "max_records_per_request",
                "max_record_bytes",
                "max_request_bytes",
            ],
            Some(500),
            (
                l.max_records_per_request,
                l.max_record_bytes.bytes(),
                l.max_request_bytes.bytes(),
            ),
        );
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}
