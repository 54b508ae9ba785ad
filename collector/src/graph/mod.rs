//! The pipeline graph: builds components from a [`Plan`], wires them together, starts the
//! receivers and shuts everything down in order.
//!
//! The path of a batch: receiver → (fan-out to every pipeline of its signal that lists the
//! receiver) → the pipeline's processors, in order → fan-out to the pipeline's exporters
//! (each behind its own queue) and connectors (which feed further pipelines). Calls are direct
//! `async` calls down to the first queue, so a receiver's `consume` returns when the data is
//! queued, and waits when a queue is full.

mod assemble;
pub mod fanout;
pub mod observe;
mod reload;
pub mod slot;

pub use reload::Reloaded;

use std::collections::BTreeMap;
use std::sync::Arc;

use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentId, ComponentKind, Connector, DynConsumer, Processor, Receiver,
    ReceiverOutputs, Registry,
};
use lumina_sdk::config::ConfigValue;

use crate::config::Plan;
use crate::config::model::PipelineId;
use crate::exporter::QueuedExporter;
use assemble::assemble;
use slot::Slot;

/// A component that failed to build or start.
#[derive(Debug, thiserror::Error)]
#[error("{kind} `{id}`: {source}")]
pub struct GraphError {
    /// Its kind.
    pub kind: ComponentKind,
    /// Its id.
    pub id: ComponentId,
    /// What went wrong.
    #[source]
    pub source: ComponentError,
}

fn fail(kind: ComponentKind, id: &ComponentId) -> impl FnOnce(ComponentError) -> GraphError + '_ {
    move |source| GraphError {
        kind,
        id: id.clone(),
        source,
    }
}

type ConnectorKey = (ComponentId, Signal, Signal);

/// A processor instance of one pipeline, with the slot its output goes through.
#[derive(Clone)]
struct LiveProcessor {
    id: ComponentId,
    config: ConfigValue,
    processor: Arc<dyn Processor>,
    out: Arc<Slot>,
}

struct BuiltPipeline {
    id: PipelineId,
    /// In data order (first processor first).
    processors: Vec<LiveProcessor>,
}

#[derive(Clone)]
struct LiveConnector {
    config: ConfigValue,
    /// The pipelines it feeds, sorted.
    downstream: Vec<PipelineId>,
    connector: Arc<dyn Connector>,
}

struct LiveReceiver {
    id: ComponentId,
    config: ConfigValue,
    /// `None` only while a reload is being assembled: the running receiver is then moved
    /// over from the graph before.
    receiver: Option<Box<dyn Receiver>>,
    /// Its output per signal it feeds.
    slots: BTreeMap<Signal, Arc<Slot>>,
    outputs: ReceiverOutputs,
    started: bool,
}

#[derive(Clone)]
struct LiveExporter {
    config: ConfigValue,
    host_config: ConfigValue,
    dead_letter: Option<ComponentId>,
    queue: Arc<QueuedExporter>,
}

/// Everything built from a plan.
pub struct Graph {
    receivers: Vec<LiveReceiver>,
    /// Upstream first.
    pipelines: Vec<BuiltPipeline>,
    /// Each pipeline's entry.
    entries: BTreeMap<PipelineId, Arc<Slot>>,
    connectors: BTreeMap<ConnectorKey, LiveConnector>,
    /// The pipelines that feed each connector.
    upstreams: BTreeMap<ConnectorKey, Vec<PipelineId>>,
    exporters: BTreeMap<ComponentId, LiveExporter>,
    /// Exporters that serve as another's dead-letter sink.
    dead_letter_sinks: Vec<ComponentId>,
}

/// What a rebuild may reuse of the graph before: its parts, shared (receivers by their
/// settings and outputs only; the running receiver is moved over when the new graph is
/// committed).
#[derive(Default)]
struct Pool {
    receivers: BTreeMap<ComponentId, ReceiverSeed>,
    processors: BTreeMap<(PipelineId, ComponentId), LiveProcessor>,
    entries: BTreeMap<PipelineId, Arc<Slot>>,
    connectors: BTreeMap<ConnectorKey, LiveConnector>,
    exporters: BTreeMap<ComponentId, LiveExporter>,
}

/// A running receiver as a rebuild sees it.
struct ReceiverSeed {
    config: ConfigValue,
    slots: BTreeMap<Signal, Arc<Slot>>,
    outputs: ReceiverOutputs,
}

/// A graph being built: its parts, the edges to point once it is committed, and what of the
/// pool it reused.
struct Assembly {
    graph: Graph,
    /// Slots and the targets they take when the graph is committed.
    wiring: Vec<(Arc<Slot>, DynConsumer)>,
    /// How many of each kind were kept from before.
    kept: Vec<String>,
}

impl Graph {
    /// Creates every component the plan's pipelines use. Exporter queues start at once;
    /// receivers start with [`Graph::start`].
    pub async fn build(plan: &Plan, registry: &Registry) -> Result<Graph, GraphError> {
        Self::assembled(plan, registry, None).await
    }

    /// The graph of a config test: processors and connectors as [`Graph::build`] makes
    /// them, keeping their state in `sandbox`; no receivers (a test hands its records to a
    /// pipeline's entry, [`Graph::pipeline_entry`], or to a component's input); exporters that
    /// accept everything and send nothing (a test sees what reaches them through taps).
    pub async fn build_sandboxed(
        plan: &Plan,
        registry: &Registry,
        sandbox: &std::path::Path,
    ) -> Result<Graph, GraphError> {
        Self::assembled(plan, registry, Some(sandbox)).await
    }

