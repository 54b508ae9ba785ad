//! The plugin SDK: write a processor, exporter or receiver once, and build it as a WebAssembly
//! component (`--target wasm32-wasip2`) or as a native library (`cdylib`).
//!
//! A plugin implements one of [`ProcessorPlugin`], [`ExporterPlugin`] or [`ReceiverPlugin`]
//! and names its type in the matching macro: [`export_processor!`](crate::export_processor),
//! [`export_exporter!`](crate::export_exporter) or [`export_receiver!`](crate::export_receiver).
//! Enable the SDK feature of the same name (`processor`, `exporter` or `receiver`): it selects
//! the WIT world the WebAssembly build exports.
//!
//! ```
//! use lumina_sdk::plugin::{ConfigProblem, Outcome, PluginError, ProcessorPlugin};
//! use lumina_sdk::Batch;
//!
//! struct Passthrough;
//!
//! impl ProcessorPlugin for Passthrough {
//!     const NAME: &'static str = "passthrough";
//!     const VERSION: &'static str = "1.0.0";
//!     fn init(_config: &str) -> Result<Self, Vec<ConfigProblem>> {
//!         Ok(Passthrough)
//!     }
//!     fn process(&mut self, _batch: Batch) -> Result<Outcome, PluginError> {
//!         Ok(Outcome::Unchanged)
//!     }
//! }
//!
//! lumina_sdk::export_processor!(Passthrough);
//! ```
//!
//! In a plugin, [`host`] logs through the collector and records metrics, and [`http`] sends
//! requests (exporters; only to hosts the operator allowed). The contract is the WIT package
//! `lumina:plugin@0.2.0` in `sdk/wit/v0.2.0` for processors (0.1.0 plus batches read through
//! an attribute index, [`ProcessorPlugin::VIEW`]) and `lumina:plugin@0.1.0` in
//! `sdk/wit/v0.1.0` for exporters and receivers; for native plugins the C ABI in [`native`].

pub mod host;
pub mod http;
#[doc(hidden)]
pub mod macros;
pub mod native;
#[cfg(any(test, feature = "plugin-testkit"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

use serde::de::DeserializeOwned;

/// A plugin's labels as the host calls take them.
#[allow(
    dead_code,
    reason = "used by the host calls of some targets and features only"
)]
fn owned_labels(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

use crate::config::{ConfigError, ConfigPath, ConfigValue, PathSegment, Validate, parse};
use crate::view::{BatchView, Edits};
use crate::{Batch, Signal};

/// Why a plugin could not handle a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The same batch may succeed later (a destination was down, a timeout).
    #[error("{0}")]
    Retryable(String),
    /// Trying again will not help (the batch is invalid for this plugin).
    #[error("{0}")]
    Permanent(String),
}

/// One problem with a plugin's config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigProblem {
    /// Where in the plugin's config, dotted with indices (`attributes[1]`); empty for the whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigProblem {
    /// This problem as a config error under `under` in `component` (a plugin component's
    /// `config`, or the root for a plugin compiled in as a built-in), located as the host's
    /// own errors are when the tree knows where that was written: an unknown key at the key,
    /// anything else at the value.
    pub fn to_error(&self, component: &ConfigValue, under: &ConfigPath) -> ConfigError {
        let mut path = under.clone();
        for seg in parse_problem_path(&self.path) {
            path = match seg {
                PathSegment::Key(k) => path.key(k),
                PathSegment::Index(i) => path.index(i),
            };
        }
        let location = if self.message.starts_with("unknown") {
            component
                .key_location_of(&path)
                .or_else(|| component.location_of(&path))
        } else {
            component.location_of(&path)
        };
        ConfigError::new(path, self.message.clone()).at_opt(location)
    }
}

