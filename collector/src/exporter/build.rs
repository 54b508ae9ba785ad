//! Building exporters: each exporter from its config, behind its own sending queue with its
//! dead-letter sink. The pipeline graph builds every exporter a plan uses; `lumina dlq replay`
//! builds the ones its letters name; both through [`queued`].

use std::collections::BTreeMap;
use std::sync::Arc;

use lumina_sdk::component::{ComponentError, ComponentId, Registry};

use super::dead_letter::DeadLetters;
use super::durable::DurableStore;
use super::settings::{ExporterSettings, Fsync};
use super::status::OutagePolicy;
use super::{QueuedExporter, create};
use crate::config::Plan;
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

/// Creates every exporter the pipelines use and every exporter that serves as another's
/// dead-letter sink; the sinks first, so the exporters that feed them can be wired to them.
/// An error names the exporter that could not be built.
pub async fn all(
    plan: &Plan,
    registry: &Registry,
) -> Result<BTreeMap<ComponentId, Arc<QueuedExporter>>, (ComponentId, ComponentError)> {
    let mut wanted: Vec<&ComponentId> = Vec::new();
    for id in plan.pipelines.iter().flat_map(|p| &p.exporters) {
        if let Some(e) = plan.exporters.get(id) {
            wanted.push(id);
            if let Some(target) = &e.dead_letter {
                wanted.push(target);
            }
        }
    }
    // Exporters with a file sink first: dead-letter exporters always have one (validation
    // refuses chains), so they exist before the exporters that point at them.
    wanted.sort_by_key(|id| (plan.exporters[*id].dead_letter.is_some(), *id));
    wanted.dedup();
    let t = &plan.service.telemetry;
    let policy = OutagePolicy {
        summary_every: t.logs.outage_summary_interval.get(),
        degraded_after: t.health.degraded_after.get(),
    };
    let mut exporters: BTreeMap<ComponentId, Arc<QueuedExporter>> = BTreeMap::new();
    for id in wanted {
        let e = &plan.exporters[id];
        let file = e.settings.dead_letter.file_for(id);
        let dead_letters = match &e.dead_letter {
            None => DeadLetters::file(id, file),
            Some(target) => {
                let consumer = exporters.get(target).cloned().ok_or_else(|| {
                    (
                        id.clone(),
                        ComponentError::Other(format!(
                            "its dead-letter exporter `{target}` was not built"
                        )),
                    )
                })?;
                DeadLetters::exporter(id, target.clone(), consumer, file)
            }
        };
        let q = queued(registry, id, e, e.settings.clone(), dead_letters, policy)
            .await
            .map_err(|err| (id.clone(), err))?;
        exporters.insert(id.clone(), q);
    }
    Ok(exporters)
}
