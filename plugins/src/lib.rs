//! # lumina-plugins
//!
//! Lumina's built-in components, written against `lumina-sdk` exactly as a third party would
//! write theirs. [`register_all`] adds them to a registry.
//!
//! | kind | type | what it does |
//! |---|---|---|
//! | receiver | `otlp` | OTLP over gRPC and HTTP (protobuf, JSON) |
//! | receiver | `nop` | nothing (tests, benchmarks) |
//! | processor | `batch` | merges batches by size or time, splits oversized ones |
//! | processor | `memory_limiter` | refuses data retryably while the process is over its memory budget |
//! | exporter | `otlp` | OTLP over gRPC |
//! | exporter | `otlphttp` | OTLP over HTTP |
//! | exporter | `debug` | writes to the log or stdout |
//! | exporter | `file` | OTLP/JSON lines or length-prefixed protobuf |
//! | exporter | `nop` | discards (tests, benchmarks) |
//! | exporter | `kinesis` | log records to a Kinesis data stream |
//! | exporter | `opensearch` | dialogues and events into OpenSearch |
//! | exporter | `appsync` | dialogue updates and events as AppSync mutations |
//! | connector | `forward` | joins pipelines of one signal |
//! | receiver | `gp`, `rt` | voice events: OTLP logs and native JSON, validated |
//! | processor | `dialogue_assembly` | voice events → Dialogue records, durable state |
//! | connector | `voice_metrics` | dialogue records → call metrics |
//! | connector | `region_router` | each tenant's events → its home region's pipelines |

pub mod aws;
pub mod batch;
pub mod common;
pub mod debug;
pub mod file;
pub mod forward;
pub mod memory_limiter;
pub mod nop;
pub mod otlp;
pub mod otlp_exporter;
pub mod otlphttp;
pub mod voice;

use std::sync::Arc;

use lumina_sdk::component::{DuplicateType, Registry};

/// Registers every built-in component.
pub fn register_all(registry: &mut Registry) -> Result<(), DuplicateType> {
    registry.add_receiver(Arc::new(otlp::OtlpReceiverFactory))?;
    registry.add_receiver(Arc::new(nop::NopReceiverFactory))?;
    registry.add_receiver(Arc::new(voice::receiver::VoiceReceiverFactory::gp()))?;
    registry.add_receiver(Arc::new(voice::receiver::VoiceReceiverFactory::rt()))?;
    registry.add_processor(Arc::new(batch::BatchProcessorFactory))?;
    registry.add_processor(Arc::new(memory_limiter::MemoryLimiterFactory))?;
    registry.add_processor(Arc::new(voice::assembly::AssemblyFactory))?;
    registry.add_exporter(Arc::new(otlp_exporter::OtlpExporterFactory))?;
    registry.add_exporter(Arc::new(otlphttp::OtlpHttpExporterFactory))?;
    registry.add_exporter(Arc::new(debug::DebugExporterFactory))?;
    registry.add_exporter(Arc::new(file::FileExporterFactory))?;
    registry.add_exporter(Arc::new(nop::NopExporterFactory))?;
    registry.add_exporter(Arc::new(aws::kinesis::KinesisExporterFactory))?;
    registry.add_exporter(Arc::new(aws::opensearch::OpenSearchExporterFactory))?;
    registry.add_exporter(Arc::new(aws::appsync::AppSyncExporterFactory))?;
    registry.add_connector(Arc::new(forward::ForwardConnectorFactory))?;
    registry.add_connector(Arc::new(voice::metrics::VoiceMetricsFactory))?;
    registry.add_connector(Arc::new(voice::router::RegionRouterFactory))?;
    Ok(())
}

#[cfg(test)]
mod exporter_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_every_built_in_once() {
        let mut r = Registry::new();
        register_all(&mut r).unwrap();
        assert!(r.receiver("otlp").is_some() && r.exporter("file").is_some());
        assert!(
            register_all(&mut r).is_err(),
            "a second registration of the same types is refused"
        );
    }
}
