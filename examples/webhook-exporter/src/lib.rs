//! `webhook-exporter`: POSTs every batch as OTLP/JSON to a URL. Built for WebAssembly, it
//! cannot open sockets itself: it asks the host, which only reaches the `host:port`s the
//! operator listed under `allow.http`.
//!
//! ```yaml
//! exporters:
//!   wasm/webhook:
//!     path: webhook_exporter.wasm
//!     allow: { http: ["hooks.example:443"] }
//!     config:
//!       url: https://hooks.example/lumina
//!       headers: { x-api-key: "${env:HOOK_KEY}" }
//! ```
//!
//! A 2xx reply is success; 408, 429 and 5xx, a timeout or an unreachable host are retryable;
//! any other reply, or a denied host, is permanent.

use std::collections::BTreeMap;

use lumina_sdk::Batch;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use lumina_sdk::plugin::http::{self, HttpError};
use lumina_sdk::plugin::{ConfigProblem, ExporterPlugin, PluginError, host, parse_config};
use serde::Deserialize;

/// The plugin's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL batches are POSTed to.
    pub url: String,
    /// Headers added to every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Validate for WebhookConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::new(
                ConfigPath::parse("url"),
                format!("`{}` is not an http:// or https:// URL", self.url),
            )
            .into());
        }
        Ok(())
    }
}

/// The exporter.
pub struct WebhookExporter {
    cfg: WebhookConfig,
}

impl ExporterPlugin for WebhookExporter {
    const NAME: &'static str = "webhook-exporter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
        Ok(Self {
            cfg: parse_config(config)?,
        })
    }

    fn export(&mut self, batch: &Batch) -> Result<(), PluginError> {
        let body = batch
            .encode_json()
            .map_err(|e| PluginError::Permanent(format!("cannot encode the batch: {e}")))?;
        let mut headers: Vec<(String, String)> = self
            .cfg
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        let request = http::Request {
            method: "POST".into(),
            url: self.cfg.url.clone(),
            headers,
            body,
        };
        match http::send(request) {
            Ok(r) if (200..300).contains(&r.status) => {
                host::counter_add("webhook_posts", 1);
                Ok(())
            }
            Ok(r) if matches!(r.status, 408 | 429) || r.status >= 500 => Err(
                PluginError::Retryable(format!("the webhook answered {}", r.status)),
            ),
            Ok(r) => Err(PluginError::Permanent(format!(
                "the webhook answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ))),
            Err(HttpError::Timeout) => Err(PluginError::Retryable(
                "the webhook did not answer in time".into(),
            )),
            Err(HttpError::Unreachable(m)) => Err(PluginError::Retryable(format!(
                "the webhook is unreachable: {m}"
            ))),
            Err(e @ (HttpError::Denied(_) | HttpError::Invalid(_))) => {
                Err(PluginError::Permanent(e.to_string()))
            }
        }
    }
}

lumina_sdk::export_exporter!(WebhookExporter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_an_http_url() {
        let Err(p) = WebhookExporter::init("{\"url\": \"ftp://x\"}") else {
            panic!()
        };
        assert_eq!(p[0].path, "url");
        let Err(p) = WebhookExporter::init("") else {
            panic!()
        };
        assert!(p[0].message.contains("missing required key `url`"), "{p:?}");
        assert!(WebhookExporter::init("{\"url\": \"http://127.0.0.1:9/x\"}").is_ok());
    }
}
