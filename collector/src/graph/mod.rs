//! The pipeline graph: builds components from a [`Plan`], wires them together, starts the
//! receivers and shuts everything down in order.
//!
//! The path of a batch: receiver → (fan-out to every pipeline of its signal that lists the
//! receiver) → the pipeline's processors, in order → fan-out to the pipeline's exporters
//! (each behind its own queue) and connectors (which feed further pipelines). Calls are direct
//! `async` calls down to the first queue, so a receiver's `consume` returns when the data is
//! queued, and waits when a queue is full.

pub mod fanout;
pub mod observe;

use std::collections::BTreeMap;
use std::sync::Arc;

use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentId, ComponentKind, Connector, ConnectorOutputs, CreateContext,
    DynConsumer, Processor, Receiver, ReceiverOutputs, Registry,
};
use lumina_sdk::telemetry::names;
use tracing::Instrument;

use crate::config::Plan;
use crate::config::model::PipelineId;
use crate::exporter::QueuedExporter;
use fanout::Fanout;
use observe::{Counted, ReceiverOutput};

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

struct BuiltPipeline {
    id: PipelineId,
    /// In data order (first processor first).
    processors: Vec<(ComponentId, Arc<dyn Processor>)>,
}

/// Everything built from a plan.
pub struct Graph {
    receivers: Vec<(ComponentId, Box<dyn Receiver>, ReceiverOutputs)>,
    started: usize,
    /// Upstream first.
    pipelines: Vec<BuiltPipeline>,
    connectors: BTreeMap<ConnectorKey, Arc<dyn Connector>>,
    /// The pipelines that feed each connector.
    upstreams: BTreeMap<ConnectorKey, Vec<PipelineId>>,
    exporters: BTreeMap<ComponentId, Arc<QueuedExporter>>,
    /// Exporters that serve as another's dead-letter sink.
    dead_letter_sinks: Vec<ComponentId>,
}

impl Graph {
    /// Creates every component the plan's pipelines use. Exporter queues start at once;
    /// receivers start with [`Graph::start`].
    pub async fn build(plan: &Plan, registry: &Registry) -> Result<Graph, GraphError> {
        let exporters =
            crate::exporter::build::all(plan, registry)
                .await
                .map_err(|(id, source)| GraphError {
                    kind: ComponentKind::Exporter,
                    id,
                    source,
                })?;

        let mut entries: BTreeMap<PipelineId, DynConsumer> = BTreeMap::new();
        let mut connectors: BTreeMap<ConnectorKey, Arc<dyn Connector>> = BTreeMap::new();
        let mut upstreams: BTreeMap<ConnectorKey, Vec<PipelineId>> = BTreeMap::new();
        let mut pipelines = Vec::new();
        // Downstream pipelines first, so a connector's targets exist when it is created.
        for p in plan.pipelines.iter().rev() {
            let signal = p.id.signal;
            let mut targets: Vec<DynConsumer> = Vec::new();
            for id in &p.exporters {
                if let Some(q) = exporters.get(id) {
                    targets.push(q.clone());
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
                    if let Some(c) = connectors.get(&key) {
                        targets.push(c.clone());
                        continue;
                    }
                    let outs: Vec<(String, DynConsumer)> = downstream
                        .iter()
                        .filter(|d| d.id.signal == to)
                        .filter_map(|d| entries.get(&d.id).map(|e| (d.id.to_string(), e.clone())))
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
                    let c = factory
                        .create(&entry.config, ctx, signal, to, outputs)
                        .instrument(tracing::warn_span!("connector", component = %id))
                        .await
                        .map_err(fail(ComponentKind::Connector, id))?;
                    connectors.insert(key, c.clone());
                    targets.push(c);
                }
            }
            let mut next = Fanout::of(targets);
            let mut processors = Vec::new();
            for id in p.processors.iter().rev() {
                let entry = plan
                    .processors
                    .get(id)
                    .ok_or_else(|| unknown(ComponentKind::Processor, id))?;
                let factory = registry
                    .processor(id.type_name())
                    .ok_or_else(|| unknown(ComponentKind::Processor, id))?;
                let mut ctx = CreateContext::new(id.clone(), ComponentKind::Processor);
                ctx.pipeline = Some(p.id.to_string());
                let labels = [
                    ("signal", signal.to_string()),
                    ("pipeline", p.id.to_string()),
                ];
                let out = Counted::wrap(
                    next,
                    ctx.telemetry.counter(names::PROCESSOR_OUTGOING, &labels),
                );
                let incoming = ctx.telemetry.counter(names::PROCESSOR_INCOMING, &labels);
                let proc = factory
                    .create(&entry.config, ctx, signal, out)
                    .instrument(tracing::warn_span!("processor", component = %id))
                    .await
                    .map_err(fail(ComponentKind::Processor, id))?;
                next = Counted::wrap(proc.clone(), incoming);
                processors.push((id.clone(), proc));
            }
            processors.reverse();
            entries.insert(p.id.clone(), next);
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
            if feeds.is_empty() {
                continue;
            }
            let factory = registry
                .receiver(id.type_name())
                .ok_or_else(|| unknown(ComponentKind::Receiver, id))?;
            let ctx = CreateContext::new(id.clone(), ComponentKind::Receiver);
            let mut outputs = ReceiverOutputs::default();
            for signal in Signal::ALL {
                let targets: Vec<DynConsumer> = feeds
                    .iter()
                    .filter(|p| p.id.signal == signal)
                    .filter_map(|p| entries.get(&p.id).cloned())
                    .collect();
                if !targets.is_empty() {
                    outputs.set(
                        signal,
                        ReceiverOutput::wrap(Fanout::of(targets), ctx.telemetry.clone(), signal),
                    );
                }
            }
            let receiver = factory
                .create(&entry.config, ctx)
                .instrument(tracing::warn_span!("receiver", component = %id))
                .await
                .map_err(fail(ComponentKind::Receiver, id))?;
            receivers.push((id.clone(), receiver, outputs));
        }
        Ok(Graph {
            receivers,
            started: 0,
            pipelines,
            connectors,
            upstreams,
            dead_letter_sinks: plan
                .exporters
                .values()
                .filter_map(|e| e.dead_letter.clone())
                .collect(),
            exporters,
        })
    }

