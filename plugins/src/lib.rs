//! # lumina-plugins
//!
//! Lumina's built-in components, written against `lumina-sdk` exactly as a third party would
//! write theirs: one directory per component type, each a typed config that builds the
//! component (`lumina_sdk::component::typed`). [`register_all`] adds them to a registry.
//!
//! | kind | type | directory | what it does |
//! |---|---|---|---|
//! | receiver | `otlp` | `otlp/` | OTLP over gRPC and HTTP (protobuf, JSON) |
//! | receiver | `gp`, `rt` | `voice_receiver/` | voice events: OTLP logs and native JSON, validated |
//! | receiver | `nop` | `nop/` | nothing (tests, benchmarks) |
//! | receiver | `kinesis` | `kinesis/receiver/` | a Kinesis data stream, shards shared through DynamoDB leases |
//! | processor | `batch` | `batch/` | merges batches by size or time, splits oversized ones |
//! | processor | `filter` | `filter/` | keeps or drops records by a VRL condition |
//! | processor | `transform` | `transform/` | rewrites records with a VRL program |
//! | processor | `redaction` | `redaction/` | masks phone numbers in voice records and spans |
//! | processor | `memory_limiter` | `memory_limiter/` | refuses data retryably while the process is over its memory budget |
//! | processor | `dialogue_assembly` | `dialogue_assembly/` | voice events → Dialogue records, durable state |
//! | exporter | `otlp` | `otlp_exporter/` | OTLP over gRPC |
//! | exporter | `otlphttp` | `otlphttp/` | OTLP over HTTP |
//! | exporter | `debug` | `debug/` | writes to the log or stdout |
//! | exporter | `file` | `file/` | OTLP/JSON lines or length-prefixed protobuf |
//! | exporter | `nop` | `nop/` | discards (tests, benchmarks) |
//! | exporter | `kinesis` | `kinesis/` | log records to a Kinesis data stream |
//! | exporter | `opensearch` | `opensearch/` | dialogues and events into OpenSearch |
//! | exporter | `appsync` | `appsync/` | dialogue updates and events as AppSync mutations |
//! | exporter | `s3` | `s3/` | objects under date partitions (Athena), gzip, multipart |
//! | exporter | `firehose` | `firehose/` | records to a Firehose delivery stream |
//! | exporter | `sqs` | `sqs/` | one message per record (the end-of-dialogue queue), FIFO |
//! | exporter | `prometheus` | `prometheus/` | a scrape endpoint for metrics pipelines |
//! | connector | `forward` | `forward/` | joins pipelines of one signal |
//! | connector | `voice_metrics` | `voice_metrics/` | dialogue records → call metrics |
//! | connector | `region_router` | `region_router/` | each tenant's events → its home region's pipelines |
//!
//! `aws/` is what the AWS components share (credentials, SigV4, the voice JSON encoding);
//! networking shared with the host is in the `lumina-net` crate.

pub mod appsync;
pub mod aws;
pub mod batch;
pub mod debug;
pub mod dialogue_assembly;
pub mod file;
pub mod filter;
pub mod firehose;
pub mod forward;
pub mod kinesis;
pub mod memory_limiter;
pub mod nop;
pub mod opensearch;
pub mod otlp;
pub mod otlp_exporter;
pub mod otlphttp;
pub mod prometheus;
pub mod redaction;
pub mod region_router;
mod remap;
pub mod s3;
pub mod sqs;
pub mod tenants;
#[cfg(test)]
mod test_metrics;
pub mod transform;
pub mod voice_metrics;
pub mod voice_receiver;

use lumina_sdk::component::{DuplicateType, Registry, connector, exporter, processor, receiver};

/// Registers every built-in component.
pub fn register_all(registry: &mut Registry) -> Result<(), DuplicateType> {
    registry.add_receiver(receiver::<otlp::OtlpReceiverConfig>())?;
    registry.add_receiver(receiver::<nop::NopConfig>())?;
    registry.add_receiver(receiver::<voice_receiver::GpReceiverConfig>())?;
    registry.add_receiver(receiver::<voice_receiver::RtReceiverConfig>())?;
    registry.add_receiver(receiver::<kinesis::receiver::KinesisReceiverConfig>())?;
    registry.add_processor(processor::<batch::BatchConfig>())?;
    registry.add_processor(processor::<memory_limiter::MemoryLimiterConfig>())?;
    registry.add_processor(processor::<dialogue_assembly::AssemblyConfig>())?;
    registry.add_processor(processor::<filter::FilterConfig>())?;
    registry.add_processor(processor::<transform::TransformConfig>())?;
    registry.add_processor(processor::<redaction::RedactionConfig>())?;
    registry.add_exporter(exporter::<otlp_exporter::OtlpExporterConfig>())?;
    registry.add_exporter(exporter::<otlphttp::OtlpHttpExporterConfig>())?;
    registry.add_exporter(exporter::<debug::DebugConfig>())?;
    registry.add_exporter(exporter::<file::FileExporterConfig>())?;
    registry.add_exporter(exporter::<nop::NopConfig>())?;
    registry.add_exporter(exporter::<kinesis::KinesisConfig>())?;
    registry.add_exporter(exporter::<opensearch::OpenSearchConfig>())?;
    registry.add_exporter(exporter::<appsync::AppSyncConfig>())?;
    registry.add_exporter(exporter::<s3::S3Config>())?;
    registry.add_exporter(exporter::<firehose::FirehoseConfig>())?;
    registry.add_exporter(exporter::<sqs::SqsConfig>())?;
    registry.add_exporter(exporter::<prometheus::PrometheusConfig>())?;
    registry.add_connector(connector::<forward::ForwardConfig>())?;
    registry.add_connector(connector::<voice_metrics::VoiceMetricsConfig>())?;
    registry.add_connector(connector::<region_router::RegionRouterConfig>())?;
    Ok(())
}

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
