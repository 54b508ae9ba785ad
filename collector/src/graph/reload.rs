//! Rebuilding a running graph for a new plan: what is the same keeps running (receivers keep
//! their listeners, processors their state, exporters their queues), what changed is built
//! anew, and what is gone is stopped: receivers first, then processors and connectors are
//! flushed, then exporters drain.
//!
//! The same means: the same id with the same settings (compared as written, wherever in the
//! file) and, for a processor, the same pipeline; for a connector, the same pipelines fed;
//! for a receiver, the same signals; for an exporter, the same dead-letter sink, itself kept.

use std::sync::Arc;

use lumina_sdk::component::Registry;

use super::assemble::assemble;
use super::{Graph, GraphError, Pool, ReceiverSeed, stop_exporters, stop_processor, stop_receiver};
use crate::config::Plan;

/// What a reload did, for the log.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Components kept running as they were.
    pub kept: Vec<String>,
    /// Components of the graph before that were stopped (removed, or replaced by new ones).
    pub stopped: Vec<String>,
    /// Receivers that did not start (their error); the rest of the new graph runs.
    pub failed: Vec<GraphError>,
}

impl Graph {
    fn pool(&self) -> Pool {
        let mut pool = Pool::default();
        for r in &self.receivers {
            pool.receivers.insert(
                r.id.clone(),
                ReceiverSeed {
                    config: r.config.clone(),
                    slots: r.slots.clone(),
                    outputs: r.outputs.clone(),
                },
            );
        }
        for p in &self.pipelines {
            for lp in &p.processors {
                pool.processors
                    .insert((p.id.clone(), lp.id.clone()), lp.clone());
            }
        }
        pool.entries = self.entries.clone();
        pool.connectors = self.connectors.clone();
        pool.exporters = self.exporters.clone();
        pool
    }

    /// Rebuilds this graph for `plan`. When the new graph cannot be built, nothing changed
    /// and the error says why. What is stopped gets until `deadline` to flush and drain.
    pub async fn reload(
        &mut self,
        plan: &Plan,
        registry: &Registry,
        deadline: tokio::time::Instant,
    ) -> Result<Reloaded, GraphError> {
        let mut pool = self.pool();
        let a = assemble(plan, registry, &mut pool, None).await?;
        let mut report = Reloaded {
            kept: a.kept,
            ..Reloaded::default()
        };
        let mut old = std::mem::replace(self, a.graph);
        let new = self;
        // The receivers kept move over, running.
        for r in new.receivers.iter_mut().filter(|r| r.receiver.is_none()) {
            if let Some(o) = old.receivers.iter_mut().find(|o| o.id == r.id) {
                r.receiver = o.receiver.take();
                r.started = o.started;
                o.started = false;
            }
        }
        // Point every edge at the new graph.
        for (slot, target) in a.wiring {
            slot.set(target);
        }
        // Receivers no longer wanted (or replaced) stop before their replacements start: a
        // replacement may listen on the same address.
        for o in old.receivers.iter_mut().filter(|o| o.receiver.is_some()) {
            stop_receiver(o).await;
            report.stopped.push(format!("receiver {}", o.id));
        }
        for r in new.receivers.iter_mut().filter(|r| !r.started) {
            if let Err(e) = start_one(r).await {
                report.failed.push(e);
            }
        }
        // Processors and connectors not kept flush into what they fed, then exporters not
        // kept drain.
        for p in &old.pipelines {
            for lp in &p.processors {
                let kept = new.pipelines.iter().any(|np| {
                    np.processors
                        .iter()
                        .any(|n| Arc::ptr_eq(&n.processor, &lp.processor))
                });
                if !kept {
                    stop_processor(&lp.id, &p.id, &lp.processor, deadline).await;
                    report
                        .stopped
                        .push(format!("processor {} of {}", lp.id, p.id));
                }
            }
        }
        for (key, c) in &old.connectors {
            let kept = new
                .connectors
                .values()
                .any(|n| Arc::ptr_eq(&n.connector, &c.connector));
            if !kept {
                if let Err(e) = c.connector.shutdown().await {
                    tracing::error!(component = %key.0, error = %e, "A connector did not stop cleanly.");
                }
                report.stopped.push(format!("connector {}", key.0));
            }
        }
        let gone: std::collections::BTreeMap<_, _> = std::mem::take(&mut old.exporters)
            .into_iter()
            .filter(|(_, e)| {
                !new.exporters
                    .values()
                    .any(|n| Arc::ptr_eq(&n.queue, &e.queue))
            })
            .collect();
        report
            .stopped
            .extend(gone.keys().map(|id| format!("exporter {id}")));
        stop_exporters(gone, &old.dead_letter_sinks, deadline).await;
        Ok(report)
    }
}

/// Starts receiver `r` (if it is not running yet).
pub(super) async fn start_one(r: &mut super::LiveReceiver) -> Result<(), GraphError> {
    use tracing::Instrument;
    let Some(receiver) = r.receiver.as_mut().filter(|_| !r.started) else {
        return Ok(());
    };
    let span = tracing::warn_span!("receiver", component = %r.id);
    receiver
        .start(r.outputs.clone())
        .instrument(span)
        .await
        .map_err(|source| GraphError {
            kind: lumina_sdk::component::ComponentKind::Receiver,
            id: r.id.clone(),
            source,
        })?;
    r.started = true;
    Ok(())
}
