//! The registry: an explicit table of component factories by kind and type name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::id::ComponentKind;
use super::traits::{
    ComponentInfo, ConnectorFactory, ExporterFactory, ProcessorFactory, ReceiverFactory,
};

/// Two factories claimed the same kind and type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} of type `{type_name}` is already registered")]
pub struct DuplicateType {
    /// The kind.
    pub kind: ComponentKind,
    /// The type name.
    pub type_name: String,
}

/// Factories by kind and type name. Built by explicit calls (`register_all(&mut registry)`);
/// registering a type twice is an error.
#[derive(Default, Clone)]
pub struct Registry {
    receivers: BTreeMap<String, Arc<dyn ReceiverFactory>>,
    processors: BTreeMap<String, Arc<dyn ProcessorFactory>>,
    exporters: BTreeMap<String, Arc<dyn ExporterFactory>>,
    connectors: BTreeMap<String, Arc<dyn ConnectorFactory>>,
}

fn insert<F: ?Sized>(
    map: &mut BTreeMap<String, Arc<F>>,
    kind: ComponentKind,
    name: &str,
    f: Arc<F>,
) -> Result<(), DuplicateType> {
    if map.contains_key(name) {
        return Err(DuplicateType {
            kind,
            type_name: name.to_owned(),
        });
    }
    map.insert(name.to_owned(), f);
    Ok(())
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a receiver factory.
    pub fn add_receiver(&mut self, f: Arc<dyn ReceiverFactory>) -> Result<(), DuplicateType> {
        let name = f.info().type_name;
        insert(&mut self.receivers, ComponentKind::Receiver, name, f)
    }

    /// Adds a processor factory.
    pub fn add_processor(&mut self, f: Arc<dyn ProcessorFactory>) -> Result<(), DuplicateType> {
        let name = f.info().type_name;
        insert(&mut self.processors, ComponentKind::Processor, name, f)
    }

    /// Adds an exporter factory.
    pub fn add_exporter(&mut self, f: Arc<dyn ExporterFactory>) -> Result<(), DuplicateType> {
        let name = f.info().type_name;
        insert(&mut self.exporters, ComponentKind::Exporter, name, f)
    }

    /// Adds a connector factory.
    pub fn add_connector(&mut self, f: Arc<dyn ConnectorFactory>) -> Result<(), DuplicateType> {
        let name = f.info().type_name;
        insert(&mut self.connectors, ComponentKind::Connector, name, f)
    }

    /// The receiver factory for `type_name`.
    pub fn receiver(&self, type_name: &str) -> Option<&Arc<dyn ReceiverFactory>> {
        self.receivers.get(type_name)
    }

    /// The processor factory for `type_name`.
    pub fn processor(&self, type_name: &str) -> Option<&Arc<dyn ProcessorFactory>> {
        self.processors.get(type_name)
    }

    /// The exporter factory for `type_name`.
    pub fn exporter(&self, type_name: &str) -> Option<&Arc<dyn ExporterFactory>> {
        self.exporters.get(type_name)
    }

    /// The connector factory for `type_name`.
    pub fn connector(&self, type_name: &str) -> Option<&Arc<dyn ConnectorFactory>> {
        self.connectors.get(type_name)
    }

    /// Info on every registered factory of `kind` (extensions are the host's own).
    pub fn infos(&self, kind: ComponentKind) -> Vec<ComponentInfo> {
        match kind {
            ComponentKind::Receiver => self.receivers.values().map(|f| f.info()).collect(),
            ComponentKind::Processor => self.processors.values().map(|f| f.info()).collect(),
            ComponentKind::Exporter => self.exporters.values().map(|f| f.info()).collect(),
            ComponentKind::Connector => self.connectors.values().map(|f| f.info()).collect(),
            ComponentKind::Extension => Vec::new(),
        }
    }

    /// Info on every registered factory: receivers, processors, exporters, then connectors.
    pub fn all_infos(&self) -> Vec<ComponentInfo> {
        [
            ComponentKind::Receiver,
            ComponentKind::Processor,
            ComponentKind::Exporter,
            ComponentKind::Connector,
        ]
        .into_iter()
        .flat_map(|k| self.infos(k))
        .collect()
    }

    /// The type names registered for `kind`.
    pub fn type_names(&self, kind: ComponentKind) -> Vec<&str> {
        match kind {
            ComponentKind::Receiver => self.receivers.keys().map(String::as_str).collect(),
            ComponentKind::Processor => self.processors.keys().map(String::as_str).collect(),
            ComponentKind::Exporter => self.exporters.keys().map(String::as_str).collect(),
            ComponentKind::Connector => self.connectors.keys().map(String::as_str).collect(),
            ComponentKind::Extension => Vec::new(),
        }
    }
}
