//! The `otlp` exporter: OTLP/gRPC to another collector or backend.
//!
//! Batches are encoded straight from the shared [`Batch`] into the request body (a codec over
//! pre-encoded bytes), so a retry never deep-copies the batch.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Stability,
};
use lumina_sdk::config::{self, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Validate};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceResponse;
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::common::compression::Compression;
use crate::common::grpc_codec::BytesCodec;
use crate::common::status::grpc_retry;
use crate::common::tls::TlsClientConfig;

/// The `otlp` exporter's settings (the OpenTelemetry Collector's keys).
///
/// ```yaml
/// exporters:
///   otlp:
///     endpoint: collector.example:4317
///     tls: { insecure: true }
///     compression: gzip
/// ```
#[derive(Debug, Clone, Deserialize)]
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
    fn uri(&self) -> (String, bool) {
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

/// Makes `otlp` exporters.
pub struct OtlpExporterFactory;

#[async_trait]
impl ExporterFactory for OtlpExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "otlp",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Sends OTLP over gRPC.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<OtlpExporterConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<std::sync::Arc<dyn Exporter>, ComponentError> {
        let cfg: OtlpExporterConfig = config::parse(config)?;
        let (uri, tls) = cfg.uri();
        let mut endpoint = Channel::from_shared(uri.clone())
            .map_err(|e| ComponentError::Other(format!("invalid endpoint `{uri}`: {e}")))?
            .tcp_nodelay(true);
        if tls {
            let mut t = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &cfg.tls.ca_file {
                t = t.ca_certificate(Certificate::from_pem(TlsClientConfig::read(ca, "CA file")?));
            }
            if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
                t = t.identity(Identity::from_pem(
                    TlsClientConfig::read(c, "certificate")?,
                    TlsClientConfig::read(k, "key")?,
                ));
            }
            if let Some(name) = &cfg.tls.server_name_override {
                t = t.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(t)
                .map_err(|e| ComponentError::Other(format!("TLS setup failed: {e}")))?;
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = MetadataKey::from_str(k)
                .map_err(|e| ComponentError::Other(format!("invalid header `{k}`: {e}")))?;
            let value = MetadataValue::from_str(v).map_err(|e| {
                ComponentError::Other(format!("invalid value for header `{k}`: {e}"))
            })?;
            metadata.insert(key, value);
        }
        let compression = match cfg.compression {
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
            _ => None,
        };
        // Connect lazily: a destination that is down at start-up is retried like any other
        // failure instead of stopping the collector.
        let channel = endpoint.connect_lazy();
        Ok(std::sync::Arc::new(OtlpExporter {
            channel,
            metadata,
            compression,
            telemetry: ctx.telemetry,
            partial_log: RateLimit::per_10s(),
        }))
    }
}

/// An `otlp` exporter.
pub struct OtlpExporter {
    channel: Channel,
    metadata: MetadataMap,
    compression: Option<CompressionEncoding>,
    telemetry: ComponentTelemetry,
    partial_log: RateLimit,
}

impl OtlpExporter {
    /// Logs and counts items the destination said it rejected (they are not retried: the
    /// OTLP specification makes partial rejections permanent).
    fn rejected(&self, signal: Signal, count: i64, message: &str) {
        if count <= 0 && message.is_empty() {
            return;
        }
        if count > 0 {
            self.telemetry
                .counter(
                    names::EXPORTER_FAILED,
                    &[
                        ("signal", signal.to_string()),
                        ("reason", "rejected_by_destination".into()),
                    ],
                )
                .increment(count as u64);
        }
        if let Some(suppressed) = self.partial_log.check() {
            tracing::warn!(component = %self.telemetry.id(), %signal, rejected = count, suppressed_since_last_log = suppressed,
                "The destination accepted the batch only in part: {message}");
        }
    }
}

#[async_trait]
impl Exporter for OtlpExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let signal = batch.signal();
        let body = bytes::Bytes::from(batch.encode_protobuf());
        let path = match signal {
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        };
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        if let Some(c) = self.compression {
            grpc = grpc.send_compressed(c).accept_compressed(c);
        }
        grpc.ready()
            .await
            .map_err(|e| ExportError::retryable(format!("cannot connect: {e}")))?;
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let path = http::uri::PathAndQuery::from_static(path);
        let status_to_error = |s: tonic::Status| {
            let (retryable, delay) = grpc_retry(&s);
            let msg = format!("the destination answered {:?}: {}", s.code(), s.message());
            let e = if retryable {
                ExportError::retryable(msg)
            } else {
                ExportError::permanent(msg)
            };
            e.with_retry_after(delay)
        };
        match signal {
            Signal::Logs => {
                let r: ExportLogsServiceResponse = grpc
                    .unary(request, path, BytesCodec::default())
                    .await
                    .map_err(status_to_error)?
                    .into_inner();
                if let Some(p) = r.partial_success {
                    self.rejected(signal, p.rejected_log_records, &p.error_message);
                }
            }
            Signal::Traces => {
                let r: ExportTraceServiceResponse = grpc
                    .unary(request, path, BytesCodec::default())
                    .await
                    .map_err(status_to_error)?
                    .into_inner();
                if let Some(p) = r.partial_success {
                    self.rejected(signal, p.rejected_spans, &p.error_message);
                }
            }
            Signal::Metrics => {
                let r: ExportMetricsServiceResponse = grpc
                    .unary(request, path, BytesCodec::default())
                    .await
                    .map_err(status_to_error)?
                    .into_inner();
                if let Some(p) = r.partial_success {
                    self.rejected(signal, p.rejected_data_points, &p.error_message);
                }
            }
        }
        Ok(())
    }
}