/// A plugin's dotted path with indices (`attributes[1].x`) as path segments.
fn parse_problem_path(p: &str) -> Vec<PathSegment> {
    let mut out = Vec::new();
    for part in p.split('.').filter(|s| !s.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(PathSegment::Key(key.to_owned()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            match idx.trim_end_matches(']').parse() {
                Ok(i) => out.push(PathSegment::Index(i)),
                Err(_) => out.push(PathSegment::Key(idx.trim_end_matches(']').to_owned())),
            }
        }
    }
    out
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    /// A short name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The signals it handles.
    pub signals: Vec<Signal>,
}

/// What a processor did with a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Pass it on unchanged (cheapest: nothing is copied back).
    Unchanged,
    /// Drop it on purpose: the sender is told it was taken, and its items are counted in
    /// `lumina_processor_filtered_items_total`. The same as `Replaced` with an empty batch.
    Dropped,
    /// Pass this batch on instead. Items it holds fewer than the input are counted as
    /// filtered, as for `Dropped`; an empty batch is not handed on.
    Replaced(Batch),
}

/// [`Outcome`] with the replacement already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedOutcome {
    /// Pass it on unchanged.
    Unchanged,
    /// Drop it on purpose.
    Dropped,
    /// Pass this encoded request on instead.
    Replaced(Vec<u8>),
}

/// A request a receiver plugin is given: what the host received on its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP path.
    pub path: String,
    /// The `Content-Type` header, or empty.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What a receiver plugin made of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    /// Batches to send down the pipelines.
    pub batches: Vec<Batch>,
    /// Parts of the request that were rejected, and why.
    pub rejected: Vec<String>,
}

/// A processor: changes, drops or passes on batches.
pub trait ProcessorPlugin: Sized + 'static {
    /// A short name.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// The signals it handles.
    const SIGNALS: &'static [Signal] = &Signal::ALL;

    /// Whether the plugin reads batches through [`Self::process_view`] (the encoded request
    /// and an index of its attributes) instead of decoded. A plugin that looks at attributes
    /// and changes only string values gains most: nothing is decoded or encoded, and for a
    /// WebAssembly plugin the host indexes the batch and applies the edits in native code.
    const VIEW: bool = false;

    /// Reads the config (JSON; empty when the operator gave none). Must have no side effects:
    /// `lumina validate` calls it.
    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>>;

    /// Handles one decoded batch. Built-in use (a plugin compiled in as a processor) always
    /// calls this; plugins set [`Self::VIEW`] to be called through [`Self::process_view`]
    /// when loaded as WebAssembly or native plugins.
    fn process(&mut self, batch: Batch) -> Result<Outcome, PluginError>;

    /// Handles one batch read through its attribute index; called instead of
    /// [`Self::process`] when [`Self::VIEW`] is `true`. Answer [`ViewOutcome::Edited`] with
    /// the new string values (an empty list is the same as unchanged). The default decodes the
    /// batch and calls [`Self::process`].
    fn process_view(&mut self, view: &BatchView<'_>) -> Result<ViewOutcome, PluginError> {
        let batch = decode(view.signal(), view.bytes())?;
        Ok(match self.process(batch)? {
            Outcome::Unchanged => ViewOutcome::Unchanged,
            Outcome::Dropped => ViewOutcome::Dropped,
            Outcome::Replaced(b) => ViewOutcome::Replaced(b.encode_protobuf()),
        })
    }

    /// Handles one encoded batch. The default indexes it and calls [`Self::process_view`]
    /// when [`Self::VIEW`] is set, else decodes, calls [`Self::process`] and encodes a
    /// replacement; override it to work on the bytes directly.
    fn process_encoded(
        &mut self,
        signal: Signal,
        bytes: &[u8],
    ) -> Result<EncodedOutcome, PluginError> {
        if Self::VIEW {
            let view =
                BatchView::new(signal, bytes).map_err(|e| PluginError::Permanent(e.to_string()))?;
            let outcome = self.process_view(&view)?;
            return outcome.encode(&view);
        }
        let batch = decode(signal, bytes)?;
        Ok(match self.process(batch)? {
            Outcome::Unchanged => EncodedOutcome::Unchanged,
            Outcome::Dropped => EncodedOutcome::Dropped,
            Outcome::Replaced(b) => EncodedOutcome::Replaced(b.encode_protobuf()),
        })
    }
}

