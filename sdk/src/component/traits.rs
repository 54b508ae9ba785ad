//! The component traits and their factories.
//!
//! A factory validates a component's config (pure, no I/O) and creates the component (may do
//! I/O). The host owns tasks, queues and shutdown; a component implements the narrowest trait
//! that fits. Components do not implement the factories by hand: a typed config implements
//! [`ReceiverConfig`](super::ReceiverConfig) (or the processor, exporter or connector one) and
//! the generic adapters in [`typed`](super::typed) are the factories.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::consumer::{Consumer, DynConsumer};
use super::id::{ComponentId, ComponentKind, Stability};
use crate::config::{ConfigErrors, ConfigValue};
use crate::telemetry::ComponentTelemetry;
use crate::{Batch, Signal};

/// What a factory tells the host about the components it makes.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    /// The type name used in ids (`otlp`, `batch`).
    pub type_name: &'static str,
    /// The kind.
    pub kind: ComponentKind,
    /// How settled it is.
    pub stability: Stability,
    /// The signals it handles (for connectors, see `routes`).
    pub signals: Vec<Signal>,
    /// For connectors: the (from, to) signal pairs it joins.
    pub routes: Vec<(Signal, Signal)>,
    /// One line on what it does.
    pub description: &'static str,
    /// The metrics it records (beyond the host's, which every component gets).
    pub metrics: &'static [crate::telemetry::MetricDoc],
}

impl ComponentInfo {
    /// This info, declaring the metrics the component records: the host describes them
    /// (`# HELP`) and shows their series at 0 from the start.
    pub fn with_metrics(mut self, metrics: &'static [crate::telemetry::MetricDoc]) -> Self {
        self.metrics = metrics;
        self
    }

    /// Info for a component of `kind` that handles `signals`.
    pub fn new(
        type_name: &'static str,
        kind: ComponentKind,
        stability: Stability,
        signals: &[Signal],
        description: &'static str,
    ) -> Self {
        Self {
            type_name,
            kind,
            stability,
            signals: signals.to_vec(),
            routes: Vec::new(),
            description,
            metrics: &[],
        }
    }

    /// Info for a connector joining the given (from, to) pairs.
    pub fn connector(
        type_name: &'static str,
        stability: Stability,
        routes: &[(Signal, Signal)],
        description: &'static str,
    ) -> Self {
        let mut signals: Vec<Signal> = routes.iter().flat_map(|(a, b)| [*a, *b]).collect();
        signals.sort();
        signals.dedup();
        Self {
            type_name,
            kind: ComponentKind::Connector,
            stability,
            signals,
            routes: routes.to_vec(),
            description,
            metrics: &[],
        }
    }

    /// Whether the component handles `signal`.
    pub fn supports(&self, signal: Signal) -> bool {
        self.signals.contains(&signal)
    }
}

/// Why a component could not be created, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// Its config is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigErrors),
    /// It could not listen on an address.
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        /// The address.
        endpoint: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else, described for the operator.
    #[error("{0}")]
    Other(String),
}

impl ComponentError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// What every factory's `create` gets.
#[derive(Clone, Debug)]
pub struct CreateContext {
    /// The component's id.
    pub id: ComponentId,
    /// For processors and connectors: the pipeline it is created for.
    pub pipeline: Option<String>,
    /// Its telemetry handle: counters labelled with its id, rate-limited drop logging.
    pub telemetry: ComponentTelemetry,
    /// Set when the component is built for a config test (`lumina test`): a fresh directory,
    /// deleted after the test, where it keeps any state it would otherwise keep on disk or in
    /// a remote store, so a test starts from nothing, leaves nothing behind and needs no
    /// network.
    pub sandbox: Option<std::path::PathBuf>,
}

impl CreateContext {
    /// A context for `id` of `kind`, outside any pipeline.
    pub fn new(id: ComponentId, kind: ComponentKind) -> Self {
        let telemetry = ComponentTelemetry::new(kind, id.to_string());
        Self {
            id,
            pipeline: None,
            telemetry,
            sandbox: None,
        }
    }
}

// ----- receivers -------------------------------------------------------------------------

/// Where a receiver sends what it receives: one consumer per signal that has a pipeline.
#[derive(Clone, Default)]
pub struct ReceiverOutputs {
    /// Logs, if a logs pipeline uses the receiver.
    pub logs: Option<DynConsumer>,
    /// Traces, if a traces pipeline uses the receiver.
    pub traces: Option<DynConsumer>,
    /// Metrics, if a metrics pipeline uses the receiver.
    pub metrics: Option<DynConsumer>,
}

