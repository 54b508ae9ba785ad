//! The one way to write a component: a typed config that builds it.
//!
//! A component is its `<Name>Config` (serde, `deny_unknown_fields`, [`Validate`]) plus one of
//! the traits below, whose `build` turns a checked config into the running component. The
//! generic adapters ([`receiver`], [`processor`], [`exporter`], [`connector`]) make a factory
//! out of it, so no component writes the parse-then-discard `validate` or the parse-then-build
//! `create` by hand:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use lumina_sdk::component::{self, ComponentError, ComponentInfo, ComponentKind,
//!     CreateContext, ExportError, Exporter, ExporterConfig, Registry, Stability};
//! use lumina_sdk::config::Validate;
//! use lumina_sdk::{Batch, Signal};
//!
//! /// `discard` takes no settings.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct DiscardConfig {}
//! impl Validate for DiscardConfig {}
//!
//! struct Discard;
//! #[async_trait]
//! impl Exporter for Discard {
//!     async fn export(&self, _batch: &Batch) -> Result<(), ExportError> { Ok(()) }
//! }
//!
//! #[async_trait]
//! impl ExporterConfig for DiscardConfig {
//!     fn info() -> ComponentInfo {
//!         ComponentInfo::new("discard", ComponentKind::Exporter, Stability::Beta,
//!             &Signal::ALL, "Discards everything.")
//!     }
//!     async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
//!         Ok(Arc::new(Discard))
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.add_exporter(component::exporter::<DiscardConfig>()).unwrap();
//! ```
//!
//! A processor written against the plugin SDK ([`ProcessorPlugin`](crate::plugin::ProcessorPlugin))
//! is registered as a built-in the same way, through [`plugin_processor`](super::plugin_processor).

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use super::consumer::DynConsumer;
use super::traits::{
    ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs, CreateContext,
    Exporter, ExporterFactory, Processor, ProcessorFactory, Receiver, ReceiverFactory,
};
use crate::Signal;
use crate::config::{self, ConfigErrors, ConfigValue, Validate};

/// The config of a receiver type; it builds the receiver.
#[async_trait]
pub trait ReceiverConfig:
    DeserializeOwned + schemars::JsonSchema + Validate + Send + 'static
{
    /// What the type is: its name, signals, stability.
    fn info() -> ComponentInfo;
    /// Creates the receiver from its checked config; it starts when the host calls
    /// [`Receiver::start`].
    async fn build(self, ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError>;
    /// The addresses it will listen on (defaults included), each with the config key that
    /// sets it, so `validate` finds two components on one address before start-up does.
    fn listen_addresses(&self) -> Vec<(crate::config::ConfigPath, String)> {
        Vec::new()
    }
}

/// The config of a processor type; it builds one processor per pipeline that lists it.
#[async_trait]
pub trait ProcessorConfig:
    DeserializeOwned + schemars::JsonSchema + Validate + Send + 'static
{
    /// What the type is.
    fn info() -> ComponentInfo;
    /// Creates a processor for a pipeline of `signal` that forwards to `next`.
    async fn build(
        self,
        ctx: CreateContext,
        signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError>;
}

/// The config of an exporter type; it builds the exporter (the host queues for it).
#[async_trait]
pub trait ExporterConfig:
    DeserializeOwned + schemars::JsonSchema + Validate + Send + 'static
{
    /// What the type is.
    fn info() -> ComponentInfo;
    /// Creates the exporter. The host's own keys (`sending_queue`, `retry_on_failure`,
    /// `timeout`, `dead_letter`) were removed before the config was read.
    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError>;
    /// For `lumina validate --check-destinations`: checks that the destination exists and
    /// the configured credentials reach it, without sending data. `Ok` says what was checked;
    /// `None` (the default): nothing to check.
    async fn probe(self) -> Option<Result<String, String>> {
        None
    }
}

/// The config of a connector type; it builds one connector per (from, to) signal pair.
#[async_trait]
pub trait ConnectorConfig:
    DeserializeOwned + schemars::JsonSchema + Validate + Send + 'static
{
    /// What the type is, with the (from, to) pairs it joins.
    fn info() -> ComponentInfo;
    /// Checks the config against the pipelines the connector feeds (a routing table naming a
    /// pipeline that does not receive from it, say). The default accepts any.
    fn validate_outputs(&self, _downstream: &[String]) -> Result<(), ConfigErrors> {
        Ok(())
    }
    /// Creates a connector from `from` pipelines to `to` pipelines.
    async fn build(
        self,
        ctx: CreateContext,
        from: Signal,
        to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError>;
}

/// The factory of a typed config `C`: validation parses `C` (every error at once) and
/// creation parses it again and calls `C::build`.
pub struct Typed<C>(PhantomData<fn() -> C>);

impl<C> Default for Typed<C> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// The factory of receiver type `C`, for [`Registry::add_receiver`](super::Registry::add_receiver).
pub fn receiver<C: ReceiverConfig>() -> Arc<dyn ReceiverFactory> {
    Arc::new(Typed::<C>::default())
}

/// The factory of processor type `C`.
pub fn processor<C: ProcessorConfig>() -> Arc<dyn ProcessorFactory> {
    Arc::new(Typed::<C>::default())
}

/// The factory of exporter type `C`.
pub fn exporter<C: ExporterConfig>() -> Arc<dyn ExporterFactory> {
    Arc::new(Typed::<C>::default())
}

/// The factory of connector type `C`.
pub fn connector<C: ConnectorConfig>() -> Arc<dyn ConnectorFactory> {
    Arc::new(Typed::<C>::default())
}

#[async_trait]
impl<C: ReceiverConfig> ReceiverFactory for Typed<C> {
    fn info(&self) -> ComponentInfo {
        C::info()
    }

    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(C).to_value())
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<C>(config).map(drop)
    }

    fn listen_addresses(&self, config: &ConfigValue) -> Vec<(crate::config::ConfigPath, String)> {
        config::parse::<C>(config)
            .map(|c| c.listen_addresses())
            .unwrap_or_default()
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        config::parse::<C>(config)?.build(ctx).await
    }
}

#[async_trait]
impl<C: ProcessorConfig> ProcessorFactory for Typed<C> {
    fn info(&self) -> ComponentInfo {
        C::info()
    }

    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(C).to_value())
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<C>(config).map(drop)
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        config::parse::<C>(config)?.build(ctx, signal, next).await
    }
}

#[async_trait]
impl<C: ExporterConfig> ExporterFactory for Typed<C> {
    fn info(&self) -> ComponentInfo {
        C::info()
    }

    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(C).to_value())
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<C>(config).map(drop)
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        config::parse::<C>(config)?.build(ctx).await
    }

    async fn probe(&self, config: &ConfigValue) -> Option<Result<String, String>> {
        match config::parse::<C>(config) {
            Ok(c) => c.probe().await,
            Err(e) => Some(Err(e.to_string())),
        }
    }
}

#[async_trait]
impl<C: ConnectorConfig> ConnectorFactory for Typed<C> {
    fn info(&self) -> ComponentInfo {
        C::info()
    }

    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(C).to_value())
    }

    fn validate(&self, config: &ConfigValue, downstream: &[String]) -> Result<(), ConfigErrors> {
        config::parse::<C>(config)?.validate_outputs(downstream)
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        from: Signal,
        to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        config::parse::<C>(config)?
            .build(ctx, from, to, outputs)
            .await
    }
}
