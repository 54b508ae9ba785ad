//! Settings of the `kinesis` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use lumina_sdk::voice::attr;
use serde::Deserialize;

use crate::aws::AwsSettings;

/// How records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KinesisEncoding {
    /// The voice JSON: native event JSON or Dialogue JSON, one record per log record.
    #[default]
    VoiceJson,
    /// An OTLP/JSON logs request per partition key.
    OtlpJson,
    /// An OTLP protobuf logs request per partition key.
    OtlpProto,
}

/// `PutRecords` limits. AWS documents 500 records, 1 MiB per record and 5 MiB per request
/// (partition keys included); they are settings because AWS raises them.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisLimits {
    /// Records per request. Default 500.
    pub max_records_per_request: usize,
    /// Data plus partition key of one record. Default 1MiB.
    pub max_record_bytes: ByteSize,
    /// Data plus partition keys of one request. Default 5MiB.
    pub max_request_bytes: ByteSize,
}

impl Default for KinesisLimits {
    fn default() -> Self {
        Self {
            max_records_per_request: 500,
            max_record_bytes: ByteSize::mib(1),
            max_request_bytes: ByteSize::mib(5),
        }
    }
}

/// Settings of the `kinesis` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// The stream's name.
    pub stream_name: Option<String>,
    /// The stream's ARN (instead of its name).
    pub stream_arn: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// The attribute holding the partition key. Default `voice.dialogue.id`.
    pub partition_key: String,
    /// `voice_json` (default), `otlp_json` or `otlp_proto`.
    pub encoding: KinesisEncoding,
    /// Request packing limits.
    pub limits: KinesisLimits,
}

impl Default for KinesisConfig {
    fn default() -> Self {
        Self {
            stream_name: None,
            stream_arn: None,
            region: None,
            endpoint: None,
            partition_key: attr::DIALOGUE_ID.to_owned(),
            encoding: KinesisEncoding::default(),
            limits: KinesisLimits::default(),
        }
    }
}

impl KinesisConfig {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Validate for KinesisConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.stream_name.is_some() == self.stream_arn.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("stream_name"),
                "give exactly one of `stream_name` and `stream_arn`",
            ));
        }
        if self.partition_key.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("partition_key"),
                "must name an attribute",
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
            None,
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
