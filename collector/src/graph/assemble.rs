//! Building a graph from a plan, reusing what a [`Pool`] holds of the graph before (a reload)
//! when its settings and wiring are the same.
//!
//! Nothing here changes what runs: new components are created (exporter queues start at
//! once, receivers do not), and the slots that will point at them are listed in the
//! [`Assembly`]'s wiring, for the caller to set.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentId, ComponentKind, ConnectorOutputs, CreateContext, DynConsumer,
    ReceiverOutputs, Registry,
};
use lumina_sdk::telemetry::names;
use tracing::Instrument;

use super::fanout::Fanout;
use super::observe::{Counted, ReceiverOutput};
use super::slot::Slot;
use super::{
    Assembly, BuiltPipeline, ConnectorKey, Graph, GraphError, LiveConnector, LiveExporter,
    LiveProcessor, LiveReceiver, Pool, fail, unknown,
};
use crate::config::Plan;
use crate::config::model::PipelineId;
use crate::exporter::build::queued;
use crate::exporter::dead_letter::DeadLetters;
use crate::exporter::status::OutagePolicy;
use crate::tap::{Direction, Tap, TapPoint};

/// Builds the graph of `plan`, taking from `pool` what it can reuse. With a `sandbox` (a
/// config test), no receiver is built, every exporter is a sink that keeps nothing, and
/// processors and connectors keep their state in the sandbox.
pub(super) async fn assemble(
    plan: &Plan,
    registry: &Registry,
    pool: &mut Pool,
    sandbox: Option<&Path>,
) -> Result<Assembly, GraphError> {
    let mut kept = Vec::new();
    let (exporters, rebuilt) = exporters(plan, registry, pool, &mut kept, sandbox).await?;
    let fresh: Vec<Arc<crate::exporter::QueuedExporter>> = rebuilt
        .iter()
        .filter_map(|id| exporters.get(id).map(|e| e.queue.clone()))
        .collect();
    match around(plan, registry, pool, exporters, kept, sandbox).await {
        Ok(a) => Ok(a),
        Err(e) => {
            // The exporters made for this graph hold nothing yet; stop their queues.
            let now = tokio::time::Instant::now();
            for q in fresh {
                let _ = q.shutdown(now).await;
            }
            Err(e)
        }
    }
}

