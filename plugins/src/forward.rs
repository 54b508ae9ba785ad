//! The `forward` connector: passes batches unchanged from the pipelines that export to it to
//! the pipelines that receive from it (same signal).

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::config::{self, ConfigErrors, ConfigValue};
use lumina_sdk::{Batch, Signal};

use crate::nop::NopConfig;

/// Makes `forward` connectors.
pub struct ForwardConnectorFactory;

#[async_trait]
impl ConnectorFactory for ForwardConnectorFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::connector(
            "forward",
            Stability::Beta,
            &[
                (Signal::Logs, Signal::Logs),
                (Signal::Traces, Signal::Traces),
                (Signal::Metrics, Signal::Metrics),
            ],
            "Joins pipelines of the same signal.",
        )
    }

    fn validate(&self, config: &ConfigValue, _downstream: &[String]) -> Result<(), ConfigErrors> {
        config::parse::<NopConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        config::parse::<NopConfig>(config)?;
        Ok(Arc::new(Forward(outputs.all)))
    }
}

struct Forward(DynConsumer);

#[async_trait]
impl Consumer for Forward {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        self.0.consume(batch).await
    }
}

#[async_trait]
impl Connector for Forward {}