/// What a processor did with a batch it read through a [`BatchView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewOutcome {
    /// Pass it on unchanged.
    Unchanged,
    /// Drop it on purpose.
    Dropped,
    /// Pass this encoded request on instead.
    Replaced(Vec<u8>),
    /// Pass it on with these attributes' string values replaced.
    Edited(Edits),
}

impl ViewOutcome {
    /// The outcome with edits applied to `view`'s bytes. Edits the view refuses (of an
    /// attribute that is not a string, or twice the same) are the plugin's error, permanent.
    pub fn encode(self, view: &BatchView<'_>) -> Result<EncodedOutcome, PluginError> {
        Ok(match self {
            ViewOutcome::Unchanged => EncodedOutcome::Unchanged,
            ViewOutcome::Dropped => EncodedOutcome::Dropped,
            ViewOutcome::Replaced(b) => EncodedOutcome::Replaced(b),
            ViewOutcome::Edited(edits) if edits.is_empty() => EncodedOutcome::Unchanged,
            ViewOutcome::Edited(edits) => EncodedOutcome::Replaced(
                view.apply(&edits)
                    .map_err(|e| PluginError::Permanent(format!("the plugin's edits: {e}")))?,
            ),
        })
    }
}

/// An exporter: sends batches out (through [`http::send`] when built for WebAssembly).
pub trait ExporterPlugin: Sized + 'static {
    /// A short name.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// The signals it handles.
    const SIGNALS: &'static [Signal] = &Signal::ALL;

    /// Reads the config; see [`ProcessorPlugin::init`].
    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>>;

    /// Sends one decoded batch.
    fn export(&mut self, batch: &Batch) -> Result<(), PluginError>;

    /// Sends one encoded batch. The default decodes and calls [`Self::export`].
    fn export_encoded(&mut self, signal: Signal, bytes: &[u8]) -> Result<(), PluginError> {
        let batch = decode(signal, bytes)?;
        self.export(&batch)
    }
}

/// A receiver: turns what the host received on its listener into batches.
pub trait ReceiverPlugin: Sized + 'static {
    /// A short name.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// The signals it produces.
    const SIGNALS: &'static [Signal] = &[Signal::Logs];

    /// Reads the config; see [`ProcessorPlugin::init`].
    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>>;

    /// Decodes one request. An error rejects it as a whole.
    fn receive(&mut self, request: &Request) -> Result<Received, PluginError>;
}

fn decode(signal: Signal, bytes: &[u8]) -> Result<Batch, PluginError> {
    Batch::decode_protobuf(signal, bytes).map_err(|e| PluginError::Permanent(e.to_string()))
}

/// Parses a plugin's JSON config into `T` with every problem reported (each with its path),
/// then runs `T`'s [`Validate`]. An empty config reads as `{}`, so a plugin whose settings all
/// have defaults needs no `config:` at all.
pub fn parse_config<T: DeserializeOwned + Validate>(json: &str) -> Result<T, Vec<ConfigProblem>> {
    let value: serde_json::Value = if json.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(json).map_err(|e| {
            vec![ConfigProblem {
                path: String::new(),
                message: format!("the config is not valid JSON: {e}"),
            }]
        })?
    };
    let value = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value
    };
    parse::<T>(&ConfigValue::from(value)).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| ConfigProblem {
                path: if e.path.is_root() {
                    String::new()
                } else {
                    e.path.to_string()
                },
                message: match e.hint {
                    Some(h) => format!("{} ({h})", e.message),
                    None => e.message,
                },
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_paths_become_config_paths() {
        let segs = parse_problem_path("attributes[1].x[2][3]");
        let rendered = segs.iter().fold(ConfigPath::root(), |p, s| match s {
            PathSegment::Key(k) => p.key(k.clone()),
            PathSegment::Index(i) => p.index(*i),
        });
        assert_eq!(rendered.to_string(), "attributes[1].x[2][3]");
        assert!(parse_problem_path("").is_empty());
    }
}
