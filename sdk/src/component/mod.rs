//! Components: ids, the consumer contract, the receiver/processor/exporter/connector traits,
//! their factories and the registry.

mod consumer;
mod id;
mod registry;
mod traits;

pub use consumer::{Accepted, ConsumeError, Consumer, DynConsumer};
pub use id::{ComponentId, ComponentKind, IdError, Stability};
pub use registry::{DuplicateType, Registry};
pub use traits::{
    ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs, CreateContext,
    ExportError, Exporter, ExporterFactory, ProcessError, Processor, ProcessorFactory, Receiver,
    ReceiverFactory, ReceiverOutputs, Rejected, Transform, TransformProcessor,
};
