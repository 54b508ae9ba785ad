//! `nop` receiver and exporter: they do nothing, for tests and benchmarks.

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Receiver, ReceiverFactory, ReceiverOutputs, Stability,
};
use lumina_sdk::config::{self, ConfigErrors, ConfigValue, Validate};
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;

/// `nop` takes no settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NopConfig {}

impl Validate for NopConfig {}

/// Makes `nop` receivers, which receive nothing.
pub struct NopReceiverFactory;

#[async_trait]
impl ReceiverFactory for NopReceiverFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "nop",
            ComponentKind::Receiver,
            Stability::Beta,
            &Signal::ALL,
            "Receives nothing.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<NopConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        config::parse::<NopConfig>(config)?;
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

/// Makes `nop` exporters, which accept and discard everything.
pub struct NopExporterFactory;

#[async_trait]
impl ExporterFactory for NopExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "nop",
            ComponentKind::Exporter,
            Stability::Beta,
            &Signal::ALL,
            "Discards everything it gets.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<NopConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        config::parse::<NopConfig>(config)?;
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
