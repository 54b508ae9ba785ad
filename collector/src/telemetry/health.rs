//! Pipeline health, as served on `/health` (and by the `health_check` extension).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::exporter::status::{ExporterReport, ExporterState};

/// Where the collector is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Building and starting components.
    Starting,
    /// Every pipeline is running.
    Running,
    /// Shutting down.
    Stopping,
    /// Stopped.
    Stopped,
}

/// The state of one pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineState {
    /// Built, receivers not started yet.
    Starting,
    /// Taking data.
    Running,
    /// Draining.
    Stopping,
    /// Stopped.
    Stopped,
}

/// The health report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `running`, or where the collector is instead.
    pub status: Phase,
    /// Whether every pipeline is running and no component is set aside.
    pub healthy: bool,
    /// Whether an exporter has been failing (or giving batches up) for longer than
    /// `service.telemetry.health.degraded_after`.
    pub degraded: bool,
    /// Each pipeline's state.
    pub pipelines: BTreeMap<String, PipelineState>,
    /// Each receiver's state (that of the collector: receivers run while it runs).
    pub receivers: BTreeMap<String, PipelineState>,
    /// Each exporter's state.
    pub exporters: BTreeMap<String, ExporterReport>,
    /// Components that are not working, and why (a quarantined plugin, for example).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, String>,
}

/// Reports components that are not working.
pub type ProblemSource = Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>;

/// Reports each exporter's state.
pub type ExporterSource = Arc<dyn Fn() -> BTreeMap<String, ExporterReport> + Send + Sync>;

/// The running graph, as health sees it.
#[derive(Default)]
struct Graph {
    receivers: Vec<String>,
    exporters: Option<ExporterSource>,
}

/// Shared, updatable health.
#[derive(Clone)]
pub struct Health {
    state: Arc<RwLock<(Phase, BTreeMap<String, PipelineState>)>>,
    problems: Option<ProblemSource>,
    graph: Arc<RwLock<Graph>>,
    degraded_status: axum::http::StatusCode,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: Arc::new(RwLock::new((Phase::Starting, BTreeMap::new()))),
            problems: None,
            graph: Arc::new(RwLock::new(Graph::default())),
            degraded_status: axum::http::StatusCode::OK,
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Health that also reports the components `problems` names.
    pub fn with_problems(problems: ProblemSource) -> Self {
        Self {
            problems: Some(problems),
            ..Self::default()
        }
    }

    /// Answers a degraded report with `status` (200 or 503).
    pub fn degraded_with(mut self, status: axum::http::StatusCode) -> Self {
        self.degraded_status = status;
        self
    }

    /// The HTTP status of a degraded report.
    pub fn degraded_status(&self) -> axum::http::StatusCode {
        self.degraded_status
    }

    /// Sets the collector's phase and every pipeline's state to match.
    pub fn set_phase(&self, phase: Phase) {
        let mut g = self.state.write().unwrap_or_else(|p| p.into_inner());
        g.0 = phase;
        let state = match phase {
            Phase::Starting => PipelineState::Starting,
            Phase::Running => PipelineState::Running,
            Phase::Stopping => PipelineState::Stopping,
            Phase::Stopped => PipelineState::Stopped,
        };
        for s in g.1.values_mut() {
            *s = state;
        }
    }

    /// Registers a pipeline (starting).
    pub fn add_pipeline(&self, id: &str) {
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .insert(id.to_owned(), PipelineState::Starting);
    }

    /// Replaces the pipelines (after a reload): each of `ids` is in the collector's phase.
    pub fn set_pipelines(&self, ids: &[String]) {
        let mut g = self.state.write().unwrap_or_else(|p| p.into_inner());
        let state = match g.0 {
            Phase::Starting => PipelineState::Starting,
            Phase::Running => PipelineState::Running,
            Phase::Stopping => PipelineState::Stopping,
            Phase::Stopped => PipelineState::Stopped,
        };
        g.1 = ids.iter().map(|id| (id.clone(), state)).collect();
    }

    /// Registers the built graph's receivers and where its exporters' states come from.
    pub fn set_graph(&self, receivers: Vec<String>, exporters: ExporterSource) {
        let mut g = self.graph.write().unwrap_or_else(|p| p.into_inner());
        g.receivers = receivers;
        g.exporters = Some(exporters);
    }

    /// The current report.
    pub fn report(&self) -> Report {
        let components = self.problems.as_ref().map(|p| p()).unwrap_or_default();
        let (receiver_ids, exporter_source) = {
            let g = self.graph.read().unwrap_or_else(|p| p.into_inner());
            (g.receivers.clone(), g.exporters.clone())
        };
        let mut exporters = exporter_source.map(|s| s()).unwrap_or_default();
        for (id, e) in &mut exporters {
            if components.contains_key(id) {
                e.state = ExporterState::Quarantined;
            }
        }
        let g = self.state.read().unwrap_or_else(|p| p.into_inner());
        let healthy = g.0 == Phase::Running
            && g.1.values().all(|s| *s == PipelineState::Running)
            && components.is_empty();
        let receiver_state = match g.0 {
            Phase::Starting => PipelineState::Starting,
            Phase::Running => PipelineState::Running,
            Phase::Stopping => PipelineState::Stopping,
            Phase::Stopped => PipelineState::Stopped,
        };
        Report {
            status: g.0,
            healthy,
            degraded: exporters.values().any(|e| e.degraded),
            pipelines: g.1.clone(),
            receivers: receiver_ids
                .into_iter()
                .map(|r| (r, receiver_state))
                .collect(),
            exporters,
            components,
        }
    }
}
