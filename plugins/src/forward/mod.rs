//! The `forward` connector: passes batches unchanged from the pipelines that export to it to
//! the pipelines that receive from it (same signal).

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorConfig, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::{Batch, Signal};

pub use config::ForwardConfig;

#[async_trait]
impl ConnectorConfig for ForwardConfig {
    fn info() -> ComponentInfo {
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

    async fn build(
        self,
        _ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
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
