//! A processor written against the plugin SDK, compiled in and registered as a built-in.
//!
//! The same [`ProcessorPlugin`] type builds as a WebAssembly component, as a native library
//! and, through [`plugin_processor`], as an in-process component: its config is the component's
//! own settings (no `path:`), it runs on the calling task without encoding the batch, and its
//! host calls ([`host::log`](crate::plugin::host::log), `counter_add`, `histogram_record`)
//! reach the collector's telemetry directly.
//!
//! ```no_run
//! # use lumina_sdk::component::{Registry, plugin_processor};
//! # fn register<P: lumina_sdk::plugin::ProcessorPlugin + Send>(registry: &mut Registry) {
//! registry
//!     .add_processor(plugin_processor::<P>("redact_numbers", "Masks phone numbers."))
//!     .unwrap();
//! # }
//! ```

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::consumer::{Accepted, ConsumeError, Consumer, DynConsumer};
use super::id::{ComponentKind, Stability};
use super::traits::{ComponentError, ComponentInfo, CreateContext, Processor, ProcessorFactory};
use crate::config::{ConfigErrors, ConfigPath, ConfigValue};
use crate::plugin::host::in_process;
use crate::plugin::{Outcome, PluginError, ProcessorPlugin};
use crate::telemetry::ComponentTelemetry;
use crate::telemetry::names::PROCESSOR_FILTERED as FILTERED;
use crate::{Batch, Signal};

/// The factory of a built-in processor of type `type_name` made from plugin `P`.
pub fn plugin_processor<P: ProcessorPlugin + Send>(
    type_name: &'static str,
    description: &'static str,
) -> Arc<dyn ProcessorFactory> {
    Arc::new(PluginProcessorFactory::<P> {
        type_name,
        description,
        plugin: PhantomData,
    })
}

struct PluginProcessorFactory<P> {
    type_name: &'static str,
    description: &'static str,
    plugin: PhantomData<fn() -> P>,
}

impl<P: ProcessorPlugin + Send> PluginProcessorFactory<P> {
    /// Hands the component's settings to the plugin as JSON, as the plugin hosts do.
    fn init(&self, config: &ConfigValue) -> Result<P, ConfigErrors> {
        let json = if config.is_null() {
            String::new()
        } else {
            config.to_json().to_string()
        };
        P::init(&json).map_err(|problems| {
            problems
                .iter()
                .map(|p| p.to_error(config, &ConfigPath::root()))
                .collect()
        })
    }
}

#[async_trait]
impl<P: ProcessorPlugin + Send> ProcessorFactory for PluginProcessorFactory<P> {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            self.type_name,
            ComponentKind::Processor,
            Stability::Alpha,
            P::SIGNALS,
            self.description,
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        self.init(config).map(drop)
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let plugin = self.init(config)?;
        Ok(Arc::new(PluginProcessor {
            plugin: Mutex::new(plugin),
            telemetry: ctx.telemetry,
            next,
        }))
    }
}

/// A compiled-in plugin instance in a pipeline.
struct PluginProcessor<P> {
    plugin: Mutex<P>,
    telemetry: ComponentTelemetry,
    next: DynConsumer,
}

impl<P: ProcessorPlugin> PluginProcessor<P> {
    fn process(&self, batch: Batch) -> Result<Outcome, PluginError> {
        let mut plugin = self
            .plugin
            .lock()
            .map_err(|_| PluginError::Retryable("the plugin panicked in an earlier call".into()))?;
        // A panic is caught here, as the native and WebAssembly hosts catch theirs: it fails
        // this batch (retryably) instead of the collector.
        let run = std::panic::AssertUnwindSafe(|| {
            in_process::call(&self.telemetry, || plugin.process(batch))
        });
        std::panic::catch_unwind(run).unwrap_or_else(|_| {
            Err(PluginError::Retryable(
                "the plugin panicked while processing the batch".into(),
            ))
        })
    }
}

