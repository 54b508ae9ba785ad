//! Settings of the `otlphttp` exporter.

use std::collections::BTreeMap;

use lumina_sdk::Signal;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use lumina_net::compression::Compression;
use lumina_net::tls::TlsClientConfig;

/// How request bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpEncoding {
    /// Binary protobuf (`application/x-protobuf`).
    #[default]
    Proto,
    /// OTLP/JSON (`application/json`).
    Json,
}

/// The `otlphttp` exporter's settings (the OpenTelemetry Collector's keys).
///
/// ```yaml
/// exporters:
///   otlphttp:
///     endpoint: http://collector.example:4318   # /v1/logs etc. are appended
///     encoding: json
/// ```
#[derive(Debug, Clone, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpHttpExporterConfig {
    /// Base URL; `/v1/logs`, `/v1/traces` and `/v1/metrics` are appended per signal.
    pub endpoint: Option<String>,
    /// Full URL for logs (overrides `endpoint` for logs).
    pub logs_endpoint: Option<String>,
    /// Full URL for traces.
    pub traces_endpoint: Option<String>,
    /// Full URL for metrics.
    pub metrics_endpoint: Option<String>,
    /// `proto` (default) or `json`.
    pub encoding: HttpEncoding,
    /// Request compression: `gzip` (default), `zstd`, `deflate` or `none`.
    pub compression: Option<Compression>,
    /// Headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// TLS settings for `https://` URLs.
    pub tls: TlsClientConfig,
}

impl OtlpHttpExporterConfig {
    pub(crate) fn url(&self, signal: Signal) -> Option<String> {
        let specific = match signal {
            Signal::Logs => &self.logs_endpoint,
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
        };
        specific.clone().or_else(|| {
            self.endpoint
                .as_ref()
                .map(|base| format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str()))
        })
    }
}

impl Validate for OtlpHttpExporterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.endpoint.is_none() && Signal::ALL.iter().all(|s| self.url(*s).is_none()) {
            errors.push(ConfigError::new(ConfigPath::root().key("endpoint"), "an endpoint is required").with_hint("set `endpoint` or a per-signal `logs_endpoint`/`traces_endpoint`/`metrics_endpoint`"));
        }
        let named = [
            ("endpoint", &self.endpoint),
            ("logs_endpoint", &self.logs_endpoint),
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
        ];
        for (key, url) in named {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                errors.push(ConfigError::new(
                    ConfigPath::root().key(key),
                    format!("`{u}` must be an http:// or https:// URL"),
                ));
            }
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("tls"),
                "`cert_file` and `key_file` go together",
            ));
        }
        errors.into_result(())
    }
}
