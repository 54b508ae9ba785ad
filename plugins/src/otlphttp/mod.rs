//! The `otlphttp` exporter: OTLP over HTTP, protobuf or JSON.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Stability,
};
use lumina_sdk::{Batch, Signal};

use lumina_net::compression::Compression;
use lumina_net::partial::PartialSuccess;
use lumina_net::status::{http_retryable, parse_retry_after};
use lumina_net::tls::http_client;

pub use config::{HttpEncoding, OtlpHttpExporterConfig};

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
            // The answer may be a partial success: some items refused (OTLP/HTTP answers in
            // the request's encoding).
            let json = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map_or(self.encoding == HttpEncoding::Json, |ct| {
                    ct.starts_with("application/json")
                });
            let body = resp.bytes().await.unwrap_or_default();
            let partial = if json {
                PartialSuccess::from_json(signal, &body)
            } else {
                PartialSuccess::from_protobuf(signal, &body)
            };
            return match partial {
                Some(p) => p.outcome(batch, url),
                None => {
                    tracing::debug!(%url, "The destination's 2xx answer is not an OTLP response; taking it as a full success.");
                    Ok(())
                }
            };
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

#[async_trait]
impl ExporterConfig for OtlpHttpExporterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "otlphttp",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Sends OTLP over HTTP (protobuf or JSON).",
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
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
