//! The `otlp` exporter: OTLP/gRPC to another collector or backend.
//!
//! Batches are encoded straight from the shared [`Batch`] into the request body (a codec over
//! pre-encoded bytes), so a retry never deep-copies the batch.

mod config;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Stability,
};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceResponse;
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit};
use lumina_sdk::{Batch, Signal};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use lumina_net::compression::Compression;
use lumina_net::grpc_codec::BytesCodec;
use lumina_net::partial::PartialSuccess;
use lumina_net::status::grpc_retry;
use lumina_net::tls::TlsClientConfig;

pub use config::OtlpExporterConfig;

/// An `otlp` exporter.
pub struct OtlpExporter {
    channel: Channel,
    metadata: MetadataMap,
    compression: Option<CompressionEncoding>,
    telemetry: ComponentTelemetry,
    partial_log: RateLimit,
}

impl OtlpExporter {
    /// What the destination's partial-success answer means for `batch`: refused items go to
    /// the dead-letter sink (through the queue), a message alone is logged as a warning.
    fn partial(&self, batch: &Batch, p: PartialSuccess) -> Result<(), ExportError> {
        if p.rejected <= 0
            && !p.message.is_empty()
            && let Some(suppressed) = self.partial_log.check()
        {
            tracing::warn!(component = %self.telemetry.id(), signal = %batch.signal(), suppressed_since_last_log = suppressed,
                "The destination took the batch with a warning: {}", p.message);
        }
        p.outcome(batch, "the destination")
    }
}

#[async_trait]
impl Exporter for OtlpExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let signal = batch.signal();
        let body = batch.encoded();
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
                    return self.partial(
                        batch,
                        PartialSuccess {
                            rejected: p.rejected_log_records,
                            message: p.error_message,
                        },
                    );
                }
            }
            Signal::Traces => {
                let r: ExportTraceServiceResponse = grpc
                    .unary(request, path, BytesCodec::default())
                    .await
                    .map_err(status_to_error)?
                    .into_inner();
                if let Some(p) = r.partial_success {
                    return self.partial(
                        batch,
                        PartialSuccess {
                            rejected: p.rejected_spans,
                            message: p.error_message,
                        },
                    );
                }
            }
            Signal::Metrics => {
                let r: ExportMetricsServiceResponse = grpc
                    .unary(request, path, BytesCodec::default())
                    .await
                    .map_err(status_to_error)?
                    .into_inner();
                if let Some(p) = r.partial_success {
                    return self.partial(
                        batch,
                        PartialSuccess {
                            rejected: p.rejected_data_points,
                            message: p.error_message,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ExporterConfig for OtlpExporterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "otlp",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Sends OTLP over gRPC.",
        )
    }

    async fn build(
        self,
        ctx: CreateContext,
    ) -> Result<std::sync::Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
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