/// The pipelines, connectors and receivers of `plan` around its `exporters`.
async fn around(
    plan: &Plan,
    registry: &Registry,
    pool: &mut Pool,
    exporters: BTreeMap<ComponentId, LiveExporter>,
    mut kept: Vec<String>,
    sandbox: Option<&Path>,
) -> Result<Assembly, GraphError> {
    let mut wiring: Vec<(Arc<Slot>, DynConsumer)> = Vec::new();

    // Every pipeline's entry slot exists first (kept from before by pipeline id), so
    // connectors and receivers can point at pipelines not built yet.
    let mut entries: BTreeMap<PipelineId, Arc<Slot>> = BTreeMap::new();
    for p in &plan.pipelines {
        let slot = pool.entries.remove(&p.id).unwrap_or_else(Slot::unwired);
        entries.insert(p.id.clone(), slot);
    }

    let mut connectors: BTreeMap<ConnectorKey, LiveConnector> = BTreeMap::new();
    let mut upstreams: BTreeMap<ConnectorKey, Vec<PipelineId>> = BTreeMap::new();
    let mut pipelines = Vec::new();
    for p in plan.pipelines.iter().rev() {
        let signal = p.id.signal;
        let pipeline = p.id.to_string();
        let mut targets: Vec<DynConsumer> = Vec::new();
        for id in &p.exporters {
            if let Some(e) = exporters.get(id) {
                let point = TapPoint::new(
                    id,
                    ComponentKind::Exporter,
                    &pipeline,
                    Direction::Input,
                    signal,
                );
                targets.push(Tap::wrap(e.queue.clone(), point));
                continue;
            }
            let entry = plan
                .connectors
                .get(id)
                .ok_or_else(|| unknown(ComponentKind::Connector, id))?;
            let downstream = plan.downstream_of(id);
            let mut to_signals: Vec<Signal> = downstream.iter().map(|d| d.id.signal).collect();
            to_signals.sort();
            to_signals.dedup();
            for to in to_signals {
                let key = (id.clone(), signal, to);
                upstreams.entry(key.clone()).or_default().push(p.id.clone());
                let input = TapPoint::new(
                    id,
                    ComponentKind::Connector,
                    &pipeline,
                    Direction::Input,
                    signal,
                );
                if let Some(c) = connectors.get(&key) {
                    targets.push(Tap::wrap(c.connector.clone(), input));
                    continue;
                }
                let mut feeds: Vec<PipelineId> = downstream
                    .iter()
                    .filter(|d| d.id.signal == to)
                    .map(|d| d.id.clone())
                    .collect();
                feeds.sort();
                let reusable = pool
                    .connectors
                    .remove(&key)
                    .filter(|old| old.config.same_as(&entry.config) && old.downstream == feeds);
                let live = match reusable {
                    Some(old) => {
                        kept.push(format!("connector {id}"));
                        old
                    }
                    None => {
                        let outs: Vec<(String, DynConsumer)> = feeds
                            .iter()
                            .map(|d| {
                                let point = TapPoint::new(
                                    id,
                                    ComponentKind::Connector,
                                    &d.to_string(),
                                    Direction::Output,
                                    to,
                                );
                                (d.to_string(), Tap::wrap(entries[d].clone(), point))
                            })
                            .collect();
                        let outputs = ConnectorOutputs {
                            all: Fanout::of(outs.iter().map(|(_, c)| c.clone()).collect()),
                            pipelines: outs,
                        };
                        let factory = registry
                            .connector(id.type_name())
                            .ok_or_else(|| unknown(ComponentKind::Connector, id))?;
                        let mut ctx = CreateContext::new(id.clone(), ComponentKind::Connector);
                        ctx.pipeline = Some(p.id.to_string());
                        ctx.sandbox = sandbox.map(Path::to_path_buf);
                        let connector = factory
                            .create(&entry.config, ctx, signal, to, outputs)
                            .instrument(tracing::warn_span!("connector", component = %id))
                            .await
                            .map_err(fail(ComponentKind::Connector, id))?;
                        LiveConnector {
                            config: entry.config.clone(),
                            downstream: feeds,
                            connector,
                        }
                    }
                };
                targets.push(Tap::wrap(live.connector.clone(), input));
                connectors.insert(key, live);
            }
        }
        let mut next = Fanout::of(targets);
        let mut processors = Vec::new();
        for id in p.processors.iter().rev() {
            let entry = plan
                .processors
                .get(id)
                .ok_or_else(|| unknown(ComponentKind::Processor, id))?;
            let labels = [
                ("signal", signal.to_string()),
                ("pipeline", p.id.to_string()),
            ];
            let telemetry = lumina_sdk::telemetry::ComponentTelemetry::new(
                ComponentKind::Processor,
                id.to_string(),
            );
            let reusable = pool
                .processors
                .remove(&(p.id.clone(), id.clone()))
                .filter(|old| old.config.same_as(&entry.config));
            let live = match reusable {
                Some(old) => {
                    kept.push(format!("processor {id} of {}", p.id));
                    old
                }
                None => {
                    let factory = registry
                        .processor(id.type_name())
                        .ok_or_else(|| unknown(ComponentKind::Processor, id))?;
                    let mut ctx = CreateContext::new(id.clone(), ComponentKind::Processor);
                    ctx.pipeline = Some(p.id.to_string());
                    ctx.sandbox = sandbox.map(Path::to_path_buf);
                    let out = Slot::unwired();
                    let counted = Counted::wrap(
                        out.clone(),
                        telemetry.counter(names::PROCESSOR_OUTGOING, &labels),
                        TapPoint::new(
                            id,
                            ComponentKind::Processor,
                            &pipeline,
                            Direction::Output,
                            signal,
                        ),
                    );
                    let processor = factory
                        .create(&entry.config, ctx, signal, counted)
                        .instrument(tracing::warn_span!("processor", component = %id))
                        .await
                        .map_err(fail(ComponentKind::Processor, id))?;
                    LiveProcessor {
                        id: id.clone(),
                        config: entry.config.clone(),
                        processor,
                        out,
                    }
                }
            };
            wiring.push((live.out.clone(), next));
            next = Counted::wrap(
                live.processor.clone(),
                telemetry.counter(names::PROCESSOR_INCOMING, &labels),
                TapPoint::new(
                    id,
                    ComponentKind::Processor,
                    &pipeline,
                    Direction::Input,
                    signal,
                ),
            );
            processors.push(live);
        }
        processors.reverse();
        wiring.push((entries[&p.id].clone(), next));
        pipelines.push(BuiltPipeline {
            id: p.id.clone(),
            processors,
        });
    }
    pipelines.reverse();

    let mut receivers = Vec::new();
    for (id, entry) in &plan.receivers {
        let feeds: Vec<_> = plan
            .pipelines
            .iter()
            .filter(|p| p.receivers.contains(id))
            .collect();
        if feeds.is_empty() || sandbox.is_some() {
            continue;
        }
        let targets_of = |signal: Signal| -> Vec<DynConsumer> {
            feeds
                .iter()
                .filter(|p| p.id.signal == signal)
                .map(|p| entries[&p.id].clone() as DynConsumer)
                .collect()
        };
        let signals: Vec<Signal> = Signal::ALL
            .into_iter()
            .filter(|s| !targets_of(*s).is_empty())
            .collect();
        let reusable = pool.receivers.remove(id).filter(|old| {
            old.config.same_as(&entry.config)
                && old.slots.keys().copied().collect::<Vec<_>>() == signals
        });
        let live = match reusable {
            Some(old) => {
                kept.push(format!("receiver {id}"));
                LiveReceiver {
                    id: id.clone(),
                    config: old.config,
                    receiver: None,
                    slots: old.slots,
                    outputs: old.outputs,
                    started: false,
                }
            }
            None => {
                let factory = registry
                    .receiver(id.type_name())
                    .ok_or_else(|| unknown(ComponentKind::Receiver, id))?;
                let ctx = CreateContext::new(id.clone(), ComponentKind::Receiver);
                let mut outputs = ReceiverOutputs::default();
                let mut slots = BTreeMap::new();
                for signal in &signals {
                    let slot = Slot::unwired();
                    outputs.set(
                        *signal,
                        ReceiverOutput::wrap(slot.clone(), ctx.telemetry.clone(), *signal),
                    );
                    slots.insert(*signal, slot);
                }
                let receiver = factory
                    .create(&entry.config, ctx)
                    .instrument(tracing::warn_span!("receiver", component = %id))
                    .await
                    .map_err(fail(ComponentKind::Receiver, id))?;
                LiveReceiver {
                    id: id.clone(),
                    config: entry.config.clone(),
                    receiver: Some(receiver),
                    slots,
                    outputs,
                    started: false,
                }
            }
        };
        for (signal, slot) in &live.slots {
            wiring.push((slot.clone(), Fanout::of(targets_of(*signal))));
        }
        receivers.push(live);
    }
    let dead_letter_sinks = plan
        .exporters
        .values()
        .filter_map(|e| e.dead_letter.clone())
        .collect();
    Ok(Assembly {
        graph: Graph {
            receivers,
            pipelines,
            entries,
            connectors,
            upstreams,
            exporters,
            dead_letter_sinks,
        },
        wiring,
        kept,
    })
}

