//! The `otlphttp` exporter: OTLP over HTTP, protobuf or JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Stability,
};
use lumina_sdk::config::{self, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Validate};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;

use crate::common::compression::Compression;
use crate::common::status::{http_retryable, parse_retry_after};
use crate::common::tls::{TlsClientConfig, http_client};

/// How request bodies are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Deserialize, Default)]
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
    fn url(&self, signal: Signal) -> Option<String> {
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

/// Makes `otlphttp` exporters.
pub struct OtlpHttpExporterFactory;

#[async_trait]
impl ExporterFactory for OtlpHttpExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "otlphttp",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Sends OTLP over HTTP (protobuf or JSON).",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<OtlpHttpExporterConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: OtlpHttpExporterConfig = config::parse(config)?;
        let client = http_client(&cfg.tls)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = reqwest::header::HeaderName::try_from(k.as_str())
                .map_err(|e| ComponentError::Other(format!("invalid header `{k}`: {e}")))?;
            let value = reqwest::header::HeaderValue::try_from(v.as_str()).map_err(|e| {
                ComponentError::Other(format!("invalid value for header `{k}`: {e}"))
            })?;
            headers.insert(name, value);
        }
        Ok(Arc::new(OtlpHttpExporter {
            urls: Signal::ALL.map(|s| cfg.url(s)),
            encoding: cfg.encoding,
            compression: cfg.compression.unwrap_or(Compression::Gzip),
            headers,
            client,
        }))
    }
}

/// An `otlphttp` exporter.
pub struct OtlpHttpExporter {
    urls: [Option<String>; 3],
    encoding: HttpEncoding,
    compression: Compression,
    headers: reqwest::header::HeaderMap,
    client: reqwest::Client,
}

#[async_trait]
impl Exporter for OtlpHttpExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let signal = batch.signal();
        let idx = Signal::ALL.iter().position(|s| *s == signal).unwrap_or(0);
        let Some(url) = &self.urls[idx] else {
            return Err(ExportError::permanent(format!(
                "no endpoint is configured for {signal}"
            )));
        };
        let (body, content_type) = match self.encoding {
            HttpEncoding::Proto => (batch.encode_protobuf(), "application/x-protobuf"),
            HttpEncoding::Json => (
                batch.encode_json().map_err(|e| {
                    ExportError::permanent(format!("cannot encode the batch as JSON: {e}"))
                })?,
                "application/json",
            ),
        };
        let body = self
            .compression
            .compress(&body)
            .map_err(|e| ExportError::permanent(format!("cannot compress: {e}")))?;
        let mut req = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if let Some(ce) = self.compression.header_value() {
            req = req.header(reqwest::header::CONTENT_ENCODING, ce);
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::retryable(format!("request to {url} failed: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
        let text = resp.text().await.unwrap_or_default();
        let msg = format!(
            "{url} answered {status}: {}",
            text.chars().take(512).collect::<String>()
        );
        let e = if http_retryable(status) {
            ExportError::retryable(msg)
        } else {
            ExportError::permanent(msg)
        };
        Err(e.with_retry_after(retry_after))
    }
}