#[async_trait]
impl<P: ProcessorPlugin + Send> Consumer for PluginProcessor<P> {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        // As the plugin hosts do: a signal the plugin does not handle passes untouched.
        let signal = batch.signal();
        if !P::SIGNALS.contains(&signal) {
            return self.next.consume(batch).await;
        }
        // `Unchanged` passes the batch it was given on; the clone shares it (an `Arc`).
        match self.process(batch.clone()) {
            Ok(Outcome::Unchanged) => self.next.consume(batch).await,
            Ok(Outcome::Replaced(b)) => {
                // Items the replacement no longer holds were filtered out, as by `Dropped`.
                self.telemetry
                    .counter(FILTERED, &[("signal", signal.to_string())])
                    .increment(batch.len().saturating_sub(b.len()) as u64);
                if b.is_empty() {
                    return Ok(Accepted::all());
                }
                self.next.consume(b).await
            }
            Ok(Outcome::Dropped) => {
                self.telemetry
                    .counter(FILTERED, &[("signal", signal.to_string())])
                    .increment(batch.len() as u64);
                Ok(Accepted::all())
            }
            Err(e) => Err(ConsumeError::from_plugin(self.telemetry.id(), e)),
        }
    }
}

#[async_trait]
impl<P: ProcessorPlugin + Send> Processor for PluginProcessor<P> {}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::component::ComponentId;
    use crate::plugin::{ConfigProblem, host};
    use crate::testkit::{self, CollectingConsumer};

    /// Counts the records it sees through the host, logs, drops batches of one record and
    /// keeps two of a batch of five.
    struct Counting;

    impl ProcessorPlugin for Counting {
        const NAME: &'static str = "counting";
        const VERSION: &'static str = "0.0.1";
        const SIGNALS: &'static [Signal] = &[Signal::Logs];

        fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
            if config.contains("bad") {
                return Err(vec![ConfigProblem {
                    path: "bad".into(),
                    message: "is not a setting".into(),
                }]);
            }
            Ok(Counting)
        }

        fn process(&mut self, batch: Batch) -> Result<Outcome, PluginError> {
            host::counter_add("seen", batch.len() as u64);
            host::log(host::Level::Info, "processed a batch");
            match batch.len() {
                1 => Ok(Outcome::Dropped),
                5 => Ok(Outcome::Replaced(testkit::logs(1, 2))),
                _ => Ok(Outcome::Unchanged),
            }
        }
    }

    /// A counter's name, labels and value.
    type Counted = (String, Vec<(String, String)>, u64);

    #[test]
    fn host_calls_reach_the_collector_s_metrics_labelled_with_the_component() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = Arc::new(CollectingConsumer::new());
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let factory = plugin_processor::<Counting>("counting", "counts");
                let p = factory
                    .create(
                        &ConfigValue::null(),
                        CreateContext::new(ComponentId::new("counting"), ComponentKind::Processor),
                        Signal::Logs,
                        out.clone(),
                    )
                    .await
                    .unwrap();
                p.consume(testkit::logs(1, 3)).await.unwrap();
                p.consume(testkit::logs(1, 1)).await.unwrap();
                p.consume(testkit::logs(1, 5)).await.unwrap();
                p.consume(testkit::traces(1, 2)).await.unwrap();
            });
        });
        let snapshot: Vec<Counted> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(v) => Some((
                    key.key().name().to_owned(),
                    key.key()
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect(),
                    v,
                )),
                _ => None,
            })
            .collect();
        let seen = snapshot
            .iter()
            .find(|(n, _, _)| n == "lumina_plugin_seen_total")
            .map(|(_, labels, v)| (labels.clone(), *v));
        assert_eq!(
            seen,
            Some((vec![("component".into(), "counting".into())], 9)),
            "the plugin's counter, labelled with its component: {snapshot:?}"
        );
        let filtered = snapshot
            .iter()
            .find(|(n, _, _)| n == crate::telemetry::names::PROCESSOR_FILTERED)
            .map(|(_, _, v)| *v);
        assert_eq!(
            filtered,
            Some(1 + 3),
            "the dropped one-record batch is counted, and the three records a replacement left out"
        );
        assert_eq!(
            out.batches(),
            vec![
                testkit::logs(1, 3),
                testkit::logs(1, 2),
                testkit::traces(1, 2)
            ],
            "unchanged batches and signals it does not handle pass on"
        );
    }

    #[test]
    fn the_plugin_s_config_problems_are_config_errors_at_their_value() {
        let factory = plugin_processor::<Counting>("counting", "counts");
        let tree = crate::config::parse_yaml("bad: 1\n", "c.yaml").unwrap();
        let e = factory.validate(&tree).unwrap_err().to_string();
        assert_eq!(e, "c.yaml:1:6: bad: is not a setting");
    }
}