    async fn assembled(
        plan: &Plan,
        registry: &Registry,
        sandbox: Option<&std::path::Path>,
    ) -> Result<Graph, GraphError> {
        let mut pool = Pool::default();
        let a = assemble(plan, registry, &mut pool, sandbox).await?;
        for (slot, target) in a.wiring {
            slot.set(target);
        }
        Ok(a.graph)
    }

    /// Where pipeline `id` takes its data in: what its receivers hand their records to.
    pub fn pipeline_entry(&self, id: &PipelineId) -> Option<DynConsumer> {
        self.entries.get(id).map(|s| s.clone() as DynConsumer)
    }

    /// The input of processor `id` in pipeline `pipeline`.
    pub fn processor_input(&self, pipeline: &PipelineId, id: &ComponentId) -> Option<DynConsumer> {
        self.pipelines
            .iter()
            .find(|p| p.id == *pipeline)
            .and_then(|p| p.processors.iter().find(|lp| lp.id == *id))
            .map(|lp| lp.processor.clone() as DynConsumer)
    }
    /// The input of connector `id` for `signal` (what its upstream pipelines hand it).
    pub fn connector_input(&self, id: &ComponentId, signal: Signal) -> Option<DynConsumer> {
        self.connectors
            .iter()
            .find(|((c, from, _), _)| c == id && *from == signal)
            .map(|(_, c)| c.connector.clone() as DynConsumer)
    }

    /// The receivers' ids.
    pub fn receiver_ids(&self) -> Vec<String> {
        self.receivers.iter().map(|r| r.id.to_string()).collect()
    }

    /// Every exporter, by id.
    pub fn exporters(&self) -> Vec<(String, Arc<QueuedExporter>)> {
        self.exporters
            .iter()
            .map(|(id, e)| (id.to_string(), e.queue.clone()))
            .collect()
    }

    /// The pipeline ids, upstream first.
    pub fn pipeline_ids(&self) -> Vec<String> {
        self.pipelines.iter().map(|p| p.id.to_string()).collect()
    }

    /// Starts every receiver not started yet. On failure the receivers this call started are
    /// stopped again.
    pub async fn start(&mut self) -> Result<(), GraphError> {
        let mut now = Vec::new();
        for (i, r) in self.receivers.iter_mut().enumerate() {
            if r.started {
                continue;
            }
            if let Err(e) = reload::start_one(r).await {
                for j in now {
                    stop_receiver(&mut self.receivers[j]).await;
                }
                return Err(e);
            }
            now.push(i);
        }
        Ok(())
    }

    async fn stop_receivers(&mut self) {
        for r in self.receivers.iter_mut() {
            stop_receiver(r).await;
        }
    }

    /// Stops receivers, then flushes processors and connectors upstream first, then drains
    /// every exporter's queue until `deadline` (what is left after it is dead-lettered).
    pub async fn shutdown(mut self, deadline: tokio::time::Instant) {
        if tokio::time::timeout_at(deadline, self.stop_receivers())
            .await
            .is_err()
        {
            tracing::warn!("Receivers did not finish their requests before the shutdown deadline.");
        }
        let mut done: Vec<&PipelineId> = Vec::new();
        for p in &self.pipelines {
            for lp in &p.processors {
                stop_processor(&lp.id, &p.id, &lp.processor, deadline).await;
            }
            done.push(&p.id);
            // A connector is flushed once every pipeline that feeds it has been.
            for (key, ups) in &self.upstreams {
                if ups.contains(&p.id)
                    && ups.iter().all(|u| done.contains(&u))
                    && let Some(c) = self.connectors.get(key)
                    && let Err(e) = c.connector.shutdown().await
                {
                    tracing::error!(component = %key.0, error = %e, "A connector did not stop cleanly.");
                }
            }
        }
        let exporters = std::mem::take(&mut self.exporters);
        stop_exporters(exporters, &self.dead_letter_sinks, deadline).await;
    }
}

async fn stop_receiver(r: &mut LiveReceiver) {
    let Some(receiver) = r.receiver.as_mut().filter(|_| r.started) else {
        return;
    };
    if let Err(e) = receiver.shutdown().await {
        tracing::error!(component = %r.id, error = %e, "A receiver did not stop cleanly.");
    }
    r.started = false;
}

async fn stop_processor(
    id: &ComponentId,
    pipeline: &PipelineId,
    processor: &Arc<dyn Processor>,
    deadline: tokio::time::Instant,
) {
    match tokio::time::timeout_at(deadline, processor.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(component = %id, %pipeline, error = %e, "A processor did not stop cleanly.")
        }
        Err(_) => {
            tracing::warn!(component = %id, %pipeline, "A processor did not flush before the shutdown deadline.")
        }
    }
}

/// Drains `exporters` until `deadline`: those that feed a dead-letter exporter first, so
/// what they give up at the deadline still reaches it.
async fn stop_exporters(
    exporters: BTreeMap<ComponentId, LiveExporter>,
    sinks: &[ComponentId],
    deadline: tokio::time::Instant,
) {
    let (sinks, feeders): (Vec<_>, Vec<_>) = exporters
        .into_iter()
        .partition(|(id, _)| sinks.contains(id));
    for group in [feeders, sinks] {
        let stops = group.into_iter().map(|(id, e)| async move {
            if let Err(err) = e.queue.shutdown(deadline).await {
                tracing::error!(component = %id, error = %err, "An exporter did not stop cleanly.");
            }
        });
        futures::future::join_all(stops).await;
    }
}

fn unknown(kind: ComponentKind, id: &ComponentId) -> GraphError {
    GraphError {
        kind,
        id: id.clone(),
        source: ComponentError::Other(format!("no {kind} type `{}` is registered", id.type_name())),
    }
}
