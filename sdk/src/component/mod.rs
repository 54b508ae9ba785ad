//! Components: ids, the consumer contract, the receiver/processor/exporter/connector traits,
//! the typed configs that build them (the one way to write a component), and the registry.

mod consumer;
mod id;
mod plugin_adapter;
mod registry;
mod traits;
pub mod typed;

pub use consumer::{Accepted, ConsumeError, Consumer, DynConsumer};
pub use id::{ComponentId, ComponentKind, IdError, Stability};
pub use plugin_adapter::plugin_processor;
pub use registry::{DuplicateType, Registry};
pub use traits::{
    ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs, CreateContext,
    ExportError, Exporter, ExporterFactory, Processor, ProcessorFactory, Receiver, ReceiverFactory,
    ReceiverOutputs, Rejected,
};
pub use typed::{
    ConnectorConfig, ExporterConfig, ProcessorConfig, ReceiverConfig, connector, exporter,
    processor, receiver,
};