/// Every exporter the pipelines use and every exporter that serves as another's dead-letter
/// sink; the sinks first, so the exporters that feed them can be wired to them. One is kept
/// from `pool` when its settings (its own and the host's) are the same and so is the sink it
/// feeds.
async fn exporters(
    plan: &Plan,
    registry: &Registry,
    pool: &mut Pool,
    kept: &mut Vec<String>,
    sandbox: Option<&Path>,
) -> Result<(BTreeMap<ComponentId, LiveExporter>, Vec<ComponentId>), GraphError> {
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
    let mut out: BTreeMap<ComponentId, LiveExporter> = BTreeMap::new();
    let mut rebuilt: Vec<ComponentId> = Vec::new();
    let err = |id: &ComponentId, source: ComponentError| GraphError {
        kind: ComponentKind::Exporter,
        id: id.clone(),
        source,
    };
    for id in wanted {
        let e = &plan.exporters[id];
        let reusable = pool.exporters.remove(id).filter(|old| {
            old.config.same_as(&e.entry.config)
                && old.host_config.same_as(&e.host_config)
                && old.dead_letter == e.dead_letter
                && e.dead_letter.as_ref().is_none_or(|t| !rebuilt.contains(t))
        });
        if let Some(old) = reusable {
            kept.push(format!("exporter {id}"));
            out.insert(id.clone(), old);
            continue;
        }
        if let Some(dir) = sandbox {
            out.insert(id.clone(), sink(id, e, dir, policy));
            rebuilt.push(id.clone());
            continue;
        }
        let file = e.settings.dead_letter.file_for(id);
        let dead_letters = match &e.dead_letter {
            None => DeadLetters::file(id, file),
            Some(target) => {
                let consumer = out.get(target).map(|t| t.queue.clone()).ok_or_else(|| {
                    err(
                        id,
                        ComponentError::Other(format!(
                            "its dead-letter exporter `{target}` was not built"
                        )),
                    )
                })?;
                DeadLetters::exporter(id, target.clone(), consumer, file)
            }
        };
        let queue = queued(registry, id, e, e.settings.clone(), dead_letters, policy)
            .await
            .map_err(|source| err(id, source))?;
        rebuilt.push(id.clone());
        out.insert(
            id.clone(),
            LiveExporter {
                config: e.entry.config.clone(),
                host_config: e.host_config.clone(),
                dead_letter: e.dead_letter.clone(),
                queue,
            },
        );
    }
    Ok((out, rebuilt))
}

/// An exporter of a config test: what reaches it is seen by the test's taps at its input;
/// the sink behind the queue accepts everything and keeps nothing.
fn sink(
    id: &ComponentId,
    e: &crate::config::validate::ExporterEntry,
    dir: &Path,
    policy: OutagePolicy,
) -> LiveExporter {
    struct Discard;
    #[async_trait::async_trait]
    impl lumina_sdk::component::Exporter for Discard {
        async fn export(
            &self,
            _batch: &lumina_sdk::Batch,
        ) -> Result<(), lumina_sdk::component::ExportError> {
            Ok(())
        }
    }
    let queue = crate::exporter::QueuedExporter::start_watched(
        Arc::new(Discard),
        crate::exporter::settings::ExporterSettings::default(),
        lumina_sdk::telemetry::ComponentTelemetry::new(ComponentKind::Exporter, id.to_string()),
        DeadLetters::file(id, dir.join("dead_letters.jsonl")),
        None,
        policy,
    );
    LiveExporter {
        config: e.entry.config.clone(),
        host_config: e.host_config.clone(),
        dead_letter: e.dead_letter.clone(),
        queue,
    }
}
