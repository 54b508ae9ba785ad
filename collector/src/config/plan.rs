//! The plan: a checked config, every component with its place in the file and its settings,
//! every pipeline resolved and ordered upstream first. `validate.rs` builds it; the graph
//! builds a running collector from it.

use std::collections::BTreeMap;

use lumina_sdk::component::ComponentId;
use lumina_sdk::config::{ConfigPath, ConfigValue};

use super::model::{PipelineId, ServiceSection};
use crate::exporter::settings::ExporterSettings;

/// A component's place in the config and its (host-key-free) settings.
#[derive(Debug, Clone)]
pub struct ComponentEntry {
    /// Its id.
    pub id: ComponentId,
    /// Its path, e.g. `receivers.otlp`.
    pub path: ConfigPath,
    /// Its settings as written (for exporters, without the host's keys).
    pub config: ConfigValue,
}

/// An exporter with the host's settings for it.
#[derive(Debug, Clone)]
pub struct ExporterEntry {
    /// The exporter.
    pub entry: ComponentEntry,
    /// Queue, retry, timeout and dead-letter settings.
    pub settings: ExporterSettings,
    /// The exporter that takes this one's dead letters, when not a file.
    pub dead_letter: Option<ComponentId>,
    /// The host's keys as written (queue, retry, timeout, dead letters), to tell on a reload
    /// whether they changed.
    pub host_config: ConfigValue,
}

/// A pipeline, resolved.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Its id.
    pub id: PipelineId,
    /// Receivers (and connectors) feeding it.
    pub receivers: Vec<ComponentId>,
    /// Processors, in order.
    pub processors: Vec<ComponentId>,
    /// Exporters (and connectors) it feeds.
    pub exporters: Vec<ComponentId>,
}

/// A checked config, ready to build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Receivers by id.
    pub receivers: BTreeMap<ComponentId, ComponentEntry>,
    /// Processors by id.
    pub processors: BTreeMap<ComponentId, ComponentEntry>,
    /// Exporters by id.
    pub exporters: BTreeMap<ComponentId, ExporterEntry>,
    /// Connectors by id.
    pub connectors: BTreeMap<ComponentId, ComponentEntry>,
    /// Extensions by id.
    pub extensions: BTreeMap<ComponentId, ComponentEntry>,
    /// Pipelines, upstream before downstream (a pipeline that feeds a connector comes before
    /// the pipelines that connector feeds).
    pub pipelines: Vec<PipelinePlan>,
    /// `service`.
    pub service: ServiceSection,
    /// Things that are allowed but probably not meant (unused components).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The pipelines that list `connector` as a receiver.
    pub fn downstream_of(&self, connector: &ComponentId) -> Vec<&PipelinePlan> {
        self.pipelines
            .iter()
            .filter(|p| p.receivers.contains(connector))
            .collect()
    }
}