impl ReceiverOutputs {
    /// The consumer for `signal`, if a pipeline of that signal uses the receiver.
    pub fn get(&self, signal: Signal) -> Option<&DynConsumer> {
        match signal {
            Signal::Logs => self.logs.as_ref(),
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
        }
    }

    /// Sets the consumer for `signal`.
    pub fn set(&mut self, signal: Signal, consumer: DynConsumer) {
        match signal {
            Signal::Logs => self.logs = Some(consumer),
            Signal::Traces => self.traces = Some(consumer),
            Signal::Metrics => self.metrics = Some(consumer),
        }
    }
}

/// Takes data in from outside the collector.
#[async_trait]
pub trait Receiver: Send + Sync {
    /// Starts serving. Returns once it is listening, so errors such as an address in use come
    /// back here and stop the collector from starting.
    async fn start(&mut self, outputs: ReceiverOutputs) -> Result<(), ComponentError>;

    /// Stops taking new data and returns once every request it accepted has been handed
    /// downstream (and answered).
    async fn shutdown(&mut self) -> Result<(), ComponentError>;
}

/// Makes receivers of one type.
#[async_trait]
pub trait ReceiverFactory: Send + Sync {
    /// What it makes.
    fn info(&self) -> ComponentInfo;
    /// The JSON Schema of its config (`lumina schema`), if it has one.
    fn config_schema(&self) -> Option<serde_json::Value> {
        None
    }

    /// Checks a config without side effects.
    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors>;
    /// The signals a component with this (valid) config handles; by default those of `info`.
    /// Plugins narrow it to what the loaded plugin says.
    fn supported_signals(&self, _config: &ConfigValue) -> Vec<Signal> {
        self.info().signals
    }
    /// The addresses a receiver with this (valid) config listens on, with the keys that set
    /// them (defaults included). None by default.
    fn listen_addresses(&self, _config: &ConfigValue) -> Vec<(crate::config::ConfigPath, String)> {
        Vec::new()
    }
    /// Creates a receiver; it starts when the host calls [`Receiver::start`].
    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Box<dyn Receiver>, ComponentError>;
}

// ----- processors ------------------------------------------------------------------------

/// Transforms batches inside a pipeline. A processor is a consumer that forwards to the next
/// consumer it was created with, now (a filter) or later (a batcher). A pure function over a
/// batch is simplest written as a [`ProcessorPlugin`](crate::plugin::ProcessorPlugin) and
/// registered with [`plugin_processor`](super::plugin_processor).
#[async_trait]
pub trait Processor: Consumer {
    /// Flushes anything held and stops. Called after everything upstream has stopped.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// Makes processors of one type. A processor is created per pipeline that lists it.
#[async_trait]
pub trait ProcessorFactory: Send + Sync {
    /// What it makes.
    fn info(&self) -> ComponentInfo;
    /// The JSON Schema of its config (`lumina schema`), if it has one.
    fn config_schema(&self) -> Option<serde_json::Value> {
        None
    }

    /// Checks a config without side effects.
    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors>;
    /// The signals a component with this (valid) config handles; see
    /// [`ReceiverFactory::supported_signals`].
    fn supported_signals(&self, _config: &ConfigValue) -> Vec<Signal> {
        self.info().signals
    }
    /// Creates a processor for a pipeline of `signal` that forwards to `next`.
    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError>;
}

// ----- exporters -------------------------------------------------------------------------

/// Why an export attempt failed, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExportError {
    /// What happened, for the operator.
    pub message: String,
    /// Whether trying again may succeed (connection refused, timeout, 429, 503...).
    pub retryable: bool,
    /// The delay the destination asked for, if it said.
    pub retry_after: Option<Duration>,
    /// When only part of the batch failed: that part. `None` means the whole batch.
    pub failed: Option<Batch>,
    /// Items the destination refused for good, each part with its reason (an OpenSearch
    /// mapping error, a record over Kinesis' size limit). They are not retried; the host hands
    /// them to the exporter's dead-letter sink. They are not part of `failed`.
    pub rejected: Vec<Rejected>,
}

/// Part of a batch that a destination refused for good, and why.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The refused items.
    pub batch: Batch,
    /// The destination's reason, for the operator and the dead-letter record.
    pub reason: String,
    /// When the destination said how many items it refused but not which (an OTLP partial
    /// success): that count. `batch` then holds every item the refused ones may be among, and
    /// the rest of them were delivered.
    pub refused: Option<usize>,
}

impl Rejected {
    /// Part of a batch refused for `reason`.
    pub fn new(batch: Batch, reason: impl Into<String>) -> Self {
        Self {
            batch,
            reason: reason.into(),
            refused: None,
        }
    }