    /// The input of connector `id` for `signal` (what its upstream pipelines hand it).
    pub fn connector_input(&self, id: &ComponentId, signal: Signal) -> Option<DynConsumer> {
        self.connectors
            .iter()
            .find(|((c, from, _), _)| c == id && *from == signal)
            .map(|(_, c)| c.clone() as DynConsumer)
    }

    /// The receivers' ids.
    pub fn receiver_ids(&self) -> Vec<String> {
        self.receivers
            .iter()
            .map(|(id, _, _)| id.to_string())
            .collect()
    }

    /// Every exporter, by id.
    pub fn exporters(&self) -> Vec<(String, Arc<QueuedExporter>)> {
        self.exporters
            .iter()
            .map(|(id, q)| (id.to_string(), q.clone()))
            .collect()
    }

    /// The pipeline ids, upstream first.
    pub fn pipeline_ids(&self) -> Vec<String> {
        self.pipelines.iter().map(|p| p.id.to_string()).collect()
    }

    /// Starts every receiver. On failure the receivers already started are stopped again.
    pub async fn start(&mut self) -> Result<(), GraphError> {
        for (id, receiver, outputs) in self.receivers.iter_mut() {
            let span = tracing::warn_span!("receiver", component = %id);
            if let Err(e) = receiver.start(outputs.clone()).instrument(span).await {
                let err = GraphError {
                    kind: ComponentKind::Receiver,
                    id: id.clone(),
                    source: e,
                };
                self.stop_receivers().await;
                return Err(err);
            }
            self.started += 1;
        }
        Ok(())
    }

    async fn stop_receivers(&mut self) {
        for (id, receiver, _) in self.receivers.iter_mut().take(self.started) {
            if let Err(e) = receiver.shutdown().await {
                tracing::error!(component = %id, error = %e, "A receiver did not stop cleanly.");
            }
        }
        self.started = 0;
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
            for (id, proc) in &p.processors {
                match tokio::time::timeout_at(deadline, proc.shutdown()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(component = %id, pipeline = %p.id, error = %e, "A processor did not stop cleanly.")
                    }
                    Err(_) => {
                        tracing::warn!(component = %id, pipeline = %p.id, "A processor did not flush before the shutdown deadline.")
                    }
                }
            }
            done.push(&p.id);
            // A connector is flushed once every pipeline that feeds it has been.
            for (key, ups) in &self.upstreams {
                if ups.contains(&p.id)
                    && ups.iter().all(|u| done.contains(&u))
                    && let Some(c) = self.connectors.get(key)
                    && let Err(e) = c.shutdown().await
                {
                    tracing::error!(component = %key.0, error = %e, "A connector did not stop cleanly.");
                }
            }
        }
        // Exporters that feed a dead-letter exporter first, so what they give up at the
        // deadline still reaches it.
        let (sinks, feeders): (Vec<_>, Vec<_>) = self
            .exporters
            .iter()
            .partition(|(id, _)| self.dead_letter_sinks.contains(*id));
        for group in [feeders, sinks] {
            let stops = group.into_iter().map(|(id, q)| async move {
                if let Err(e) = q.shutdown(deadline).await {
                    tracing::error!(component = %id, error = %e, "An exporter did not stop cleanly.");
                }
            });
            futures::future::join_all(stops).await;
        }
    }
}

fn unknown(kind: ComponentKind, id: &ComponentId) -> GraphError {
    GraphError {
        kind,
        id: id.clone(),
        source: ComponentError::Other(format!("no {kind} type `{}` is registered", id.type_name())),
    }
}
