//! Pipeline health, as served on `/health` (and by the `health_check` extension).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

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
    /// Whether every pipeline is running.
    pub healthy: bool,
    /// Each pipeline's state.
    pub pipelines: BTreeMap<String, PipelineState>,
}

/// Shared, updatable health.
#[derive(Clone, Debug)]
pub struct Health(Arc<RwLock<(Phase, BTreeMap<String, PipelineState>)>>);

impl Default for Health {
    fn default() -> Self {
        Self(Arc::new(RwLock::new((Phase::Starting, BTreeMap::new()))))
    }
}

impl Health {
    /// Sets the collector's phase and every pipeline's state to match.
    pub fn set_phase(&self, phase: Phase) {
        let mut g = self.0.write().unwrap_or_else(|p| p.into_inner());
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
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .insert(id.to_owned(), PipelineState::Starting);
    }

    /// The current report.
    pub fn report(&self) -> Report {
        let g = self.0.read().unwrap_or_else(|p| p.into_inner());
        let healthy = g.0 == Phase::Running && g.1.values().all(|s| *s == PipelineState::Running);
        Report {
            status: g.0,
            healthy,
            pipelines: g.1.clone(),
        }
    }
}
