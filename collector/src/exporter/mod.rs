//! The host side of exporters: the settings every exporter shares and its sending queue.

pub mod build;
pub mod dead_letter;
pub mod durable;
pub mod queue;
pub mod settings;
pub mod status;

pub use queue::QueuedExporter;
pub use settings::ExporterSettings;

/// Creates exporter `id` from its (host-key-free) config, with its telemetry handle.
pub async fn create(
    registry: &lumina_sdk::component::Registry,
    id: &lumina_sdk::component::ComponentId,
    config: &lumina_sdk::config::ConfigValue,
) -> Result<
    (
        std::sync::Arc<dyn lumina_sdk::component::Exporter>,
        lumina_sdk::telemetry::ComponentTelemetry,
    ),
    lumina_sdk::component::ComponentError,
> {
    use lumina_sdk::component::{ComponentError, ComponentKind, CreateContext};
    let factory = registry.exporter(id.type_name()).ok_or_else(|| {
        ComponentError::Other(format!(
            "no exporter type `{}` is registered",
            id.type_name()
        ))
    })?;
    use tracing::Instrument;
    let ctx = CreateContext::new(id.clone(), ComponentKind::Exporter);
    let telemetry = ctx.telemetry.clone();
    // Logs of what it sets up (credential providers, clients) name the exporter.
    let span = tracing::warn_span!("exporter", component = %id);
    Ok((
        factory.create(config, ctx).instrument(span).await?,
        telemetry,
    ))
}

/// An exporter's id as a file name (without extension): `kinesis/eu-west-1` →
/// `kinesis_eu-west-1`.
pub fn file_stem(exporter: &lumina_sdk::component::ComponentId) -> String {
    lumina_sdk::util::file_stem(&exporter.to_string())
}