    /// `refused` items of `batch`, which ones unknown, refused for `reason`; the others were
    /// delivered. The whole batch is dead-lettered (so nothing refused is lost; replaying it
    /// sends the delivered items again, which at-least-once delivery allows).
    pub fn some_of(batch: Batch, refused: usize, reason: impl Into<String>) -> Self {
        Self {
            refused: Some(refused.min(batch.len())),
            batch,
            reason: reason.into(),
        }
    }

    /// How many items were refused.
    pub fn items(&self) -> usize {
        self.refused.unwrap_or_else(|| self.batch.len())
    }
}

impl ExportError {
    /// A failure that may succeed if tried again.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
            failed: None,
            rejected: Vec::new(),
        }
    }

    /// A failure that will not succeed if tried again.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
            failed: None,
            rejected: Vec::new(),
        }
    }

    /// Sets the delay the destination asked for.
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Says that only `part` of the batch failed.
    pub fn only(mut self, part: Batch) -> Self {
        self.failed = Some(part);
        self
    }

    /// The outcome of a destination that answers per item: `retry` may succeed if sent again
    /// (empty when nothing is worth retrying), `rejected` failed for good. Everything else in
    /// the batch was delivered.
    pub fn per_item(message: impl Into<String>, retry: Batch, rejected: Vec<Rejected>) -> Self {
        Self {
            message: message.into(),
            retryable: !retry.is_empty(),
            retry_after: None,
            failed: Some(retry),
            rejected,
        }
    }
}

/// Sends batches out of the collector. The host gives each exporter its own queue, retries and
/// timeouts (the `sending_queue`, `retry_on_failure` and `timeout` settings), so `export` makes
/// one attempt and says whether it is worth another.
#[async_trait]
pub trait Exporter: Send + Sync {
    /// One attempt to send a batch.
    async fn export(&self, batch: &Batch) -> Result<(), ExportError>;

    /// Flushes and closes; called after the exporter's queue has drained.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// Makes exporters of one type. One exporter is created per id and shared by every pipeline
/// that lists it.
#[async_trait]
pub trait ExporterFactory: Send + Sync {
    /// What it makes.
    fn info(&self) -> ComponentInfo;
    /// The JSON Schema of its config (`lumina schema`), if it has one.
    fn config_schema(&self) -> Option<serde_json::Value> {
        None
    }

    /// The signals a component with this (valid) config handles; see
    /// [`ReceiverFactory::supported_signals`].
    fn supported_signals(&self, _config: &ConfigValue) -> Vec<Signal> {
        self.info().signals
    }
    /// Checks a config without side effects. The host removes its own keys (`sending_queue`,
    /// `retry_on_failure`, `timeout`) before the factory sees the config.
    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors>;
    /// Creates an exporter.
    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError>;
    /// Checks that the destination of an exporter with this config exists and is reachable
    /// with its credentials (`lumina validate --check-destinations`): what was checked, why
    /// not, or `None` when there is nothing to check.
    async fn probe(&self, _config: &ConfigValue) -> Option<Result<String, String>> {
        None
    }
}

// ----- connectors ------------------------------------------------------------------------

/// The pipelines a connector feeds: each by id, and all of them together.
#[derive(Clone)]
pub struct ConnectorOutputs {
    /// Each downstream pipeline's entry, by pipeline id (`logs/eu`).
    pub pipelines: Vec<(String, DynConsumer)>,
    /// All downstream pipelines at once.
    pub all: DynConsumer,
}

impl ConnectorOutputs {
    /// The entry of pipeline `id`, if the connector feeds it.
    pub fn pipeline(&self, id: &str) -> Option<&DynConsumer> {
        self.pipelines.iter().find(|(p, _)| p == id).map(|(_, c)| c)
    }
}

/// Joins pipelines: the exporter of some pipelines and the receiver of others.
#[async_trait]
pub trait Connector: Consumer {
    /// Flushes anything held and stops.
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// Makes connectors of one type; one per id and (from, to) signal pair in use.
#[async_trait]
pub trait ConnectorFactory: Send + Sync {
    /// What it makes, with the (from, to) pairs it supports.
    fn info(&self) -> ComponentInfo;
    /// The JSON Schema of its config (`lumina schema`), if it has one.
    fn config_schema(&self) -> Option<serde_json::Value> {
        None
    }

    /// Checks a config without side effects. `downstream` lists the pipelines the connector
    /// feeds, so a routing table can be checked against them.
    fn validate(&self, config: &ConfigValue, downstream: &[String]) -> Result<(), ConfigErrors>;
    /// Creates a connector from `from` pipelines to `to` pipelines.
    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        from: Signal,
        to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError>;
}
