//! Settings of the `otlp` exporter.

use std::collections::BTreeMap;
use std::str::FromStr;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;
use tonic::metadata::MetadataKey;

use lumina_net::compression::Compression;
use lumina_net::tls::TlsClientConfig;

/// The `otlp` exporter's settings (the OpenTelemetry Collector's keys).
///
/// ```yaml
/// exporters:
///   otlp:
///     endpoint: collector.example:4317
///     tls: { insecure: true }
///     compression: gzip
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// `host:port`, or a URL with `http://` (plain text) or `https://` (TLS).
    pub endpoint: String,
    /// TLS settings; TLS is on unless `insecure: true` or the endpoint is `http://`.
    #[serde(default)]
    pub tls: TlsClientConfig,
    /// Request compression: `gzip` (default), `zstd` or `none`.
    #[serde(default = "default_compression")]
    pub compression: Compression,
    /// Headers (gRPC metadata) sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_compression() -> Compression {
    Compression::Gzip
}

impl OtlpExporterConfig {
    /// The endpoint as a URI, and whether it uses TLS.
    pub(crate) fn uri(&self) -> (String, bool) {
        if self.endpoint.starts_with("http://") {
            (self.endpoint.clone(), false)
        } else if self.endpoint.starts_with("https://") {
            (self.endpoint.clone(), true)
        } else if self.tls.insecure {
            (format!("http://{}", self.endpoint), false)
        } else {
            (format!("https://{}", self.endpoint), true)
        }
    }
}

impl Validate for OtlpExporterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let (uri, _) = self.uri();
        if self.endpoint.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("endpoint"),
                "must not be empty",
            ));
        } else if let Err(e) = http::Uri::from_str(&uri) {
            errors.push(ConfigError::new(
                ConfigPath::parse("endpoint"),
                format!("invalid endpoint `{}`: {e}", self.endpoint),
            ));
        }
        if self.compression == Compression::Deflate {
            errors.push(ConfigError::new(
                ConfigPath::parse("compression"),
                "gRPC supports `gzip`, `zstd` or `none`",
            ));
        }
        if self.tls.insecure_skip_verify {
            errors.push(ConfigError::new(
                ConfigPath::parse("tls.insecure_skip_verify"),
                "not supported for gRPC; trust the server's CA with `ca_file` instead",
            ));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("tls"),
                "`cert_file` and `key_file` go together",
            ));
        }
        for k in self.headers.keys() {
            if MetadataKey::<tonic::metadata::Ascii>::from_str(k).is_err() {
                errors.push(ConfigError::new(
                    ConfigPath::parse("headers").key(k.clone()),
                    format!("`{k}` is not a valid header name"),
                ));
            }
        }
        errors.into_result(())
    }
}
