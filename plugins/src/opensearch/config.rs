//! Settings of the `opensearch` exporter.

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::aws::AwsSettings;
use lumina_net::tls::TlsClientConfig;

/// How dialogue documents are versioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// The revision is the external version: older revisions cannot replace newer ones.
    #[default]
    External,
    /// Last write wins (OpenSearch Serverless).
    None,
}

/// Basic authentication.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password (use `${env:VAR}`; `print-config` redacts it).
    pub password: String,
}

/// The SigV4 service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SigV4Service {
    /// Amazon OpenSearch Service domains.
    #[default]
    Es,
    /// OpenSearch Serverless collections.
    Aoss,
}

/// AWS SigV4 signing.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SigV4Auth {
    /// `es` (default) or `aoss`.
    pub service: SigV4Service,
}

/// How requests authenticate.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OpenSearchAuth {
    /// HTTP basic authentication.
    pub basic: Option<BasicAuth>,
    /// AWS SigV4 with the standard credential chain.
    pub sigv4: Option<SigV4Auth>,
}

/// Settings of the `opensearch` exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OpenSearchConfig {
    /// Base URLs of the cluster; requests go to the first that answers.
    pub endpoints: Vec<String>,
    /// An Amazon OpenSearch Service domain whose endpoint is looked up instead.
    pub domain: Option<String>,
    /// The index of dialogue documents. Default `dialogues`.
    pub dialogues_index: String,
    /// The prefix of the daily event indices. Default `voice-events`.
    pub events_index: String,
    /// `external` (default) or `none`.
    pub dialogue_versioning: Versioning,
    /// Authentication.
    pub auth: OpenSearchAuth,
    /// The AWS region (SigV4 and `domain`).
    pub region: Option<String>,
    /// An AWS API endpoint for the `domain` lookup.
    pub aws_endpoint: Option<String>,
    /// The largest `_bulk` body. Default 5MiB.
    pub max_bulk_bytes: ByteSize,
    /// TLS settings.
    pub tls: TlsClientConfig,
}

impl Default for OpenSearchConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            domain: None,
            dialogues_index: "dialogues".into(),
            events_index: "voice-events".into(),
            dialogue_versioning: Versioning::default(),
            auth: OpenSearchAuth::default(),
            region: None,
            aws_endpoint: None,
            max_bulk_bytes: ByteSize::mib(5),
            tls: TlsClientConfig::default(),
        }
    }
}

impl OpenSearchConfig {
    pub(crate) fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.aws_endpoint.clone(),
        }
    }
}

impl Validate for OpenSearchConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.endpoints.is_empty() == self.domain.is_none() {
            errors.push(ConfigError::new(
                ConfigPath::parse("endpoints"),
                "give `endpoints` or `domain` (exactly one)",
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                errors.push(ConfigError::new(
                    ConfigPath::parse("endpoints").index(i),
                    format!("`{e}` must be an http:// or https:// URL"),
                ));
            }
        }
        for (key, v) in [
            ("dialogues_index", &self.dialogues_index),
            ("events_index", &self.events_index),
        ] {
            if v.is_empty()
                || v.starts_with(['_', '-', '+'])
                || v.chars()
                    .any(|c| c.is_ascii_uppercase() || " ,\"*\\<|>/?#:".contains(c))
            {
                errors.push(ConfigError::new(
                    ConfigPath::parse(key),
                    format!("`{v}` is not a valid index name (lowercase, no spaces or ,\"*\\<|>/?#:, not starting with _ - +)"),
                ));
            }
        }
        if self.auth.basic.is_some() && self.auth.sigv4.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("auth"),
                "give either `basic` or `sigv4`, not both",
            ));
        }
        if self.max_bulk_bytes.bytes() < 1024 {
            errors.push(ConfigError::new(
                ConfigPath::parse("max_bulk_bytes"),
                "must be at least 1KiB",
            ));
        }
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}
