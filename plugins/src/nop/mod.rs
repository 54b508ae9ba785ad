//! `nop` receiver and exporter: they do nothing, for tests and benchmarks.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Receiver, ReceiverConfig, ReceiverOutputs, Stability,
};
use lumina_sdk::{Batch, Signal};

pub use config::NopConfig;

#[async_trait]
impl ReceiverConfig for NopConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "nop",
            ComponentKind::Receiver,
            Stability::Beta,
            &Signal::ALL,
            "Receives nothing.",
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError> {
        Ok(Box::new(NopReceiver))
    }
}

struct NopReceiver;

#[async_trait]
impl Receiver for NopReceiver {
    async fn start(&mut self, _outputs: ReceiverOutputs) -> Result<(), ComponentError> {
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
}

#[async_trait]
impl ExporterConfig for NopConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "nop",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Discards everything it gets.",
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        Ok(Arc::new(NopExporter))
    }
}

struct NopExporter;

#[async_trait]
impl Exporter for NopExporter {
    async fn export(&self, _batch: &Batch) -> Result<(), ExportError> {
        Ok(())
    }
}
