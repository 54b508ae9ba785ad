//! Building exporters: each exporter from its config, behind its own sending queue with its
//! dead-letter sink. The pipeline graph builds every exporter a plan uses (`graph/assemble.rs`);
//! `lumina dlq replay` builds the ones its letters name; both through [`queued`].

use std::sync::Arc;

use lumina_sdk::component::{ComponentError, ComponentId, Registry};

use super::dead_letter::DeadLetters;
use super::durable::DurableStore;
use super::settings::{ExporterSettings, Fsync};
use super::status::OutagePolicy;
use super::{QueuedExporter, create};
use crate::config::validate::ExporterEntry;

/// Exporter `id` of `entry`, created from its config and started behind a queue with
/// `settings` (a durable queue when they keep one on disk) and `dead_letters` as its sink.
pub async fn queued(
    registry: &Registry,
    id: &ComponentId,
    entry: &ExporterEntry,
    settings: ExporterSettings,
    dead_letters: Arc<DeadLetters>,
    policy: OutagePolicy,
) -> Result<Arc<QueuedExporter>, ComponentError> {
    let (exporter, telemetry) = create(registry, id, &entry.entry.config).await?;
    let q = &settings.sending_queue;
    let store = match &q.storage {
        Some(dir) if q.enabled => Some(DurableStore::open(dir, id, q.fsync == Fsync::Always)?),
        _ => None,
    };
    Ok(QueuedExporter::start_watched(
        exporter,
        settings,
        telemetry,
        dead_letters,
        store,
        policy,
    ))
}
